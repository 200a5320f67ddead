"""``hirfast hir2023-compare``: HIR 2023 spends exactly an RL run's rollouts on the RL arms' tasks,
the report names a winner only on evidence, a warm start of another world is refused, and the
quick setting runs end to end: deterministic, the same rollouts in every arm, its RL arms the
demo's own, and a rerun of one arm reuses the others."""
import argparse
import json
from dataclasses import replace

import pytest

from hirfast import demo
from hirfast.data import TaskSampler
from hirfast.demo_model import build_model, build_tokenizer, demo_tasks
from hirfast.hir2023_compare import (ARMS, H23_FULL, H23_QUICK, Hir2023Settings, _check_warm_start,
                                     add_arguments, hir2023_plan, main, report, run_compare,
                                     summarize)


def test_hir2023_generates_as_many_responses_as_an_rl_run():
    # FULL: 120 steps x 8 tasks x 6 rollouts = 5,760 per RL run; 4 iterations of 240 tasks.
    assert hir2023_plan(demo.FULL, H23_FULL) == {"iterations": 4, "tasks_per_iteration": 240,
                                                 "rollouts_per_task": 6, "rollouts": 5760}
    # QUICK: 4 steps x 2 tasks x 3 rollouts = 24; 2 iterations of 4 tasks.
    assert hir2023_plan(demo.QUICK, H23_QUICK)["rollouts"] == 24
    assert hir2023_plan(demo.QUICK, H23_QUICK)["tasks_per_iteration"] == 4
    with pytest.raises(ValueError, match="do not split"):
        hir2023_plan(demo.FULL, Hir2023Settings(iterations=7))


def test_hir2023_trains_on_the_rl_arms_tasks_in_their_order():
    # The comparison relies on the trainer's sampler drawing one sequence whatever the batch
    # size: 120 batches of 8 and 4 batches of 240 from 50 tasks (many epochs) are the same tasks.
    tasks = demo_tasks(50, seed=3)
    rl, h23 = TaskSampler(tasks, seed=2), TaskSampler(tasks, seed=2)
    small = [t.key for _ in range(120) for t in rl.next_batch(8)]
    large = [t.key for _ in range(4) for t in h23.next_batch(240)]
    assert small == large and len(set(small)) == 50


def _result(arm, seed, own, shuffled, tokens=100, rollouts=24):
    ev = {"own_ila": own, "own_cla": own, "shuffled_ila": shuffled, "shuffled_cla": shuffled}
    return {"arm": arm, "seed": seed, "curve": [[0, 0.1, 0.3], [24, own[0], 0.5]],
            "train_tokens": tokens, "rollouts": rollouts, "sampled": ev, "greedy": ev}


def _summary(per_arm: dict, n_seeds=1):
    results = [_result(arm, s, own, [0.0] * len(own)) for s in range(n_seeds)
               for arm, own in per_arm.items()]
    return summarize(results, list(range(n_seeds)), 24, {}, {})


