"""A checkout used as it is: commands run from the repository root, where Python puts the checkout
first on sys.path, must not see the top-level kernels/ folder as Hugging Face's `kernels`
distribution (transformers >= 5.25 imports it), and the suite must carry its own data."""
import importlib.metadata
import os
import pathlib
import subprocess
import sys

import pytest

from conftest import REPO


def _run_from_repo_root(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    # Nothing that would hide the shadowing: no PYTHONSAFEPATH, no PYTHONPATH.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONSAFEPATH", "PYTHONPATH")}
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


def _assert_ok(run: subprocess.CompletedProcess) -> None:
    assert run.returncode == 0, f"exit {run.returncode}\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"


def test_the_kernels_distribution_is_installed():
    # The tests below prove nothing without it; `make test` installs it with the test extras.
    assert importlib.metadata.version("kernels")


@pytest.mark.parametrize("command", [
    ("-c", "import transformers.integrations.hub_kernels"),
    ("-m", "hirfast", "--help"),
], ids=["import-hub_kernels", "hirfast-help"])
def test_commands_from_the_repository_root(command):
    _assert_ok(_run_from_repo_root(*command))


def test_pytest_collects_the_suite_from_the_repository_root():
    run = _run_from_repo_root("-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider")
    _assert_ok(run)
    assert "error" not in run.stdout.lower().splitlines()[-1], run.stdout[-2000:]


def test_import_kernels_from_the_root_gets_the_distribution_and_ours_stay_hirfast_kernels():
    code = ("import kernels, hirfast.kernels.policy_loss as ours, os; "
            "print(os.path.realpath(kernels.__file__)); print(os.path.realpath(ours.__file__))")
    run = _run_from_repo_root("-c", code)
    _assert_ok(run)
    theirs, ours = run.stdout.split()
    want = pathlib.Path(importlib.metadata.distribution("kernels").locate_file("kernels/__init__.py"))
    assert theirs == os.path.realpath(want)
    assert ours == os.path.realpath(REPO / "kernels" / "policy_loss.py")


def test_without_the_distribution_top_level_kernels_is_not_importable():
    # -S: no site-packages, so no `kernels` distribution; the checkout's folder must not stand in.
    run = _run_from_repo_root("-S", "-c", "import kernels")
    assert run.returncode != 0
    assert "ModuleNotFoundError" in run.stderr and "hirfast.kernels" in run.stderr, run.stderr


def test_no_test_reads_the_shared_folder_beside_the_checkout():
    # The ways a path to ../shared was spelled before the data moved into tests/data.
    spellings = ("../shared", '"shared" /', "REPO.parent", "parents[2]")
    offenders = [f"{path.relative_to(REPO)}: {spelling}" for folder in ("tests", "bench", "tools")
                 for path in (REPO / folder).rglob("*.py") if path != pathlib.Path(__file__)
                 for spelling in spellings if spelling in path.read_text(encoding="utf-8")]
    assert offenders == []
