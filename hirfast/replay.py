"""Hindsight instruction Replay: select failed responses, rewrite their instructions, reward 1.

Two selections (``HIR_METHOD.md``), both ending in the same rewrite ``x' = render(q, {c_j :
sat_j(y)})`` (order kept; the replayed sample ``(x', y)`` has reward 1):

- ``"published"`` (:func:`select_published`, the authors' code, the trainer's default): over the
  **whole batch**, candidates are the responses with ``0 < CLA(y) < 1``; each scores
  ``lambda_s * CLA(y) + H(y)``, with ``H(y)`` the token-mean entropy of the sampling policy over
  ``y``'s tokens and ``lambda_s = lambda_0 (1 + eta)^s``; the top ``num_replay`` are replayed
  (optionally at most ``max_per_task`` of one task). Ties go to the earlier response (task order,
  then response order), so selection is deterministic.
- ``"jaccard"`` (:func:`select_replays`, hirfast's variant from before the code was public): per
  task, greedy top-``k`` by ``F_div(y) + lambda_s * F_int(y)`` with ``F_int = CLA`` and ``F_div(y) =
  1 - max Jaccard(sat(y), sat(y'))`` over the responses of the task already picked (1 for the
  first); both scores are pluggable.

:func:`recheck` verifies replays again under ``x'`` (a prompt-dependent checker such as IFBench's
``repeat:*`` can fail there); the trainer drops those that fail.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from .constraints import Task

__all__ = ["replay_lambda", "integrity", "jaccard_diversity", "select_replays", "Replay",
           "build_replays", "Candidate", "select_published", "build_published_replays",
           "SelectionStats", "recheck", "replay_batch", "REPLAY_COUNTS"]

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


# --- the published selection --------------------------------------------------------------------

@dataclass(frozen=True)
class Candidate:
    """What the published selection needs to know of one response of the batch.

    ``sat``: one bool per constraint of its task; ``entropy``: the token-mean entropy of the
    sampling policy over its tokens; ``truncated``: it was stopped by the length limit; ``empty``:
    it has no token (it can carry no reward and is never a candidate).
    """

    task_index: int
    response: int
    sat: tuple
    entropy: float
    truncated: bool = False
    empty: bool = False


@dataclass
class SelectionStats:
    """Counts of one batch's selection (logged by the trainer each step)."""

    candidates: int = 0          # responses with 0 < CLA < 1 that could be replayed
    truncated_excluded: int = 0  # partial failures left out because they hit the length limit
    selected: int = 0


def select_published(candidates: Sequence[Candidate], *, lam: float, num_replay: int,
                     max_per_task: int = 0, replay_truncated: bool = True
                     ) -> tuple[list[Candidate], SelectionStats]:
    """The top ``num_replay`` of the batch by ``lam * CLA(y) + H(y)``, among ``0 < CLA(y) < 1``.

    Args:
        candidates: every response of the batch, in (task, response) order.
        lam: ``lambda_s`` of this step (see :func:`replay_lambda`).
        num_replay: how many to replay from the whole batch (0: none).
        max_per_task: the most picked from one task (0: no cap, as published).
        replay_truncated: when false, responses stopped by the length limit are not candidates
            (counted in ``truncated_excluded``); the published code keeps them.

    Returns the picks in score order (best first) and the counts.
    """
    stats = SelectionStats()
    pool = []
    for order, c in enumerate(candidates):
        if c.empty or not any(c.sat) or all(c.sat):
            continue
        if c.truncated and not replay_truncated:
            stats.truncated_excluded += 1
            continue
        score = lam * integrity(c.sat) + float(c.entropy)
        if score != score:  # NaN entropy (a broken rollout) ranks last rather than anywhere
            score = float("-inf")
        pool.append((-score, order, c))
    stats.candidates = len(pool)
    pool.sort(key=lambda item: (item[0], item[1]))
    picked: list[Candidate] = []
    per_task: dict[int, int] = {}
    for _, _, c in pool:
        if len(picked) >= num_replay:
            break
        if max_per_task and per_task.get(c.task_index, 0) >= max_per_task:
            continue
        per_task[c.task_index] = per_task.get(c.task_index, 0) + 1
        picked.append(c)
    stats.selected = len(picked)
    return picked, stats


