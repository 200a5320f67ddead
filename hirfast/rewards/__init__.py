"""Reward sources: one verdict (a bool) per criterion of a response, whatever checks it.

Three sources, one small interface (:class:`RewardSource`):

- the C++ rule engine (:mod:`hirfast.verify`) for IFEval / IFBench instruction ids;
- :class:`hirfast.rewards.sandbox.RuleSandbox` for dataset ``[rule]`` functions (HIR-16K type4),
  constraint id :data:`RULE_ID`, kwargs ``{"function": source, "criterion": text}``;
- :class:`hirfast.rewards.judge.LLMJudge` for soft ``[llm]`` criteria, constraint id
  :data:`LLM_ID`, kwargs ``{"criterion": text}``.

:class:`MixedVerifier` has the verifier signature the trainer and ``hirfast verify`` use,
``(responses, instruction_ids, kwargs, prompts) -> [[bool]]``, and sends each constraint to its
source: the judge's requests and the sandbox's runs start first and go on in their threads while
the engine checks the rest in the calling thread. ``submit`` returns a :class:`Pending` so a
caller can do other work before it needs the verdicts (:func:`start` does the same for any
verifier, one without ``submit`` computing at once). :meth:`MixedVerifier.recheck` verifies
hindsight replays under their rewritten instructions without asking the dataset sources again
(see there).

This package does not import torch; the sandbox and the judge are imported only when used.
"""
from __future__ import annotations

import os
import threading
import time
from concurrent.futures import Future
from typing import Callable, NamedTuple, Protocol, Sequence

__all__ = ["CheckItem", "RewardSource", "MixedVerifier", "Pending", "RULE_ID", "LLM_ID",
           "DATASET_IDS", "gather", "start", "build_verifier", "options_from_config", "load_options"]

RULE_ID = "hir:rule"   # a dataset function, run in the sandbox
LLM_ID = "hir:llm"     # a soft criterion, asked of the judge
DATASET_IDS = (RULE_ID, LLM_ID)


class CheckItem(NamedTuple):
    """One criterion of one response: what any source needs to give its verdict."""

    prompt: str
    criterion: str
    response: str
    function: str | None = None


class RewardSource(Protocol):
    """A source of verdicts. ``submit`` returns at once; its future holds one bool per item."""

    def submit(self, items: Sequence[CheckItem]) -> Future: ...

    def metrics(self) -> dict: ...

    def close(self) -> None: ...


def gather(futures: Sequence[Future]) -> Future:
    """A future of the list of the futures' results (the first exception, if any)."""
    out: Future = Future()
    if not futures:
        out.set_result([])
        return out
    remaining = [len(futures)]
    lock = threading.Lock()

    def done(f: Future) -> None:
        with lock:
            remaining[0] -= 1
            last = remaining[0] == 0
        if f.exception() is not None:
            with lock:
                if not out.done():
                    out.set_exception(f.exception())
        elif last:
            with lock:
                if not out.done():
                    out.set_result([g.result() for g in futures])

    for f in futures:
        f.add_done_callback(done)
    return out


class Pending:
    """Verdicts being computed; :meth:`result` waits for them (once) and merges them by row.

    ``waited_s`` is how long :meth:`result` blocked: the part of the dataset sources' work that
    the caller's own work in the meantime did not cover.
    """

    def __init__(self, merge: Callable[[], list[list[bool]]]):
        self._merge = merge
        self._out: list[list[bool]] | None = None
        self.waited_s = 0.0

    def result(self) -> list[list[bool]]:
        if self._out is None:
            t0 = time.perf_counter()
            self._out = self._merge()
            self.waited_s = time.perf_counter() - t0
        return self._out


def start(verifier: Callable, responses, instruction_ids, kwargs, prompts=None) -> Pending:
    """Start checking with ``verifier``: its ``submit`` where it has one (verdicts of the slow
    sources then arrive in their threads), else a plain call made now."""
    submit = getattr(verifier, "submit", None)
    if submit is not None:
        return submit(responses, instruction_ids, kwargs, prompts)
    out = verifier(responses, instruction_ids, kwargs, prompts)
    return Pending(lambda: out)


