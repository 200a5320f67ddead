"""Training data: readers for the instruction-following row formats, and the task sampler.

Formats, detected row by row (one JSON object per line):

- **IFEval-style** ``{"key", "prompt", "instruction_id_list", "kwargs"}``, optionally with
  ``"query"`` and per-constraint ``"texts"`` so the instruction can be rewritten.
- **HIR-16K** (sastpg/HIR-16K) ``{"messages", "criteria", "source", "ground_truth"}``: ``source``
  type1/type2 carry ``{"instruction_id_list", "kwargs"}`` (IFEval / IFBench ids) and are used;
  type3 carries MulDimIF triples ``{"constraints": [[category, subcategory, text], ...],
  "constraint_pattern"}``, used as ids ``"muldimif:<category>_<subcategory>"`` with kwargs
  ``{"text": text}`` (:func:`hirfast.verify.muldimif_constraint`);
  type4 carry ``{"checker": ["[rule] ..." | "[llm] ...", ...], "functions": [...]}``
  (:mod:`hirfast.rewards.type4`): rows with ``[rule]`` criteria load with ``allow_dataset_code``
  (checked in the sandbox), rows with ``[llm]`` criteria with a judge; otherwise they are counted
  and skipped with the reason.
- **allenai IF_multi_constraints_upto5** ``{"messages", "ground_truth"}`` with ``ground_truth``
  (a list, or its JSON text) ``[{"instruction_id": [...], "kwargs": [...]}]``.

The instruction is the last user message (or ``prompt``). A task is *rewritable* (its failures can
be replayed) only when its instruction is exactly the query followed by its constraint texts in
one of the :data:`hirfast.constraints.RENDER_STYLES`: then rewriting is re-rendering, and an
original and its replay differ only in the constraints dropped. Texts come from the row
(``criteria`` / ``texts``) or, when absent, from :func:`hirfast.constraints.describe`. Other
tasks train as given and are never replayed; the load report counts them.

Malformed rows (bad JSON, unknown id, bad kwargs: every row is validated by the checker itself, so
what the engine would reject at training time is caught at load time) are skipped with a count
and the first few reasons logged, or rejected up front with ``strict=True`` (``--strict-data``).
"""
from __future__ import annotations

import collections
import json
import logging
import random
from dataclasses import dataclass, field
from typing import Sequence

from .constraints import (RENDER_STYLES, Constraint, ConstraintSpecError, Task, describe,
                          normalize_kwargs, render)

__all__ = ["DataError", "LoadReport", "load_tasks", "parse_row", "write_tasks", "TaskSampler",
           "Task", "Constraint"]

log = logging.getLogger("hirfast.data")

# HIR-16K sources without a checker in hirfast yet: counted and skipped.
UNSUPPORTED_SOURCES = {
}


class DataError(ValueError):
    """A malformed row: ``where`` is ``file:line``, ``field`` the offending field."""

    def __init__(self, where: str, field: str, reason: str):
        self.where, self.field, self.reason = where, field, reason
        super().__init__(f"{where}: field {field!r}: {reason}")


class _Unsupported(Exception):
    """A well-formed row of a kind hirfast cannot train on (yet, or as configured)."""

    def __init__(self, reason: str, source: str = "", criteria: int = 0):
        super().__init__(reason)
        self.source, self.criteria = source, criteria


@dataclass
class LoadReport:
    """What a load did: counts of rows used, skipped (by reason) and not rewritable."""

    path: str
    rows: int = 0
    loaded: int = 0
    not_rewritable: int = 0
    malformed: int = 0
    unsupported: collections.Counter = field(default_factory=collections.Counter)
    first_errors: list[str] = field(default_factory=list)
    # per source (type1..type4, ifeval, ...): rows/criteria used and skipped
    by_source: dict = field(default_factory=lambda: collections.defaultdict(collections.Counter))

    def count(self, source: str, used: bool, criteria: int) -> None:
        c = self.by_source[source or "?"]
        c["rows_used" if used else "rows_skipped"] += 1
        c["criteria_used" if used else "criteria_skipped"] += criteria

    def per_source(self) -> str:
        """One line per source: rows and criteria used and skipped."""
        return "\n".join(
            f"  {src}: {c['rows_used']} rows used ({c['criteria_used']} criteria), "
            f"{c['rows_skipped']} skipped ({c['criteria_skipped']} criteria)"
            for src, c in sorted(self.by_source.items()))

    def summary(self) -> str:
        parts = [f"{self.path}: {self.loaded} of {self.rows} rows loaded"]
        if self.malformed:
            parts.append(f"{self.malformed} malformed skipped")
        for reason, n in sorted(self.unsupported.items()):
            parts.append(f"{n} skipped ({reason})")
        if self.not_rewritable:
            parts.append(f"{self.not_rewritable} not rewritable (instruction is not query + "
                         "constraint texts; trained without replay)")
        return "; ".join(parts)


def load_tasks(path: str, *, strict: bool = False, validate: bool = True,
               max_logged_errors: int = 5, allow_dataset_code: bool = False,
               judge: bool = False) -> tuple[list[Task], LoadReport]:
    """Read a JSONL file of any supported format into tasks.

    Args:
        path: the file.
        strict: raise :class:`DataError` at the first malformed row instead of skipping it.
        validate: check every row's ids and kwargs with the constraint engine
            (:func:`hirfast.verify.check` on a dummy response), naming the row and field.
        max_logged_errors: how many skip reasons to keep and log.
        allow_dataset_code: load type4 rows with ``[rule]`` criteria (their functions run in
            the sandbox); off, such rows are skipped and counted.
        judge: a judge is configured: load type4 rows with ``[llm]`` criteria.
    """
    report = LoadReport(path=path)
    tasks: list[Task] = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            report.rows += 1
            where = f"{path}:{lineno}"
            try:
                task = parse_row(line, where=where, validate=validate,
                                 allow_dataset_code=allow_dataset_code, judge=judge)
            except _Unsupported as e:
                report.unsupported[str(e)] += 1
                report.count(e.source, False, e.criteria)
                continue
            except DataError as e:
                if strict:
                    raise
                report.malformed += 1
                report.count("malformed", False, 0)
                if len(report.first_errors) < max_logged_errors:
                    report.first_errors.append(str(e))
                continue
            tasks.append(task)
            report.count(task.source, True, len(task.constraints))
            report.loaded += 1
            report.not_rewritable += not task.rewritable
    for reason in report.first_errors:
        log.warning("skipped %s", reason)
    if report.malformed > len(report.first_errors):
        log.warning("... and %d more malformed rows", report.malformed - len(report.first_errors))
    for reason, n in report.unsupported.items():
        log.warning("skipped %d rows: %s", n, reason)
    log.info("%s", report.summary())
    log.info("per type:\n%s", report.per_source())
    return tasks, report


def parse_row(line: str | dict, *, where: str = "<row>", validate: bool = True,
              allow_dataset_code: bool = False, judge: bool = False) -> Task:
    """One row (JSON text or an already decoded object) as a :class:`Task`.

    Raises :class:`DataError` for a malformed row.
    """
    if isinstance(line, str):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(where, "<json>", f"bad JSON: {e.msg} at column {e.colno}") from None
    else:
        row = line
    if not isinstance(row, dict):
        raise DataError(where, "<row>", f"expected a JSON object, got {type(row).__name__}")

    if "instruction_id_list" in row:
        instruction = _text_field(row, "prompt", where)
        ids, kwargs = _ids_and_kwargs(row.get("instruction_id_list"), row.get("kwargs"), where,
                                      "instruction_id_list", "kwargs")
        texts = _texts(row.get("texts"), len(ids), where, "texts")
        query = row.get("query")
        if query is not None and not isinstance(query, str):
            raise DataError(where, "query", f"expected a string, got {type(query).__name__}")
        source = "ifeval"
    elif "ground_truth" in row and "source" in row:
        source = row["source"]
        if source in UNSUPPORTED_SOURCES:
            crit = row.get("criteria")
            raise _Unsupported(UNSUPPORTED_SOURCES[source], source,
                               len(crit) if isinstance(crit, list) else 0)
        if source == "type4":
            return _type4_task(row, where, allow_dataset_code, judge)
        if source not in ("type1", "type2", "type3"):
            raise DataError(where, "source", f"expected type1..type4, got {source!r}")
        instruction = _user_message(row, where)
        gt = _json_field(row["ground_truth"], where, "ground_truth")
        if source == "type3":
            ids, kwargs = _muldimif_constraints(gt, where)
            texts = _texts(row.get("criteria"), len(ids), where, "criteria")
            if texts is None:
                texts = [kw["text"] for kw in kwargs]
            query = None
        elif not isinstance(gt, dict):
            raise DataError(where, "ground_truth", "expected an object with instruction_id_list "
                            "and kwargs for a type1/type2 row")
        else:
            ids, kwargs = _ids_and_kwargs(gt.get("instruction_id_list"), gt.get("kwargs"), where,
                                          "ground_truth.instruction_id_list", "ground_truth.kwargs")
            texts = _texts(row.get("criteria"), len(ids), where, "criteria")
            query = None
    elif "ground_truth" in row:
        instruction = _user_message(row, where)
        gt = _json_field(row["ground_truth"], where, "ground_truth")
        if isinstance(gt, list) and len(gt) == 1:
            gt = gt[0]
        if not isinstance(gt, dict) or "instruction_id" not in gt:
            raise DataError(where, "ground_truth", 'expected [{"instruction_id": [...], '
                            '"kwargs": [...]}]')
        ids, kwargs = _ids_and_kwargs(gt.get("instruction_id"), gt.get("kwargs"), where,
                                      "ground_truth.instruction_id", "ground_truth.kwargs")
        texts = None
        query = None
        source = "if_multi_constraints"
    else:
        raise DataError(where, "<row>", "unrecognized row: expected IFEval-style keys (prompt, "
                        "instruction_id_list, kwargs), HIR-16K keys (messages, criteria, source, "
                        "ground_truth) or IF_multi_constraints keys (messages, ground_truth)")

    if not ids:
        raise DataError(where, "instruction_id_list", "no constraints")
    if validate:
        _validate_with_engine(ids, kwargs, instruction, where)
    if texts is None:
        texts = _describe_all(ids, kwargs)
    key = str(row.get("key", row.get("id", where)))
    return _make_task(key, instruction, query, ids, kwargs, texts, source)


def _make_task(key, instruction, query, ids, kwargs, texts, source) -> Task:
    """A rewritable task when ``instruction`` is exactly (query, texts) in some render style."""
    if texts is not None:
        cons = tuple(Constraint(i, kw, t) for i, kw, t in zip(ids, kwargs, texts))
        if query is not None:
            for style in RENDER_STYLES:
                if render(query, texts, style=style) == instruction:
                    return Task(query, cons, key=key, style=style, source=source)
        else:
            found = _split_query(instruction, texts)
            if found is not None:
                q, style = found
                return Task(q, cons, key=key, style=style, source=source)
    else:
        cons = tuple(Constraint(i, kw, "") for i, kw in zip(ids, kwargs))
    return Task(query if query is not None else instruction, cons, key=key, prompt=instruction,
                source=source)


def _split_query(instruction: str, texts: Sequence[str]) -> tuple[str, str] | None:
    """(query, style) such that ``render(query, texts, style=style) == instruction``, if any.

    Styles can be ambiguous ("q\\n\\nC" is also "q\\n" + "\\n" + "C", and a "rules" list also
    reads as a query ending in "1." followed by one sentence): the shortest query wins, the one
    that gives the most text to the constraints.
    """
    marker = "\x00"  # not in any text: renders the query slot so the rest can be matched
    found = []
    for style, fn in RENDER_STYLES.items():
        head, _, tail = fn(marker, list(texts)).partition(marker)
        if instruction.startswith(head) and instruction.endswith(tail) \
                and len(instruction) > len(head) + len(tail):
            q = instruction[len(head):len(instruction) - len(tail)]
            if q.strip() and render(q, texts, style=style) == instruction:
                found.append((q, style))
    return min(found, key=lambda f: len(f[0]), default=None)


def _describe_all(ids, kwargs) -> list[str] | None:
    try:
        return [describe(i, kw) for i, kw in zip(ids, kwargs)]
    except ConstraintSpecError:
        return None


def _type4_task(row, where, allow_dataset_code, judge) -> Task:
    """A HIR-16K type4 row (see :mod:`hirfast.rewards.type4`), or :class:`_Unsupported` when a
    criterion needs what is not enabled."""
    from .rewards import LLM_ID, RULE_ID
    from .rewards.type4 import REASON_NO_CODE, REASON_NO_JUDGE, Type4Error, parse_type4

    instruction = _user_message(row, where)
    try:
        ids, kwargs, texts = parse_type4(row["ground_truth"])
    except Type4Error as e:
        raise DataError(where, e.field, e.reason) from None
    if RULE_ID in ids and not allow_dataset_code:
        raise _Unsupported(REASON_NO_CODE, "type4", len(ids))
    if LLM_ID in ids and not judge:
        raise _Unsupported(REASON_NO_JUDGE, "type4", len(ids))
    key = str(row.get("key", row.get("id", where)))
    return _make_task(key, instruction, None, ids, kwargs, texts, "type4")


def _validate_with_engine(ids, kwargs, instruction, where):
    from . import verify

    try:
        verify.check(["x"], [ids], [kwargs], [instruction])
    except verify.ConstraintError as e:
        raise DataError(where, f"constraint {e.constraint} ({e.instruction_id}): {e.field}",
                        e.reason) from None


def _muldimif_constraints(gt, where) -> tuple[list[str], list[dict]]:
    """A type3 row's ``ground_truth.constraints`` as (ids, kwargs); an unknown category key or a
    triple that is not three strings is a DataError naming the constraint."""
    from . import verify

    cons = gt.get("constraints") if isinstance(gt, dict) else None
    if not isinstance(cons, list):
        raise DataError(where, "ground_truth.constraints",
                        "expected a list of [category, subcategory, text] for a type3 row")
    ids, kwargs = [], []
    for j, c in enumerate(cons):
        name = f"ground_truth.constraints[{j}]"
        if not isinstance(c, list) or len(c) != 3 or not all(isinstance(x, str) for x in c):
            raise DataError(where, name, "expected [category, subcategory, text] (three strings)")
        try:
            i, kw = verify.muldimif_constraint(*c)
        except ValueError as e:
            raise DataError(where, name, str(e)) from None
        ids.append(i)
        kwargs.append(kw)
    return ids, kwargs


def _text_field(row, name, where) -> str:
    value = row.get(name)
    if not isinstance(value, str) or not value.strip():
        raise DataError(where, name, "missing or not a non-empty string")
    return value


def _user_message(row, where) -> str:
    messages = row.get("messages")
    if isinstance(messages, list):
        users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
        if users and isinstance(users[-1].get("content"), str) and users[-1]["content"].strip():
            return users[-1]["content"]
        raise DataError(where, "messages", "no user message with non-empty string content")
    if "prompt" in row:
        return _text_field(row, "prompt", where)
    raise DataError(where, "messages", "missing (a list of {role, content} messages)")


def _json_field(value, where, name):
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as e:
            raise DataError(where, name, f"bad JSON inside the string: {e.msg}") from None
    return value


def _ids_and_kwargs(ids, kwargs, where, ids_name, kwargs_name) -> tuple[list[str], list[dict]]:
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise DataError(where, ids_name, "expected a list of instruction id strings")
    if kwargs is None:
        kwargs = [{} for _ in ids]
    if not isinstance(kwargs, list) or len(kwargs) != len(ids):
        raise DataError(where, kwargs_name, f"expected a list of {len(ids)} objects (one per id)")
    out = []
    for j, kw in enumerate(kwargs):
        if kw is not None and not isinstance(kw, dict):
            raise DataError(where, f"{kwargs_name}[{j}]", f"expected an object, got {type(kw).__name__}")
        out.append(normalize_kwargs(kw))
    return list(ids), out


def _texts(texts, n, where, name) -> list[str] | None:
    if texts is None:
        return None
    if not isinstance(texts, list) or len(texts) != n or not all(
            isinstance(t, str) and t.strip() for t in texts):
        raise DataError(where, name, f"expected {n} non-empty strings (one per constraint)")
    return list(texts)


def write_tasks(path: str, tasks: Sequence[Task]) -> None:
    """Write tasks as IFEval-style rows with ``query`` and ``texts`` (read back by
    :func:`load_tasks` as the same, rewritable tasks)."""
    with open(path, "w", encoding="utf-8") as fh:
        for t in tasks:
            row = {"key": t.key, "prompt": t.instruction(), "instruction_id_list": t.instruction_ids,
                   "kwargs": t.kwargs}
            if t.rewritable:
                row.update(query=t.query, texts=[c.text for c in t.constraints])
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


class TaskSampler:
    """Batches of tasks in a seeded random order, reshuffled every epoch; resumable.

    The order of epoch ``e`` depends only on ``(seed, e)``, so the state is two integers.
    """

    def __init__(self, tasks: Sequence[Task], *, seed: int, shuffle: bool = True):
        if not tasks:
            raise ValueError("no tasks to sample from")
        self.tasks, self.seed, self.shuffle = list(tasks), seed, shuffle
        self.epoch, self.position = 0, 0
        self._order = self._epoch_order(0)

    def _epoch_order(self, epoch: int) -> list[int]:
        order = list(range(len(self.tasks)))
        if self.shuffle:
            random.Random(self.seed * 1_000_003 + epoch).shuffle(order)
        return order

    def next_batch(self, size: int) -> list[Task]:
        out = []
        while len(out) < size:
            if self.position == len(self._order):
                self.epoch, self.position = self.epoch + 1, 0
                self._order = self._epoch_order(self.epoch)
            out.append(self.tasks[self._order[self.position]])
            self.position += 1
        return out

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position, "num_tasks": len(self.tasks)}

    def load_state_dict(self, state: dict) -> None:
        if state.get("num_tasks") != len(self.tasks):
            raise ValueError(f"the checkpoint's sampler saw {state.get('num_tasks')} tasks, this "
                             f"run has {len(self.tasks)}: resume with the same data")
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._order = self._epoch_order(self.epoch)

