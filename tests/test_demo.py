"""The demo: its world requires reading, its report names a winner only on evidence, and the quick
setting runs end to end and reproduces its summary exactly."""
import argparse
import json
import random
import statistics

import pytest

from hirfast import verify
from hirfast.demo import (ARMS, QUICK, add_arguments, ceilings, derangement, main, paired_interval,
                          report, summarize)
from hirfast.demo_model import (DEMO_IDS, END_PHRASES, KEYWORDS, build_tokenizer, chat_prompt_ids,
                                demo_tasks, oracle_response, sample_response, value_token_ids)


def _ila(texts, tasks):
    sats = verify.check(texts, [t.instruction_ids for t in tasks], [t.kwargs for t in tasks],
                        [t.instruction() for t in tasks])
    return statistics.fmean(all(s) for s in sats)


def test_tasks_carry_exactly_three_constraints_of_the_demo_types():
    tasks = demo_tasks(200, seed=4)
    assert all(len(t.constraints) == 3 for t in tasks)
    assert {c.instruction_id for t in tasks for c in t.constraints} == set(DEMO_IDS)
    for t in tasks:  # a word to include and a word to avoid are never the same word
        words = [w for c in t.constraints for k in ("keywords", "forbidden_words") for w in c.kwargs.get(k, [])]
        assert len(words) == len(set(words))
    mixed = demo_tasks(200, seed=4, constraints=(1, 3))
    assert {len(t.constraints) for t in mixed} == {1, 2, 3}


def test_not_reading_is_capped_and_the_oracle_meets_every_task():
    heldout = demo_tasks(256, seed=10_000)
    c = ceilings(heldout)
    assert c["constant_ila"] <= 0.10
    assert c["oracle_ila"] == 1.0
    # The ceiling is a real maximum: a few hand-made answers do no better.
    rng = random.Random(0)
    for answer in (oracle_response(rng, heldout[0]), "* a and b\nThe castle sees the road. Any other questions?"):
        assert _ila([answer] * len(heldout), heldout) <= c["constant_ila"]


def _own_and_shuffled_cla(answers, tasks):
    perm = derangement(len(tasks))
    shuffled = [tasks[p] for p in perm]
    own = verify.check(answers, [t.instruction_ids for t in tasks], [t.kwargs for t in tasks])
    other = verify.check(answers, [t.instruction_ids for t in shuffled], [t.kwargs for t in shuffled])
    return (statistics.fmean(x for s in own for x in s), statistics.fmean(x for s in other for x in s))


def test_warm_answers_depend_on_the_instruction_only_as_much_as_follow_prob_says():
    tasks = demo_tasks(400, seed=5)
    rng = random.Random(1)
    own, shuffled = _own_and_shuffled_cla([sample_response(rng, t, 0.4) for t in tasks], tasks)
    assert own - shuffled > 0.15  # reading pays in the warm-start data
    # follow_prob 0: answers ignore their instruction, so it makes no difference whose it is.
    own, shuffled = _own_and_shuffled_cla([sample_response(rng, t, 0.0) for t in tasks], tasks)
    assert abs(own - shuffled) < 0.05


def test_a_constraint_value_is_the_same_token_in_the_instruction_and_the_answer():
    tasks = demo_tasks(100, seed=6)
    rng = random.Random(2)
    answers = [oracle_response(rng, t) for t in tasks]
    tok = build_tokenizer(answers + [t.instruction() for t in tasks] + ["<|user|>\n<|end|>\n<|assistant|>\n"])
    for value in KEYWORDS + END_PHRASES:
        ids = value_token_ids(tok, value)
        assert tok.unk_token_id not in ids
        for task, answer in zip(tasks, answers):
            prompt = chat_prompt_ids(tok, task.instruction())
            answer_ids = tok(answer, add_special_tokens=False)["input_ids"]
            for where, seq in (("instruction", prompt), ("answer", answer_ids)):
                if f" {value}" in (task.instruction() if where == "instruction" else answer):
                    assert any(seq[i:i + len(ids)] == ids for i in range(len(seq))), (value, where)
    # Exact decoding: what the checker reads is what was encoded.
    for answer in answers:
        assert tok.decode(tok(answer, add_special_tokens=False)["input_ids"]) == answer


def test_derangement_has_no_fixed_point():
    for n in (2, 3, 12, 256):
        perm = derangement(n)
        assert sorted(perm) == list(range(n)) and all(i != p for i, p in enumerate(perm))


def test_paired_interval_matches_a_hand_computation():
    mean, low, high = paired_interval([1.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 0.0])
    # differences 1, 0, 0, 1: mean 0.5, sample sd 0.57735, half-width 1.96 * 0.57735 / 2
    assert mean == 0.5
    assert high - mean == pytest.approx(1.96 * 0.5773502691896257 / 2)
    assert mean - low == pytest.approx(high - mean)


def _result(arm, seed, own, shuffled, tokens=100):
    ev = {"own_ila": own, "own_cla": own, "shuffled_ila": shuffled, "shuffled_cla": shuffled}
    return {"arm": arm, "seed": seed, "curve": [[0, 0.1, 0.3], [10, own[0], 0.5]],
            "train_tokens": tokens, "sampled": ev, "greedy": ev}


