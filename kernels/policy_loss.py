"""Row kernel of the fused ``policy_loss``: per row of a chunk of fp32 logits, the log-sum-exp,
entropy and target log-prob (as in ``linear_logprobs``), then in the same program the clipped
policy-gradient loss of that token and its derivatives with respect to the log-prob and the
entropy.

Those derivatives are all the backward needs: the launcher turns them into dlogits right away
with ``linear_logprobs``' backward kernel, while the chunk's logits are still in memory, so this
op has no backward kernel of its own (its autograd backward only scales the gradients made in
the forward).
"""
import torch
import triton
import triton.language as tl

from .linear_logprobs import (_FWD_CONFIGS, _IGNORE_INDEX, AUTOTUNE_CACHE, _configs,
                              _row_lse_entropy, _target_logprob, linear_logprobs_bwd, on_device)

KL_ESTIMATOR_CODES = {"k1": 1, "k2": 2, "k3": 3}
K3_MAX = 10.0  # the same clamp as hirfast.ops.K3_MAX (this module must not import hirfast.ops)


@triton.autotune(configs=_configs(*_FWD_CONFIGS), key=["vocab"], **AUTOTUNE_CACHE)
@triton.jit
def _policy_loss_fwd_kernel(
        logits_ptr, logits_row_stride, targets_ptr, valid_ptr, token_weight_ptr, advantages_ptr,
        old_logprobs_ptr, ref_logprobs_ptr,
        lse_ptr, entropy_ptr, loss_ptr, grad_logprob_ptr, grad_entropy_ptr, clipped_ptr, kl_ptr,
        ratio_ptr,
        vocab, inv_temperature, clip_low, clip_high, kl_coef, entropy_coef, k3_max,
        HAS_OLD: tl.constexpr, HAS_REF: tl.constexpr, KL_ESTIMATOR: tl.constexpr,
        BLOCK_V: tl.constexpr):
    """One program per row. Writes, per row: lse, entropy, the weighted loss, dLoss/dlogprob,
    dLoss/dentropy, clipped (0/1), kl (0 without ref) and ratio; loss and both gradients are 0
    where the row does not count.

    per_token = -min(r A, clamp(r, 1 - clip_low, 1 + clip_high) A) + kl_coef KL - entropy_coef H,
    r = exp(lp - old). Where the clipped term is strictly smaller the ratio is outside the clip
    range and d/dlp of that term is 0; elsewhere it is -A r. With d = ref - lp:
    k1 = -d (d/dlp 1), k2 = d^2/2 (-d), k3 = min(e^d - d - 1, k3_max) (1 - e^d, 0 where clamped).
    """
    row = tl.program_id(0).to(tl.int64)
    row_ptr = logits_ptr + row * logits_row_stride
    lse, entropy = _row_lse_entropy(row_ptr, vocab, inv_temperature, BLOCK_V)
    target = tl.load(targets_ptr + row)
    logprob = _target_logprob(row_ptr, target, lse, inv_temperature)
    valid = (tl.load(valid_ptr + row) != 0) & (target != _IGNORE_INDEX)
    weight = tl.load(token_weight_ptr + row)
    advantage = tl.load(advantages_ptr + row)

    if HAS_OLD:
        ratio = tl.exp(logprob - tl.load(old_logprobs_ptr + row))
    else:
        ratio = tl.full((), 1.0, tl.float32)
    surrogate = ratio * advantage
    surrogate_clipped = tl.minimum(tl.maximum(ratio, 1.0 - clip_low), 1.0 + clip_high) * advantage
    clipped = surrogate_clipped < surrogate
    per_token = -tl.minimum(surrogate, surrogate_clipped)
    grad_logprob = tl.where(clipped, 0.0, -surrogate)
    kl = tl.zeros((), tl.float32)
    if HAS_REF:
        d = tl.load(ref_logprobs_ptr + row) - logprob
        if KL_ESTIMATOR == 1:
            kl = -d
            dkl = 1.0
        elif KL_ESTIMATOR == 2:
            kl = 0.5 * d * d
            dkl = -d
        else:
            exp_d = tl.exp(d)
            raw = exp_d - d - 1.0
            kl = tl.minimum(raw, k3_max)
            dkl = tl.where(raw > k3_max, 0.0, 1.0 - exp_d)
        per_token += kl_coef * kl
        grad_logprob += kl_coef * dkl
    per_token -= entropy_coef * entropy

    tl.store(lse_ptr + row, lse)
    tl.store(entropy_ptr + row, entropy)
    tl.store(loss_ptr + row, tl.where(valid, weight * per_token, 0.0))
    tl.store(grad_logprob_ptr + row, tl.where(valid, weight * grad_logprob, 0.0))
    tl.store(grad_entropy_ptr + row, tl.where(valid, -entropy_coef * weight, 0.0))
    tl.store(clipped_ptr + row, tl.where(valid & clipped, 1.0, 0.0))
    tl.store(kl_ptr + row, tl.where(valid, kl, 0.0))
    tl.store(ratio_ptr + row, tl.where(valid, ratio, 0.0))


def policy_loss_fwd(logits, targets, valid, token_weight, advantages, old_logprobs, ref_logprobs,
                    inv_temperature, clip_low, clip_high, kl_coef, kl_estimator, entropy_coef,
                    grad_dtype):
    """logits [C, V] fp32; targets [C] int64; valid [C] bool; token_weight, advantages and the
    optional old/ref log-probs [C] fp32. Returns a dict of [C] fp32 tensors: lse, entropy,
    loss, grad_logprob, grad_entropy, clipped, kl, ratio (see the kernel), and with
    ``grad_dtype`` also ``dlogits`` [C, V] in it, from the same logits."""
    rows, vocab = logits.shape
    names = ("lse", "entropy", "loss", "grad_logprob", "grad_entropy", "clipped", "kl", "ratio")
    out = torch.empty((len(names), rows), dtype=torch.float32, device=logits.device)
    if rows:
        with on_device(logits):
            _policy_loss_fwd_kernel[(rows,)](
                logits, logits.stride(0), targets, valid.view(torch.uint8), token_weight, advantages,
                advantages if old_logprobs is None else old_logprobs,
                advantages if ref_logprobs is None else ref_logprobs,
                *out.unbind(0),
                vocab, inv_temperature, clip_low, clip_high, kl_coef, entropy_coef, K3_MAX,
                HAS_OLD=old_logprobs is not None, HAS_REF=ref_logprobs is not None,
                KL_ESTIMATOR=KL_ESTIMATOR_CODES[kl_estimator])
    terms = dict(zip(names, out.unbind(0)))
    if grad_dtype is not None:
        terms["dlogits"] = linear_logprobs_bwd(
            logits, targets, terms["lse"], terms["entropy"], terms["grad_logprob"],
            terms["grad_entropy"] if entropy_coef != 0.0 else None, inv_temperature, grad_dtype)
    return terms
