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


# --- the published selection (batch-level, lambda_s * CLA + H) ------------------------------------

from hirfast.replay import Candidate, build_published_replays, recheck, select_published  # noqa: E402


def _picks(picked):
    return [(c.task_index, c.response) for c in picked]


def test_published_order_moves_from_entropy_to_integrity_as_lambda_grows():
    # CLA 2/3 with entropy 0.2 (score 2/3 lam + 0.2) against CLA 1/3 with entropy 1.0 (1/3 lam + 1).
    # They tie at lam = 2.4; below it entropy wins, above it integrity does.
    cands = [Candidate(0, 0, (T, T, F), 0.2), Candidate(0, 1, (T, F, F), 1.0)]
    assert _picks(select_published(cands, lam=1.0, num_replay=1)[0]) == [(0, 1)]
    assert _picks(select_published(cands, lam=2.0, num_replay=1)[0]) == [(0, 1)]
    assert _picks(select_published(cands, lam=3.0, num_replay=1)[0]) == [(0, 0)]
    assert _picks(select_published(cands, lam=2.0 * 1.05 ** 50, num_replay=2)[0]) == [(0, 0), (0, 1)]
    # exactly at the tie the earlier response wins
    assert _picks(select_published(cands, lam=2.4, num_replay=1)[0]) == [(0, 0)]


def test_published_candidates_are_partial_failures_only():
    cands = [Candidate(0, 0, (T, T), 9.0),                # full success: never
             Candidate(0, 1, (F, F), 9.0),                # met nothing: never
             Candidate(0, 2, (T, F), 0.1),
             Candidate(0, 3, (T, F), 5.0, empty=True),    # no token: never
             Candidate(1, 0, (F, T, T), 0.3, truncated=True)]
    picked, stats = select_published(cands, lam=2.0, num_replay=10)
    assert _picks(picked) == [(1, 0), (0, 2)] and stats.candidates == 2
    assert stats.truncated_excluded == 0 and stats.selected == 2
    picked, stats = select_published(cands, lam=2.0, num_replay=10, replay_truncated=False)
    assert _picks(picked) == [(0, 2)] and stats.candidates == 1 and stats.truncated_excluded == 1


def test_published_selects_across_the_batch_not_per_task():
    # Task 0 has the three best partial failures; task 1 one weak one, task 2 none.
    cands = [Candidate(0, i, (T, T, F), 0.5 + 0.1 * i) for i in range(3)] + \
            [Candidate(1, 0, (T, F, F), 0.0), Candidate(1, 1, (F, F, F), 3.0),
             Candidate(2, 0, (T, T), 3.0)]
    picked, _ = select_published(cands, lam=2.0, num_replay=3)
    assert _picks(picked) == [(0, 2), (0, 1), (0, 0)]  # all three from task 0, in score order
    picked, _ = select_published(cands, lam=2.0, num_replay=3, max_per_task=2)
    assert _picks(picked) == [(0, 2), (0, 1), (1, 0)]  # the cap passes the third pick on
    assert select_published(cands, lam=2.0, num_replay=0)[0] == []
    # a NaN entropy ranks last instead of anywhere
    odd = [Candidate(0, 0, (T, F), float("nan")), Candidate(0, 1, (T, F), 0.0)]
    assert _picks(select_published(odd, lam=2.0, num_replay=1)[0]) == [(0, 1)]


def test_build_published_replays_rewrites_and_skips_unrewritable_tasks():
    tasks = [_task("a", 3), _task("c", 2, prompt="as given")]
    cands = [Candidate(0, 1, (T, F, T), 0.1), Candidate(1, 0, (T, F), 9.0)]
    replays, stats = build_published_replays(tasks, cands, lam=2.0, num_replay=5)
    assert [(r.task_index, r.response) for r in replays] == [(0, 1)] and stats.candidates == 1
    assert replays[0].task.instruction() == ("Query a.\nAnswer with at least 10 words. "
                                             "Answer with at least 30 words.")


