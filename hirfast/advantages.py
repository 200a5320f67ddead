"""Advantage estimators over originals and replays (per token, on padded ``[B, T]`` tensors).

- ``"reinforce++"`` (the default, as in the HiR paper): token rewards are the scalar reward at the
  last response token minus ``kl_coef * kl_t`` at every token (when a reference model is used),
  returns with gamma = 1 (the reward-to-go), then whitened over all response tokens of the whole
  batch (not per group).
- ``"reinforce++-baseline"``: the sequence score (reward minus ``kl_coef * sum_t kl_t``) minus the
  mean score of its group, given to every token, then whitened over the batch.
- ``"grpo"``: the sequence score standardized within its group, ``(s - mean) / (std + 1e-6)``,
  given to every token; not whitened.

Groups are tasks: a replay belongs to the group of the task it was drawn from (as in sastpg/HIR,
where a replay keeps its source's group id). Whitening is ``(x - mean) / sqrt(var + 1e-8)`` with the
unbiased (Bessel-corrected) variance over the masked tokens; group std is unbiased too. A group of
one sample, or a batch of one token, carries no contrast: its advantages are 0 (verl would give a
lone sample its raw score).
"""
from __future__ import annotations

from typing import Sequence

import torch

__all__ = ["ESTIMATORS", "compute_advantages", "masked_whiten", "reward_to_go"]

ESTIMATORS = ("reinforce++", "reinforce++-baseline", "grpo")
WHITEN_EPS = 1e-8
GRPO_EPS = 1e-6


def masked_whiten(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Whiten ``values`` over the positions where ``mask`` is true; 0 elsewhere."""
    m = mask.to(values.dtype)
    count = m.sum()
    if count < 2:
        return torch.zeros_like(values)
    mean = (values * m).sum() / count
    var = (((values - mean) ** 2) * m).sum() / (count - 1)
    return (values - mean) * torch.rsqrt(var + WHITEN_EPS) * m


def reward_to_go(token_rewards: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Returns with gamma = 1: ``G_t = sum_{t' >= t} r_t'`` over each row's masked tokens."""
    r = token_rewards * mask.to(token_rewards.dtype)
    return torch.flip(torch.cumsum(torch.flip(r, [1]), 1), [1]) * mask.to(r.dtype)


def _group_index(group_ids: Sequence[int] | torch.Tensor, n: int) -> torch.Tensor:
    g = torch.as_tensor(group_ids, dtype=torch.long)
    if g.shape != (n,):
        raise ValueError(f"group_ids has shape {tuple(g.shape)}, expected ({n},)")
    return torch.unique(g, return_inverse=True)[1]


def _group_stats(scores: torch.Tensor, groups: torch.Tensor):
    k = int(groups.max()) + 1 if groups.numel() else 0
    count = torch.zeros(k, dtype=scores.dtype).index_add_(0, groups, torch.ones_like(scores))
    mean = torch.zeros(k, dtype=scores.dtype).index_add_(0, groups, scores) / count
    dev2 = (scores - mean[groups]) ** 2
    var = torch.zeros(k, dtype=scores.dtype).index_add_(0, groups, dev2) / (count - 1).clamp(min=1)
    return count[groups], mean[groups], var.sqrt()[groups]


def compute_advantages(estimator: str, rewards: torch.Tensor, group_ids, mask: torch.Tensor, *,
                       kl: torch.Tensor | None = None, kl_coef: float = 0.0) -> torch.Tensor:
    """Per-token advantages ``[B, T]`` (0 outside ``mask``).

    Args:
        estimator: one of :data:`ESTIMATORS`.
        rewards: ``[B]`` scalar rewards (1/0, or the dense fraction), replays included.
        group_ids: ``[B]`` the task each row belongs to.
        mask: ``[B, T]`` true on response tokens (rows are left-aligned: token 0 is the first
            response token).
        kl: ``[B, T]`` per-token KL estimate against the reference model, for the KL penalty in
            the reward (used when ``kl_coef`` > 0).
        kl_coef: beta of ``r_t - beta * kl_t``.
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown advantage estimator {estimator!r}; expected one of {ESTIMATORS}")
    rewards = torch.as_tensor(rewards, dtype=torch.float32)
    B, T = mask.shape
    if rewards.shape != (B,):
        raise ValueError(f"rewards has shape {tuple(rewards.shape)}, expected ({B},)")
    maskf = mask.to(torch.float32)
    lengths = mask.sum(1)
    if bool((lengths == 0).any()):
        raise ValueError("every row needs at least one response token")
    token_rewards = torch.zeros(B, T)
    token_rewards[torch.arange(B), lengths - 1] = rewards
    if kl is not None and kl_coef:
        token_rewards = token_rewards - kl_coef * kl.to(torch.float32) * maskf

    if estimator == "reinforce++":
        return masked_whiten(reward_to_go(token_rewards, mask), mask)

    scores = token_rewards.mul(maskf).sum(1)
    groups = _group_index(group_ids, B)
    count, mean, std = _group_stats(scores, groups)
    lone = count < 2
    if estimator == "reinforce++-baseline":
        centred = torch.where(lone, torch.zeros_like(scores), scores - mean)
        return masked_whiten(centred[:, None] * maskf, mask)
    standardized = torch.where(lone, torch.zeros_like(scores), (scores - mean) / (std + GRPO_EPS))
    return standardized[:, None] * maskf
