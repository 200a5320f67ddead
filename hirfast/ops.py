"""Fused lm_head -> log-prob (+ entropy) -> policy loss, without materializing [N, V] logits.

``linear_logprobs(hidden, weight, targets)`` computes
``log_softmax((hidden @ weight.T).float() / temperature)[i, targets[i]]`` and ``policy_loss`` the
clipped policy-gradient loss on top of it, both in row chunks: only a bounded ``[C, V]`` block of
logits exists at any time (``C`` from ``_WORKSPACE_BYTES``), so a 16,384 x 151,936 batch never
holds the 10 GB of fp32 logits that the plain expression allocates.

How each chunk is processed (both impls, the same structure):

1. ``z = hidden[c] @ weight.T`` as fp32 ``[C, V]`` (one lm_head matmul);
2. per row, in fp32: log-sum-exp, the target's log-prob, and the entropy ``-sum p log p``;
3. when gradients are wanted: ``dz = dLoss/dz`` in the input dtype, then ``dhidden[c] = dz @ weight``
   and ``dweight += dz.T @ hidden[c]``.

``policy_loss`` knows ``dLoss/dlogprob`` and ``dLoss/dentropy`` of a row as soon as that row's
log-prob is known (they depend only on that row's log-prob, entropy, advantage, old and reference
log-prob, and on aggregation weights fixed by the masks), so it runs step 3 right after step 2 on
the logits still in memory: three matmuls in all (6·N·D·V FLOPs), and its backward only scales
the stored gradients by the incoming scalar.

``linear_logprobs`` alone does not know its upstream gradient until backward, so its backward
recomputes the chunk's logits (one more lm_head matmul: four in all, 8·N·D·V) from the saved
per-row log-sum-exp and entropy. Storing instead what backward needs would be ``[N, V]`` (the
probabilities), the very tensor this module exists to avoid.

``impl``: ``"torch"`` is a plain chunked PyTorch twin (the reference and the CPU path; its step 1
is literally ``(hidden @ weight.T).float()``, so bf16 logits are rounded to bf16 as in the plain
expression); ``"triton"`` runs steps 2 and 3's row work in the Triton kernels of
``hirfast.kernels``; ``"auto"`` picks ``"triton"`` for CUDA tensors and ``"torch"`` otherwise.
"""
from __future__ import annotations

import math
import numbers

import torch

IGNORE_INDEX = -100
IMPLS = ("auto", "triton", "torch")
KL_ESTIMATORS = ("k1", "k2", "k3")
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
    """Steps 1-3 of the module docstring on one chunk, in plain PyTorch."""

    @staticmethod
    def logits(hidden_chunk, weight):
        return torch.mm(hidden_chunk, weight.t()).float()

    @staticmethod
    def stats(logits, targets, inv_temperature):
        """-> (logprob [C], lse [C], entropy [C]) of rows of fp32 logits (before temperature)."""
        z = logits * inv_temperature
        lse = torch.logsumexp(z, dim=-1)
        logp = z - lse.unsqueeze(1)
        entropy = -(logp.exp() * logp).sum(dim=-1)
        valid = targets != IGNORE_INDEX
        picked = logp.gather(1, targets.clamp(min=0).unsqueeze(1)).squeeze(1)
        return torch.where(valid, picked, 0.0), lse, entropy

    @staticmethod
    def dlogits(logits, targets, lse, entropy, grad_logprob, grad_entropy, inv_temperature, dtype):
        """dLoss/dlogits [C, V] in ``dtype`` from the per-row upstream gradients.

        d logprob_i / d z_ij = [j = t_i] - p_ij and d entropy_i / d z_ij = -p_ij (log p_ij + H_i),
        with z = logits / temperature (hence the final factor 1/temperature).
        """
        logp = logits * inv_temperature - lse.unsqueeze(1)
        p = logp.exp()
        valid = targets != IGNORE_INDEX
        grad = torch.zeros_like(p)
        if grad_logprob is not None:
            g = torch.where(valid, grad_logprob, 0.0)
            grad -= p * g.unsqueeze(1)
            grad.scatter_add_(1, targets.clamp(min=0).unsqueeze(1), g.unsqueeze(1))
        if grad_entropy is not None:
            grad -= grad_entropy.unsqueeze(1) * p * (logp + entropy.unsqueeze(1))
        return (grad * inv_temperature).to(dtype)


