"""Fused lm_head -> log-prob (+ entropy) -> policy loss, without materializing [N, V] logits.

``linear_logprobs(hidden, weight, targets)`` computes
``log_softmax((hidden @ weight.T).float() / temperature)[i, targets[i]]`` and ``policy_loss`` the
clipped policy-gradient loss on top of it, both in row chunks: only a bounded ``[C, V]`` block of
logits exists at any time (``C`` from ``_WORKSPACE_BYTES``), so a 16,384 x 151,936 batch never
holds the 10 GB of fp32 logits that the plain expression allocates.

How each chunk is processed (both impls, the same structure):

1. ``z = hidden[c] @ weight.T`` as fp32 ``[C, V]`` (one lm_head matmul, cuBLAS on a GPU);
2. per row, in fp32: online log-sum-exp, the target's log-prob, and the entropy ``-sum p log p``
   (from ``sum exp(z - max) (z - max)`` kept beside the log-sum-exp);
3. when gradients are wanted: ``dz = dLoss/dz`` in the input dtype, then ``dhidden[c] = dz @ weight``
   and ``dweight += dz.T @ hidden[c]`` (two more matmuls).

Choices, and why:

- ``policy_loss`` makes its gradients in the forward. ``dLoss/dlogprob`` and ``dLoss/dentropy`` of
  a row depend only on that row's log-prob, entropy, advantage, old and reference log-prob, and on
  aggregation weights fixed by the masks, so they are known as soon as step 2 ends; step 3 then
  runs on the logits still in memory: three matmuls in all (6·N·D·V FLOPs) instead of the four
  (8·N·D·V) of recomputing the logits in backward, whose only work is then to scale the stored
  gradients by the incoming scalar. Expected gain on a GPU: most of the 25% of matmul work
  saved, as the matmuls dominate (estimated at N=16,384, D=4,096, V=151,936 on an H100: 61 TFLOP
  of matmuls, ~90 ms at 700 TFLOP/s, against 18 bytes of memory traffic per logit for the
  fp32 logits and bf16 dlogits, ~45 GB or ~13 ms at 3.35 TB/s); not measured there (no GPU was
  available). Measured with the torch twin on 2 shared CPU cores
  (N=1,024, D=128, V=16,384, fp32, ``bench/test_ops_bench.py -k cpu``): policy_loss forward +
  backward 1.14-1.32 s against 1.59-1.65 s for linear_logprobs' recompute path at the same shape.
- ``linear_logprobs`` alone does not know its upstream gradient until backward, so its backward
  recomputes the chunk's logits from the saved per-row log-sum-exp and entropy (four matmuls).
  Keeping what backward needs instead would be ``[N, V]`` (the probabilities), the very tensor
  this module exists to avoid; part of it cannot be folded into ``[N, D]`` either (``dweight``
  mixes every row's upstream gradient with every vocab entry).
- The Triton path's fp32 logits come straight out of the bf16 matmul (cuBLAS with fp32 output),
  never rounded to bf16: at N=97, D=64, V=1,531 in bf16, its log-probs are within 1.7e-6 of
  float64 where the plain expression (and the torch twin) are off by 3.6e-2. Log-probs feed
  ``exp(lp - old)`` ratios, where that difference shows.
- ``dweight`` accumulates over row chunks in the weight's dtype (one rounding per chunk: 22 at
  the target shape in bf16), as Liger-Kernel does: an fp32 accumulator would add V·D·4 bytes
  (2.5 GB at the target shape) against the 1 GB budget beyond inputs and their gradients.

``impl``: ``"torch"`` is a plain chunked PyTorch twin (the reference and the CPU path; its step 1
is literally ``(hidden @ weight.T).float()``, so bf16 logits are rounded to bf16 as in the plain
expression); ``"triton"`` runs step 2 and the row work of step 3 in the Triton kernels of
``hirfast.kernels`` (the matmuls stay in cuBLAS); ``"auto"`` picks ``"triton"`` for CUDA tensors
and ``"torch"`` otherwise. Under ``TRITON_INTERPRET=1`` (set before triton is first imported)
``impl="triton"`` also runs on CPU tensors, which is how the CPU tests cover the kernels.
"""
from __future__ import annotations

import math
import numbers
import types

import torch

IGNORE_INDEX = -100
IMPLS = ("auto", "triton", "torch")
KL_ESTIMATORS = ("k1", "k2", "k3")
# k3 = e^d - d - 1 grows exponentially in d = ref - lp: it is clamped to at most this (verl's
# low_var_kl and OpenRLHF clamp the estimate to [-10, 10]; k3 is never negative), and its gradient
# is 0 where the clamp bites, so one token the reference likes far more cannot dominate the loss.
K3_MAX = 10.0
LOSS_AGGS = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum")
_FLOAT_DTYPES = (torch.float32, torch.bfloat16)

