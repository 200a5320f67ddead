"""The Triton kernels' autotuning is kept on disk across processes (issue #12 item 4e)."""
import inspect
import json
import os
import subprocess
import sys

import pytest
import triton

from hirfast.kernels import linear_logprobs

KERNELS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "kernels")


def test_autotuned_kernels_ask_triton_to_cache_their_choice():
    """Triton 3.2+ takes `cache_results`; an older one gets no such argument (it would raise)."""
    if "cache_results" in inspect.signature(triton.autotune).parameters:
        assert linear_logprobs.AUTOTUNE_CACHE == {"cache_results": True}
    else:
        assert linear_logprobs.AUTOTUNE_CACHE == {}
    # each autotuned kernel is built from these candidates, a handful, not 9 + 6 + 9
    fwd_blocks, fwd_warps = linear_logprobs._FWD_CONFIGS
    bwd_blocks, bwd_warps = linear_logprobs._BWD_CONFIGS
    assert len(fwd_blocks) * len(fwd_warps) + len(bwd_blocks) * len(bwd_warps) <= 8


# A fresh process runs the forward kernel once and says whether it timed the candidates.
_CHILD = """
import importlib.util, json, sys, torch
spec = importlib.util.spec_from_file_location("ll_child", sys.argv[1])
ll = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ll)
logits = torch.randn(64, 50_021, device="cuda")
targets = torch.randint(0, 50_021, (64,), device="cuda")
ll.linear_logprobs_fwd(logits, targets, 1.0)
torch.cuda.synchronize()
print(json.dumps({"timed": hasattr(ll._linear_logprobs_fwd_kernel, "bench_time")}))
"""


@pytest.mark.gpu
def test_a_fresh_process_reuses_the_autotuning_of_the_last_on_gpu(tmp_path):
    if not linear_logprobs.AUTOTUNE_CACHE:
        pytest.skip(f"triton {triton.__version__} cannot cache autotuning results")
    env = dict(os.environ, TRITON_CACHE_DIR=str(tmp_path))
    env.pop("TRITON_INTERPRET", None)
    runs = []
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", _CHILD,
                              os.path.join(KERNELS, "linear_logprobs.py")],
                             env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    assert runs == [{"timed": True}, {"timed": False}]
    assert list(tmp_path.rglob("*.autotune.json"))
