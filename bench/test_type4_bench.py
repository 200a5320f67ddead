"""HIR-16K type4 reward sources: sandboxed [rule] checks per second, judge throughput against a
local OpenAI-compatible server, and their share of a training step.

- ``test_rule_checks[pool2-batched]``: :class:`RuleSandbox` with 2 workers, 16 functions x 24
  responses per round (a function's responses share one forked child, as in training, where the
  m rollouts of a task meet the same functions). Baselines in the same run: ``pool2-fork-per-check``
  (``batch=1``: a child per check) and ``in-process-exec`` (the functions exec'd in the benchmark's
  own process: the unsafe ceiling, never what hirfast does).
- ``test_judge_throughput[local-server-c8]``: :class:`LLMJudge`, concurrency 8, no cache, 64
  criteria per round, against tests/judge_server.py (a stdlib HTTP server with a deterministic
  answer: this measures the client, the protocol and the thread pool, not a model).
- ``test_type4_step[cpu-tiny]``: one training step of the demo's tiny Llama on the type4 sample
  rows (5 tasks x 6 rollouts, 16 new tokens): ``verify_share`` is the share of the step spent in
  verify (engine + sandbox + judge).
- ``test_judge_throughput_llama[smollm2-c4]``: :class:`LLMJudge`, concurrency 4, no cache,
  against llama.cpp's server (tests/llama_server.py: SmolLM2-135M-Instruct Q4_1, 4 slots, 1
  thread), 16 new questions per round: a real model's answers, on this machine's CPU.
- ``test_type4_step_llama[overlap|blocking]``: steps of a 256-d demo Llama with a reference
  model (KL term) on the type4 rows, judged by that server (a fresh one per variant):
  ``judge_wait_share`` is the share of the step spent blocked on verdicts, with the reference's
  scoring overlapped with the judge (``overlap``) and after it (``blocking``).
"""
import json
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

from hirfast.rewards import CheckItem  # noqa: E402
from hirfast.rewards.sandbox import RuleSandbox, normalize_source  # noqa: E402

SAMPLE = os.path.join(HERE, "..", "tests", "data", "hir16k", "sample.jsonl")


def _functions(n):
    return [f"import re\ndef check_following(response):\n"
            f"    return len(re.findall(r'\\w+', response)) > {i} and 'x{i}' not in response\n"
            for i in range(n)]


def _pairs():
    responses = [f"response number {j} " + "word " * (j % 7) for j in range(24)]
    return [(f, r) for f in _functions(16) for r in responses]


def _in_process(pairs):
    cache = {}
    out = []
    for src, resp in pairs:
        fn = cache.get(src)
        if fn is None:
            ns = {}
            exec(compile(normalize_source(src), "<f>", "exec"), ns)  # the unsafe ceiling
            fn = cache[src] = ns["check_following"]
        out.append(fn(resp))
    return out


@pytest.mark.parametrize("mode", ["pool2-batched", "pool2-fork-per-check", "in-process-exec"])
def test_rule_checks(benchmark, mode):
    pairs = _pairs()
    expected = _in_process(pairs)
    if mode == "in-process-exec":
        run = lambda: _in_process(pairs)  # noqa: E731
        box = None
    else:
        box = RuleSandbox(2, timeout_s=5.0, batch=1 if mode == "pool2-fork-per-check" else 16)
        run = lambda: box.check(pairs)  # noqa: E731
    try:
        result = benchmark.pedantic(run, rounds=5, warmup_rounds=1, iterations=1)
        assert result == expected
        benchmark.extra_info.update({"checks_per_round": len(pairs), "functions": 16,
                                     "checks_per_s": len(pairs) / benchmark.stats.stats.min,
                                     "layers": json.dumps(box.layers) if box else "none"})
    finally:
        if box is not None:
            box.close()


def test_judge_throughput(benchmark):
    pytest.importorskip("openai")
    from hirfast.rewards.judge import LLMJudge
    from judge_server import JudgeServer

    items = [CheckItem(f"Write line {i}.", "The response mentions 'apple'.",
                       f"line {i} about {'apple' if i % 3 else 'pear'}") for i in range(64)]
    with JudgeServer() as server:
        judge = LLMJudge("bench", server.base_url, api_key="k", concurrency=8, timeout_s=30)
        try:
            result = benchmark.pedantic(lambda: judge.check(items), rounds=5, warmup_rounds=1,
                                        iterations=1)
            assert result == [bool(i % 3) for i in range(64)]
            m = judge.metrics()
            benchmark.extra_info.update({"criteria_per_round": 64, "concurrency": 8,
                                         "criteria_per_s": 64 / benchmark.stats.stats.min,
                                         "mean_request_latency_s": m["judge_latency_mean_s"]})
        finally:
            judge.close()


def _type4_rows_and_tokenizer(tmp_path):
    """The sample's type4 rows in a file of their own, and a tiny tokenizer for their texts."""
    from hirfast.demo_model import build_tokenizer

    data = tmp_path / "type4.jsonl"
    with open(SAMPLE, encoding="utf-8") as f, open(data, "w", encoding="utf-8") as out:
        rows = [json.loads(line) for line in f]
        for r in rows:
            if r["source"] == "type4":
                out.write(json.dumps(r) + "\n")
    texts = [r["messages"][-1]["content"] for r in rows]
    tokenizer = build_tokenizer(texts + ["the ocean is blue apple cheerful 3 { } \" :",
                                         "<|user|>\n<|end|>\n<|assistant|>\n"])
    return data, tokenizer


