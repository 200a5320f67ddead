"""The LLM judge against a real OpenAI-compatible HTTP server that each test starts and stops
(tests/judge_server.py): verdicts, cache, metrics, concurrency, and the server down, slow,
failing and returning garbage."""
from __future__ import annotations

import socket
import time

import pytest

pytest.importorskip("openai")

from hirfast.rewards import CheckItem  # noqa: E402
from hirfast.rewards.judge import JUDGE_PROMPT, LLMJudge, parse_yes_no  # noqa: E402
from judge_server import JudgeServer  # noqa: E402


def items(n=4):
    # Criterion "mention 'apple'": the server's deterministic model says YES iff it is there.
    return [CheckItem(f"Write about fruit {i}.", "The response mentions 'apple'.",
                      f"I like {'apple' if i % 2 == 0 else 'pear'} number {i}.") for i in range(n)]


@pytest.fixture
def server():
    with JudgeServer() as s:
        yield s


def make(server_or_url, tmp_path=None, **kw):
    url = server_or_url if isinstance(server_or_url, str) else server_or_url.base_url
    kw.setdefault("timeout_s", 5.0)
    kw.setdefault("backoff_s", 0.01)
    return LLMJudge("tiny-judge", url, api_key="k",
                    cache_path=str(tmp_path / "judge.sqlite") if tmp_path else None, **kw)


@pytest.mark.parametrize("text,expected", [
    ("YES", True), ("no", False), ("**Yes**.", True), ("Answer: NO", False),
    ("<think>no idea... maybe yes</think>\nNO", False), ("Yes, it does not say no.", True),
    ("I cannot tell.", None), ("", None), (None, None), ("nope", None), ("YESNO", None),
    # sentence answers that echo the question (a small model's habit)
    ("The response does satisfy the criterion of", True), ("It satisfies it.", True),
    ("The response does not satisfy the criterion", False), ("It doesn't satisfy", False),
    ("The response fails to satisfy it", False), ("Criterion not satisfied.", False),
    ("The response is unsatisfying", None), ("Yes; it does not satisfy", True),
    ("The response does not satisfy, yes", False),
])
def test_parse_yes_no(text, expected):
    assert parse_yes_no(text) is expected


def test_prompt_has_the_three_parts():
    text = JUDGE_PROMPT.format(instruction="I", response="R", criterion="C")
    assert "[Instruction]\nI" in text and "[Response]\nR" in text and "[Criterion]\nC" in text


def test_verdicts_and_metrics(server, tmp_path):
    judge = make(server, tmp_path)
    try:
        assert judge.check(items(4)) == [True, False, True, False]
        m = judge.metrics()
        assert m["judge_requests"] == 4 and m["judge_requests_ok"] == 4 and server.requests == 4
        assert m["judge_prompt_tokens"] > 0 and m["judge_completion_tokens"] == 4
        assert m["judge_latency_mean_s"] > 0 and "judge_cache_hits" not in m
    finally:
        judge.close()


def test_cache_survives_a_restart(server, tmp_path):
    judge = make(server, tmp_path)
    assert judge.check(items(4)) == [True, False, True, False]
    judge.close()
    again = make(server, tmp_path)  # a resumed run: same cache file
    try:
        assert again.check(items(4)) == [True, False, True, False]
        assert server.requests == 4 and again.metrics()["judge_cache_hits"] == 4
        # The key holds the response: a new response is asked.
        new = CheckItem("Write about fruit 0.", "The response mentions 'apple'.", "apple pie")
        assert again.check([new]) == [True] and server.requests == 5
    finally:
        again.close()


def test_cache_key_holds_model_prompt_criterion_response(server, tmp_path):
    judge = make(server, tmp_path)
    try:
        base = CheckItem("p", "c", "r")
        keys = {judge.key(base), judge.key(base._replace(prompt="p2")),
                judge.key(base._replace(criterion="c2")), judge.key(base._replace(response="r2"))}
        assert len(keys) == 4
        other = LLMJudge("other-model", server.base_url, api_key="k")
        assert other.key(base) != judge.key(base)
        other.close()
    finally:
        judge.close()


