"""HIR-16K ``source: type4`` rows (from VerIF): ``[rule]`` and ``[llm]`` criteria as constraints.

A row's ``ground_truth`` (an object, or its JSON text) is ``{"checker": [...], "functions":
[...]}``: ``checker[i]`` is ``"[rule] <text>"`` or ``"[llm] <text>"``; ``functions`` holds the
Python source of each ``[rule]`` criterion, either aligned with ``checker`` (one entry per
criterion, ``""``/``null`` for ``[llm]`` ones) or listing only the ``[rule]`` sources, in order.
Each criterion becomes a constraint: :data:`RULE_ID` with kwargs ``{"function", "criterion"}``, or
:data:`LLM_ID` with ``{"criterion"}``, its text the checker text without its tag.
"""
from __future__ import annotations

import json
import re

from . import LLM_ID, RULE_ID

__all__ = ["parse_type4", "Type4Error", "REASON_NO_CODE", "REASON_NO_JUDGE"]

REASON_NO_CODE = ("HIR-16K type4 [rule] criteria run dataset code: off by default, set "
                  "allow_dataset_code: true to run them in the sandbox")
REASON_NO_JUDGE = "HIR-16K type4 [llm] criteria need an LLM judge: set judge_model (and judge_base_url)"

_TAG = re.compile(r"^\s*\[(rule|llm)\]\s*", re.IGNORECASE)


class Type4Error(ValueError):
    """A malformed type4 row: ``field`` names what was wrong."""

    def __init__(self, field: str, reason: str):
        self.field, self.reason = field, reason
        super().__init__(f"{field}: {reason}")


def parse_type4(ground_truth) -> tuple[list[str], list[dict], list[str]]:
    """``(ids, kwargs, texts)`` of a type4 row's ``ground_truth``; raises :class:`Type4Error`."""
    gt = ground_truth
    if isinstance(gt, str):
        try:
            gt = json.loads(gt)
        except json.JSONDecodeError as e:
            raise Type4Error("ground_truth", f"bad JSON inside the string: {e.msg}") from None
    if not isinstance(gt, dict):
        raise Type4Error("ground_truth", 'expected {"checker": [...], "functions": [...]}')
    checker, functions = gt.get("checker"), gt.get("functions")
    if not isinstance(checker, list) or not checker or not all(isinstance(c, str) for c in checker):
        raise Type4Error("ground_truth.checker", "expected a non-empty list of strings")
    if functions is None:
        functions = []
    if not isinstance(functions, list) or not all(f is None or isinstance(f, str) for f in functions):
        raise Type4Error("ground_truth.functions", "expected a list of Python sources")
    kinds, texts = [], []
    for i, c in enumerate(checker):
        m = _TAG.match(c)
        if m is None:
            raise Type4Error(f"ground_truth.checker[{i}]", f"expected '[rule] ...' or '[llm] ...', "
                             f"got {c[:40]!r}")
        text = c[m.end():].strip()
        if not text:
            raise Type4Error(f"ground_truth.checker[{i}]", "empty criterion text")
        kinds.append(m.group(1).lower())
        texts.append(text)
    n_rule = kinds.count("rule")
    if len(functions) == len(checker):
        sources = functions
    elif len([f for f in functions if f and f.strip()]) == n_rule:
        it = iter(f for f in functions if f and f.strip())
        sources = [next(it) if k == "rule" else None for k in kinds]
    else:
        raise Type4Error("ground_truth.functions", f"{len(functions)} functions for {n_rule} [rule] "
                         f"criteria of {len(checker)}")
    ids, kwargs = [], []
    for i, (kind, text, src) in enumerate(zip(kinds, texts, sources)):
        if kind == "rule":
            if not isinstance(src, str) or not src.strip():
                raise Type4Error(f"ground_truth.functions[{i}]", "a [rule] criterion without source")
            ids.append(RULE_ID)
            kwargs.append({"function": src, "criterion": text})
        else:
            ids.append(LLM_ID)
            kwargs.append({"criterion": text})
    return ids, kwargs, texts
