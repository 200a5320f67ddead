"""Fused lm_head -> log-prob -> loss, forward + backward: hirfast against named baselines.

GPU (bf16, marked `gpu`), at (N, D, V) in SHAPES:
- test_logprobs_fwd_bwd[...-<impl>]: log-prob of each target, gradients of their sum, for
  hirfast (linear_logprobs, impl="triton"), naive PyTorch (full fp32 logits), the same under
  torch.compile, Liger-Kernel's fused linear cross entropy (reduction="none") and Cut
  Cross-Entropy's linear_cross_entropy (reduction="none") (cross entropy = -log-prob);
- test_policy_loss_fwd_bwd[...-<impl>]: clipped policy loss with a k3 KL to a reference
  (GRPO "bnpo" form: token mean), for hirfast (policy_loss), naive PyTorch, torch.compile and
  Liger-Kernel's LigerFusedLinearGRPOLoss;
- test_bf16_matmul[...]: the hidden @ weight.T matmul alone, the throughput the targets are
  measured against.
Each records in extra_info the mean time, effective TFLOP/s counting 6·N·D·V (forward matmul
plus the two gradient matmuls) and, measured in a separate run, the peak memory allocated
beyond inputs and beyond inputs + their gradients. A baseline that is not installed is skipped
with the reason; one that runs out of memory is skipped saying so.

CPU (runs everywhere, small): test_cpu_*[hirfast-torch|naive]: the torch twin against naive
PyTorch, so this file measures something on a machine without a GPU.

    .venv/bin/python -m pytest bench/test_ops_bench.py --benchmark-only
"""
import gc
import math

import pytest
import torch

import hirfast.ops as ops

SHAPES = [(4096, 896, 151936), (16384, 4096, 151936), (16384, 3584, 152064), (32768, 4096, 128256)]
SEQ_LEN = 1024  # tokens per sequence, for baselines that take [B, T] batches (Liger's GRPO)
CPU_SHAPE = (1024, 128, 16384)
KL_COEF = 0.04
CLIP = 0.2


def shape_id(shape):
    return "N{}-D{}-V{}".format(*shape)


