"""The RL pieces of a training step around the fused loss: which log pi_old and log pi_ref each row
gets (``row_logprobs``), which model is the reference (``reference_source``: never silently a
resumed checkpoint), the per-token KL of the reward (``token_kl``, k3 clamped), the loss of one
packed micro-batch split into originals and replays (``micro_batch_loss``: replays' ratio and clip
fraction are measured apart), and dropout (``disable_dropout``).

log pi_old and log pi_ref of each row (``row_logprobs``), as ``HIR_METHOD.md`` step 5 defines them:

- an original: pi_old is the rollout's untruncated temperature-scaled log-prob (recorded while
  sampling, so no forward is spent on it); with one optimizer step per rollout the loss uses
  ``pi_theta.detach()`` instead, which is what a recomputing trainer (verl) gets, exactly;
  pi_ref is a no-grad forward of the reference under ``x``.
- a replay, ``replay_old_logprobs: original`` (the authors' code): pi_old and pi_ref are its
  source's, under the **original** instruction ``x``, so its ratio is ``pi_theta(y|x') /
  pi_old(y|x)`` and the PPO clip applies to it; no forward is spent on them.
- a replay, ``replay_old_logprobs: rewritten``: no-grad forwards of the rollout policy and the
  reference under ``x'``.

Either way a replay's pi_old reaches the loss even with one optimizer step per rollout.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from .ops import K3_MAX, policy_loss

log = logging.getLogger("hirfast.trainer")

REFERENCE_FILE = "reference.json"  # in each checkpoint: which model its run's reference was

__all__ = ["K3_MAX", "token_kl", "disable_dropout", "PartSums", "Parts", "micro_batch_loss",
           "row_logprobs",
           "reference_source", "saved_reference", "REFERENCE_FILE"]


def token_kl(ref: torch.Tensor, logp: torch.Tensor, estimator: str) -> torch.Tensor:
    """Per-token KL estimate of ``KL(pi || pi_ref)`` at tokens sampled from pi, with ``d = ref -
    logp``: ``k1 = -d``, ``k2 = d^2 / 2``, ``k3 = e^d - d - 1`` clamped to at most ``K3_MAX`` (as
    ``policy_loss`` does, and as verl and OpenRLHF clamp it)."""
    d = ref.float() - logp.float()
    if estimator == "k1":
        return -d
    if estimator == "k2":
        return 0.5 * d * d
    if estimator == "k3":
        return (torch.exp(d) - d - 1.0).clamp(max=K3_MAX)
    raise ValueError(f"unknown KL estimator {estimator!r}; expected k1, k2 or k3")


_DROPOUT_ATTRS = ("attention_dropout", "hidden_dropout", "dropout", "attn_dropout",
                  "resid_dropout", "embd_dropout", "activation_dropout")


def disable_dropout(model: torch.nn.Module) -> int:
    """Set every dropout probability of ``model`` to 0; return how many were non-zero.

    Covers ``nn.Dropout`` modules and the float attributes Hugging Face attention layers read in
    functional dropout (``attention_dropout`` and the like), and the same names in the config. The
    trainer calls it on the policy, so the loss forward (``train()`` mode, which gradient
    checkpointing needs) computes the same distribution as pi_old and the reference, scored in
    ``eval()`` mode; verl does the same.
    """
    changed = 0
    for module in model.modules():
        if isinstance(module, torch.nn.modules.dropout._DropoutNd):
            changed += module.p != 0
            module.p = 0.0
        for name in _DROPOUT_ATTRS:
            value = getattr(module, name, None)
            if isinstance(value, float) and not isinstance(value, bool):
                changed += value != 0
                setattr(module, name, 0.0)
    config = getattr(model, "config", None)
    for name in _DROPOUT_ATTRS + ("attention_probs_dropout_prob", "hidden_dropout_prob"):
        value = getattr(config, name, None)
        if isinstance(value, float) and value != 0:
            setattr(config, name, 0.0)
    return int(changed)


@dataclass
class PartSums:
    """Token-weighted sums of one part's loss metrics over a step (divide by ``tokens``)."""

    tokens: int = 0
    clipped: float = 0.0
    ratio: float = 0.0
    kl: float = 0.0
    entropy: float = 0.0

    def add(self, tokens: int, metrics: dict) -> None:
        self.tokens += tokens
        self.clipped += float(metrics["clip_fraction"]) * tokens
        self.ratio += float(metrics["ratio"]) * tokens
        self.kl += float(metrics["kl"]) * tokens
        self.entropy += float(metrics["entropy"]) * tokens

    def mean(self, name: str) -> float | None:
        return getattr(self, name) / self.tokens if self.tokens else None


@dataclass
class Parts:
    original: PartSums = field(default_factory=PartSums)
    replay: PartSums = field(default_factory=PartSums)


