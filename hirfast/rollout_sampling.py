"""Token sampling for the rollout engine: temperature, top-k, top-p, and the recorded log-prob.

Semantics (the same as Hugging Face's `TemperatureLogitsWarper` -> `TopKLogitsWarper` ->
`TopPLogitsWarper`, in that order):

- temperature scales the logits first (`logits / T`); `T = 0` means greedy (argmax of the raw logits);
- top-k keeps every token whose scaled logit is at least the k-th largest (ties kept); `k = 0` keeps all;
- top-p then keeps the smallest set of the most likely tokens (under the top-k distribution) whose
  probability sums to at least `p`: a token is kept when the mass of the tokens ranked above it is
  below `p`; `p = 1` keeps all;
- the recorded log-prob of the sampled token is under the distribution it was drawn from: the
  log-softmax of the scaled logits renormalized over the kept set. For greedy decoding (`T = 0`), a
  point mass would record 0 for every token, so the log-prob is taken at `T = 1` (after top-k/top-p).
- with `full=True`, two more numbers per row, both of the *untruncated* distribution
  `softmax(logits / T)` (at `T = 1` when greedy), the one the trainer's forward computes: the
  log-prob of the sampled token (what the trainer uses as log pi_old) and the entropy
  `H = lse - sum_v p_v z_v` (HiR's replay score). Without top-k/top-p this reuses the softmax the
  draw computes anyway (one multiply-add pass over the vocabulary more); with them, one
  log-sum-exp and one exp pass more (bench/test_rollout_bench.py::test_sampling_record_cost_cpu).

Randomness is counter-based: the uniform number that draws the token of sequence `s` at step `t` is a
hash of `(seed, s, t)`. A sequence's samples therefore do not depend on which other sequences share
its batch, on the batch size, or on the order in which prompts were admitted: changing the cache
budget or `max_batch_size` does not change what is sampled. The draw itself is inverse-CDF sampling
(one uniform number per row, a two-level cumulative sum), so no `[rows, vocab]` noise tensor is
made.

Everything here is plain tensor code without host synchronisation, so it can be captured in a CUDA
graph.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

# Tokens per block of the two-level inverse CDF (151936 = 1187 x 128 for Qwen's vocabulary).
_CDF_BLOCK = 128
_MASK32 = 0xFFFFFFFF
# Odd multipliers below 2**31: with 32-bit operands every product stays below 2**63, so int64 never
# overflows and the hash is the same on every device.
_MIX_A = 0x5BD1E995
_MIX_B = 0x27D4EB2D


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """A xorshift-multiply avalanche of 32-bit values held in int64."""
    x = x & _MASK32
    x = ((x ^ (x >> 16)) * _MIX_A) & _MASK32
    x = ((x ^ (x >> 15)) * _MIX_B) & _MASK32
    x = ((x ^ (x >> 16)) * _MIX_A) & _MASK32
    return x ^ (x >> 15)


def counter_uniforms(seed: torch.Tensor, seq_ids: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
    """One uniform number in (0, 1) per row, a function of (seed, seq_ids[i], steps[i]) only.

    seed: () int64; seq_ids, steps: (B,) int64 -> (B,) float32 with 24 random bits.
    """
    h = _mix32(seed ^ 0x9E3779B9)
    h = _mix32(h ^ (seed >> 32))
    h = _mix32(h ^ seq_ids)
    h = _mix32(h ^ (seq_ids >> 32))
    h = _mix32(h ^ steps)
    return ((h >> 8).to(torch.float32) + 0.5) * (2.0 ** -24)


def _inverse_cdf(masked_logits: torch.Tensor, log_norm: torch.Tensor, uniforms: torch.Tensor,
                 probs: torch.Tensor | None = None) -> torch.Tensor:
    """Index drawn from softmax(masked_logits) per row; never a token whose probability is 0.

    Two levels: a block of `_CDF_BLOCK` tokens is drawn from the cumulative block masses, then a token
    within the block, so only one pass over the vocabulary materializes probabilities (a full-width
    cumsum would add a read and a write of the (rows, vocab) buffer every step).
    """
    rows, vocab = masked_logits.shape
    if probs is None:
        probs = torch.exp(masked_logits - log_norm.unsqueeze(1))
    if vocab % _CDF_BLOCK:
        probs = F.pad(probs, (0, _CDF_BLOCK - vocab % _CDF_BLOCK))
    blocks = probs.view(rows, -1, _CDF_BLOCK)
    block_cdf = torch.cumsum(blocks.sum(-1), dim=-1)
    total = block_cdf[:, -1:].contiguous()
    target = uniforms.unsqueeze(1) * total
    # `u * total` can round up to `total`; the first block (token) where the cumulative mass reaches
    # its final value holds the last positive mass, so clamping there keeps the draw in the kept set.
    block = torch.minimum(torch.searchsorted(block_cdf, target, right=True),
                          torch.searchsorted(block_cdf, total, right=False))
    below = torch.where(block > 0, block_cdf.gather(1, (block - 1).clamp(min=0)), 0.0)
    inner = blocks.gather(1, block.unsqueeze(2).expand(rows, 1, _CDF_BLOCK)).squeeze(1)
    inner_cdf = torch.cumsum(inner, dim=-1)
    inner_total = inner_cdf[:, -1:].contiguous()
    offset = torch.minimum(torch.searchsorted(inner_cdf, (target - below).clamp(min=0), right=True),
                           torch.searchsorted(inner_cdf, inner_total, right=False))
    return (block * _CDF_BLOCK + offset).squeeze(1)


def _top_k_mask(scaled: torch.Tensor, top_k: int) -> torch.Tensor:
    if top_k <= 0 or top_k >= scaled.shape[-1]:
        return scaled
    kth = torch.topk(scaled, top_k, dim=-1).values[:, -1:]
    return scaled.masked_fill(scaled < kth, float("-inf"))


def _entropy(scaled: torch.Tensor, probs: torch.Tensor, log_norm: torch.Tensor) -> torch.Tensor:
    """``-sum p log p = lse - sum p z`` per row; a token of probability 0 (logit -inf) adds 0
    (``0 * -inf`` is NaN, which ``nansum`` skips; a ``where`` on the mask cost 14x more here)."""
    return log_norm - torch.nansum(probs * scaled, dim=-1)


def sample_tokens(logits: torch.Tensor, uniforms: torch.Tensor, *, temperature: float, top_k: int,
                  top_p: float, full: bool = False):
    """Draw one token per row and return it with its log-prob (see the module docstring).

    logits: (B, V) float32; uniforms: (B,) float32 in (0, 1), ignored when greedy.
    Returns tokens (B,) int64 and logprobs (B,) float32; with ``full=True`` also the untruncated
    log-prob of each drawn token and the untruncated entropy, (B,) float32 each.
    """
    greedy = temperature == 0
    base = logits if greedy or temperature == 1.0 else logits / temperature
    scaled = _top_k_mask(base, top_k)
    truncated = scaled is not base or top_p < 1.0
    if top_p < 1.0:
        sorted_logits, order = torch.sort(scaled, dim=-1, descending=True, stable=True)
        sorted_probs = torch.softmax(sorted_logits, dim=-1)
        mass_above = torch.cumsum(sorted_probs, dim=-1) - sorted_probs
        kept = sorted_logits.masked_fill(mass_above >= top_p, float("-inf"))
        log_norm = torch.logsumexp(kept, dim=-1)
        if greedy:
            rank = torch.zeros_like(uniforms, dtype=torch.long)
        else:
            rank = _inverse_cdf(kept, log_norm, uniforms)
        tokens = order.gather(1, rank.unsqueeze(1)).squeeze(1)
        logprobs = kept.gather(1, rank.unsqueeze(1)).squeeze(1) - log_norm
    else:
        log_norm = torch.logsumexp(scaled, dim=-1)
        probs = None
        if greedy:
            tokens = torch.argmax(scaled, dim=-1)
        else:
            probs = (scaled - log_norm.unsqueeze(1)).exp_()
            tokens = _inverse_cdf(scaled, log_norm, uniforms, probs=probs)
        logprobs = scaled.gather(1, tokens.unsqueeze(1)).squeeze(1) - log_norm
    if not full:
        return tokens, logprobs
    if truncated:
        probs, log_norm = None, torch.logsumexp(base, dim=-1)
    if probs is None:
        probs = (base - log_norm.unsqueeze(1)).exp_()
    full_logprobs = logprobs if not truncated else (
        base.gather(1, tokens.unsqueeze(1)).squeeze(1) - log_norm)
    return tokens, logprobs, full_logprobs, _entropy(base, probs, log_norm)


def draw_tokens(logits: torch.Tensor, uniforms: torch.Tensor, *, temperature: float, top_k: int,
                top_p: float) -> torch.Tensor:
    """The tokens `sample_tokens` draws, without their log-probs (for callers that keep none, such
    as `hirfast eval`). Greedy is one argmax of the raw logits: top-k and top-p keep the likeliest
    token, and `torch.argmax`, like the stable sort `sample_tokens` ranks by, takes the first of
    equal maxima. Sampling needs the normalizer anyway, so it is `sample_tokens`' draw."""
    if temperature == 0:
        return torch.argmax(logits, dim=-1)
    return sample_tokens(logits, uniforms, temperature=temperature, top_k=top_k, top_p=top_p)[0]