# Memory for one chunk's work tensors: the fp32 logits [C, V] and, with gradients, dlogits [C, V]
# in the input dtype. 768 MiB gives C = 768 rows at V = 151,936 in bf16 with gradients, inside the
# 1 GB target for memory beyond inputs and gradients. Not tuned on a GPU (none was available).
_WORKSPACE_BYTES = 768 * 2**20


def _chunk_rows(n_rows: int, vocab: int, bytes_per_logit: int) -> int:
    rows = max(1, _WORKSPACE_BYTES // (vocab * bytes_per_logit))
    if rows >= 128:
        rows -= rows % 128  # whole 128-row tiles for the matmuls
    return max(1, min(rows, n_rows))


# ---------------------------------------------------------------------------------------------
# Per-chunk row work: the plain PyTorch twin.
# ---------------------------------------------------------------------------------------------
class _TorchRows:
    """Steps 1-3 of the module docstring on one chunk, in plain PyTorch. On the CPU this path is
    bound by full-width [C, V] passes rather than by the matmuls, hence the in-place updates (the
    functions below overwrite the chunk's logits, which the drivers own and drop) and the reuse
    of log p and p between the loss and its gradient in ``policy``."""

    @staticmethod
    def logits(hidden_chunk, weight):
        return torch.mm(hidden_chunk, weight.t()).float()

    @staticmethod
    def _softmax(logits, targets, inv_temperature):
        """-> (logprob [C], lse [C], entropy [C], log p [C, V], p [C, V])."""
        z = logits.mul_(inv_temperature) if inv_temperature != 1.0 else logits
        lse = torch.logsumexp(z, dim=-1)
        logp = z.sub_(lse.unsqueeze(1))
        p = logp.exp()
        entropy = -torch.linalg.vecdot(p, logp)
        picked = logp.gather(1, targets.clamp(min=0).unsqueeze(1)).squeeze(1)
        return torch.where(targets != IGNORE_INDEX, picked, 0.0), lse, entropy, logp, p

    @staticmethod
    def _dlogits_from_softmax(logp, p, targets, entropy, grad_logprob, grad_entropy,
                              inv_temperature, dtype):
        """dLoss/dlogits from log p and p, overwriting them.

        d logprob_i / d z_ij = [j = t_i] - p_ij and d entropy_i / d z_ij = -p_ij (log p_ij + H_i),
        so dz_ij = p_ij (-g_H,i log p_ij + c_i) + [j = t_i] g_lp,i with c_i = -g_H,i H_i - g_lp,i;
        z = logits / temperature gives the final factor 1/temperature.
        """
        g = (torch.where(targets != IGNORE_INDEX, grad_logprob, 0.0)
             if grad_logprob is not None else torch.zeros_like(entropy))
        if grad_entropy is not None:
            grad = logp.mul_(-grad_entropy.unsqueeze(1)).sub_((grad_entropy * entropy + g).unsqueeze(1))
            grad.mul_(p)
        else:
            grad = p.mul_(-g.unsqueeze(1))
        grad.scatter_add_(1, targets.clamp(min=0).unsqueeze(1), g.unsqueeze(1))
        if inv_temperature != 1.0:
            grad.mul_(inv_temperature)
        return grad.to(dtype)

    @staticmethod
    def stats(logits, targets, inv_temperature):
        """-> (logprob [C], lse [C], entropy [C]) of rows of fp32 logits (before temperature)."""
        return _TorchRows._softmax(logits, targets, inv_temperature)[:3]

    @staticmethod
    def dlogits(logits, targets, lse, entropy, grad_logprob, grad_entropy, inv_temperature, dtype):
        """dLoss/dlogits [C, V] in ``dtype`` from the per-row upstream gradients."""
        logp = logits.mul_(inv_temperature) if inv_temperature != 1.0 else logits
        logp.sub_(lse.unsqueeze(1))
        return _TorchRows._dlogits_from_softmax(logp, logp.exp(), targets, entropy, grad_logprob,
                                                grad_entropy, inv_temperature, dtype)

    @staticmethod
    def policy(logits, targets, valid, token_weight, advantages, old_logprobs, ref_logprobs,
               inv_temperature, clip_low, clip_high, kl_coef, kl_estimator, entropy_coef,
               grad_dtype):
        """Per-row lse, entropy and policy-loss terms of a chunk (see ``_policy_token_terms``),
        and with ``grad_dtype`` the chunk's dLoss/dlogits in it (``"dlogits"``)."""
        logprob, lse, entropy, logp, p = _TorchRows._softmax(logits, targets, inv_temperature)
        terms = _policy_token_terms(logprob, entropy, valid, token_weight, advantages,
                                    old_logprobs, ref_logprobs, clip_low, clip_high, kl_coef,
                                    kl_estimator, entropy_coef)
        if grad_dtype is not None:
            terms["dlogits"] = _TorchRows._dlogits_from_softmax(
                logp, p, targets, entropy, terms["grad_logprob"],
                terms["grad_entropy"] if entropy_coef != 0.0 else None, inv_temperature, grad_dtype)
        return dict(lse=lse, entropy=entropy, **terms)


def _triton_rows():
    """Steps 1-3 with the Triton kernels (the matmuls stay in cuBLAS)."""
    from hirfast.kernels import linear_logprobs as rows_kernels
    from hirfast.kernels import policy_loss as policy_kernels

    return types.SimpleNamespace(logits=rows_kernels.chunk_logits,
                                 stats=rows_kernels.linear_logprobs_fwd,
                                 dlogits=rows_kernels.linear_logprobs_bwd,
                                 policy=policy_kernels.policy_loss_fwd,
                                 interpreted=rows_kernels.INTERPRETED)


def _rows_for(impl: str):
    return _TorchRows if impl == "torch" else _triton_rows()


# ---------------------------------------------------------------------------------------------
# Chunk drivers (shared by both impls).
# ---------------------------------------------------------------------------------------------
def _forward_chunks(rows, hidden, weight, targets, inv_temperature):
    n, vocab = hidden.shape[0], weight.shape[0]
    logprob = torch.zeros(n, dtype=torch.float32, device=hidden.device)
    lse = torch.zeros_like(logprob)
    entropy = torch.zeros_like(logprob)
    step = _chunk_rows(n, vocab, 4)
    for start in range(0, n, step):
        end = min(start + step, n)
        z = rows.logits(hidden[start:end], weight)
        logprob[start:end], lse[start:end], entropy[start:end] = rows.stats(
            z, targets[start:end], inv_temperature)
    return logprob, lse, entropy


def _grad_matmuls(dz, hidden_chunk, weight, dhidden_chunk, dweight):
    """dhidden[c] = dz @ weight (written in place); returns dweight + dz.T @ hidden[c]."""
    if dhidden_chunk is not None:
        torch.mm(dz, weight, out=dhidden_chunk)
    if dweight is False:
        return False
    if dweight is None:
        return torch.mm(dz.t(), hidden_chunk)
    return dweight.addmm_(dz.t(), hidden_chunk)


def _finish_dweight(dweight, weight):
    if dweight is False:
        return None
    return torch.zeros_like(weight) if dweight is None else dweight


def _backward_chunks(rows, hidden, weight, targets, lse, entropy, grad_logprob, grad_entropy,
                     inv_temperature, need_dhidden, need_dweight):
    n, vocab = hidden.shape[0], weight.shape[0]
    dhidden = torch.empty(hidden.shape, dtype=hidden.dtype, device=hidden.device) if need_dhidden else None
    dweight = None if need_dweight else False  # None: nothing accumulated yet; False: not wanted
    step = _chunk_rows(n, vocab, 4 + weight.element_size())
    for start in range(0, n, step):
        end = min(start + step, n)
        h = hidden[start:end]
        z = rows.logits(h, weight)
        dz = rows.dlogits(z, targets[start:end], lse[start:end], entropy[start:end],
                          None if grad_logprob is None else grad_logprob[start:end],
                          None if grad_entropy is None else grad_entropy[start:end],
                          inv_temperature, weight.dtype)
        del z
        dweight = _grad_matmuls(dz, h, weight, None if dhidden is None else dhidden[start:end], dweight)
    return dhidden, _finish_dweight(dweight, weight)


# ---------------------------------------------------------------------------------------------
# linear_logprobs
# ---------------------------------------------------------------------------------------------
class LinearLogprobsFunction(torch.autograd.Function):
    """(hidden [N, D], weight [V, D], targets [N]) -> (logprob [N] fp32, entropy [N] fp32).

    Forward keeps only the per-row log-sum-exp and entropy; backward recomputes the logits chunk
    by chunk (see the module docstring for why).
    """

    @staticmethod
    def forward(ctx, hidden, weight, targets, inv_temperature, impl):
        rows = _rows_for(impl)
        logprob, lse, entropy = _forward_chunks(rows, hidden, weight, targets, inv_temperature)
        ctx.save_for_backward(hidden, weight, targets, lse, entropy)
        ctx.inv_temperature, ctx.impl = inv_temperature, impl
        ctx.set_materialize_grads(False)
        return logprob, entropy

    @staticmethod
    def backward(ctx, grad_logprob, grad_entropy):
        hidden, weight, targets, lse, entropy = ctx.saved_tensors
        need_dhidden, need_dweight = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        if (grad_logprob is None and grad_entropy is None) or not (need_dhidden or need_dweight):
            return None, None, None, None, None
        dhidden, dweight = _backward_chunks(
            _rows_for(ctx.impl), hidden, weight, targets, lse, entropy,
            None if grad_logprob is None else grad_logprob.float().contiguous(),
            None if grad_entropy is None else grad_entropy.float().contiguous(),
            ctx.inv_temperature, need_dhidden, need_dweight)
        return dhidden, dweight, None, None, None


def _fail(exc, message):
    raise exc(message)


def _check_tensor(name, value):
    if not isinstance(value, torch.Tensor):
        _fail(TypeError, f"{name} must be a torch.Tensor; got {type(value).__name__}")


def _resolve_impl(impl, device):
    if impl not in IMPLS:
        _fail(ValueError, f"impl must be one of {IMPLS}; got {impl!r}")
    if impl == "auto":
        return "triton" if device.type == "cuda" else "torch"
    if impl == "triton" and device.type != "cuda" and not _triton_rows().interpreted:
        _fail(ValueError, f"impl='triton' needs CUDA tensors; hidden is on {device}. Use impl='torch' "
                          "(or 'auto'), or set TRITON_INTERPRET=1 before triton is first imported to "
                          "run the kernels on the CPU")
    return impl


def _check_logprob_inputs(hidden, weight, targets, temperature, impl):
    """Validates the linear_logprobs arguments; returns (inv_temperature, resolved impl)."""
    for name, value in (("hidden", hidden), ("weight", weight), ("targets", targets)):
        _check_tensor(name, value)
    if hidden.dim() != 2:
        _fail(ValueError, f"hidden must be 2-D [N, D]; got shape {tuple(hidden.shape)}")
    if weight.dim() != 2 or weight.shape[1] != hidden.shape[1]:
        _fail(ValueError, f"weight must be 2-D [V, D] with D = hidden.shape[1] = {hidden.shape[1]}; "
                          f"got shape {tuple(weight.shape)}")
    if weight.shape[0] == 0:
        _fail(ValueError, "weight has an empty vocabulary (shape[0] = 0)")
    if targets.dim() != 1 or targets.shape[0] != hidden.shape[0]:
        _fail(ValueError, f"targets must be 1-D [N] with N = hidden.shape[0] = {hidden.shape[0]}; "
                          f"got shape {tuple(targets.shape)}")
    if hidden.dtype not in _FLOAT_DTYPES:
        _fail(TypeError, f"hidden must be float32 or bfloat16; got {hidden.dtype}")
    if weight.dtype != hidden.dtype:
        _fail(TypeError, f"weight dtype {weight.dtype} differs from hidden dtype {hidden.dtype}; "
                         "cast one of them")
    if targets.dtype != torch.int64:
        _fail(TypeError, f"targets must be int64; got {targets.dtype}")
    for name, value in (("weight", weight), ("targets", targets)):
        if value.device != hidden.device:
            _fail(ValueError, f"{name} is on {value.device} but hidden is on {hidden.device}")
    if (isinstance(temperature, bool) or not isinstance(temperature, numbers.Real)
            or not math.isfinite(temperature) or temperature <= 0):
        _fail(ValueError, f"temperature must be a finite number > 0; got {temperature!r}")
    vocab = weight.shape[0]
    bad = (targets != IGNORE_INDEX) & ((targets < 0) | (targets >= vocab))
    if bool(bad.any()):
        row = int(bad.nonzero()[0, 0])
        _fail(ValueError, f"targets[{row}] = {int(targets[row])} is out of range: expected "
                          f"0..{vocab - 1} (weight.shape[0] = {vocab}) or {IGNORE_INDEX} to ignore")
    return 1.0 / float(temperature), _resolve_impl(impl, hidden.device)


def linear_logprobs(hidden, weight, targets, *, temperature=1.0, return_entropy=False, impl="auto"):
    """Log-probability of each target under ``softmax(hidden @ weight.T / temperature)``.

    Computes ``torch.log_softmax((hidden @ weight.T).float() / temperature, -1)[i, targets[i]]``
    without allocating the ``[N, V]`` logits. The forward keeps only a log-sum-exp and an entropy
    per row; backward recomputes the logits chunk by chunk (four lm_head-sized matmuls in all),
    because keeping what it needs would take ``[N, V]`` memory (module docstring).

    Args:
        hidden: ``[N, D]`` float32 or bfloat16 (any strides).
        weight: ``[V, D]`` the lm_head weight, same dtype and device as ``hidden``.
        targets: ``[N]`` int64 token ids in ``0..V-1``, or -100 for rows to ignore.
        temperature: logits are divided by it (> 0).
        return_entropy: also return the entropy of each row's distribution.
        impl: ``"auto"`` | ``"triton"`` | ``"torch"``.

    Returns:
        ``logprob [N]`` float32 (0 where the target is -100), and with ``return_entropy``
        ``(logprob, entropy)`` where ``entropy [N]`` float32 is ``-sum_j p_ij log p_ij`` of every
        row (ignored rows included). Both are differentiable with respect to hidden and weight.
    """
    inv_temperature, impl = _check_logprob_inputs(hidden, weight, targets, temperature, impl)
    targets = targets.contiguous()
    if torch.is_grad_enabled() and (hidden.requires_grad or weight.requires_grad):
        logprob, entropy = LinearLogprobsFunction.apply(hidden, weight, targets, inv_temperature, impl)
    else:
        logprob, _, entropy = _forward_chunks(_rows_for(impl), hidden, weight, targets, inv_temperature)
    return (logprob, entropy) if return_entropy else logprob


# ---------------------------------------------------------------------------------------------
# policy_loss
# ---------------------------------------------------------------------------------------------
def _policy_token_terms(logprob, entropy, valid, token_weight, advantages, old_logprobs,
                        ref_logprobs, clip_low, clip_high, kl_coef, kl_estimator, entropy_coef):
    """Per-token loss terms and their exact derivatives for a chunk of rows (fp32 [C] each).

    Returns a dict of [C] tensors: ``loss`` (weighted), ``grad_logprob`` and ``grad_entropy``
    (dLoss/dlogprob, dLoss/dentropy), ``clipped`` (0/1), ``kl`` (0 without ref) and ``ratio``,
    all 0 on rows that do not count (``valid`` False): masking with ``where`` rather than a
    product keeps an inf there out of the sums.
    """
    old = logprob if old_logprobs is None else old_logprobs
    ratio = torch.exp(logprob - old)
    surrogate = ratio * advantages
    surrogate_clipped = ratio.clamp(1.0 - clip_low, 1.0 + clip_high) * advantages
    # -min(surrogate, surrogate_clipped): where the clipped term is strictly smaller the ratio is
    # outside the clip range, and its derivative (through the clamp) is 0.
    clipped = surrogate_clipped < surrogate
    per_token = -torch.minimum(surrogate, surrogate_clipped)
    grad_logprob = torch.where(clipped, 0.0, -surrogate)
    kl = torch.zeros_like(logprob)
    if ref_logprobs is not None:
        d = ref_logprobs - logprob
        if kl_estimator == "k1":
            kl, dkl = -d, torch.ones_like(d)
        elif kl_estimator == "k2":
            kl, dkl = 0.5 * d * d, -d
        else:
            exp_d = torch.exp(d)
            raw = exp_d - d - 1.0
            kl, dkl = raw.clamp(max=K3_MAX), torch.where(raw > K3_MAX, 0.0, 1.0 - exp_d)
        per_token = per_token + kl_coef * kl
        grad_logprob = grad_logprob + kl_coef * dkl
    per_token = per_token - entropy_coef * entropy
    return {
        "loss": torch.where(valid, token_weight * per_token, 0.0),
        "grad_logprob": torch.where(valid, token_weight * grad_logprob, 0.0),
        "grad_entropy": torch.where(valid, -entropy_coef * token_weight, 0.0),
        "clipped": (valid & clipped).to(torch.float32),
        "kl": torch.where(valid, kl, 0.0),
        "ratio": torch.where(valid, ratio, 0.0),
    }


def _policy_chunks(rows, hidden, weight, targets, valid, token_weight, advantages, old_logprobs,
                   ref_logprobs, inv_temperature, clip_low, clip_high, kl_coef, kl_estimator,
                   entropy_coef, need_dhidden, need_dweight):
    """The fused pass: sums of (loss, clipped, kl, entropy, ratio) over counted tokens and, when
    wanted, both gradients of the loss, chunk by chunk."""
    n, vocab = hidden.shape[0], weight.shape[0]
    want_grad = need_dhidden or need_dweight
    sums = torch.zeros(5, dtype=torch.float32, device=hidden.device)
    dhidden = torch.empty(hidden.shape, dtype=hidden.dtype, device=hidden.device) if need_dhidden else None
    dweight = None if need_dweight else False
    step = _chunk_rows(n, vocab, 4 + (weight.element_size() if want_grad else 0))
    for start in range(0, n, step):
        part = slice(start, min(start + step, n))
        h = hidden[part]
        z = rows.logits(h, weight)
        terms = rows.policy(z, targets[part], valid[part], token_weight[part], advantages[part],
                            None if old_logprobs is None else old_logprobs[part],
                            None if ref_logprobs is None else ref_logprobs[part],
                            inv_temperature, clip_low, clip_high, kl_coef, kl_estimator,
                            entropy_coef, weight.dtype if want_grad else None)
        del z
        sums += torch.stack([terms["loss"], terms["clipped"], terms["kl"],
                             torch.where(valid[part], terms["entropy"], 0.0), terms["ratio"]]).sum(1)
        if want_grad:
            dweight = _grad_matmuls(terms.pop("dlogits"), h, weight,
                                    None if dhidden is None else dhidden[part], dweight)
    return sums, dhidden, _finish_dweight(dweight, weight)


class PolicyLossFunction(torch.autograd.Function):
    """The fused policy loss: forward produces the loss and both gradients in one pass over the
    logits (dLoss/dlogprob is known per row in the forward); backward scales them."""

    @staticmethod
    def forward(ctx, hidden, weight, targets, valid, token_weight, advantages, old_logprobs,
                ref_logprobs, count, options):
        need_dhidden, need_dweight = options["need_dhidden"], options["need_dweight"]
        sums, dhidden, dweight = _policy_chunks(
            _rows_for(options["impl"]), hidden, weight, targets, valid, token_weight, advantages,
            old_logprobs, ref_logprobs, options["inv_temperature"], options["clip_low"],
            options["clip_high"], options["kl_coef"], options["kl_estimator"],
            options["entropy_coef"], need_dhidden, need_dweight)
        ctx.dhidden, ctx.dweight = dhidden, dweight
        means = sums[1:] / count.clamp(min=1)
        ctx.mark_non_differentiable(means)
        return sums[0], means

    @staticmethod
    def backward(ctx, grad_loss, _grad_means):
        if ctx.dhidden is None and ctx.dweight is None:
            raise RuntimeError("policy_loss: backward ran twice, or its gradients were not "
                               "computed; run policy_loss again")
        # In place: a second [V, D] buffer for the scaled weight gradient would add 1.2 GB at
        # V = 151,936, D = 4,096 in bf16.
        dhidden = None if ctx.dhidden is None else ctx.dhidden.mul_(grad_loss.to(ctx.dhidden.dtype))
        dweight = None if ctx.dweight is None else ctx.dweight.mul_(grad_loss.to(ctx.dweight.dtype))
        ctx.dhidden = ctx.dweight = None
        return dhidden, dweight, None, None, None, None, None, None, None, None


def _check_vector(name, value, n, device):
    _check_tensor(name, value)
    if value.dim() != 1 or value.shape[0] != n:
        _fail(ValueError, f"{name} must be 1-D [N] with N = hidden.shape[0] = {n}; "
                          f"got shape {tuple(value.shape)}")
    if value.device != device:
        _fail(ValueError, f"{name} is on {value.device} but hidden is on {device}")


def _check_float_vector(name, value, n, device):
    _check_vector(name, value, n, device)
    if not value.is_floating_point():
        _fail(TypeError, f"{name} must be a floating-point tensor; got {value.dtype}")
    return value.detach().to(torch.float32).contiguous()


def _check_cu_seqlens(cu_seqlens, n, device):
    _check_tensor("cu_seqlens", cu_seqlens)
    if cu_seqlens.dim() != 1 or cu_seqlens.shape[0] < 2:
        _fail(ValueError, f"cu_seqlens must be 1-D [B+1] with B >= 1; got shape {tuple(cu_seqlens.shape)}")
    if cu_seqlens.dtype != torch.int32:
        _fail(TypeError, f"cu_seqlens must be int32; got {cu_seqlens.dtype}")
    if cu_seqlens.device != device:
        _fail(ValueError, f"cu_seqlens is on {cu_seqlens.device} but hidden is on {device}")
    values = cu_seqlens.tolist()
    if values[0] != 0 or values[-1] != n:
        _fail(ValueError, f"cu_seqlens must start at 0 and end at N = {n}; got {values[0]} .. {values[-1]}")
    for b in range(1, len(values)):
        if values[b] < values[b - 1]:
            _fail(ValueError, f"cu_seqlens must be non-decreasing; cu_seqlens[{b}] = {values[b]} < "
                              f"cu_seqlens[{b - 1}] = {values[b - 1]}")
    return cu_seqlens.long()


def _check_real(name, value, low=None, high=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        _fail(ValueError, f"{name} must be a finite number; got {value!r}")
    if (low is not None and value < low) or (high is not None and value >= high):
        _fail(ValueError, f"{name} must be in [{low}, {'inf' if high is None else high}); got {value!r}")
    return float(value)


def _token_weights(valid, cu_seqlens, loss_agg):
    """Weight of each token in the aggregated loss (0 where it does not count)."""
    validf = valid.to(torch.float32)
    if loss_agg == "token-mean":
        return validf / validf.sum().clamp(min=1.0)
    lengths = cu_seqlens[1:] - cu_seqlens[:-1]
    n_seqs = lengths.shape[0]
    # output_size: the lengths sum to the token count (checked), and without it the op reads
    # the sum back from the GPU (a host sync per call).
    seq_of_token = torch.repeat_interleave(torch.arange(n_seqs, device=valid.device), lengths,
                                           output_size=valid.shape[0])
    if loss_agg == "seq-mean-token-sum":
        return validf / n_seqs
    tokens_per_seq = torch.zeros(n_seqs, dtype=torch.float32, device=valid.device)
    tokens_per_seq.index_add_(0, seq_of_token, validf)
    return validf / (n_seqs * tokens_per_seq.clamp(min=1.0)[seq_of_token])


def policy_loss(hidden, weight, targets, advantages, *, loss_mask=None, old_logprobs=None,
                ref_logprobs=None, cu_seqlens=None, clip_low=0.2, clip_high=0.2, kl_coef=0.0,
                kl_estimator="k3", entropy_coef=0.0, loss_agg="token-mean", temperature=1.0,
                impl="auto"):
    """Clipped policy-gradient loss (PPO/GRPO style) straight from hidden states.

    With ``lp = linear_logprobs(hidden, weight, targets, temperature=temperature)``,
    ``old = old_logprobs if given else lp.detach()`` and ``ratio = exp(lp - old)``::

        per_token = -min(ratio * A, clamp(ratio, 1 - clip_low, 1 + clip_high) * A)
                    + kl_coef * KL(lp, ref_logprobs) - entropy_coef * entropy

    with ``d = ref_logprobs - lp`` and KL ``k1 = -d``, ``k2 = d**2 / 2``, ``k3 = min(exp(d) - d - 1,
    K3_MAX)`` (``K3_MAX = 10``; the gradient is 0 where the clamp bites). Their gradients at tokens
    sampled from pi differ: in expectation k1's is 0 (noise only), k2's is that of KL(pi || ref)
    and k3's that of the forward KL(ref || pi).
    A token counts when ``loss_mask`` is nonzero (default: all) and its target is not -100. The
    loss aggregates the counted tokens by ``loss_agg``: ``"token-mean"`` (mean over them),
    ``"seq-mean-token-mean"`` (mean per sequence, then mean over the B sequences of
    ``cu_seqlens``) or ``"seq-mean-token-sum"`` (sum per sequence, then mean over sequences);
    a sequence with no counted token contributes 0 and still counts in B.

    The loss and its gradients come out of one chunked pass in the forward, three lm_head-sized
    matmuls in all rather than the four of recomputing the logits in backward (module docstring:
    why, and what was measured); backward only scales them by the incoming gradient, so call
    backward at most once per call. Under ``torch.no_grad`` or when neither hidden nor weight
    requires grad, no gradient work is done.

    Args:
        hidden ``[N, D]``, weight ``[V, D]``, targets ``[N]``: as in ``linear_logprobs``.
        advantages ``[N]``: float, per token.
        loss_mask ``[N]``: bool or numeric; tokens with a nonzero mask count.
        old_logprobs, ref_logprobs ``[N]``: float (sampling-policy and reference log-probs);
            treated as constants. ``kl_coef != 0`` needs ``ref_logprobs``.
        cu_seqlens ``[B+1]`` int32: sequence boundaries (0 = cu_seqlens[0] <= ... <= cu_seqlens[B] = N),
            needed by the seq-mean modes.
        clip_low in [0, 1), clip_high >= 0, kl_coef, entropy_coef: floats.
        kl_estimator: "k1" | "k2" | "k3"; loss_agg: see above; temperature > 0; impl: as above.

    Returns:
        ``(loss, metrics)``: ``loss`` a 0-dim float32 tensor, differentiable with respect to hidden
        and weight; ``metrics`` maps ``"clip_fraction"``, ``"kl"`` (0 without ref_logprobs),
        ``"entropy"`` and ``"ratio"`` to 0-dim float32 tensors, means over the counted tokens.
        They stay on the device: reading one with ``float()`` is the first host sync.
    """
    inv_temperature, impl = _check_logprob_inputs(hidden, weight, targets, temperature, impl)
    n, dev = hidden.shape[0], hidden.device
    advantages = _check_float_vector("advantages", advantages, n, dev)
    old_logprobs = None if old_logprobs is None else _check_float_vector("old_logprobs", old_logprobs, n, dev)
    ref_logprobs = None if ref_logprobs is None else _check_float_vector("ref_logprobs", ref_logprobs, n, dev)
    if loss_agg not in LOSS_AGGS:
        _fail(ValueError, f"loss_agg must be one of {LOSS_AGGS}; got {loss_agg!r}")
    if kl_estimator not in KL_ESTIMATORS:
        _fail(ValueError, f"kl_estimator must be one of {KL_ESTIMATORS}; got {kl_estimator!r}")
    options = {
        "impl": impl,
        "inv_temperature": inv_temperature,
        "clip_low": _check_real("clip_low", clip_low, 0.0, 1.0),
        "clip_high": _check_real("clip_high", clip_high, 0.0),
        "kl_coef": _check_real("kl_coef", kl_coef),
        "kl_estimator": kl_estimator,
        "entropy_coef": _check_real("entropy_coef", entropy_coef),
    }
    if options["kl_coef"] != 0.0 and ref_logprobs is None:
        _fail(ValueError, f"kl_coef = {kl_coef} needs ref_logprobs")
    valid = targets != IGNORE_INDEX
    if loss_mask is not None:
        _check_vector("loss_mask", loss_mask, n, dev)
        valid = valid & (loss_mask.detach() != 0)
    seq_bounds = None
    if loss_agg != "token-mean":
        if cu_seqlens is None:
            _fail(ValueError, f"loss_agg = {loss_agg!r} needs cu_seqlens")
        seq_bounds = _check_cu_seqlens(cu_seqlens, n, dev)
    elif cu_seqlens is not None:
        _check_cu_seqlens(cu_seqlens, n, dev)
    token_weight = _token_weights(valid, seq_bounds, loss_agg)
    count = valid.sum(dtype=torch.float32)
    grad_on = torch.is_grad_enabled()
    options["need_dhidden"] = grad_on and hidden.requires_grad
    options["need_dweight"] = grad_on and weight.requires_grad
    loss, means = PolicyLossFunction.apply(hidden, weight, targets.contiguous(), valid, token_weight,
                                           advantages, old_logprobs, ref_logprobs, count, options)
    metrics = dict(zip(("clip_fraction", "kl", "entropy", "ratio"), means.unbind(0)))
    return loss, metrics


class PolicyLoss(torch.nn.Module):
    """``policy_loss`` as a module, with its hyper-parameters fixed at construction.

    ``PolicyLoss(clip_low=0.2, kl_coef=0.01, ...)(hidden, lm_head.weight, targets, advantages,
    loss_mask=..., old_logprobs=..., ref_logprobs=..., cu_seqlens=...)`` returns
    ``(loss, metrics)`` as ``policy_loss`` does. It holds no parameters: pass the lm_head weight.
    """

    def __init__(self, *, clip_low=0.2, clip_high=0.2, kl_coef=0.0, kl_estimator="k3",
                 entropy_coef=0.0, loss_agg="token-mean", temperature=1.0, impl="auto"):
        super().__init__()
        self.options = dict(clip_low=clip_low, clip_high=clip_high, kl_coef=kl_coef,
                            kl_estimator=kl_estimator, entropy_coef=entropy_coef,
                            loss_agg=loss_agg, temperature=temperature, impl=impl)

    def forward(self, hidden, weight, targets, advantages, *, loss_mask=None, old_logprobs=None,
                ref_logprobs=None, cu_seqlens=None):
        return policy_loss(hidden, weight, targets, advantages, loss_mask=loss_mask,
                           old_logprobs=old_logprobs, ref_logprobs=ref_logprobs,
                           cu_seqlens=cu_seqlens, **self.options)

    def extra_repr(self):
        return ", ".join(f"{k}={v!r}" for k, v in self.options.items())
