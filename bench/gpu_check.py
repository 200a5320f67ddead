"""`make gpu-check`: one offline script that proves hirfast's GPU paths (and `CPU=1` runs it tiny).

Needs only torch, triton, transformers and pytest (Liger-Kernel and Cut Cross-Entropy are measured
when importable); hirfast is used from this checkout, not installed: the script puts the checkout
on sys.path and registers the top-level kernels/ folder as ``hirfast.kernels`` (what setup.py's
package_dir does for an install). The C++ checker (``hirfast._C``) is built in place, in the
background, only when a section needs it and it is missing.

Sections, each in its own process with a time cap (a section past its cap is a TIMEOUT; no section
starts after the global deadline):

- ``env``: GPU, versions, the bf16 matmul rate at (16384 x 4096) @ (4096 x 151936), and probes:
  torch's varlen_attn signature and whether it takes un-repeated grouped-query K/V.
- ``gpu_tests``: the ``gpu``-marked tests of attention, packing (bf16 autocast + gradient
  checkpointing included), rollout, trainer and eval; on the CPU, the CPU tests of the packed
  training pass (checkpointing, autocast dispatch) instead.
- ``fused_loss``: ``policy_loss`` and ``linear_logprobs`` forward + backward at
  (16384, 4096, 151936) bf16 against naive PyTorch, Liger-Kernel and Cut Cross-Entropy: ms,
  TFLOP/s counting 6*N*D*V, peak memory beyond inputs and gradients; and their accuracy.
- ``packing``: one training pass (forward + backward of every micro-batch) on a Qwen2.5-1.5B
  shaped model, padded vs packed vs packed with shared prompts (bench/test_packing_bench.py's
  rows and FLOP count), then the same packed pass as the trainer runs it (fp32 weights, bf16
  autocast, gradient checkpointing): row tokens/s and MFU.
- ``rollout``: hirfast.rollout.generate vs transformers ``generate`` on a Qwen2.5-0.5B shape,
  64 prompts x 6 x 256 new tokens: tokens/s, CUDA graphs captured, share of the bandwidth bound;
  then CUDA graphs captured per call over three training-like calls with stop tokens for the
  "linear" and "max" key-length buckets, and stop-flag reads (host syncs) per decode step.
- ``kernel_tests``: tests/test_ops.py's Triton cases, compiled (interpreted on the CPU).

The last lines printed are one summary line per check, ``PASS|FAIL|SKIP|TIMEOUT section/check
numbers``; the JSON (``--json``) holds every number. Exit status 1 if any check FAILed or timed out.

    python bench/gpu_check.py                 # on a GPU machine: no section starts after 470 s
    python bench/gpu_check.py --cpu           # tiny shapes on the CPU (CI), about 2 minutes
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import signal
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(REPO, "bench")
DEFAULT_JSON = os.path.join(REPO, "build", "gpu-check", "results.json")
sys.path.insert(0, os.path.join(REPO, "bench"))
from gpu_check_sections import (SECTION_FUNCS, SECTIONS, TARGETS, _check,  # noqa: E402,F401
                                _has_extension, _judge)

# --- running hirfast from the checkout ------------------------------------------------------------

def bootstrap() -> None:
    """Import hirfast from this checkout, with ``hirfast.kernels`` mapped to kernels/."""
    if REPO not in sys.path:
        sys.path.insert(0, REPO)
    import hirfast

    if "hirfast.kernels" in sys.modules:
        return
    if importlib.util.find_spec("hirfast.kernels") is not None:  # installed (pip install -e .)
        return
    init = os.path.join(REPO, "kernels", "__init__.py")
    spec = importlib.util.spec_from_file_location(
        "hirfast.kernels", init, submodule_search_locations=[os.path.dirname(init)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["hirfast.kernels"] = module
    spec.loader.exec_module(module)
    hirfast.kernels = module


# --- driver ---------------------------------------------------------------------------------------

def _run_section_child(name, cpu, result_file):
    bootstrap()
    import torch

    if cpu:
        torch.set_num_threads(1)  # tiny shapes are overhead-bound; one thread shares a busy CI box
    checks = SECTION_FUNCS[name](cpu)
    with open(result_file, "w", encoding="utf-8") as fh:
        json.dump(checks, fh, default=str)


def _start_build_if_needed(args, wanted, out_dir):
    """Builds hirfast._C in the background from the start, for the trainer and eval tests of
    gpu_tests (about a minute on 16 cores); that section waits for the file naming its exit code."""
    if args.cpu or "gpu_tests" not in wanted:
        return None, None
    bootstrap()
    if _has_extension():
        return None, None
    log, rc = os.path.join(out_dir, "build.log"), os.path.join(out_dir, "build.rc")
    if os.path.exists(rc):
        os.remove(rc)
    command = f'"{sys.executable}" setup.py build_ext --inplace > "{log}" 2>&1; echo $? > "{rc}"'
    print(f"gpu-check: building hirfast._C in the background (log: {log})", flush=True)
    return subprocess.Popen(["sh", "-c", command], cwd=REPO, start_new_session=True), rc


def _fmt(value):
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.3g}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


SUMMARY_KEYS = ("ms", "tflops_6ndv", "share_of_matmul_rate", "extra_gb", "speedup_vs", "tflops",
                "device", "torch", "triton", "transformers", "unrepeated_gqa_ok",
                "hirfast_passes_grouped_kv",
                "packed_vs_padded", "shared_vs_packed", "row_tokens_per_s", "mfu",
                "attention_backends", "hirfast_tokens_per_s", "hf_tokens_per_s", "speedup_vs_hf",
                "share_of_bandwidth_bound", "cuda_graphs_captured_first_call",
                "captures_per_call_linear", "captures_per_call_max", "tokens_per_s_linear",
                "tokens_per_s_max", "stop_flag_reads_per_decode_step",
                "stop_flag_reads_per_decode_step_at_1", "passed",
                "failed", "skipped", "max_abs_error", "seconds", "note", "error")


def summary_line(section, check):
    numbers = " ".join(f"{k}={_fmt(check[k])}" for k in SUMMARY_KEYS
                       if k in check and check[k] not in (None, [], {}))
    if check["check"] == "packed_vs_padded":
        mfu = (check.get("modes", {}).get("packed_shared") or {}).get("mfu")
        numbers += f" mfu_shared={_fmt(mfu)}" if mfu is not None else ""
    return f"{check['status']:7s} {section}/{check['check']} {numbers}".rstrip()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu", action="store_true", help="tiny shapes on the CPU (what CI runs)")
    parser.add_argument("--json", default=DEFAULT_JSON, help=f"results file (default {DEFAULT_JSON})")
    parser.add_argument("--only", default="", help="comma-separated sections to run")
    parser.add_argument("--deadline", type=float, default=None,
                        help="seconds after which no section starts (default 470 GPU, 540 CPU)")
    parser.add_argument("--section", help=argparse.SUPPRESS)
    parser.add_argument("--result-file", help=argparse.SUPPRESS)
    parser.add_argument("--pytest", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.pytest:  # a child running pytest with hirfast mapped from the checkout
        bootstrap()
        import pytest

        return pytest.main(args.rest)
    if args.section:
        _run_section_child(args.section, args.cpu, args.result_file)
        return 0

    t_start = time.perf_counter()
    deadline = args.deadline if args.deadline is not None else (540 if args.cpu else 470)
    wanted = [s for s in args.only.split(",") if s] or [name for name, *_ in SECTIONS]
    unknown = set(wanted) - set(SECTION_FUNCS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {list(SECTION_FUNCS)}")
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false")
    if args.cpu:
        env.setdefault("TRITON_INTERPRET", "1")
        env["CUDA_VISIBLE_DEVICES"] = ""  # the CPU run never touches a GPU, even on a GPU host
    build, build_rc = _start_build_if_needed(args, wanted, os.path.dirname(os.path.abspath(args.json)))
    if build_rc:
        env["HIRFAST_GPU_CHECK_BUILD_RC"] = build_rc
    results = {"mode": "cpu" if args.cpu else "gpu", "targets": TARGETS, "sections": {}}
    print(f"gpu-check ({results['mode']}): sections {', '.join(wanted)}; deadline {deadline:.0f} s",
          flush=True)
    for name, gpu_cap, cpu_cap in SECTIONS:
        if name not in wanted:
            continue
        cap = cpu_cap if args.cpu else gpu_cap
        left = deadline - (time.perf_counter() - t_start)
        if left < 5:
            results["sections"][name] = {"status": "TIMEOUT", "checks": [
                _check(name, "TIMEOUT", note=f"not started: past the {deadline:.0f} s deadline")]}
            continue
        cap = min(cap, left)
        result_file = os.path.join(os.path.dirname(os.path.abspath(args.json)), f"{name}.json")
        if os.path.exists(result_file):
            os.remove(result_file)
        cmd = [sys.executable, os.path.abspath(__file__), "--section", name, "--result-file",
               result_file] + (["--cpu"] if args.cpu else [])
        print(f"--- {name} (cap {cap:.0f} s)", flush=True)
        t0 = time.perf_counter()
        # Its own process group, so that a section past its cap is stopped with its children
        # (the pytest runs), which would otherwise hold the GPU.
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=sys.stdout,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            proc.wait(timeout=cap)
            if proc.returncode == 0 and os.path.exists(result_file):
                with open(result_file, encoding="utf-8") as fh:
                    checks = json.load(fh)
            else:
                checks = [_check(name, "FAIL", error=f"section exited with {proc.returncode}")]
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            checks = [_check(name, "TIMEOUT", seconds=cap, note=f"past its {cap:.0f} s cap")]
        seconds = time.perf_counter() - t0
        results["sections"][name] = {"seconds": seconds, "checks": checks}
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(results, fh, indent=1, default=str)
    if build is not None and build.poll() is None:
        os.killpg(build.pid, signal.SIGTERM)  # gpu_tests did not run (deadline): not needed
        build.wait()
    results["seconds"] = time.perf_counter() - t_start
    with open(args.json, "w", encoding="utf-8") as fh:
        json.dump(results, fh, indent=1, default=str)

    lines = [summary_line(name, check) for name, section in results["sections"].items()
             for check in section["checks"]]
    statuses = [line.split()[0] for line in lines]
    print("\n=== gpu-check summary ===")
    for line in lines:
        print(line)
    bad = sum(s in ("FAIL", "TIMEOUT") for s in statuses)
    print(f"gpu-check ({results['mode']}): {statuses.count('PASS')} passed, {bad} failed or timed "
          f"out, {statuses.count('SKIP')} skipped in {results['seconds']:.0f} s; JSON: {args.json}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
