"""Shared benchmark set-up: every result carries its device, versions and date in extra_info.

Conventions for bench/test_<thing>_bench.py:
- time with `benchmark.pedantic(fn, rounds=..., warmup_rounds>=1)`, so JIT, autotuning and caches
  stay out of the timings; on a GPU, call `torch.cuda.synchronize()` inside the timed function;
- put the shapes, dtype and the baseline's name in `benchmark.extra_info`;
- name baselines in the test id (`test_x[hirfast]`, `test_x[liger]`, ...), measured in one run.
"""
import datetime
import os
import platform
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from machine import machine_name  # noqa: E402


def _versions():
    out = {"python": platform.python_version()}
    for mod in ("torch", "triton", "transformers", "hirfast", "if_verifiable", "liger_kernel",
                "cut_cross_entropy", "flash_attn", "xformers"):
        try:
            m = __import__(mod)
            out[mod] = getattr(m, "__version__", "unknown")
        except Exception:  # noqa: BLE001 - an absent baseline is recorded as absent
            pass
    return out


def _device():
    info = {"machine": machine_name(), "cpu": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count()}
    try:
        import torch

        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
            info["cuda"] = torch.version.cuda
    except ImportError:
        pass
    return info


_ENV = None


@pytest.fixture(autouse=True)
def _record_environment(request):
    global _ENV
    if _ENV is None:
        _ENV = {"device": _device(), "versions": _versions(),
                "date": datetime.date.today().isoformat()}
    if "benchmark" in request.fixturenames:
        bm = request.getfixturevalue("benchmark")
        bm.extra_info.update(_ENV)
    yield


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_gpu = torch.cuda.is_available()
    except ImportError:
        has_gpu = False
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if item.get_closest_marker("gpu") is not None and not has_gpu:
            item.add_marker(skip)


def data_dir_path():
    """The benchmark data shipped with the tests (tests/data), or HIRFAST_TEST_DATA."""
    import pathlib

    env = os.environ.get("HIRFAST_TEST_DATA") or os.environ.get("HIRFAST_SHARED_DATA")
    path = pathlib.Path(env) if env else pathlib.Path(__file__).resolve().parents[1] / "tests" / "data"
    if not path.is_dir():
        pytest.fail(f"test data not found at {path}", pytrace=False)
    return path


def load_check_batch(bench, inputs_name, response_files):
    """Every (response, constraints) row of the response files in tests/data of one benchmark, as the
    arguments of hirfast.verify.check: (responses, ids, kwargs, prompts, number of pairs)."""
    from hirfast import verify_cli

    data = data_dir_path() / bench
    rows_all, responses_all = [], []
    for name in response_files:
        rows = verify_cli.load_inputs(str(data / inputs_name))
        responses_all += verify_cli.match_responses(rows, verify_cli.load_responses(str(data / name)), name)
        rows_all += rows
    ids = [r.instruction_ids for r in rows_all]
    kwargs = [r.kwargs for r in rows_all]
    prompts = [r.prompt for r in rows_all]
    return responses_all, ids, kwargs, prompts, sum(len(i) for i in ids)


def time_check(benchmark, batch, impl, mode, python_reference, data, reference):
    """One checker benchmark over `batch` (from load_check_batch): `impl` is "python-reference"
    (`python_reference(loose)` runs the whole batch; the group's baseline, 2 rounds) or
    "hirfast-1-thread" / "hirfast-2-threads" (hirfast.verify.check, 30 rounds); both after one
    warm-up round, judged by their minimum time."""
    from hirfast import verify

    responses, ids, kwargs, prompts, pairs = batch
    loose = mode == "loose"
    benchmark.extra_info.update({"pairs": pairs, "rows": len(responses), "mode": mode, "impl": impl,
                                 "data": data})
    if impl == "python-reference":
        benchmark.extra_info.update({"baseline": True, "reference": reference})
        fn = lambda: python_reference(loose)  # noqa: E731
        rounds = 2
    else:
        threads = 1 if impl == "hirfast-1-thread" else 2
        fn = lambda: verify.check(responses, ids, kwargs, prompts, loose=loose, num_threads=threads)  # noqa: E731
        rounds = 30
    result = benchmark.pedantic(fn, rounds=rounds, warmup_rounds=1, iterations=1)
    assert len(result) == len(responses)
    if benchmark.stats is not None:  # None under --benchmark-disable (one untimed run)
        benchmark.extra_info["pairs_per_second"] = pairs / benchmark.stats.stats.min


# Ratios measured side by side in one run: a benchmark marks itself as its group's baseline with
# extra_info["baseline"] = True; the summary prints every other member's speed relative to it.
def pytest_terminal_summary(terminalreporter, exitstatus, config):
    session = getattr(config, "_benchmarksession", None)
    if session is None or not getattr(session, "benchmarks", None):
        return
    groups = {}
    for bench in session.benchmarks:
        if bench.stats is None:
            continue
        groups.setdefault(bench.group, []).append(bench)
    lines = []
    for group, members in groups.items():
        base = [b for b in members if b.extra_info.get("baseline")]
        if not base:
            continue
        base_time = base[0].stats.min
        for b in members:
            lines.append(f"{group or '(no group)'}: {b.name}: {base_time / b.stats.min:.2f}x "
                         f"the speed of {base[0].name} (by min time)")
    if lines:
        terminalreporter.section("ratios to each group's baseline")
        for line in lines:
            terminalreporter.write_line(line)