def _rows_for(impl: str):
    if impl == "torch":
        return _TorchRows
    raise NotImplementedError("impl='triton' lands with the Triton kernels; use impl='torch'")


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
    without allocating the ``[N, V]`` logits (see the module docstring).

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
    """Per-token loss terms and their exact derivatives, for a chunk of rows (fp32 [C] each).

    Returns (weighted loss [C], dLoss/dlogprob [C], dLoss/dentropy [C], clipped [C] bool,
    kl [C] or None, ratio [C]). Rows that do not count (``valid`` False) get 0 loss and 0
    gradient: masking with ``where`` rather than a product keeps an inf there out of the sum.
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
    kl = None
    if ref_logprobs is not None:
        d = ref_logprobs - logprob
        if kl_estimator == "k1":
            kl, dkl = -d, torch.ones_like(d)
        elif kl_estimator == "k2":
            kl, dkl = 0.5 * d * d, -d
        else:
            exp_d = torch.exp(d)
            kl, dkl = exp_d - d - 1.0, 1.0 - exp_d
        if kl_coef != 0.0:
            per_token = per_token + kl_coef * kl
            grad_logprob = grad_logprob + kl_coef * dkl
    if entropy_coef != 0.0:
        per_token = per_token - entropy_coef * entropy
    loss = torch.where(valid, token_weight * per_token, 0.0)
    grad_logprob = torch.where(valid, token_weight * grad_logprob, 0.0)
    grad_entropy = (torch.where(valid, -entropy_coef * token_weight, 0.0)
                    if entropy_coef != 0.0 else None)
    return loss, grad_logprob, grad_entropy, clipped, kl, ratio


def _policy_chunks(rows, hidden, weight, targets, valid, token_weight, advantages, old_logprobs,
                   ref_logprobs, inv_temperature, clip_low, clip_high, kl_coef, kl_estimator,
                   entropy_coef, need_dhidden, need_dweight):
    """The fused pass: loss, metric sums and (when wanted) both gradients, chunk by chunk."""
    n, vocab = hidden.shape[0], weight.shape[0]
    dev = hidden.device
    want_grad = need_dhidden or need_dweight
    sums = torch.zeros(5, dtype=torch.float32, device=dev)  # loss, clipped, kl, entropy, ratio
    dhidden = torch.empty(hidden.shape, dtype=hidden.dtype, device=dev) if need_dhidden else None
    dweight = None if need_dweight else False
    step = _chunk_rows(n, vocab, 4 + (weight.element_size() if want_grad else 0))
    for start in range(0, n, step):
        end = min(start + step, n)
        part = slice(start, end)
        h = hidden[part]
        z = rows.logits(h, weight)
        logprob, lse, entropy = rows.stats(z, targets[part], inv_temperature)
        loss, grad_logprob, grad_entropy, clipped, kl, ratio = _policy_token_terms(
            logprob, entropy, valid[part], token_weight[part], advantages[part],
            None if old_logprobs is None else old_logprobs[part],
            None if ref_logprobs is None else ref_logprobs[part],
            clip_low, clip_high, kl_coef, kl_estimator, entropy_coef)
        v = valid[part]
        zero = torch.zeros((), dtype=torch.float32, device=dev)
        sums += torch.stack([
            loss.sum(),
            (clipped & v).sum(dtype=torch.float32),
            torch.where(v, kl, 0.0).sum() if kl is not None else zero,
            torch.where(v, entropy, 0.0).sum(),
            torch.where(v, ratio, 0.0).sum(),
        ])
        if want_grad:
            dz = rows.dlogits(z, targets[part], lse, entropy, grad_logprob, grad_entropy,
                              inv_temperature, weight.dtype)
            del z
            dweight = _grad_matmuls(dz, h, weight, None if dhidden is None else dhidden[part],
                                    dweight)
    dweight = _finish_dweight(dweight, weight)
    return sums, dhidden, dweight


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
    seq_of_token = torch.repeat_interleave(torch.arange(n_seqs, device=valid.device), lengths)
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

    with ``d = ref_logprobs - lp`` and KL ``k1 = -d``, ``k2 = d**2 / 2``, ``k3 = exp(d) - d - 1``.
    A token counts when ``loss_mask`` is nonzero (default: all) and its target is not -100. The
    loss aggregates the counted tokens by ``loss_agg``: ``"token-mean"`` (mean over them),
    ``"seq-mean-token-mean"`` (mean per sequence, then mean over the B sequences of
    ``cu_seqlens``) or ``"seq-mean-token-sum"`` (sum per sequence, then mean over sequences);
    a sequence with no counted token contributes 0 and still counts in B.

    The loss and its gradients come out of one chunked pass (see the module docstring); backward
    only scales them, so call backward at most once per call.

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
