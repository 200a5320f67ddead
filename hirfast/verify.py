"""Batch constraint checking with hirfast's C++ engine (IFEval, IFBench and MulDimIF).

This module never imports torch: it is the part users take alone as a reward function.

The semantics are those of the Python reference checkers pinned in the project's CHECKERS.md
(Google's IFEval checkers as copied in sastpg/HIR, and allenai/IFBench as of 2025-07), pair for
pair, strict and loose:

- strict: a constraint holds iff ``response.strip()`` is non-empty and the check passes on
  ``response``;
- loose: the check is also tried on the response with ``*`` removed, without its first line, its
  last line, or both (and those three with ``*`` removed); it holds if any candidate with a
  non-empty ``strip()`` passes.

An exception inside a reference check counts as "not followed"; bad *input* (an unknown id, a
missing or ill-typed kwarg, an invalid pattern) raises :class:`ConstraintError` instead.

MulDimIF constraints (``[category, subcategory, text]``, see :func:`check_muldimif` and
docs/MULDIMIF.md) are the ids ``"muldimif:<category>_<subcategory>"`` with kwargs ``{"text": ...}``;
they follow the MulDimIF reference instead of the rules above: no blank-response rule, and
``loose`` gives the strict verdict.
"""
from __future__ import annotations

import os
from importlib import resources
from typing import Sequence

from . import _C

__all__ = ["check", "check_strict_and_loose", "instruction_ids", "ConstraintError",
           "check_muldimif", "muldimif_constraint", "muldimif_keys", "MULDIMIF_PREFIX"]

_C.set_assets_dir(os.fspath(resources.files("hirfast") / "assets"))


class ConstraintError(ValueError):
    """Bad input for one constraint of one row.

    Attributes: ``row`` (index in the batch), ``constraint`` (index in the row's list),
    ``instruction_id``, ``field`` (``"instruction_id"``, ``"kwargs.<name>"``, ...) and
    ``reason`` (what was wrong).
    """

    def __init__(self, row: int, constraint: int, instruction_id: str, field: str, reason: str):
        self.row, self.constraint = row, constraint
        self.instruction_id, self.field, self.reason = instruction_id, field, reason
        super().__init__(
            f"row {row}, constraint {constraint} ({instruction_id!r}), field {field!r}: {reason}"
        )


def instruction_ids() -> list[str]:
    """Every instruction id the engine knows, in registration order."""
    return list(_C.instruction_ids())


def check(
    responses: Sequence[str],
    instruction_ids: Sequence[Sequence[str]],
    kwargs: Sequence[Sequence[dict | None]],
    prompts: Sequence[str] | None = None,
    *,
    loose: bool = False,
    num_threads: int = 1,
) -> list[list[bool]]:
    """Check every constraint of every row; one boolean per constraint.

    Args:
        responses: one response per row (``str``; ``bytes`` are decoded as strict UTF-8).
        instruction_ids: per row, the instruction ids to check (e.g. ``"punctuation:no_comma"``).
        kwargs: per row, one dict per id with that checker's arguments, as in the IFEval /
            IFBench data files. ``None`` values are dropped (IFBench rows carry every key);
            integral floats such as ``5.0`` are accepted where an integer is expected.
        prompts: per row, the prompt; needed by checks that look at it (``combination:
            repeat_prompt`` takes ``prompt_to_repeat`` from kwargs; IFBench ``repeat:*`` use it).
        loose: the loose variant instead of strict (see the module docstring).
        num_threads: rows are spread over this many threads (the caller's and ``num_threads - 1``
            workers); the GIL is released while checking. Workers are kept between calls (up to
            8 wait idle, holding no locks), so a process that has checked on several threads has
            those threads; a forked child starts its own.

    Returns:
        ``result[r][j]`` is whether constraint ``j`` of row ``r`` holds.

    Raises:
        ConstraintError: a row names an unknown instruction id (with close matches suggested),
            lacks a required kwarg, has one of the wrong type or value, or carries an invalid
            pattern. Nothing is checked then; the error names the row, constraint and field.
        TypeError / ValueError: the arguments themselves are malformed (lengths differ, a
            response is not a str, ...), with the row named.
    """
    return _run(responses, instruction_ids, kwargs, prompts, "loose" if loose else "strict", num_threads)


def check_strict_and_loose(
    responses: Sequence[str],
    instruction_ids: Sequence[Sequence[str]],
    kwargs: Sequence[Sequence[dict | None]],
    prompts: Sequence[str] | None = None,
    *,
    num_threads: int = 1,
) -> tuple[list[list[bool]], list[list[bool]]]:
    """``(check(..., loose=False), check(..., loose=True))`` in one pass, for reports that give
    both (``hirfast verify``, ``hirfast eval``): the strict check is loose's first candidate, so
    this costs what the loose call costs alone. Arguments and errors as :func:`check`."""
    return _run(responses, instruction_ids, kwargs, prompts, "both", num_threads)


