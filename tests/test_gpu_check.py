"""bench/gpu_check.py's plumbing: hirfast from the checkout without an install, the deadline, the
summary lines. (`make gpu-check CPU=1`, run by CI, runs every section at tiny shapes.)"""
import importlib.util
import json
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = REPO / "bench" / "gpu_check.py"


def _load():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bootstrap_imports_hirfast_kernels_from_the_checkout_without_an_install(tmp_path):
    # A fresh interpreter outside the checkout, with pip's editable-install finder removed: hirfast
    # is not importable until bootstrap(), which must then map hirfast.kernels to kernels/.
    code = f"""
import importlib.util, sys
sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in (getattr(f, '__module__', '')
                    + getattr(f, '__name__', '') + type(f).__module__)]
sys.path[:] = [p for p in sys.path if 'editable' not in p and p not in ('', {str(REPO)!r})]
assert importlib.util.find_spec('hirfast') is None, 'hirfast is importable without the checkout'
spec = importlib.util.spec_from_file_location('gpu_check', {str(SCRIPT)!r})
gpu_check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu_check)
gpu_check.bootstrap()
import hirfast.kernels.linear_logprobs as k
import hirfast.ops
print(k.__file__)
print(hirfast.ops.__file__)
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "TRITON_INTERPRET": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    kernels_file, ops_file = out.stdout.split()
    assert pathlib.Path(kernels_file) == REPO / "kernels" / "linear_logprobs.py"
    assert pathlib.Path(ops_file) == REPO / "hirfast" / "ops.py"


def test_sections_past_the_deadline_are_timeouts_in_the_summary_and_json(tmp_path, capsys):
    gpu_check = _load()
    path = tmp_path / "results.json"
    code = gpu_check.main(["--cpu", "--only", "env,rollout", "--deadline", "0", "--json", str(path)])
    assert code == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-3].startswith("TIMEOUT env/env ") and "not started" in lines[-3]
    assert lines[-2].startswith("TIMEOUT rollout/rollout ")
    assert "0 passed, 2 failed or timed out" in lines[-1]
    saved = json.loads(path.read_text())
    assert saved["mode"] == "cpu" and set(saved["sections"]) == {"env", "rollout"}


def test_summary_line_names_status_section_check_and_numbers():
    gpu_check = _load()
    line = gpu_check.summary_line("fused_loss", {
        "check": "policy_loss", "status": "FAIL", "ms": 123.456, "extra_gb": 0.7,
        "speedup_vs": {"liger-grpo": 1.1}, "baselines": {"ignored": 1}})
    assert line == "FAIL    fused_loss/policy_loss ms=123 extra_gb=0.7 speedup_vs={liger-grpo: 1.1}"
    assert gpu_check._judge(1.31, 1.3) == "PASS" and gpu_check._judge(1.2, 1.3) == "FAIL"
    assert gpu_check._judge(0.7, 1.0, higher=False) == "PASS" and gpu_check._judge(None, 1) == "SKIP"