def build_published_replays(tasks: Sequence[Task], candidates: Sequence[Candidate], *, lam: float,
                            num_replay: int, max_per_task: int = 0, replay_truncated: bool = True
                            ) -> tuple[list[Replay], SelectionStats]:
    """:func:`select_published` over the responses of rewritable tasks, then the rewrite."""
    usable = [c for c in candidates if tasks[c.task_index].rewritable]
    picked, stats = select_published(usable, lam=lam, num_replay=num_replay,
                                     max_per_task=max_per_task, replay_truncated=replay_truncated)
    return [Replay(c.task_index, c.response, tasks[c.task_index].rewritten(c.sat))
            for c in picked], stats


def recheck(replays: Sequence[Replay], texts: Sequence[str], verifier: Callable
            ) -> tuple[list[Replay], list[Replay]]:
    """Verify each replay's response ``texts[i]`` against its rewritten instruction ``x'``.

    ``verifier(responses, instruction_ids, kwargs, prompts)`` returns sat lists (as
    :func:`hirfast.verify.check`). Returns ``(kept, rejected)``: a replay is kept only when every
    constraint of ``x'`` holds under ``x'``.
    """
    if not replays:
        return [], []
    sats = verifier(list(texts), [r.task.instruction_ids for r in replays],
                    [r.task.kwargs for r in replays], [r.task.instruction() for r in replays])
    kept, rejected = [], []
    for r, sat in zip(replays, sats):
        (kept if len(sat) == len(r.task.constraints) and all(sat) else rejected).append(r)
    return kept, rejected


# The counts replay_batch returns (and the trainer logs each step).
REPLAY_COUNTS = ("replay_candidates", "replay_truncated_excluded", "replay_rejected")


def _mean_entropy(completion) -> float:
    """H(y): the token-mean entropy the rollout recorded over the response (NaN when empty)."""
    if not completion.token_ids:
        return float("nan")
    if completion.entropies is None:
        raise ValueError("replay_selection = published needs the rollout's per-token entropies")
    return float(completion.entropies.mean())


def replay_batch(tasks: Sequence[Task], groups, texts: Sequence[str], sats, *, lam: float,
                 selection: str = "published", num_replay: int = 0, k: int = 2,
                 max_per_task: int = 0, replay_truncated: bool = True,
                 verifier: Callable | None = None, integrity_fn: IntegrityFn = integrity,
                 diversity_fn: DiversityFn = jaccard_diversity) -> tuple[list[Replay], dict]:
    """One step's replays: select (``selection``), rewrite, and re-check under ``x'`` when a
    ``verifier`` is given (failures dropped).

    ``groups[t][i]`` is the rollout's completion (``token_ids``, ``entropies``, ``finish_reason``)
    of response ``i`` of task ``t``, ``texts`` the decoded responses in the same order, flat, and
    ``sats[t][i]`` its sat. Returns the replays and the counts ``replay_candidates``,
    ``replay_truncated_excluded`` and ``replay_rejected``.
    """
    info = dict.fromkeys(REPLAY_COUNTS, 0)
    per_task = len(groups[0]) if len(groups) else 0
    if selection == "published":
        candidates = [Candidate(t, i, tuple(sat), _mean_entropy(c), c.finish_reason == "length",
                                not c.token_ids)
                      for t, (group, task_sats) in enumerate(zip(groups, sats))
                      for i, (c, sat) in enumerate(zip(group, task_sats))]
        replays, stats = build_published_replays(tasks, candidates, lam=lam, num_replay=num_replay,
                                                 max_per_task=max_per_task,
                                                 replay_truncated=replay_truncated)
        info["replay_candidates"] = stats.candidates
        info["replay_truncated_excluded"] = stats.truncated_excluded
    elif selection == "jaccard":
        usable = []
        for t, task_sats in enumerate(sats):
            usable.append([])
            for i, sat in enumerate(task_sats):
                c = groups[t][i]
                # A response with no token cannot carry a reward; it is never replayed.
                keep = bool(c.token_ids) and any(sat) and not all(sat) and tasks[t].rewritable
                if keep and c.finish_reason == "length" and not replay_truncated:
                    info["replay_truncated_excluded"] += 1
                    keep = False
                info["replay_candidates"] += keep
                usable[t].append(list(sat) if keep else [False] * len(sat))
        replays = build_replays(tasks, usable, k=k, lam=lam, integrity_fn=integrity_fn,
                                diversity_fn=diversity_fn)
    else:
        raise ValueError(f"unknown replay selection {selection!r}; expected published or jaccard")
    if verifier is not None and replays:
        replays, rejected = recheck(
            replays, [texts[r.task_index * per_task + r.response] for r in replays], verifier)
        info["replay_rejected"] = len(rejected)
    return replays, info
