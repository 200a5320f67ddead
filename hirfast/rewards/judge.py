"""Soft ``[llm]`` criteria, judged by a model behind an OpenAI-compatible chat-completions API.

One YES/NO question per (instruction, criterion, response): the prompt is :data:`JUDGE_PROMPT`
(a single user message, temperature 0, at most ``max_tokens`` tokens of answer). The answer is
parsed by :func:`parse_yes_no`; an answer that is neither is counted (``judge_unparseable``) and
is a ``False`` verdict, like a request that still fails after its retries (``judge_errors``).

Requests run on a thread pool of ``concurrency`` threads, so :meth:`LLMJudge.submit` returns at
once and the trainer does other work while they run. Each request has a timeout and is retried
with exponential backoff (``backoff_s * 2**attempt``) on connection errors, timeouts, 429 and
5xx answers. Verdicts are kept in an SQLite file keyed by (judge model, prompt version,
instruction, criterion, response): a resumed run, or the same response checked again, costs no
request.
"""
from __future__ import annotations

import collections
import hashlib
import json
import logging
import os
import re
import sqlite3
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Sequence

from . import CheckItem, gather

__all__ = ["LLMJudge", "JUDGE_PROMPT", "parse_yes_no"]

log = logging.getLogger("hirfast.rewards.judge")

PROMPT_VERSION = "yesno-v1"
JUDGE_PROMPT = """You are grading whether a response to an instruction satisfies one criterion.

[Instruction]
{instruction}

[Response]
{response}

[Criterion]
{criterion}

Does the response satisfy the criterion? Judge only this criterion, nothing else. \
Answer with a single word: YES or NO."""

# The first of: the word yes, the word no, a negated "satisf..." ("does not satisfy", "doesn't
# satisfy", "fails to satisfy", "not satisfied"), a plain one ("satisfies", "does satisfy").
_ANSWER = re.compile(r"\b(?P<yes>yes)\b|\b(?P<no>no)\b"
                     r"|\b(?P<neg>(?:does|do|did)\s*(?:not|n't)|fails?\s+to|not)\s+satisf"
                     r"|\b(?P<pos>satisf(?:ies|y|ied))\b", re.IGNORECASE)


def parse_yes_no(text: str | None) -> bool | None:
    """True for YES, False for NO, None when the answer is neither.

    The first ``yes``/``no`` word wins ("**YES**.", "Answer: no", "Yes, because ... not no"). An
    answer in a sentence that echoes the question ("Does the response satisfy the criterion?")
    counts too: "The response satisfies ..." / "does satisfy" is YES, "does not satisfy" /
    "doesn't satisfy" / "fails to satisfy" / "not satisfied" is NO, whichever comes first. A
    reasoning model's ``<think>...</think>`` block is skipped first.
    """
    if not isinstance(text, str):
        return None
    text = re.sub(r"<think>.*?(</think>|$)", " ", text, flags=re.S | re.I)
    m = _ANSWER.search(text)
    if m is None:
        return None
    return m.lastgroup in ("yes", "pos")