def test_type4_step(benchmark, tmp_path):
    pytest.importorskip("openai")
    import torch

    from hirfast.config import TrainConfig
    from hirfast.demo_model import build_model
    from hirfast.trainer import HiRTrainer
    from judge_server import JudgeServer

    torch.set_num_threads(1)
    data, tokenizer = _type4_rows_and_tokenizer(tmp_path)
    with JudgeServer() as server:
        cfg = TrainConfig(model="tiny", data=str(data), out=str(tmp_path / "run"), steps=100,
                          tasks_per_step=5, rollouts_per_task=6, max_new_tokens=16, lr=1e-4,
                          progress=False, allow_dataset_code=True, judge_model="bench",
                          judge_base_url=server.base_url, judge_cache="")  # every round asks
        trainer = HiRTrainer(cfg, model=build_model(tokenizer, seed=0, hidden_size=64),
                             tokenizer=tokenizer)
        metrics = []
        try:
            benchmark.pedantic(lambda: metrics.append(trainer.step()), rounds=5, warmup_rounds=1,
                               iterations=1)
        finally:
            trainer.verifier.close()
    timed = metrics[1:]
    phases = ("rollout", "verify", "replay", "train")
    total = {p: sum(m[f"time_{p}"] for m in timed) for p in phases}
    step_s = sum(total.values())
    benchmark.extra_info.update({f"{p}_share": total[p] / step_s for p in phases})
    benchmark.extra_info["verify_s_per_step"] = total["verify"] / len(timed)


def _gguf():
    pytest.importorskip("openai")
    pytest.importorskip("xllamacpp")
    from real_model import ModelUnavailable, gguf_path

    try:
        return str(gguf_path())
    except ModelUnavailable as e:
        pytest.skip(str(e))


def test_judge_throughput_llama(benchmark):
    from hirfast.rewards.judge import LLMJudge
    from llama_server import LlamaServer

    gguf = _gguf()
    rounds = iter(range(100))

    def fresh():  # new questions each round: neither hirfast's nor the server's cache answers
        r = next(rounds)
        return ([CheckItem(f"Write line {r}-{i}.", f"The response mentions '{w}'.",
                           f"Line {r}-{i}: a {'cheerful' if i % 2 else 'quiet'} {w}.")
                 for i, w in enumerate("apple pear sea whale blue song fruit moon "
                                       "star tree rain wind road lamp door book".split())],), {}

    with LlamaServer(gguf, threads=1, parallel=4) as server:
        judge = LLMJudge("smollm2", server.base_url, api_key="k", concurrency=4, timeout_s=300)
        try:
            benchmark.pedantic(judge.check, setup=fresh, rounds=3, warmup_rounds=1)
            m = judge.metrics()
        finally:
            judge.close()
    benchmark.extra_info.update({
        "criteria_per_round": 16, "concurrency": 4, "server": "llama.cpp (xllamacpp), 4 slots, 1 thread",
        "criteria_per_s": 16 / benchmark.stats.stats.min,
        "mean_request_latency_s": m["judge_latency_mean_s"],
        "prompt_tokens_per_request": m["judge_prompt_tokens"] / m["judge_requests_ok"],
        "completion_tokens_per_request": m["judge_completion_tokens"] / m["judge_requests_ok"],
        "unparseable_share": m.get("judge_unparseable", 0) / m["judge_requests_ok"]})


@pytest.mark.parametrize("overlap", [True, False], ids=["overlap", "blocking"])
def test_type4_step_llama(benchmark, tmp_path, overlap):
    import torch

    from hirfast.config import TrainConfig
    from hirfast.demo_model import build_model
    from hirfast.trainer import HiRTrainer
    from llama_server import LlamaServer

    gguf = _gguf()
    torch.set_num_threads(1)
    data, tokenizer = _type4_rows_and_tokenizer(tmp_path)
    with LlamaServer(gguf, threads=1, parallel=4) as server:
        cfg = TrainConfig(model="tiny", data=str(data), out=str(tmp_path / "run"), steps=100,
                          tasks_per_step=5, rollouts_per_task=6, max_new_tokens=32, lr=1e-4,
                          progress=False, kl_loss_coef=0.05, allow_dataset_code=True,
                          judge_model="smollm2", judge_base_url=server.base_url,
                          judge_concurrency=4, judge_timeout_s=300, judge_cache="")
        trainer = HiRTrainer(cfg, model=build_model(tokenizer, seed=0, hidden_size=256,
                                                    layers=4),
                             tokenizer=tokenizer)
        trainer.overlap_verify = overlap
        metrics = []
        try:
            benchmark.pedantic(lambda: metrics.append(trainer.step()), rounds=3,
                               warmup_rounds=1, iterations=1)
        finally:
            trainer.verifier.close()
    timed = metrics[1:]
    phases = ("rollout", "verify", "replay", "train")
    step_s = sum(m[f"time_{p}"] for m in timed for p in phases)
    wait = sum(m["time_judge_wait"] for m in timed)
    last = metrics[-1]
    benchmark.extra_info.update({
        "overlap": overlap, "steps": len(timed), "step_s": step_s / len(timed),
        "judge_wait_s": wait / len(timed), "judge_wait_share": wait / step_s,
        **{f"{p}_share": sum(m[f"time_{p}"] for m in timed) / step_s for p in phases},
        "judge_requests_per_step": last["judge_requests"] / len(metrics),
        "judge_criteria_per_s": last["judge_requests"] / sum(m["time_verify"] for m in metrics)})
