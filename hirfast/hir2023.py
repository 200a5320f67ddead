"""HIR 2023 (Zhang et al., "The Wisdom of Hindsight Makes Language Models Better Instruction
Followers", arXiv 2302.05206): hindsight relabeling, sub-output sampling and the contrastive
instruction loss, for decoder-only models.

The pieces, as ``HIR_METHOD.md`` (section "HIR 2023") defines them; the iteration loop that uses
them is ``hirfast.hir2023_train``.

- **Relabeling** turns a sampled output ``y`` into a training sample with a *positive* instruction
  (one ``y`` satisfies) and a *negative* one (one it fails):
  answer tasks (BIG-Bench Hard): ``y`` matching the target keeps "Solve the question with correct
  answer.", a wrong ``y`` gets "... with wrong answer."; the other one is the negative.
  Constraint tasks: the positive is the instruction rewritten to the constraints ``y`` met, the
  negative the original instruction (none when ``y`` met every constraint).
- **Sub-output sampling** (answer tasks): a prefix ``y[:start]`` moves into the input, the span
  ``y[start:end]`` is the target. When a wrong output cut at ``end`` already reads as the target (or
  a piece of it, after normalization), positive and negative swap: what was generated so far is
  consistent with the correct answer. (HIR_METHOD.md says "the span alone"; the seed's code compares
  the output up to ``end``, prefix included, and so does this module.)
- **The loss** on one batch of samples, with ``eps`` = 0.2 and ``p± = exp(-mean token CE(y | x±))``:
  ``LS-CE_eps(y | x+) + (1-eps)(-log p+/(p+ + p-)) + eps(-log p-/(p+ + p-)) - c_H * H(y | x+)``
  ("two-way", the code), or with the contrast ``-log p+ / sum_j p_j`` over the batch's instructions
  (``"in-batch"``, the paper's Eq. 4). LS-CE and the entropy are means over the batch's target
  tokens; the contrast is a mean over the samples that have one.

Every token statistic comes from ``hirfast.ops.linear_logprobs`` on packed rows
(``hirfast.packing``), so no ``[tokens, vocab]`` logits are formed: label smoothing needs
``mean_v(-log p_v) = logsumexp(z) - mean_v(z)``, and ``mean_v(z) = h . mean_v(W_v)`` and
``logsumexp(z) = z_y - log p_y`` are dot products with ``h``.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from .constraints import Task, render
from .ops import linear_logprobs
from .packing import PackedBatch, response_hidden

__all__ = ["CORRECT_INSTRUCTION", "WRONG_INSTRUCTION", "AnswerTask", "Sample", "Example",
           "normalize_answer", "answers_match", "render_answer_prompt", "relabel_answer",
           "relabel_constraints", "sample_span", "sub_output", "whole_output", "packed_stats",
           "hir2023_loss", "CONTRASTS"]

CORRECT_INSTRUCTION = "Solve the question with correct answer."
WRONG_INSTRUCTION = "Solve the question with wrong answer."
CONTRASTS = ("two-way", "in-batch", "off")


# ---------------------------------------------------------------------------------------------
# Answer tasks

def normalize_answer(text: str) -> str:
    """The seed's comparison form: line breaks as spaces, then every space and dot removed,
    lower-cased (``"(A)."`` and ``" (a)"`` compare equal)."""
    return str(text).replace("\n", " ").replace(" ", "").replace(".", "").lower()


def answers_match(response: str, target: str) -> bool:
    """Exact match after normalization (the seed's evaluation)."""
    return normalize_answer(response) == normalize_answer(target)


def render_answer_prompt(instruction: str, question: str) -> str:
    """The user message of an answer task: the seed's FLAN-T5 encoder input,
    ``instruction + "\\n\\nQ: " + question + "\\nA:"``; the output is the assistant turn."""
    return f"{instruction}\n\nQ: {question}\nA:"


@dataclass(frozen=True)
class AnswerTask:
    """A question with one correct answer (a BIG-Bench Hard example)."""

    question: str
    target: str
    key: str = ""

    def instruction(self) -> str:
        """The prompt sampled from and evaluated with: the "correct answer" instruction."""
        return render_answer_prompt(CORRECT_INSTRUCTION, self.question)


# ---------------------------------------------------------------------------------------------
# Relabeled samples

@dataclass(frozen=True)
class Sample:
    """One sampled output with its hindsight instructions.

    kind: "answer" or "constraint".
    query: the question (answer tasks) or the task's query (constraint tasks).
    positive / negative: instructions as tuples of texts: ``(instruction,)`` for answer tasks,
        the constraint texts for constraint tasks; ``negative`` is None when there is none.
    response: the sampled token ids (the stop token included when one ended it).
    target, correct: answer tasks only.
    style: how constraint texts are joined to the query (``hirfast.constraints.render``).
    """

    kind: str
    query: str
    positive: tuple
    negative: tuple | None
    response: tuple
    target: str | None = None
    correct: bool | None = None
    style: str = "newline"
    key: str = ""

    def prompt(self, instruction: tuple) -> str:
        """The user message for ``instruction`` with this sample's query."""
        if self.kind == "answer":
            return render_answer_prompt(instruction[0], self.query)
        return render(self.query, instruction, style=self.style)


def relabel_answer(task: AnswerTask, response_ids: Sequence[int], response_text: str) -> Sample:
    """Correct output: positive "correct answer", negative "wrong answer"; a wrong one, the reverse."""
    correct = answers_match(response_text, task.target)
    pos, neg = (CORRECT_INSTRUCTION, WRONG_INSTRUCTION) if correct else (WRONG_INSTRUCTION, CORRECT_INSTRUCTION)
    return Sample("answer", task.question, (pos,), (neg,), tuple(response_ids), task.target,
                  correct, key=task.key)


def relabel_constraints(task: Task, sat: Sequence[bool], response_ids: Sequence[int]) -> Sample | None:
    """Positive: the instruction rewritten to the constraints met (order kept; the query alone when
    none was met); negative: the original instruction, or None when every constraint was met.
    None for a task whose query cannot be separated from its constraints (it cannot be rewritten)."""
    if not task.rewritable:
        return None
    if len(sat) != len(task.constraints):
        raise ValueError(f"task {task.key!r}: {len(sat)} verdicts for {len(task.constraints)} constraints")
    texts = tuple(c.text for c in task.constraints)
    met = tuple(t for t, ok in zip(texts, sat) if ok)
    negative = None if all(sat) else texts
    return Sample("constraint", task.query, met, negative, tuple(response_ids), style=task.style,
                  key=task.key)


# ---------------------------------------------------------------------------------------------
# Sub-output sampling

@dataclass(frozen=True)
class Example:
    """What one sample trains on: ``prompt(positive) + prefix -> target``, and the negative."""

    sample: Sample
    positive: tuple
    negative: tuple | None
    prefix: tuple
    target: tuple
    swapped: bool = False


def whole_output(sample: Sample) -> Example:
    return Example(sample, sample.positive, sample.negative, (), sample.response)


def sample_span(length: int, rng: random.Random) -> tuple[int, int]:
    """``(start, end)`` with ``0 <= start < end <= length``: ``y[:start]`` goes into the input and
    ``y[start:end]`` is the target. As the seed's sampler: an output of at most 3 tokens is kept
    whole; otherwise ``start`` is an even number up to ``length - 4`` and ``end - start`` is odd."""
    if length < 1:
        raise ValueError("an empty output has no span")
    if length <= 3:
        return 0, length
    start = 2 * rng.randrange((length - 4) // 2 + 1)
    end = start + 1 + 2 * rng.randrange((length - start - 1) // 2 + 1)
    return start, end


def sub_output(sample: Sample, rng: random.Random, decode: Callable[[Sequence[int]], str]) -> Example:
    """Sub-output sampling with the swap rule (answer tasks; other kinds train whole)."""
    if sample.kind != "answer" or not sample.response:
        return whole_output(sample)
    y = sample.response
    start, end = sample_span(len(y), rng)
    swapped = False
    if not sample.correct and end < len(y) and sample.negative is not None:
        cut = normalize_answer(decode(y[:end]))
        swapped = bool(cut) and cut in normalize_answer(sample.target)
    pos, neg = (sample.negative, sample.positive) if swapped else (sample.positive, sample.negative)
    return Example(sample, pos, neg, tuple(y[:start]), tuple(y[start:end]), swapped)


# ---------------------------------------------------------------------------------------------
# Token statistics and the loss

STAT_CE, STAT_SMOOTH, STAT_ENTROPY = 0, 1, 2


def packed_stats(model, batch: PackedBatch, head: torch.Tensor, *, autocast=None) -> torch.Tensor:
    """Per-row sums over the response tokens of one packed micro-batch: ``[rows, 3]`` fp32 of
    (cross-entropy, ``mean_v(-log p_v)`` (the label-smoothing term), entropy), in ``batch.rows``
    order. Differentiable under grad; never forms ``[tokens, vocab]`` logits."""
    import contextlib

    with autocast() if autocast else contextlib.nullcontext():
        hidden = response_hidden(model, batch)
    weight = head
    if hidden.dtype != head.dtype:
        weight = head.to(hidden.dtype)
    targets = batch.response_targets
    logprob, entropy = linear_logprobs(hidden, weight, targets, return_entropy=True)
    h32, w32 = hidden.float(), head.float()
    target_logit = (h32 * w32.index_select(0, targets)).sum(-1)
    mean_logit = h32 @ w32.mean(0)
    smooth = (target_logit - logprob) - mean_logit      # logsumexp(z) - mean_v(z)
    per_token = torch.stack([-logprob, smooth, entropy], dim=1)
    lengths = torch.tensor(batch.response_lengths, device=per_token.device)
    row_of = torch.repeat_interleave(torch.arange(len(lengths), device=per_token.device), lengths)
    out = per_token.new_zeros(len(lengths), 3)
    return out.index_add(0, row_of, per_token)


def hir2023_loss(pos: torch.Tensor, lengths: torch.Tensor, cand_ce: torch.Tensor,
                 cand_mask: torch.Tensor, *, contrast: str = "two-way", eps: float = 0.2,
                 entropy_coef: float = 0.001) -> tuple[torch.Tensor, dict]:
    """The HIR 2023 loss of one batch from per-sample token sums.

    pos: ``[B, 3]`` sums of (CE, smoothing term, entropy) of each target under its positive prompt.
    lengths: ``[B]`` target tokens of each sample.
    cand_ce: ``[B, K]`` CE sums of each target under its contrast candidates (two-way: column 0 is
        the negative; in-batch: the other instructions, then the negative).
    cand_mask: ``[B, K]`` bool, which candidates exist.
    Returns the scalar loss and its parts (floats).
    """
    if contrast not in CONTRASTS:
        raise ValueError(f"contrast = {contrast!r}: expected one of {CONTRASTS}")
    n = lengths.to(pos.dtype)
    tokens = n.sum().clamp(min=1)
    ls_ce = ((1 - eps) * pos[:, STAT_CE] + eps * pos[:, STAT_SMOOTH]).sum() / tokens
    entropy = pos[:, STAT_ENTROPY].sum() / tokens
    loss = ls_ce - entropy_coef * entropy
    has = cand_mask.any(dim=1) if cand_mask.numel() else torch.zeros_like(n, dtype=torch.bool)
    contrast_value = pos.new_zeros(())
    if contrast != "off" and bool(has.any()):
        score_pos = -pos[:, STAT_CE] / n                          # log p+ = -mean token CE
        score_cand = (-cand_ce / n[:, None]).masked_fill(~cand_mask, float("-inf"))
        logits = torch.cat([score_pos[:, None], score_cand], dim=1)[has]
        logp = torch.log_softmax(logits, dim=1)
        if contrast == "two-way":
            per_row = -(1 - eps) * logp[:, 0] - eps * logp[:, 1]
        else:
            per_row = -logp[:, 0]
        contrast_value = per_row.mean()
        loss = loss + contrast_value
    parts = {"loss": float(loss.detach()), "ls_ce": float(ls_ce.detach()),
             "contrast": float(contrast_value.detach()), "entropy": float(entropy.detach()),
             "contrast_rows": int(has.sum()) if contrast != "off" else 0}
    return loss, parts