def test_submit_returns_before_the_answers(tmp_path):
    with JudgeServer(mode="slow", delay=0.5) as server:
        judge = make(server, concurrency=8)
        try:
            t0 = time.perf_counter()
            fut = judge.submit(items(8))
            assert time.perf_counter() - t0 < 0.3 and not fut.done()
            assert fut.result() == [True, False] * 4
            # 8 requests of 0.5 s with 8 in flight: about 0.5 s, not 4 s.
            assert time.perf_counter() - t0 < 2.5
        finally:
            judge.close()


def test_concurrency_limit(tmp_path):
    with JudgeServer(mode="slow", delay=0.3) as server:
        judge = make(server, concurrency=2)
        try:
            t0 = time.perf_counter()
            judge.check(items(6))
            assert time.perf_counter() - t0 >= 0.85  # 3 waves of 2
        finally:
            judge.close()


def test_server_down_counts_errors_after_retries():
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    judge = make(url, retries=2)
    try:
        assert judge.check(items(2)) == [False, False]
        m = judge.metrics()
        assert m["judge_errors"] == 2 and m["judge_retries"] == 4 and m["judge_requests"] == 6
        assert "gave up after 3 tries" in judge.first_failures[0]
    finally:
        judge.close()


def test_slow_server_times_out():
    with JudgeServer(mode="slow", delay=3.0) as server:
        judge = make(server, timeout_s=0.3, retries=1)
        try:
            t0 = time.perf_counter()
            assert judge.check(items(1)) == [False]
            assert time.perf_counter() - t0 < 2.5
            assert judge.metrics()["judge_errors"] == 1
            assert "Timeout" in judge.first_failures[0]
        finally:
            judge.close()


def test_transient_failures_are_retried(tmp_path):
    with JudgeServer(fail_first=2) as server:
        judge = make(server, retries=3)
        try:
            assert judge.check(items(1)) == [True]
            m = judge.metrics()
            assert m["judge_retries"] == 2 and "judge_errors" not in m
        finally:
            judge.close()


@pytest.mark.parametrize("mode,counter", [("garbage", "judge_unparseable"),
                                          ("broken_json", "judge_errors"),
                                          ("error", "judge_errors")])
def test_garbage_answers_are_counted(tmp_path, mode, counter):
    with JudgeServer(mode=mode) as server:
        judge = make(server, tmp_path, retries=1)
        try:
            assert judge.check(items(3)) == [False, False, False]
            assert judge.metrics()[counter] == 3
        finally:
            judge.close()
        # A garbage answer is not cached: the next run asks again.
        server.mode = "ok"
        again = make(server, tmp_path)
        try:
            assert again.check(items(3)) == [True, False, True]
        finally:
            again.close()


def test_config_errors_are_named(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ValueError, match="judge_base_url"):
        LLMJudge("m")
    with pytest.raises(ValueError, match="judge_model"):
        LLMJudge("", "http://127.0.0.1:1/v1")


def test_key_from_environment(server, monkeypatch):
    monkeypatch.setenv("MY_JUDGE_KEY", "secret-123")
    seen = []
    orig = server.httpd.RequestHandlerClass.do_POST

    def spy(handler):
        seen.append(handler.headers.get("Authorization"))
        return orig(handler)

    server.httpd.RequestHandlerClass.do_POST = spy
    judge = LLMJudge("m", server.base_url, api_key_env="MY_JUDGE_KEY")
    try:
        judge.check(items(1))
        assert seen == ["Bearer secret-123"]
    finally:
        judge.close()


def test_a_broken_cache_is_a_counted_failure_not_a_crash(server, tmp_path):
    judge = make(server, tmp_path)
    try:
        judge._cache.db.execute("DROP TABLE verdicts")
        assert judge.check(items(2)) == [False, False]
        assert judge.metrics()["judge_errors"] == 2
        assert "OperationalError" in judge.first_failures[0]
    finally:
        judge.close()
