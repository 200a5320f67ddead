"""Training on HIR-16K type4 rows on the CPU: [rule] criteria in the sandbox and [llm] criteria
judged by a real OpenAI-compatible server started by the test (tests/judge_server.py)."""
from __future__ import annotations

import json

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
