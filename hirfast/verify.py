"""Batch constraint checking with hirfast's C++ engine (IFEval and IFBench instruction ids).

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
"""
from __future__ import annotations

import os
from importlib import resources
from typing import Sequence

from . import _C

__all__ = ["check", "check_strict_and_loose", "instruction_ids", "ConstraintError"]

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
