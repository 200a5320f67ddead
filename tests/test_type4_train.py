"""Training on HIR-16K type4 rows on the CPU: [rule] criteria in the sandbox and [llm] criteria
judged by an OpenAI-compatible HTTP server started by the test (tests/judge_server.py; with a real
model: tests/test_judge_llama.py); judging overlapped with the reference's scoring, with results
identical to the blocking order; every HIR-16K type from one file."""
from __future__ import annotations

import json
import threading

import pytest
import torch

pytest.importorskip("openai")

from hirfast.config import TrainConfig  # noqa: E402
from hirfast.demo_model import build_model, build_tokenizer  # noqa: E402
from hirfast.trainer import HiRTrainer  # noqa: E402
from judge_server import JudgeServer  # noqa: E402

WORDS = "the ocean is blue and wide apple cheerful whales sing songs sea 3 { } \" : , . !".split()


@pytest.fixture
def type4_data(data_dir, tmp_path):
    src = data_dir / "hir16k" / "sample.jsonl"
    path = tmp_path / "type4.jsonl"
    with open(src, encoding="utf-8") as f, open(path, "w", encoding="utf-8") as out:
        for line in f:
            if json.loads(line)["source"] == "type4":
                out.write(line)
    return str(path)


def test_two_steps_on_type4_rows_against_a_local_judge(type4_data, tmp_path, caplog):
    torch.set_num_threads(1)
    with open(type4_data, encoding="utf-8") as f:
        prompts = [json.loads(line)["messages"][-1]["content"] for line in f]
    tokenizer = build_tokenizer(prompts + [" ".join(WORDS), "<|user|>\n<|end|>\n<|assistant|>\n"])
    with JudgeServer() as server:
        cfg = TrainConfig(model="tiny", data=type4_data, out=str(tmp_path / "run"), steps=2,
                          tasks_per_step=3, rollouts_per_task=3, max_new_tokens=8, lr=1e-3,
                          progress=False, seed=1, replay_k=1,
                          allow_dataset_code=True, sandbox_workers=2, sandbox_timeout_s=2.0,
                          judge_model="tiny-judge", judge_base_url=server.base_url,
                          judge_concurrency=4, judge_timeout_s=10.0)
        with caplog.at_level("INFO", logger="hirfast.data"):
            trainer = HiRTrainer(cfg, model=build_model(tokenizer, seed=0, hidden_size=32),
                                 tokenizer=tokenizer)
        try:
            assert "type4: 5 rows used (9 criteria), 0 skipped" in caplog.text
            history = trainer.train()
        finally:
            trainer.verifier.close()
        asked = server.requests
    assert [m["step"] for m in history] == [1, 2]
    last = history[-1]
    # Every [rule] criterion of every rollout went to the sandbox, every [llm] one to the judge.
    assert last["rule_calls"] > 0 and last["judge_criteria"] > 0
    assert last["judge_requests"] == asked > 0
    assert last["judge_requests"] + last.get("judge_cache_hits", 0) == last["judge_criteria"]
    assert last.get("rule_workers_replaced", 0) == 0 and "judge_errors" not in last
    for m in history:
        assert 0.0 <= m["cla"] <= 1.0 and m["loss"] == m["loss"]  # a number, not NaN
    with open(tmp_path / "run" / "metrics.jsonl", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    assert len(rows) == 2 and "judge_latency_mean_s" in rows[-1]
    assert (tmp_path / "run" / "judge_cache.sqlite").exists()


def _trainer(type4_data, out, server, **kw):
    """A tiny policy with a reference model (the KL term), on the type4 rows, judged by
    ``server``; the same seed and weights every time."""
    torch.set_num_threads(1)
    with open(type4_data, encoding="utf-8") as f:
        prompts = [json.loads(line)["messages"][-1]["content"] for line in f]
    tokenizer = build_tokenizer(prompts + [" ".join(WORDS), "<|user|>\n<|end|>\n<|assistant|>\n"])
    cfg = TrainConfig(model="tiny", data=type4_data, out=str(out), steps=2, tasks_per_step=4,
                      rollouts_per_task=4, max_new_tokens=8, lr=1e-3, progress=False, seed=3,
                      kl_loss_coef=0.05, allow_dataset_code=True, sandbox_workers=1,
                      sandbox_timeout_s=5.0, judge_model="tiny-judge",
                      judge_base_url=server.base_url, judge_concurrency=4,
                      judge_timeout_s=60.0, **kw)
    return HiRTrainer(cfg, model=build_model(tokenizer, seed=0, hidden_size=32),
                      tokenizer=tokenizer)


@pytest.mark.parametrize("overlap", [True, False], ids=["overlap", "blocking"])
def test_the_reference_scores_while_the_judge_works(type4_data, tmp_path, overlap):
    # The server holds every answer until the trainer has started the reference's scoring of the
    # step's originals. Overlapped, nothing waits for long (the scoring starts at once, while the
    # requests are held); in the blocking order the trainer wants the verdicts first, so the
    # first held answer gives up (after `hold_s`) - which shows that the check can fail.
    hold_s = 60.0 if overlap else 1.0
    scoring = threading.Event()
    gave_up, order = [], []

    def hold():
        if not scoring.wait(hold_s):
            gave_up.append(1)
            scoring.set()
        order.append("answer")

    with JudgeServer() as server:
        trainer = _trainer(type4_data, tmp_path / "run", server)
        trainer.overlap_verify = overlap
        score = trainer._score

        def spy(model, rows):
            if model is trainer.reference:
                order.append("reference")
                scoring.set()
            return score(model, rows)

        trainer._score = spy
        server.before_answer = hold
        try:
            m = trainer.step()
        finally:
            trainer.verifier.close()
    assert m["judge_requests"] > 0 and order.count("answer") == m["judge_requests"]
    assert "reference" in order and m["time_judge_wait"] >= 0.0
    if overlap:
        assert gave_up == [] and order[0] == "reference"
    else:
        assert gave_up == [1] and order.index("reference") == len(order) - 1


def test_overlap_changes_no_result(type4_data, tmp_path):
    # The same two steps: overlapped with a judge that takes 0.2 s per answer, and in the blocking
    # order with an instant one. Every metric but timings, and every parameter, is bit-identical.
    runs = []
    for name, overlap, mode in (("overlap-slow", True, "slow"), ("blocking-fast", False, "ok")):
        with JudgeServer(mode=mode, delay=0.2) as server:
            trainer = _trainer(type4_data, tmp_path / name, server)
            trainer.overlap_verify = overlap
            try:
                history = trainer.train()
            finally:
                trainer.verifier.close()
        runs.append((history, [p.detach().clone() for p in trainer.model.parameters()]))
    (h1, p1), (h2, p2) = runs
    timing = ("time_", "tokens_per_s_", "judge_latency", "rule_seconds")
    strip = [{k: v for k, v in m.items() if not k.startswith(timing)} for m in h1 + h2]
    assert strip[:2] == strip[2:]
    assert all(torch.equal(a, b) for a, b in zip(p1, p2))
    last = h1[-1]
    assert last["replay_count"] > 0 or h1[0]["replay_count"] > 0  # replays took part
    # Replays' dataset criteria kept their verdicts from x: no second judge request for them.
    assert last["judge_requests"] + last.get("judge_cache_hits", 0) == last["judge_criteria"]
    assert h1[0]["time_judge_wait"] <= h1[0]["time_verify"]


def test_every_hir16k_type_trains_from_one_file(data_dir, tmp_path, caplog):
    # The HIR-16K sample holds rows of all four types; with the sandbox and a judge each one loads
    # and every task of the file takes part in one step (engine, MulDimIF, sandbox and judge).
    torch.set_num_threads(1)
    path = data_dir / "hir16k" / "sample.jsonl"
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    tokenizer = build_tokenizer([r["messages"][-1]["content"] for r in rows]
                                + [" ".join(WORDS), "<|user|>\n<|end|>\n<|assistant|>\n"])
    with JudgeServer() as server:
        cfg = TrainConfig(model="tiny", data=str(path), out=str(tmp_path / "run"), steps=1,
                          tasks_per_step=len(rows), rollouts_per_task=2, max_new_tokens=8,
                          progress=False, seed=1, allow_dataset_code=True, sandbox_workers=1,
                          judge_model="tiny-judge", judge_base_url=server.base_url)
        with caplog.at_level("INFO", logger="hirfast.data"):
            trainer = HiRTrainer(cfg, model=build_model(tokenizer, seed=0, hidden_size=32),
                                 tokenizer=tokenizer)
        try:
            m = trainer.step()
        finally:
            trainer.verifier.close()
    for kind in ("type1", "type2", "type3"):
        assert f"{kind}: 1 rows used (1 criteria), 0 skipped" in caplog.text
    assert "type4: 5 rows used (9 criteria), 0 skipped" in caplog.text
    assert len(trainer.tasks) == len(rows) == 8 and m["rollouts"] == 2 * len(rows)
    assert m["rule_calls"] > 0 and m["judge_criteria"] > 0 and m["loss"] == m["loss"]
