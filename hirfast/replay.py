"""Hindsight instruction Replay: select failed responses, rewrite their instructions, reward 1.

As ``HIR_METHOD.md`` defines it (the paper publishes the loop, k and the lambda schedule, not the
scoring formulas; these are hirfast's choices, and both scores are pluggable):

- candidates of a task: its responses that failed (not every constraint met) but met at least one;
  a response that met nothing is never replayed;
- greedy top-``k`` by ``F_div(y) + lambda_s * F_int(y)``, with ``lambda_s = lambda_0 (1 + eta)^s``;
  ``F_int(y) = |sat(y)| / n`` (integrity) and ``F_div(y) = 1 - max Jaccard(sat(y), sat(y'))`` over
  the responses already selected, 1 for the first pick (diversity of the replayed subsets). Early on
  diversity dominates; as lambda grows the most complete failures win. Ties go to the earlier
  response, so selection is deterministic;
- rewrite: ``x' = render(q, {c_j : sat_j(y)})`` keeping order; the replayed sample ``(x', y)`` has
  reward 1.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from .constraints import Task

__all__ = ["replay_lambda", "integrity", "jaccard_diversity", "select_replays", "Replay",
           "build_replays"]

# sat(y) of one response: one bool per constraint.
Sat = Sequence[bool]
IntegrityFn = Callable[[Sat], float]
DiversityFn = Callable[[Sat, Sequence[Sat]], float]


def replay_lambda(step: int, lambda0: float = 2.0, eta: float = 0.05) -> float:
    """``lambda_s = lambda_0 * (1 + eta) ** step`` (paper: lambda_0 = 2, eta = 0.05)."""
    return lambda0 * (1.0 + eta) ** step


def integrity(sat: Sat) -> float:
    """``F_int``: the share of constraints met."""
    return sum(map(bool, sat)) / len(sat) if len(sat) else 0.0


def _jaccard(a: Sat, b: Sat) -> float:
    inter = sum(1 for x, y in zip(a, b) if x and y)
    union = sum(1 for x, y in zip(a, b) if x or y)
    return inter / union if union else 1.0


def jaccard_diversity(sat: Sat, selected: Sequence[Sat]) -> float:
    """``F_div``: 1 minus the largest Jaccard similarity of the met-constraint sets to those
    already selected; 1 when nothing is selected yet."""
    if not selected:
        return 1.0
    return 1.0 - max(_jaccard(sat, s) for s in selected)


def select_replays(sats: Sequence[Sat], *, k: int, lam: float,
                   integrity_fn: IntegrityFn = integrity,
                   diversity_fn: DiversityFn = jaccard_diversity) -> list[int]:
    """Indices (in pick order) of up to ``k`` responses of one task to replay.

    Args:
        sats: ``sats[i][j]`` is whether response ``i`` met constraint ``j``.
        k: the most responses to pick.
        lam: the integrity weight ``lambda_s`` of this step (see :func:`replay_lambda`).
        integrity_fn, diversity_fn: the two scores (defaults: :func:`integrity`,
            :func:`jaccard_diversity`).
    """
    candidates = [i for i, s in enumerate(sats) if any(s) and not all(s)]
    chosen: list[int] = []
    while candidates and len(chosen) < k:
        picked_sats = [sats[c] for c in chosen]
        best, best_score = None, None
        for i in candidates:
            score = diversity_fn(sats[i], picked_sats) + lam * integrity_fn(sats[i])
            if best_score is None or score > best_score:
                best, best_score = i, score
        chosen.append(best)
        candidates.remove(best)
    return chosen


@dataclass(frozen=True)
class Replay:
    """One replayed sample: response ``response`` of task ``task_index``, under ``task``
    (the original rewritten to the constraints the response met), reward 1."""

    task_index: int
    response: int
    task: Task


def build_replays(tasks: Sequence[Task], sats: Sequence[Sequence[Sat]], *, k: int, lam: float,
                  integrity_fn: IntegrityFn = integrity,
                  diversity_fn: DiversityFn = jaccard_diversity) -> list[Replay]:
    """Select and rewrite across a batch: ``sats[t][i]`` is sat of response ``i`` of task ``t``.

    Tasks that cannot be rewritten (see :attr:`hirfast.constraints.Task.rewritable`) are skipped.
    """
    out = []
    for t, (task, task_sats) in enumerate(zip(tasks, sats)):
        if not task.rewritable:
            continue
        for i in select_replays(task_sats, k=k, lam=lam, integrity_fn=integrity_fn,
                                diversity_fn=diversity_fn):
            out.append(Replay(t, i, task.rewritten(task_sats[i])))
    return out