def _run(responses, instruction_ids, kwargs, prompts, mode, num_threads):
    if isinstance(responses, str):
        raise TypeError("responses must be a list of str, not a single str")
    if not isinstance(num_threads, int) or num_threads < 1:
        raise ValueError(f"num_threads must be a positive int, got {num_threads!r}")
    results, error = _C.check_batch(
        _as_list(responses), _as_list(instruction_ids), _as_list(kwargs),
        None if prompts is None else _as_list(prompts), mode, num_threads,
    )
    if error is not None:
        if error["field"] == "engine":  # a broken installation (a missing data file), not bad input
            raise RuntimeError(f"row {error['row']}, constraint {error['constraint']} "
                               f"({error['instruction_id']!r}): {error['message']}")
        raise ConstraintError(error["row"], error["constraint"], error["instruction_id"],
                              error["field"], error["message"])
    return results


def _as_list(x):
    return x if isinstance(x, (list, tuple)) else list(x)


# ---------------------------------------------------------------------------------------------
# MulDimIF: constraints as (category, subcategory, text)

MULDIMIF_PREFIX = "muldimif:"


def muldimif_keys() -> list[str]:
    """The 55 MulDimIF keys ``f"{category}_{subcategory}"`` of the reference's class_mapping."""
    return [i[len(MULDIMIF_PREFIX):] for i in _C.instruction_ids() if i.startswith(MULDIMIF_PREFIX)]


def muldimif_constraint(category: str, subcategory: str, text: str) -> tuple[str, dict]:
    """The (instruction id, kwargs) that :func:`check` takes for a MulDimIF constraint.

    MulDimIF checks a constraint from its text: the id is ``"muldimif:<category>_<subcategory>"``
    and the kwargs ``{"text": text}``. MulDimIF has no loose mode (its reference checks the
    response as given, blank or not): ``loose=True`` gives the strict verdict for these ids.

    Raises:
        ValueError: the key is not one of the 55 the reference knows (the message names it and
            suggests close ones), or an argument is not a str.
    """
    for name, value in (("category", category), ("subcategory", subcategory), ("text", text)):
        if not isinstance(value, str):
            raise ValueError(f"MulDimIF constraint {name} must be a str, got {type(value).__name__}")
    key = f"{category}_{subcategory}"
    if key not in _muldimif_key_set():
        import difflib

        close = difflib.get_close_matches(key, muldimif_keys(), n=3)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"unknown MulDimIF constraint key {key!r} (category {category!r}, "
                         f"subcategory {subcategory!r}){hint}")
    return MULDIMIF_PREFIX + key, {"text": text}


def check_muldimif(responses: Sequence[str], constraints: Sequence[Sequence[Sequence[str]]], *,
                   num_threads: int = 1) -> list[list[bool]]:
    """The MulDimIF reference's verdict for every constraint of every row.

    Args:
        responses: one response per row.
        constraints: per row, its constraints as ``[category, subcategory, text]`` (the test set's
            and HIR-16K type3's form).
        num_threads: as for :func:`check`.

    Raises:
        ConstraintError: a constraint is not three strings or has an unknown key (field
            ``"constraint"``); nothing is checked then.
    """
    if isinstance(responses, str):
        raise TypeError("responses must be a list of str, not a single str")
    ids, kwargs = [], []
    for r, row in enumerate(_as_list(constraints)):
        row_ids, row_kwargs = [], []
        for j, c in enumerate(_as_list(row)):
            if isinstance(c, str) or not hasattr(c, "__len__") or len(c) != 3:
                raise ConstraintError(r, j, "muldimif", "constraint",
                                      "expected [category, subcategory, text]")
            try:
                i, kw = muldimif_constraint(*c)
            except ValueError as e:
                raise ConstraintError(r, j, f"{c[0]}_{c[1]}", "constraint", str(e)) from None
            row_ids.append(i)
            row_kwargs.append(kw)
        ids.append(row_ids)
        kwargs.append(row_kwargs)
    return check(responses, ids, kwargs, num_threads=num_threads)


_MULDIMIF_KEYS: frozenset | None = None


def _muldimif_key_set() -> frozenset:
    global _MULDIMIF_KEYS
    if _MULDIMIF_KEYS is None:
        _MULDIMIF_KEYS = frozenset(muldimif_keys())
    return _MULDIMIF_KEYS


def _zhconv_verdict(rule: int, text: str) -> bool:
    """Language_Chinese's script checks, with zhconv (GPLv2+, an optional dependency called only
    here: ``pip install zhconv`` or ``pip install hirfast[muldimif]``). ``rule`` is
    csrc/checks_muldimif.h's MdChineseRule."""
    try:
        from zhconv import convert
    except ImportError:
        raise RuntimeError("MulDimIF Language_Chinese checks need zhconv (GPLv2+, not bundled): "
                           "pip install zhconv") from None
    if rule in (3, 6):  # entirely traditional / entirely simplified
        if any("A" <= c <= "Z" or "a" <= c <= "z" for c in text):
            return False
        return convert(text, "zh-tw" if rule == 3 else "zh-cn") == text
    target = "zh-cn" if rule == 4 else "zh-tw"  # has traditional / has simplified characters
    return any(convert(c, target) != c for c in set(text))  # per character: each distinct one once


_C.set_muldimif_zhconv(_zhconv_verdict)
