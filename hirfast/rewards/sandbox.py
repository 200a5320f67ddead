"""Dataset ``[rule]`` functions, run in a pool of sandboxed worker processes.

HIR-16K type4 rows carry Python sources that define ``check_following(response) -> bool``. They
are untrusted code: :class:`RuleSandbox` never runs them in the calling process. It keeps
``workers`` worker processes (``_sandbox_worker.py``, started with ``python -I``), reused across
calls; each worker forks a fresh, limited child per call (see that module, and the README's
section "HIR-16K type4 rows" for what each layer protects against). Every failure of a function (it raises, hangs,
exits, crashes, prints too much, returns a non-bool, does not compile) is a verdict of ``False``
for that criterion, counted by reason, the first few logged. A worker that stops answering is
killed and replaced.
"""
from __future__ import annotations

import collections
import hashlib
import json
import logging
import os
import queue
import re
import secrets
import selectors
import shutil
import struct
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Sequence

from . import CheckItem

__all__ = ["RuleSandbox", "normalize_source", "DEFAULT_PRELOAD"]

log = logging.getLogger("hirfast.rewards.sandbox")

_WORKER_ENV = {"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "PATH": "/usr/bin:/bin"}
_WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_sandbox_worker.py")

# Imported by each worker before it changes root: dataset functions can import these (and only
# modules already loaded); the rest of the file system is not visible to them.
DEFAULT_PRELOAD = ("re", "json", "string", "math", "collections", "itertools", "functools",
                   "unicodedata", "statistics", "datetime", "textwrap", "difflib", "random",
                   "operator", "heapq", "bisect", "fractions", "decimal", "typing", "enum",
                   "dataclasses", "copy", "html", "html.parser", "csv", "io", "ast")


def normalize_source(source: str) -> str:
    """The source as a module that defines ``check_following``.

    Some dataset sources lack the leading ``def``: ``check_following(response):\\n    ...`` gets it
    back, and a bare body (no ``check_following`` and no top-level ``def``) is wrapped in one.
    """
    text = textwrap.dedent(source.replace("\r\n", "\n")).strip("\n")
    if "def check_following" in text:
        return text + "\n"
    if text.lstrip().startswith("check_following("):
        return "def " + text.lstrip() + "\n"
    if re.search(r"^(def|class) \w", text, re.M):  # a module that defines something else
        return text + "\n"
    return "def check_following(response):\n" + textwrap.indent(text, "    ") + "\n"


class _Worker:
    """One worker process and its protocol."""

    def __init__(self, cfg: dict):
        self.proc = subprocess.Popen(
            [sys.executable, "-I", _WORKER, json.dumps(cfg)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, close_fds=True,
            start_new_session=True, env=_WORKER_ENV)  # no key or token of the trainer's env
        self.compiled = 0
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.proc.stdout, selectors.EVENT_READ)
        hello = self._read(time.monotonic() + 30.0)
        if not hello or not hello.get("hello"):
            self.kill()
            raise RuntimeError("a sandbox worker failed to start")
        self.layers, self.preloaded = hello["layers"], hello["preloaded"]

    def _read(self, deadline: float):
        buf = b""
        need = 4
        fd = self.proc.stdout.fileno()
        while True:
            while len(buf) < need:
                left = deadline - time.monotonic()
                if left <= 0 or not self.sel.select(left):
                    return None
                data = os.read(fd, need - len(buf))
                if not data:
                    return None
                buf += data
            if need == 4:
                need = 4 + struct.unpack(">I", buf)[0]
                if need > 4 + (1 << 20):
                    return None
                continue
            return json.loads(buf[4:])

    def call(self, digest: str, code: str, responses: list[str], timeout: float, grace: float):
        nonce = secrets.token_hex(16)
        msg = json.dumps({"nonce": nonce, "hash": digest, "code": code, "responses": responses,
                          "timeout": timeout}).encode()
        try:
            self.proc.stdin.write(struct.pack(">I", len(msg)) + msg)
            self.proc.stdin.flush()
        except OSError:
            return None
        try:
            reply = self._read(time.monotonic() + timeout * len(responses) + grace)
        except ValueError:
            return None
        if not isinstance(reply, dict) or reply.get("nonce") != nonce \
                or not isinstance(reply.get("results"), list) \
                or len(reply["results"]) != len(responses):
            return None
        self.compiled += not reply.get("cached")
        return reply["results"]

    def kill(self):
        try:
            self.proc.kill()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass
        self.sel.close()


class RuleSandbox:
    """A pool of sandboxed workers that check ``(source, response)`` pairs.

    Args:
        workers: worker processes (each runs one call at a time).
        timeout_s: wall-clock limit of one call (CPU limit: the same, rounded up).
        memory_mb: address-space limit of a call.
        output_limit: characters a function may print before it fails with ``output``.
        preload: modules importable by dataset functions.
        disable: layers to leave off (``netns``, ``chroot``, ``setuid``, ``seccomp``): for tests
            that show what each layer alone stops.
    """

    def __init__(self, workers: int = 2, *, timeout_s: float = 2.0, memory_mb: int = 1024,
                 output_limit: int = 1 << 16, fsize_bytes: int = 1 << 20,
                 preload: Sequence[str] = DEFAULT_PRELOAD, disable: Sequence[str] = (),
                 batch: int = 16, max_logged: int = 5):
        if workers < 1:
            raise ValueError(f"workers = {workers}: must be at least 1")
        self.timeout_s, self.grace_s, self.batch = float(timeout_s), 5.0, max(1, int(batch))
        self._root = tempfile.mkdtemp(prefix="hirfast-sandbox-")
        os.chmod(self._root, 0o555)
        self._cfg = {"root": self._root, "memory_mb": int(memory_mb), "output_limit": output_limit,
                     "fsize_bytes": int(fsize_bytes), "preload": list(preload),
                     "disable": list(disable), "recursion_limit": 2000}
        self._idle: queue.Queue[_Worker] = queue.Queue()
        for _ in range(workers):
            self._idle.put(_Worker(self._cfg))
        first = self._idle.queue[0]
        self.layers, self.preloaded = first.layers, first.preloaded
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="hirfast-sandbox")
        self._lock = threading.Lock()
        self.failures: collections.Counter = collections.Counter()
        self.first_failures: list[str] = []
        self.last_failure = ""
        self.max_logged = max_logged
        self.calls = self.passed = self.replaced = self._compiled_gone = 0
        self.seconds = 0.0
        self._closed = False
        log.info("rule sandbox: %d workers, layers %s", workers, self.layers)

    # --- checking -----------------------------------------------------------------------------

    def check(self, pairs: Sequence[tuple[str, str]]) -> list[bool]:
        """Verdict of each ``(source, response)``; a failure of the function is ``False``."""
        return self.submit_pairs(pairs).result()

    def submit(self, items: Sequence[CheckItem]) -> Future:
        """The :class:`hirfast.rewards.RewardSource` interface: ``item.function`` on
        ``item.response``."""
        return self.submit_pairs([(it.function or "", it.response) for it in items])

    def submit_pairs(self, items: Sequence[tuple[str, str]]) -> Future:
        """Start checking ``(source, response)`` pairs; the future's result is :meth:`check`'s.

        Pairs of one function go to a worker together (in runs of at most ``batch``), where one
        child runs them in turn: a fork per run, not per pair.
        """
        if self._closed:
            raise RuntimeError("the sandbox is closed")
        groups: dict[str, tuple[str, list[int]]] = {}
        responses = []
        for i, (source, response) in enumerate(items):
            code = normalize_source(source)
            digest = hashlib.sha256(code.encode()).hexdigest()
            groups.setdefault(digest, (code, []))[1].append(i)
            responses.append(response)
        jobs = [(digest, code, idx[k:k + self.batch])
                for digest, (code, idx) in groups.items()
                for k in range(0, len(idx), self.batch)]
        out: Future = Future()
        if not jobs:
            out.set_result([])
            return out
        verdicts: list = [False] * len(responses)
        remaining = [len(jobs)]
        lock = threading.Lock()

        def run(digest, code, idx):
            for i, v in zip(idx, self._run(digest, code, [responses[i] for i in idx])):
                verdicts[i] = v

        def done(f):
            with lock:
                remaining[0] -= 1
                last = remaining[0] == 0
            if f.exception() is not None and not out.done():
                out.set_exception(f.exception())
            elif last and not out.done():
                out.set_result(verdicts)

        for job in jobs:
            self._pool.submit(run, *job).add_done_callback(done)
        return out

    def _run(self, digest: str, code: str, responses: list[str]) -> list[bool]:
        t0 = time.perf_counter()
        results = None
        for _attempt in range(2):  # a worker found dead (killed from outside) is replaced, once
            worker = self._idle.get()  # None: a slot whose worker could not be (re)started
            died = True
            try:
                if worker is None:
                    worker = self._start()
                if worker is not None and worker.proc.poll() is None:
                    results = worker.call(digest, code, responses, self.timeout_s, self.grace_s)
            finally:
                if worker is not None:
                    died = worker.proc.poll() is not None
                    if results is None:  # dead, no answer in time, or a garbled reply: replace
                        worker = self._replace(worker)
                self._idle.put(worker)
            if results is not None or not died:
                break
        if results is None:
            results = [{"ok": False, "reason": "worker_lost",
                        "detail": "the worker did not answer"}] * len(responses)
        verdicts = []
        with self._lock:
            self.calls += len(responses)
            self.seconds += time.perf_counter() - t0
            for reply in results:
                if reply.get("ok"):
                    self.passed += bool(reply["value"])
                    verdicts.append(bool(reply["value"]))
                    continue
                verdicts.append(False)
                reason = str(reply.get("reason", "unknown"))
                self.failures[reason] += 1
                self.last_failure = f"{reason}: {reply.get('detail', '')}"
                if len(self.first_failures) < self.max_logged:
                    msg = f"{reason}: {reply.get('detail', '')} (function {digest[:12]})"
                    self.first_failures.append(msg)
                    log.warning("dataset rule function failed: %s", msg)
        return verdicts

    def _replace(self, worker: _Worker) -> _Worker | None:
        worker.kill()
        with self._lock:
            self.replaced += 1
            self._compiled_gone += worker.compiled
        return self._start()

    def _start(self) -> _Worker | None:
        try:
            return _Worker(self._cfg)
        except Exception:  # noqa: BLE001 - the calls fail (worker_lost); the next one tries again
            log.exception("could not start a sandbox worker")
            return None

    # --- reporting and lifetime ---------------------------------------------------------------

    def metrics(self) -> dict:
        with self._lock:
            m = {"rule_calls": self.calls, "rule_failures": sum(self.failures.values()),
                 "rule_compiles": sum(w.compiled for w in list(self._idle.queue) if w is not None)
                 + self._compiled_gone,
                 "rule_workers_replaced": self.replaced, "rule_seconds": self.seconds}
            m.update({f"rule_fail_{k}": v for k, v in sorted(self.failures.items())})
        return m

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._pool.shutdown(wait=True)
        while not self._idle.empty():
            worker = self._idle.get()
            if worker is not None:
                worker.kill()
        shutil.rmtree(self._root, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass
