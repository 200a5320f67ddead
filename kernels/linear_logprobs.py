"""Row kernels of ``linear_logprobs``: log-sum-exp, target log-prob and entropy of a chunk of fp32
logits (forward), and dLoss/dlogits from per-row upstream gradients (backward).

The lm_head matmuls around them stay in cuBLAS (``chunk_logits`` here, the gradient matmuls in
``hirfast.ops``); these kernels do the work between them in one read of each logit (forward) and
one read plus one write (backward), all in fp32. Shapes: ``logits [C, V]`` fp32 (row stride
free, unit column stride), per-row vectors ``[C]``. They use no ``tl.dot``, so the Triton
interpreter's bf16 ``tl.dot`` defect (docs/DESIGN.md) cannot reach the CPU tests.
"""
import contextlib
import inspect
import os

import torch
import triton
import triton.language as tl

# Whether triton.jit below produced interpreter functions (TRITON_INTERPRET=1 when triton was
# first imported): then the kernels run on CPU tensors, and nothing else does.
# triton.knobs arrived in Triton 3.4 (the GPU image has 3.6); older releases read the variable.
try:
    INTERPRETED = bool(triton.knobs.runtime.interpret)
except AttributeError:
    INTERPRETED = os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on", "yes")

# torch.mm(a, b, out_dtype=torch.float32) for bf16 operands (cuBLAS, fp32 output): PyTorch 2.8+.
_MM_HAS_OUT_DTYPE = tuple(int(p) for p in torch.__version__.split(".")[:2]) >= (2, 8)

_IGNORE_INDEX = tl.constexpr(-100)
# Finite start for the running max: with -inf, the first rescale would compute (-inf) * 0.
_NEG_BIG = tl.constexpr(-1.0e30)


def on_device(tensor: torch.Tensor):
    """Makes the tensor's GPU the current device for a launch: Triton launches on the current
    device, which is not the tensors' when the model lives on cuda:N != the current one."""
    return torch.cuda.device(tensor.device) if tensor.is_cuda else contextlib.nullcontext()


# Autotune candidates, (block sizes) x (warps): each one compiles and is timed once per vocabulary
# size in every fresh process, so the list is kept short. The row kernels stream a row at memory
# speed; BLOCK_V = 8192 over 4 warps would hold 64 values per thread per live tensor (spills),
# and 2048 or less over 16 warps leaves each thread too little to hide latency, so neither is
# tried (24 candidates before, 12 now; the choice itself is measured by `make gpu-check`).
_FWD_CONFIGS = ((4096, 8192), (8, 16))
_BWD_CONFIGS = ((2048, 4096), (4, 8))


# The autotuner's choice is kept on disk (Triton's cache, TRITON_CACHE_DIR, keyed by the kernel's
# source, the GPU, the configs and the vocabulary size) where this Triton can (`cache_results`,
# Triton 3.2+; the GPU image has 3.6): a fresh process then neither compiles (Triton caches
# binaries anyway) nor times the candidates again. Older Triton: timed once per process.
AUTOTUNE_CACHE = ({"cache_results": True}
                  if "cache_results" in inspect.signature(triton.autotune).parameters else {})


def _configs(block_sizes, warps):
    # Under the interpreter one small block, so that the CPU tests at V = 1000 / 1531 cover
    # several blocks and a masked tail; on a GPU the autotuner picks (none measured here).
    if INTERPRETED:
        return [triton.Config({"BLOCK_V": 512}, num_warps=1)]
    return [triton.Config({"BLOCK_V": b}, num_warps=w) for b in block_sizes for w in warps]


@triton.jit
def _row_lse_entropy(row_ptr, vocab, inv_temperature, BLOCK_V: tl.constexpr):
    """Online log-sum-exp and entropy of z = row * inv_temperature over vocab blocks, in fp32.

    Keeps m (running max), s = sum exp(z - m) and t = sum exp(z - m) * (z - m); then
    lse = m + log s and entropy = lse - E[z] = log s - t / s. Measuring t from the running max
    (rescaled as t' = e^(m - m') (t + (m - m') s)) avoids the cancellation of lse - E[z] when
    |z| is large and the distribution peaked.
    """
    offsets = tl.arange(0, BLOCK_V)
    m = tl.full((), _NEG_BIG, tl.float32)
    s = tl.zeros((), tl.float32)
    t = tl.zeros((), tl.float32)
    for start in range(0, vocab, BLOCK_V):
        cols = start + offsets
        inside = cols < vocab
        z = tl.load(row_ptr + cols, mask=inside, other=float("-inf")).to(tl.float32) * inv_temperature
        m_new = tl.maximum(m, tl.max(z, axis=0))
        rescale = tl.exp(m - m_new)
        e = tl.exp(z - m_new)
        shifted = tl.where(inside, z - m_new, 0.0)
        t = rescale * (t + (m - m_new) * s) + tl.sum(e * shifted, axis=0)
        s = rescale * s + tl.sum(e, axis=0)
        m = m_new
    log_s = tl.log(s)
    return m + log_s, log_s - t / s


@triton.jit
def _target_logprob(row_ptr, target, lse, inv_temperature):
    valid = target != _IGNORE_INDEX
    z_target = tl.load(row_ptr + tl.where(valid, target, 0)).to(tl.float32) * inv_temperature
    return tl.where(valid, z_target - lse, 0.0)