def test_report_names_a_winner_only_when_the_interval_excludes_zero():
    n = 50
    text = report(_summary({"hir2023": [1.0] * n, "hir": [0.0] * (n - 5) + [1.0] * 5,
                            "baseline": [1.0, 0.0] * (n // 2)}))
    assert "verdict vs HiR: HIR 2023 wins" in text and "excludes 0" in text
    assert "verdict vs REINFORCE++: HIR 2023 wins" in text
    text = report(_summary({"hir2023": [0.0] * n, "hir": [1.0] * n, "baseline": [0.0, 1.0] * (n // 2)}))
    assert "verdict vs HiR: HiR wins: HIR 2023's held-out own ILA is 1.000 below it" in text
    assert "verdict vs REINFORCE++: REINFORCE++ wins" in text
    text = report(_summary({"hir2023": [1.0, 0.0] * n, "hir": [0.0, 1.0] * n, "baseline": [1.0, 0.0] * n}))
    assert "verdict vs HiR: no winner" in text and "includes 0" in text
    assert "verdict vs REINFORCE++: no winner: HIR 2023 - REINFORCE++ own ILA +0.000" in text


def test_summary_pairs_tasks_and_keeps_the_control_and_the_rollouts():
    s = _summary({"hir2023": [0.5, 0.25], "hir": [0.25, 0.25], "baseline": [0.0, 0.5]}, n_seeds=2)
    assert list(s["arms"]) == list(ARMS)
    assert s["arms"]["hir2023"]["sampled_own_ila"] == [0.375, 0.375]
    assert s["arms"]["hir2023"]["rollouts"] == [24, 24]
    c = s["comparison"]["sampled"]
    # per-task differences: hir2023 - hir = [0.25, 0.0], hir2023 - baseline = [0.5, -0.25]
    assert c["hir2023_minus_hir_own_ila"][0] == pytest.approx(0.125)
    assert c["hir2023_minus_baseline_own_ila"][0] == pytest.approx(0.125)
    assert c["hir2023_minus_baseline_own_ila"][2] - 0.125 == pytest.approx(1.96 * 0.5303300858899106 / 2 ** 0.5)
    assert c["baseline_own_minus_shuffled_ila"][0] == pytest.approx(0.25)
    # Without HIR 2023 there is nothing to compare it with; the controls stay.
    s = _summary({"hir": [0.5], "baseline": [0.25]})
    assert list(s["arms"]) == ["hir", "baseline"]
    assert set(s["comparison"]["sampled"]) == {"hir_own_minus_shuffled_ila", "baseline_own_minus_shuffled_ila"}
    assert "verdict" not in report(s)


def test_a_warm_start_of_another_setting_is_refused(tmp_path):
    train, heldout, warm = demo._world(demo.QUICK)
    _, tok = demo.warm_data(demo.QUICK, train, heldout, warm)
    s = demo.QUICK
    good = tmp_path / "good"
    build_model(tok, seed=0, hidden_size=s.hidden_size, layers=s.layers,
                intermediate_size=s.intermediate_size).save_pretrained(good)
    tok.save_pretrained(good)
    _check_warm_start(str(good), s, tok)  # this world's: accepted
    with pytest.raises(RuntimeError, match="hidden/MLP/layers"):
        _check_warm_start(str(good), replace(s, hidden_size=64), tok)
    other_tok = build_tokenizer(["<|user|>\nWrite about the castle.<|end|>\n<|assistant|>\n"])
    with pytest.raises(RuntimeError, match="vocabulary"):
        _check_warm_start(str(good), s, other_tok)
    with pytest.raises(RuntimeError, match="not a saved model"):
        _check_warm_start(str(tmp_path / "missing"), s, tok)


def _args(*argv):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_bad_arguments_are_refused_before_any_work(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(_args("--quick", "--arms", "hir2023,ppo", "--out", str(out))) == 2
    assert "arms must be some of" in capsys.readouterr().err
    assert main(_args("--quick", "--hir2023-iterations", "3", "--out", str(out))) == 2
    assert "do not split" in capsys.readouterr().err
    assert main(_args("--quick", "--hir2023-label-smoothing", "1", "--out", str(out))) == 2
    assert not out.exists()


@pytest.mark.slow
def test_quick_comparison_is_deterministic_fair_and_the_demos(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(_args("--quick", "--seeds", "1", "--workers", "2", "--out", str(out))) == 0
    first = (out / "summary.json").read_text()
    printed = capsys.readouterr().out
    summary = json.loads(first)
    per_arm = demo.QUICK.rl_steps * demo.QUICK.tasks_per_step * demo.QUICK.rollouts_per_task
    assert summary["rollouts_per_arm"] == per_arm == 24
    for arm in ARMS:
        a = summary["arms"][arm]
        assert a["rollouts"] == [24]            # every arm generated the same number of responses
        assert a["train_tokens"][0] > 0
        assert all(0 <= x <= 1 for x in a["sampled_own_ila"] + a["greedy_shuffled_ila"])
        assert [p[0] for p in a["curve"]] == [0, 12, 24]
    # Every arm starts from the same warm start, evaluated with the same random numbers.
    assert len({json.dumps(summary["arms"][arm]["curve"][0]) for arm in ARMS}) == 1
    for text in ("warm start, held-out at T=1", "verdict vs HiR", "verdict vs REINFORCE++",
                 "own - shuffled"):
        assert text in printed

    # Rerunning only HIR 2023 reuses the RL arms' kept results and writes the same summary.
    assert main(_args("--quick", "--seeds", "1", "--workers", "2", "--arms", "hir2023",
                      "--out", str(out))) == 0
    assert "reused from" in capsys.readouterr().out
    assert (out / "summary.json").read_text() == first

    # The RL arms are hirfast demo's own runs: the demo with the same seed gives their numbers.
    demo_summary = demo.run_demo(str(tmp_path / "demo"), [0], demo.QUICK, workers=2, log=lambda *a: None)
    for arm in ("hir", "baseline"):
        mine = {k: v for k, v in summary["arms"][arm].items() if k != "rollouts"}
        assert mine == json.loads(json.dumps(demo_summary["arms"][arm]))