class _Cache:
    """(key -> verdict) in SQLite; one connection, used under a lock."""

    def __init__(self, path: str):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.db = sqlite3.connect(path, check_same_thread=False, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS verdicts (key TEXT PRIMARY KEY, verdict INTEGER, "
                        "answer TEXT)")
        self.db.commit()
        self.lock = threading.Lock()

    def get(self, key: str) -> bool | None:
        with self.lock:
            row = self.db.execute("SELECT verdict FROM verdicts WHERE key = ?", (key,)).fetchone()
        return None if row is None else bool(row[0])

    def put(self, key: str, verdict: bool, answer: str) -> None:
        with self.lock:
            self.db.execute("INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?)",
                            (key, int(verdict), answer[:200]))
            self.db.commit()

    def close(self) -> None:
        with self.lock:
            self.db.close()


class LLMJudge:
    """Judge soft criteria with an OpenAI-compatible server.

    Args:
        model: the judge model's name on the server.
        base_url: the server's API root (``http://host:port/v1``); default ``OPENAI_BASE_URL``.
        api_key: default the environment variable ``api_key_env`` (``OPENAI_API_KEY``), else
            ``"EMPTY"`` (local servers ignore it).
        concurrency: requests in flight at most.
        timeout_s: one request's limit; retries: further tries after a failed one.
        cache_path: SQLite file of verdicts (None: no cache).
    """

    def __init__(self, model: str, base_url: str | None = None, api_key: str | None = None, *,
                 api_key_env: str = "OPENAI_API_KEY", concurrency: int = 8,
                 timeout_s: float = 30.0, retries: int = 3, backoff_s: float = 0.5,
                 max_tokens: int = 8, cache_path: str | None = None, max_logged: int = 5):
        try:
            import openai
        except ImportError:
            raise RuntimeError("the LLM judge needs the openai package: pip install 'hirfast[judge]'"
                               ) from None
        if not model:
            raise ValueError("judge model: give judge_model (the model's name on the server)")
        if concurrency < 1 or retries < 0 or timeout_s <= 0:
            raise ValueError("judge: concurrency >= 1, retries >= 0 and timeout_s > 0 expected")
        self._openai = openai
        base_url = base_url or os.environ.get("OPENAI_BASE_URL")
        if not base_url:
            raise ValueError("judge base URL: give judge_base_url or set OPENAI_BASE_URL")
        self.model, self.base_url = model, base_url
        self.client = openai.OpenAI(base_url=base_url, timeout=timeout_s, max_retries=0,
                                    api_key=api_key or os.environ.get(api_key_env) or "EMPTY")
        self.retries, self.backoff_s, self.max_tokens = retries, backoff_s, max_tokens
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="hirfast-judge")
        self._cache = _Cache(cache_path) if cache_path else None
        self._lock = threading.Lock()
        self.stats = collections.Counter()
        self.latency_s = 0.0
        self.first_failures: list[str] = []
        self.max_logged = max_logged

    # --- the interface ------------------------------------------------------------------------

    def submit(self, items: Sequence[CheckItem]) -> Future:
        """Start judging; the future's result is one verdict per item."""
        return gather([self._pool.submit(self._safe, it) for it in items])

    def check(self, items: Sequence[CheckItem]) -> list[bool]:
        return self.submit(items).result()

    def metrics(self) -> dict:
        with self._lock:
            s = dict(self.stats)
            m = {f"judge_{k}": v for k, v in sorted(s.items())}
            m["judge_latency_mean_s"] = self.latency_s / max(1, s.get("requests_ok", 0))
        return m

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        if self._cache is not None:
            self._cache.close()
            self._cache = None
        self.client.close()

    # --- one question -------------------------------------------------------------------------

    def key(self, item: CheckItem) -> str:
        blob = json.dumps([self.model, PROMPT_VERSION, item.prompt, item.criterion, item.response])
        return hashlib.sha256(blob.encode()).hexdigest()

    def _count(self, **kw) -> None:
        with self._lock:
            self.stats.update(kw)

    def _fail(self, reason: str, detail: str) -> bool:
        with self._lock:
            self.stats[reason] += 1
            if len(self.first_failures) < self.max_logged:
                self.first_failures.append(f"{reason}: {detail}")
                log.warning("judge: %s: %s", reason, detail)
        return False

    def _safe(self, item: CheckItem) -> bool:
        try:
            return self._one(item)
        except Exception as e:  # noqa: BLE001 - a broken cache or client: a counted False
            return self._fail("errors", f"{type(e).__name__}: {e}"[:200])

    def _one(self, item: CheckItem) -> bool:
        self._count(criteria=1)
        key = self.key(item)
        if self._cache is not None:
            hit = self._cache.get(key)
            if hit is not None:
                self._count(cache_hits=1)
                return hit
        content = JUDGE_PROMPT.format(instruction=item.prompt, response=item.response,
                                      criterion=item.criterion)
        err = self._openai
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                self._count(retries=1)
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            t0 = time.perf_counter()
            try:
                self._count(requests=1)
                out = self.client.chat.completions.create(
                    model=self.model, messages=[{"role": "user", "content": content}],
                    temperature=0.0, max_tokens=self.max_tokens)
            except (err.APITimeoutError, err.APIConnectionError, err.RateLimitError,
                    err.InternalServerError) as e:
                last = f"{type(e).__name__}: {e}"
                continue
            except err.APIStatusError as e:  # 4xx other than 429: retrying would not help
                return self._fail("errors", f"HTTP {e.status_code}: {str(e)[:200]}")
            except Exception as e:  # noqa: BLE001 - a malformed body the client cannot read
                last = f"{type(e).__name__}: {e}"
                continue
            with self._lock:
                self.latency_s += time.perf_counter() - t0
                self.stats["requests_ok"] += 1
                usage = getattr(out, "usage", None)
                self.stats["prompt_tokens"] += int(getattr(usage, "prompt_tokens", 0) or 0)
                self.stats["completion_tokens"] += int(getattr(usage, "completion_tokens", 0) or 0)
            try:
                answer = out.choices[0].message.content
            except (AttributeError, IndexError, TypeError):
                answer = None
            verdict = parse_yes_no(answer)
            if verdict is None:
                return self._fail("unparseable", repr(answer)[:200])
            if self._cache is not None:
                self._cache.put(key, verdict, answer)
            return verdict
        return self._fail("errors", f"gave up after {self.retries + 1} tries: {last[:200]}")