class MixedVerifier:
    """Route each constraint to its source (see the module docstring).

    Args:
        engine: ``(responses, ids, kwargs, prompts) -> [[bool]]`` for the engine's ids.
        sandbox, judge: :class:`RewardSource` for :data:`RULE_ID` / :data:`LLM_ID` constraints;
            a constraint whose source is missing is ``False`` and counted (``rule_disabled`` /
            ``judge_disabled``): data loading skips such rows, so this is a last guard.
    """

    def __init__(self, engine: Callable, sandbox: RewardSource | None = None,
                 judge: RewardSource | None = None):
        self.engine, self.sandbox, self.judge = engine, sandbox, judge
        self.disabled = {RULE_ID: 0, LLM_ID: 0}
        self.reused = {RULE_ID: 0, LLM_ID: 0}

    def __call__(self, responses, instruction_ids, kwargs, prompts=None) -> list[list[bool]]:
        return self.submit(responses, instruction_ids, kwargs, prompts).result()

    def recheck(self, responses, instruction_ids, kwargs, prompts=None) -> list[list[bool]]:
        """Verify hindsight replays under their rewritten instructions ``x'``
        (:func:`hirfast.replay.recheck`): engine ids are checked again (IFBench's ``repeat:*``
        reads the prompt), dataset criteria keep the verdict they had under ``x``.

        A replay keeps only the criteria its response met, so each of its dataset criteria was
        ``True`` under ``x``. A ``[rule]`` function sees only the response: running it again
        could only repeat that. A judge question names one criterion ("judge only this
        criterion"); under ``x'`` only the instruction around it is shorter, and HiR's rewrite
        gives the replay reward 1 from the verdicts it already has (the authors' code checks
        nothing again). So no sandbox run and no judge request is spent here; the reused
        verdicts are counted (``rule_recheck_reused``, ``judge_recheck_reused``). Only call
        this with rows whose dataset criteria were all met.
        """
        return self.submit(responses, instruction_ids, kwargs, prompts,
                           reuse_dataset=True).result()

    def submit(self, responses, instruction_ids, kwargs, prompts=None, *,
               engine: Callable | None = None, reuse_dataset: bool = False) -> Pending:
        """Start every source; ``engine`` replaces the engine for this call (its per-constraint
        values, of any type, are put in place as they are; dataset verdicts are bools).
        ``reuse_dataset``: dataset criteria are ``True`` without asking (see :meth:`recheck`)."""
        engine = engine or self.engine
        prompts = list(prompts) if prompts is not None else [""] * len(responses)
        routed = {RULE_ID: ([], []), LLM_ID: ([], [])}  # (positions, items)
        reused = []
        eng_rows, eng_pos = [], []
        for r, (resp, ids, kws) in enumerate(zip(responses, instruction_ids, kwargs)):
            e_ids, e_kws, e_pos = [], [], []
            for j, (iid, kw) in enumerate(zip(ids, kws)):
                if iid in routed and reuse_dataset:
                    self.reused[iid] += 1
                    reused.append((r, j))
                elif iid in routed:
                    kw = kw or {}
                    item = CheckItem(prompts[r], str(kw.get("criterion", "")), resp,
                                     kw.get("function"))
                    routed[iid][0].append((r, j))
                    routed[iid][1].append(item)
                else:
                    e_ids.append(iid)
                    e_kws.append(kw)
                    e_pos.append(j)
            if e_ids:
                eng_rows.append((r, resp, e_ids, e_kws))
                eng_pos.append(e_pos)
        futures = {}
        for iid, source in ((LLM_ID, self.judge), (RULE_ID, self.sandbox)):  # the slowest first
            positions, items = routed[iid]
            if not items:
                continue
            if source is None:
                self.disabled[iid] += len(items)
            else:
                futures[iid] = source.submit(items)
        out = [[False] * len(ids) for ids in instruction_ids]
        for r, j in reused:
            out[r][j] = True
        if eng_rows:
            verdicts = engine([x[1] for x in eng_rows], [x[2] for x in eng_rows],
                                   [x[3] for x in eng_rows], [prompts[x[0]] for x in eng_rows])
            for (r, *_), pos, v in zip(eng_rows, eng_pos, verdicts):
                for j, value in zip(pos, v):
                    out[r][j] = value

        def merge() -> list[list[bool]]:
            for iid, fut in futures.items():
                for (r, j), ok in zip(routed[iid][0], fut.result()):
                    out[r][j] = bool(ok)
            return out

        return Pending(merge)

    def metrics(self) -> dict:
        m = {}
        for source in (self.sandbox, self.judge):
            if source is not None:
                m.update(source.metrics())
        if self.disabled[RULE_ID]:
            m["rule_disabled"] = self.disabled[RULE_ID]
        if self.disabled[LLM_ID]:
            m["judge_disabled"] = self.disabled[LLM_ID]
        if self.reused[RULE_ID]:
            m["rule_recheck_reused"] = self.reused[RULE_ID]
        if self.reused[LLM_ID]:
            m["judge_recheck_reused"] = self.reused[LLM_ID]
        return m

    def close(self) -> None:
        for source in (self.sandbox, self.judge):
            if source is not None:
                source.close()


def build_verifier(engine: Callable, *, allow_dataset_code: bool = False, sandbox_workers: int = 2,
                   sandbox_timeout_s: float = 2.0, sandbox_memory_mb: int = 1024,
                   judge_model: str | None = None, judge_base_url: str | None = None,
                   judge_api_key_env: str = "OPENAI_API_KEY", judge_concurrency: int = 8,
                   judge_timeout_s: float = 30.0, judge_retries: int = 3,
                   judge_cache: str | None = None) -> MixedVerifier:
    """A :class:`MixedVerifier` with the sandbox (only with ``allow_dataset_code``) and the judge
    (only with ``judge_model``) as configured."""
    sandbox = judge = None
    if allow_dataset_code:
        from .sandbox import RuleSandbox
        sandbox = RuleSandbox(sandbox_workers, timeout_s=sandbox_timeout_s,
                              memory_mb=sandbox_memory_mb)
    if judge_model:
        from .judge import LLMJudge
        judge = LLMJudge(judge_model, judge_base_url, api_key_env=judge_api_key_env,
                         concurrency=judge_concurrency, timeout_s=judge_timeout_s,
                         retries=judge_retries, cache_path=judge_cache)
    return MixedVerifier(engine, sandbox, judge)


def options_from_config(cfg) -> dict:
    """:func:`build_verifier`'s keyword arguments from a ``TrainConfig`` (or any object with its
    ``allow_dataset_code``, ``sandbox_*`` and ``judge_*`` fields); the judge cache defaults to
    ``<out>/judge_cache.sqlite`` (``""``: no cache)."""
    cache = getattr(cfg, "judge_cache", None)
    if cache is None and getattr(cfg, "out", None):
        cache = os.path.join(cfg.out, "judge_cache.sqlite")
    cache = cache or None  # "" turns the cache off
    return {"allow_dataset_code": bool(getattr(cfg, "allow_dataset_code", False)),
            "sandbox_workers": getattr(cfg, "sandbox_workers", 2),
            "sandbox_timeout_s": getattr(cfg, "sandbox_timeout_s", 2.0),
            "sandbox_memory_mb": getattr(cfg, "sandbox_memory_mb", 1024),
            "judge_model": getattr(cfg, "judge_model", None),
            "judge_base_url": getattr(cfg, "judge_base_url", None),
            "judge_api_key_env": getattr(cfg, "judge_api_key_env", "OPENAI_API_KEY"),
            "judge_concurrency": getattr(cfg, "judge_concurrency", 8),
            "judge_timeout_s": getattr(cfg, "judge_timeout_s", 60.0),
            "judge_retries": getattr(cfg, "judge_retries", 3),
            "judge_cache": cache}


def load_options(cfg) -> dict:
    """:func:`hirfast.data.load_tasks`'s type4 switches from a config: which criteria can be
    checked as configured."""
    return {"allow_dataset_code": bool(getattr(cfg, "allow_dataset_code", False)),
            "judge": bool(getattr(cfg, "judge_model", None))}


def add_arguments(parser) -> None:
    """The type4 flags of ``hirfast verify`` / ``hirfast eval`` (named as the training config's
    fields, so :func:`options_from_config` reads the parsed namespace)."""
    g = parser.add_argument_group("HIR-16K type4 criteria")
    g.add_argument("--allow-dataset-code", action="store_true",
                   help="run [rule] functions (untrusted dataset code) in the sandbox")
    g.add_argument("--sandbox-workers", type=int, default=2, metavar="N")
    g.add_argument("--sandbox-timeout-s", type=float, default=2.0, metavar="S")
    g.add_argument("--sandbox-memory-mb", type=int, default=1024, metavar="MB")
    g.add_argument("--judge-model", metavar="NAME", help="judge [llm] criteria with this model")
    g.add_argument("--judge-base-url", metavar="URL",
                   help="OpenAI-compatible API root (default: OPENAI_BASE_URL)")
    g.add_argument("--judge-api-key-env", default="OPENAI_API_KEY", metavar="VAR")
    g.add_argument("--judge-concurrency", type=int, default=8, metavar="N")
    g.add_argument("--judge-timeout-s", type=float, default=60.0, metavar="S")
    g.add_argument("--judge-retries", type=int, default=3, metavar="N")
    g.add_argument("--judge-cache", metavar="FILE", help="SQLite cache of judge verdicts")