@triton.autotune(configs=_configs(*_FWD_CONFIGS), key=["vocab"], **AUTOTUNE_CACHE)
@triton.jit
def _linear_logprobs_fwd_kernel(logits_ptr, logits_row_stride, targets_ptr, logprob_ptr, lse_ptr,
                                entropy_ptr, vocab, inv_temperature, BLOCK_V: tl.constexpr):
    """One program per row: logprob (0 where ignored), lse and entropy of that row."""
    row = tl.program_id(0).to(tl.int64)
    row_ptr = logits_ptr + row * logits_row_stride
    lse, entropy = _row_lse_entropy(row_ptr, vocab, inv_temperature, BLOCK_V)
    target = tl.load(targets_ptr + row)
    tl.store(logprob_ptr + row, _target_logprob(row_ptr, target, lse, inv_temperature))
    tl.store(lse_ptr + row, lse)
    tl.store(entropy_ptr + row, entropy)


@triton.autotune(configs=_configs(*_BWD_CONFIGS), key=["vocab"], **AUTOTUNE_CACHE)
@triton.jit
def _linear_logprobs_bwd_kernel(logits_ptr, logits_row_stride, dlogits_ptr, dlogits_row_stride,
                                targets_ptr, lse_ptr, entropy_ptr, grad_logprob_ptr,
                                grad_entropy_ptr, vocab, inv_temperature,
                                HAS_GRAD_LOGPROB: tl.constexpr, HAS_GRAD_ENTROPY: tl.constexpr,
                                BLOCK_V: tl.constexpr):
    """Grid (rows, vocab blocks): dLoss/dlogits [C, V] in dlogits' dtype, from
    dz_j = g_lp ([j = t] - p_j) - g_H p_j (log p_j + H) and dlogits = dz / T."""
    row = tl.program_id(0).to(tl.int64)
    cols = tl.program_id(1) * BLOCK_V + tl.arange(0, BLOCK_V)
    inside = cols < vocab
    z = tl.load(logits_ptr + row * logits_row_stride + cols, mask=inside, other=0.0).to(tl.float32)
    logp = z * inv_temperature - tl.load(lse_ptr + row)
    p = tl.exp(logp)
    grad = tl.zeros_like(p)
    if HAS_GRAD_LOGPROB:
        target = tl.load(targets_ptr + row)
        g = tl.where(target != _IGNORE_INDEX, tl.load(grad_logprob_ptr + row), 0.0)
        grad = g * (tl.where(cols == target, 1.0, 0.0) - p)
    if HAS_GRAD_ENTROPY:
        grad -= tl.load(grad_entropy_ptr + row) * p * (logp + tl.load(entropy_ptr + row))
    tl.store(dlogits_ptr + row * dlogits_row_stride + cols,
             (grad * inv_temperature).to(dlogits_ptr.dtype.element_ty), mask=inside)


def chunk_logits(hidden_chunk: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """fp32 logits ``hidden_chunk @ weight.T`` [C, V], accumulated in fp32 and never rounded to
    bf16 (the log-probs feed exp(lp - old) ratios, where bf16 logits' 2^-8 relative steps show)."""
    if hidden_chunk.dtype == torch.float32:
        return torch.mm(hidden_chunk, weight.t())
    if hidden_chunk.is_cuda:
        if _MM_HAS_OUT_DTYPE:
            return torch.mm(hidden_chunk, weight.t(), out_dtype=torch.float32)
        # PyTorch < 2.8 has no bf16 -> fp32 cuBLAS matmul: logits rounded to bf16, as in the
        # plain expression.
        return torch.mm(hidden_chunk, weight.t()).float()
    # CPU (interpreter tests only): PyTorch has no bf16 -> fp32 matmul here; the fp32 product of
    # the same bf16 values is what the GPU computes too.
    return torch.mm(hidden_chunk.float(), weight.t().float())


def linear_logprobs_fwd(logits: torch.Tensor, targets: torch.Tensor, inv_temperature: float):
    """logits [C, V] fp32, targets [C] int64 -> (logprob, lse, entropy), each [C] fp32."""
    rows, vocab = logits.shape
    logprob = torch.empty(rows, dtype=torch.float32, device=logits.device)
    lse = torch.empty_like(logprob)
    entropy = torch.empty_like(logprob)
    if rows:
        with on_device(logits):
            _linear_logprobs_fwd_kernel[(rows,)](logits, logits.stride(0), targets, logprob, lse,
                                                 entropy, vocab, inv_temperature)
    return logprob, lse, entropy


def linear_logprobs_bwd(logits, targets, lse, entropy, grad_logprob, grad_entropy,
                        inv_temperature, dtype):
    """dLoss/dlogits [C, V] in ``dtype`` from the per-row gradients (either may be None)."""
    rows, vocab = logits.shape
    dlogits = torch.empty((rows, vocab), dtype=dtype, device=logits.device)
    if rows:
        grid = lambda meta: (rows, triton.cdiv(vocab, meta["BLOCK_V"]))  # noqa: E731
        with on_device(logits):
            _linear_logprobs_bwd_kernel[grid](
                logits, logits.stride(0), dlogits, dlogits.stride(0), targets, lse, entropy,
                lse if grad_logprob is None else grad_logprob,
                lse if grad_entropy is None else grad_entropy,
                vocab, inv_temperature, HAS_GRAD_LOGPROB=grad_logprob is not None,
                HAS_GRAD_ENTROPY=grad_entropy is not None)
    return dlogits
