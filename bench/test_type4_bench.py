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


def test_type4_step(benchmark, tmp_path):
    pytest.importorskip("openai")
    import torch

    from hirfast.config import TrainConfig
    from hirfast.demo_model import build_model, build_tokenizer
    from hirfast.trainer import HiRTrainer
    from judge_server import JudgeServer

    torch.set_num_threads(1)
    data = tmp_path / "type4.jsonl"
    with open(SAMPLE, encoding="utf-8") as f, open(data, "w", encoding="utf-8") as out:
        rows = [json.loads(line) for line in f]
        for r in rows:
            if r["source"] == "type4":
                out.write(json.dumps(r) + "\n")
    texts = [r["messages"][-1]["content"] for r in rows]
    tokenizer = build_tokenizer(texts + ["the ocean is blue apple cheerful 3 { } \" :",
                                         "<|user|>\n<|end|>\n<|assistant|>\n"])
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