def micro_batch_loss(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                     lengths: Sequence[int], is_replay: Sequence[bool],
                     advantages: Sequence[torch.Tensor], old: Sequence[torch.Tensor | None],
                     ref: Sequence[torch.Tensor] | None, *, tokens_total: int, rows_total: int,
                     sums: Parts, **loss_options) -> torch.Tensor:
    """The loss of one packed micro-batch, scaled for accumulation, as two fused calls.

    ``hidden``/``targets`` hold the response tokens of the micro-batch's rows back to back
    (``lengths`` each); per row, ``advantages``, ``old`` (None: on-policy, ``pi_theta.detach()``)
    and ``ref`` are token tensors. Originals and replays go through ``policy_loss`` separately, so
    each part's ratio and clip fraction are measured (added to ``sums``) and originals can be
    on-policy while replays carry their own pi_old. The sum is the loss of one call over all
    tokens times this micro-batch's share of the mini-batch (``tokens_total`` tokens for
    ``token-mean``, ``rows_total`` rows for the seq-mean modes), so gradients accumulate to the
    mini-batch's loss.
    """
    dev = hidden.device
    starts = [0]
    for n in lengths:
        starts.append(starts[-1] + n)
    token_mean = loss_options.get("loss_agg", "token-mean") == "token-mean"
    total = None
    for replay_part in (False, True):
        rows = [i for i, r in enumerate(is_replay) if bool(r) == replay_part]
        if not rows:
            continue
        if len(rows) == len(lengths):
            h, t = hidden, targets
        else:
            index = torch.cat([torch.arange(starts[i], starts[i + 1]) for i in rows]).to(dev)
            h, t = hidden.index_select(0, index), targets.index_select(0, index)
        part_old = [old[i] for i in rows]
        if any(o is None for o in part_old) and not all(o is None for o in part_old):
            raise ValueError("a part mixes rows with and without log pi_old")
        cu = torch.tensor([0] + [lengths[i] for i in rows]).cumsum(0).to(torch.int32).to(dev)
        loss, metrics = policy_loss(
            h, weight, t, torch.cat([advantages[i] for i in rows]).to(dev),
            old_logprobs=None if part_old[0] is None else torch.cat(part_old).to(dev),
            ref_logprobs=None if ref is None else torch.cat([ref[i] for i in rows]).to(dev),
            cu_seqlens=cu, **loss_options)
        tokens = sum(lengths[i] for i in rows)
        share = tokens / tokens_total if token_mean else len(rows) / rows_total
        (sums.replay if replay_part else sums.original).add(tokens, metrics)
        total = loss * share if total is None else total + loss * share
    return total


def row_logprobs(rows, *, replay_old_logprobs: str, mini_batches: int,
                 score_policy: Callable, score_reference: Callable | None):
    """log pi_old and log pi_ref of each row, as the module docstring says.

    ``rows`` have ``is_replay``, ``rollout_logprobs`` (untruncated, of the response under the
    original instruction), ``source`` (a replay's original row) and ``ref`` (filled here, unless
    already set: the trainer scores the originals under the reference while their verdicts are
    being computed, since those log-probs do not depend on rewards); ``score_policy`` /
    ``score_reference`` map rows to no-grad log-prob tensors under their own prompts. Returns ``(old, ref, kl_old)``: ``old[i]`` for the loss (None: on-policy), ``ref[i]``
    (or ``ref`` None without a reference) and ``kl_old[i]``, pi_old for the KL penalty.
    """
    replay_idx = [i for i, r in enumerate(rows) if r.is_replay]
    kl_old = [r.rollout_logprobs for r in rows]
    if replay_old_logprobs == "rewritten" and replay_idx:
        for i, lp in zip(replay_idx, score_policy([rows[i] for i in replay_idx])):
            kl_old[i] = lp
    old = [lp if (r.is_replay or mini_batches > 1) else None for r, lp in zip(rows, kl_old)]
    if score_reference is None:
        return old, None, kl_old
    scored = [r for r in rows
              if r.ref is None and (not r.is_replay or replay_old_logprobs == "rewritten")]
    if scored:
        for r, lp in zip(scored, score_reference(scored)):
            r.ref = lp
    return old, [r.source.ref if r.ref is None else r.ref for r in rows], kl_old


def saved_reference(checkpoint: str) -> str | None:
    """The reference model recorded in a hirfast checkpoint directory (None if not recorded)."""
    path = os.path.join(checkpoint, REFERENCE_FILE)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)["reference"]


def reference_source(model: str, ref_model: str | None, state_file: str) -> str:
    """Which model is the reference: ``ref_model``, else the initial model ``model``. When
    ``model`` is a hirfast checkpoint (it holds ``state_file``), the initial model is the reference
    of the run that wrote it, never the checkpoint itself."""
    if ref_model:
        return ref_model
    if model and os.path.isfile(os.path.join(model, state_file)):
        saved = saved_reference(model)
        if saved is None:
            raise ValueError(f"model {model} is a hirfast checkpoint that does not record its run's "
                             "reference model: set ref_model (e.g. to the model that run started "
                             "from)")
        log.warning("model %s is a hirfast checkpoint: the reference is its run's, %s (set "
                    "ref_model to choose another)", model, saved)
        return saved
    return model
