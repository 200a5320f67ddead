"""Replay: the lambda schedule, the two scores, greedy selection and rewriting, on hand-built cases."""
import math

import pytest

from hirfast.constraints import Constraint, Task
from hirfast.replay import (build_replays, integrity, jaccard_diversity, replay_lambda,
                            select_replays)

T, F = True, False


def test_lambda_schedule_is_the_papers():
    assert replay_lambda(0) == 2.0
    assert replay_lambda(1) == pytest.approx(2.1)
    assert replay_lambda(10) == pytest.approx(2.0 * 1.05 ** 10)
    assert replay_lambda(3, lambda0=0.5, eta=0.1) == pytest.approx(0.5 * 1.331)


def test_integrity_and_diversity_by_hand():
    assert integrity([T, F, T, F]) == 0.5
    assert jaccard_diversity([T, T, F], []) == 1.0
    # {0,1} vs {1,2}: |{1}| / |{0,1,2}| = 1/3
    assert jaccard_diversity([T, T, F], [[F, T, T]]) == pytest.approx(2 / 3)
    # the most similar selected response counts: {0,1} vs {0,1} -> 1
    assert jaccard_diversity([T, T, F], [[F, T, T], [T, T, F]]) == 0.0


def test_candidates_exclude_successes_and_total_failures():
    sats = [[T, T, T], [F, F, F], [T, F, F]]
    assert select_replays(sats, k=3, lam=2.0) == [2]
    assert select_replays([[T, T], [F, F]], k=2, lam=2.0) == []


def test_k_bounds_the_picks_and_ties_go_to_the_earlier_response():
    sats = [[T, F, F]] * 4
    assert select_replays(sats, k=2, lam=2.0) == [0, 1]
    assert select_replays(sats, k=0, lam=2.0) == []


def test_diversity_leads_early_and_integrity_late():
    # r0 meets {0,1,2} (F_int 0.75), r1 meets {0,1} (0.5), r2 meets {3} (0.25).
    sats = [[T, T, T, F], [T, T, F, F], [F, F, F, T]]
    # First pick: F_div = 1 for all, so the most complete wins (r0).
    # Second pick, small lambda: r1 scores (1 - 2/3) + 0.1*0.5 = 0.383; r2 scores 1 + 0.1*0.25.
    assert select_replays(sats, k=2, lam=0.1) == [0, 2]
    # Large lambda: r1 scores 1/3 + 10*0.5 = 5.33 > r2's 1 + 2.5.
    assert select_replays(sats, k=2, lam=10.0) == [0, 1]


def test_selection_scores_are_pluggable():
    sats = [[T, F, F], [T, T, F]]
    fewest = lambda sat: -sum(sat)  # noqa: E731 - prefer the least complete
    assert select_replays(sats, k=1, lam=1.0, integrity_fn=fewest) == [0]
    no_diversity = lambda sat, chosen: 0.0  # noqa: E731
    assert select_replays(sats, k=2, lam=1.0, diversity_fn=no_diversity) == [1, 0]


def _task(key, n, prompt=None):
    cons = tuple(Constraint.from_spec("length_constraints:number_words",
                                      {"relation": "at least", "num_words": 10 * (j + 1)})
                 for j in range(n))
    return Task(f"Query {key}.", cons, key=key, prompt=prompt)


def test_build_replays_rewrites_to_the_met_constraints():
    tasks = [_task("a", 3), _task("b", 2), _task("c", 2, prompt="as given")]
    sats = [
        [[T, F, T], [F, F, F], [T, T, T]],
        [[F, T], [T, F]],
        [[T, F], [F, T]],  # not rewritable: never replayed
    ]
    replays = build_replays(tasks, sats, k=2, lam=2.0)
    assert [(r.task_index, r.response) for r in replays] == [(0, 0), (1, 0), (1, 1)]
    first = replays[0].task
    assert first.constraints == (tasks[0].constraints[0], tasks[0].constraints[2])
    assert first.instruction() == ("Query a.\nAnswer with at least 10 words. "
                                   "Answer with at least 30 words.")
    assert replays[1].task.constraints == (tasks[1].constraints[1],)
    assert math.isclose(integrity(sats[0][0]), 2 / 3)