def test_recheck_drops_replays_that_fail_under_the_rewritten_prompt():
    from hirfast.verify import check

    # IFBench repeat:repeat_span without prompt_to_repeat repeats words 0..4 of the row's prompt.
    # x = "Say hi.\n<c1>. <c0>" ; the response repeats "say hi. answer in" and is not in capitals,
    # so it meets c0 and fails c1; x' = "Say hi.\n<c0>" starts "say hi. repeat the": no longer met.
    c0 = Constraint.from_spec("repeat:repeat_span", {"n_start": 0, "n_end": 4},
                              text="Repeat the first four words of this request")
    c1 = Constraint.from_spec("change_case:english_capital", {},
                              text="Answer in capital letters only")
    c2 = Constraint.from_spec("punctuation:no_comma", {}, text="Use no commas")
    task = Task("Say hi.", (c1, c0), key="r")
    response = "say hi. answer in"
    sat = check([response], [task.instruction_ids], [task.kwargs], prompts=[task.instruction()])[0]
    assert sat == [False, True]
    steady = Task("Say hi.", (c1, c2), key="s")  # no prompt-dependent check: stays met
    from hirfast.replay import Replay
    replays = [Replay(0, 0, task.rewritten(sat)), Replay(1, 0, steady.rewritten([False, True]))]
    kept, rejected = recheck(replays, [response, response], check)
    assert kept == [replays[1]] and rejected == [replays[0]]
    assert recheck([], [], check) == ([], [])


def test_replay_batch_selects_rewrites_and_rechecks_a_hand_built_batch():
    from types import SimpleNamespace

    import torch

    from hirfast.replay import replay_batch

    def completion(entropies, reason="stop"):
        return SimpleNamespace(token_ids=[1] * len(entropies), finish_reason=reason,
                               entropies=torch.tensor(entropies))

    tasks = [_task("a", 2), _task("b", 2)]
    groups = [[completion([0.1, 0.3]), completion([2.0]), completion([0.5], "length")],
              [completion([1.0, 1.0]), SimpleNamespace(token_ids=[], finish_reason="stop",
                                                        entropies=torch.zeros(0)), completion([0.0])]]
    sats = [[[T, F], [F, T], [T, F]], [[T, F], [T, F], [T, T]]]
    texts = ["a0", "a1", "a2", "b0", "b1", "b2"]
    # scores at lam 2: a0 1.2, a1 3.0, a2 (truncated) 1.5, b0 2.0; b1 is empty, b2 a success
    replays, info = replay_batch(tasks, groups, texts, sats, lam=2.0, num_replay=3)
    assert [(r.task_index, r.response) for r in replays] == [(0, 1), (1, 0), (0, 2)]
    assert info == {"replay_candidates": 4, "replay_truncated_excluded": 0, "replay_rejected": 0}
    assert replays[0].task.constraints == (tasks[0].constraints[1],)

    seen = []

    def rejects_a1(responses, ids, kwargs, prompts):
        seen.extend(zip(responses, prompts))
        return [[r != "a1"] * len(i) for r, i in zip(responses, ids)]

    replays, info = replay_batch(tasks, groups, texts, sats, lam=2.0, num_replay=3,
                                 replay_truncated=False, verifier=rejects_a1)
    assert [(r.task_index, r.response) for r in replays] == [(1, 0), (0, 0)]
    assert info == {"replay_candidates": 3, "replay_truncated_excluded": 1, "replay_rejected": 1}
    # the re-check sees each replay's own text under its rewritten instruction
    assert seen[0] == ("a1", "Query a.\nAnswer with at least 20 words.")
    replays, info = replay_batch(tasks, groups, texts, sats, lam=2.0, selection="jaccard", k=1,
                                 replay_truncated=False)
    assert [(r.task_index, r.response) for r in replays] == [(0, 0), (1, 0)]
    assert info["replay_truncated_excluded"] == 1 and info["replay_candidates"] == 3
    with pytest.raises(ValueError, match="unknown replay selection"):
        replay_batch(tasks, groups, texts, sats, lam=2.0, selection="best")