def _summary(hir_own, base_own, n_seeds=1):
    shuffled = [0.05] * len(hir_own)
    results = [_result(arm, s, own, shuffled) for s in range(n_seeds)
               for arm, own in (("hir", hir_own), ("baseline", base_own))]
    return summarize(results, list(range(n_seeds)), 20, {"constant_ila": 0.09, "oracle_ila": 1.0})


def test_report_names_hir_only_when_the_interval_excludes_zero():
    many = 50
    win = report(_summary([1.0] * many, [0.0] * (many - 5) + [1.0] * 5))
    assert "verdict: HiR wins" in win
    tie = report(_summary([1.0, 0.0] * many, [0.0, 1.0] * many))
    assert "verdict: no winner" in tie and "includes 0" in tie
    loss = report(_summary([0.0] * many, [1.0] * many))
    assert "the baseline wins" in loss and "does NOT help" in loss


def test_summary_holds_the_control_and_training_tokens():
    s = _summary([0.5, 0.25], [0.25, 0.25], n_seeds=2)
    hir = s["arms"]["hir"]
    assert hir["sampled_own_ila"] == [0.375, 0.375]
    assert hir["sampled_shuffled_ila"] == [0.05, 0.05]
    assert hir["train_tokens"] == [100, 100]
    mean, low, high = s["comparison"]["sampled"]["hir_own_minus_shuffled_ila"]
    assert mean == pytest.approx(0.325)
    assert s["comparison"]["sampled"]["hir_minus_baseline_own_ila"][0] == pytest.approx(0.125)


@pytest.mark.slow
def test_quick_demo_runs_end_to_end_and_reproduces_its_summary(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    summaries = []
    for run in ("a", "b"):
        out = tmp_path / run
        # Two workers: the warm start runs data parallel and the runs in a pool, as `make demo`.
        assert main(parser.parse_args(["--quick", "--seeds", "2", "--workers", "2",
                                       "--out", str(out)])) == 0
        summaries.append((out / "summary.json").read_text())
        assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        for arm in ARMS:
            assert (out / "runs" / f"{arm}-seed1" / "metrics.jsonl").exists()
    assert summaries[0] == summaries[1]  # the same command writes the same summary.json
    summary = json.loads(summaries[0])
    assert summary["seeds"] == [0, 1]
    assert summary["rollouts_per_arm"] == QUICK.rl_steps * QUICK.tasks_per_step * QUICK.rollouts_per_task
    for arm in ARMS:
        a = summary["arms"][arm]
        assert len(a["sampled_own_ila"]) == len(a["greedy_shuffled_ila"]) == 2
        assert all(0 <= x <= 1 for x in a["sampled_own_ila"] + a["sampled_shuffled_ila"])
        assert all(t > 0 for t in a["train_tokens"])
        assert [p[0] for p in a["curve"]] == [0, 12, 24]
    # Both arms start from the same warm start and are evaluated with the same seeds.
    assert summary["arms"]["hir"]["curve"][0] == summary["arms"]["baseline"]["curve"][0]
    printed = capsys.readouterr().out
    for text in ("best constant answer", "own - shuffled CLA", "shuffled ILA", "verdict:",
                 "warm start on 2 processes"):
        assert text in printed


def test_data_parallel_warm_start_takes_the_steps_one_process_takes(tmp_path):
    """Two processes, each computing half of every batch and all-reducing the gradient, end where
    one process computing the whole batch ends (up to the order of float additions), and their
    losses are the one process's."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from dataclasses import replace

    import torch
    from transformers import AutoModelForCausalLM

    from hirfast.demo import _warm_rank
    from hirfast.demo_model import build_model

    settings = replace(QUICK, warm_steps=6, warm_batch=5)  # odd: the ranks get 3 and 2 rows
    tasks = demo_tasks(40, seed=8, constraints=(1, 3))
    rng = random.Random(2)
    pairs = [(t.instruction(), sample_response(rng, t, 0.5)) for t in tasks]
    tokenizer = build_tokenizer([a for _, a in pairs] + [
        f"<|user|>\n{t.instruction()}<|end|>\n<|assistant|>\n" for t in tasks])
    paths = {}
    for name in ("one", "two"):
        paths[name] = str(tmp_path / name)
        build_model(tokenizer, seed=0, hidden_size=16, layers=1).save_pretrained(paths[name])
        tokenizer.save_pretrained(paths[name])
    job = {"pairs": pairs, "settings": settings}
    one = _warm_rank(dict(job, path=paths["one"], world=1, rank=0))
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_warm_rank, dict(job, path=paths["two"], world=2, rank=r,
                                                rendezvous=str(tmp_path / "rendezvous")))
                   for r in range(2)]
        two, other = [f.result() for f in futures]
    assert other is None  # only rank 0 reports and saves
    assert len(one) == len(two) == 6
    assert two == pytest.approx(one, rel=1e-5)
    initial = build_model(tokenizer, seed=0, hidden_size=16, layers=1).state_dict()
    a = AutoModelForCausalLM.from_pretrained(paths["one"]).state_dict()
    b = AutoModelForCausalLM.from_pretrained(paths["two"]).state_dict()
    for name, value in a.items():
        assert not torch.equal(value, initial[name]) or "norm" in name  # it trained
        torch.testing.assert_close(b[name], value, rtol=1e-4, atol=1e-6)