def make_case(n, d, v, device, dtype):
    gen = torch.Generator(device="cpu").manual_seed(0)
    hidden = torch.randn(n, d, generator=gen).to(device, dtype)
    # logits with a standard deviation of about 2.4, as from a trained lm_head
    weight = ((2.4 / math.sqrt(d)) * torch.randn(v, d, generator=gen)).to(device, dtype)
    targets = torch.randint(0, v, (n,), generator=gen).to(device)
    targets[SEQ_LEN - 1::SEQ_LEN] = ops.IGNORE_INDEX  # the last position of each sequence
    n_seqs = max(1, n // SEQ_LEN)
    seq_advantages = torch.randn(n_seqs, generator=gen).to(device)
    with torch.no_grad():
        logprob = ops.linear_logprobs(hidden, weight, targets)
    old = logprob + 0.05 * torch.randn(n, generator=gen).to(device)
    ref = logprob + 0.1 * torch.randn(n, generator=gen).to(device)
    return dict(hidden=hidden, weight=weight, targets=targets, seq_advantages=seq_advantages,
                advantages=seq_advantages.repeat_interleave(n // n_seqs), old=old, ref=ref)


def naive_logprobs(hidden, weight, targets):
    logits = (hidden @ weight.T).float()
    logp = torch.log_softmax(logits, dim=-1)
    picked = logp.gather(1, targets.clamp(min=0)[:, None])[:, 0]
    return torch.where(targets != ops.IGNORE_INDEX, picked, 0.0)


def naive_policy_loss(hidden, weight, targets, advantages, old, ref):
    lp = naive_logprobs(hidden, weight, targets)
    ratio = torch.exp(lp - old)
    pg = -torch.minimum(ratio * advantages, ratio.clamp(1 - CLIP, 1 + CLIP) * advantages)
    d = ref - lp
    per_token = pg + KL_COEF * (torch.exp(d) - d - 1)
    counted = (targets != ops.IGNORE_INDEX).float()
    return (per_token * counted).sum() / counted.sum()


def logprob_objective(impl, case):
    """-> f(hidden, weight): the scalar whose backward gives the gradients (sum of log-probs)."""
    targets = case["targets"]
    if impl == "hirfast":
        return lambda h, w: ops.linear_logprobs(h, w, targets).sum()
    if impl == "hirfast-torch":
        return lambda h, w: ops.linear_logprobs(h, w, targets, impl="torch").sum()
    if impl == "naive":
        return lambda h, w: naive_logprobs(h, w, targets).sum()
    if impl == "torch.compile":
        compiled = torch.compile(naive_logprobs)
        return lambda h, w: compiled(h, w, targets).sum()
    if impl == "liger-flce":
        liger = pytest.importorskip("liger_kernel.transformers", reason="Liger-Kernel is not installed")
        flce = liger.LigerFusedLinearCrossEntropyLoss(reduction="none")
        return lambda h, w: -flce(w, h, targets).sum()
    if impl == "cce":
        cce = pytest.importorskip("cut_cross_entropy", reason="Cut Cross-Entropy is not installed")
        return lambda h, w: -cce.linear_cross_entropy(h, w, targets, reduction="none").sum()
    raise ValueError(impl)


def policy_objective(impl, case):
    t, adv, old, ref = case["targets"], case["advantages"], case["old"], case["ref"]
    options = dict(old_logprobs=old, ref_logprobs=ref, clip_low=CLIP, clip_high=CLIP,
                   kl_coef=KL_COEF, kl_estimator="k3", loss_agg="token-mean")
    if impl == "hirfast":
        return lambda h, w: ops.policy_loss(h, w, t, adv, **options)[0]
    if impl == "hirfast-torch":
        return lambda h, w: ops.policy_loss(h, w, t, adv, impl="torch", **options)[0]
    if impl == "naive":
        return lambda h, w: naive_policy_loss(h, w, t, adv, old, ref)
    if impl == "torch.compile":
        compiled = torch.compile(naive_policy_loss)
        return lambda h, w: compiled(h, w, t, adv, old, ref)
    if impl == "liger-grpo":
        liger = pytest.importorskip("liger_kernel.chunked_loss", reason="Liger-Kernel is not installed")
        grpo = liger.LigerFusedLinearGRPOLoss(beta=KL_COEF, epsilon_low=CLIP, epsilon_high=CLIP,
                                              loss_type="bnpo", use_ref_model=True)
        n_seqs = case["seq_advantages"].shape[0]
        tokens = t.view(n_seqs, -1)
        mask = (tokens != ops.IGNORE_INDEX).to(torch.int64)
        ids = tokens.clamp(min=0)

        def run(h, w):
            out = grpo(h.view(n_seqs, tokens.shape[1], -1), w, ids, mask, case["seq_advantages"],
                       ref_per_token_logps=ref.view_as(tokens), old_per_token_logps=old.view_as(tokens))
            return out[0] if isinstance(out, tuple) else out
        return run
    raise ValueError(impl)


def measure(benchmark, objective, case, shape, dtype, baseline, rounds):
    """Times forward + backward with warm-up, then records time, TFLOP/s and peak memory."""
    hidden = case["hidden"].detach().requires_grad_()
    weight = case["weight"].detach().requires_grad_()
    on_gpu = hidden.is_cuda

    def step():
        hidden.grad = weight.grad = None
        objective(hidden, weight).backward()
        if on_gpu:
            torch.cuda.synchronize()

    n, d, v = shape
    info = benchmark.extra_info
    info.update(N=n, D=d, V=v, dtype=str(dtype).replace("torch.", ""), baseline=baseline,
                flops_6ndv=6 * n * d * v)
    out_of_memory = None
    try:
        benchmark.pedantic(step, rounds=rounds, warmup_rounds=2, iterations=1)
        if on_gpu:
            hidden.grad = weight.grad = None
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
            before = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
            step()
            grads = hidden.grad.nbytes + weight.grad.nbytes
            peak = torch.cuda.max_memory_allocated() - before
            info.update(peak_beyond_inputs_bytes=peak, peak_beyond_inputs_and_grads_bytes=peak - grads)
    except torch.cuda.OutOfMemoryError as exc:
        out_of_memory = str(exc)[:120]
    if out_of_memory is not None:
        # skip outside the handler, so that the traceback (and the tensors its frames hold) is
        # gone before the next benchmark allocates
        hidden.grad = weight.grad = None
        gc.collect()
        torch.cuda.empty_cache()
        pytest.skip(f"{baseline} ran out of GPU memory at {shape_id(shape)}: {out_of_memory}")
    mean = benchmark.stats.stats.mean
    info.update(mean_s=mean, tflops_6ndv=6 * n * d * v / mean / 1e12)


GPU_LOGPROB_IMPLS = ("hirfast", "naive", "torch.compile", "liger-flce", "cce")
GPU_POLICY_IMPLS = ("hirfast", "naive", "torch.compile", "liger-grpo")


@pytest.mark.gpu
@pytest.mark.parametrize("impl", GPU_LOGPROB_IMPLS)
@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
def test_logprobs_fwd_bwd(benchmark, shape, impl):
    case = make_case(*shape, "cuda", torch.bfloat16)
    measure(benchmark, logprob_objective(impl, case), case, shape, torch.bfloat16, impl, rounds=5)


@pytest.mark.gpu
@pytest.mark.parametrize("impl", GPU_POLICY_IMPLS)
@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
def test_policy_loss_fwd_bwd(benchmark, shape, impl):
    case = make_case(*shape, "cuda", torch.bfloat16)
    measure(benchmark, policy_objective(impl, case), case, shape, torch.bfloat16, impl, rounds=5)


@pytest.mark.gpu
@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
def test_bf16_matmul(benchmark, shape):
    """hidden [N, D] @ weight.T [D, V] in bf16 (cuBLAS): the matmul throughput of this GPU."""
    n, d, v = shape
    hidden = torch.randn(n, d, device="cuda", dtype=torch.bfloat16)
    weight = torch.randn(v, d, device="cuda", dtype=torch.bfloat16)

    def matmul():
        torch.mm(hidden, weight.T)
        torch.cuda.synchronize()

    benchmark.extra_info.update(N=n, D=d, V=v, dtype="bfloat16", baseline="cublas-mm", flops=2 * n * d * v)
    benchmark.pedantic(matmul, rounds=10, warmup_rounds=2, iterations=1)
    benchmark.extra_info["tflops"] = 2 * n * d * v / benchmark.stats.stats.mean / 1e12


@pytest.mark.parametrize("impl", ("hirfast-torch", "naive"))
def test_cpu_logprobs_fwd_bwd(benchmark, impl):
    case = make_case(*CPU_SHAPE, "cpu", torch.float32)
    measure(benchmark, logprob_objective(impl, case), case, CPU_SHAPE, torch.float32, impl, rounds=5)


@pytest.mark.parametrize("impl", ("hirfast-torch", "naive"))
def test_cpu_policy_loss_fwd_bwd(benchmark, impl):
    case = make_case(*CPU_SHAPE, "cpu", torch.float32)
    measure(benchmark, policy_objective(impl, case), case, CPU_SHAPE, torch.float32, impl, rounds=5)
