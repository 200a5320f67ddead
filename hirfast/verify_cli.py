"""`hirfast verify`: check a file of responses against the constraints of a file of prompts and
print IFEval's accuracy report, strict and loose.

Input rows are ``{"key", "prompt", "instruction_id_list", "kwargs"}`` (IFEval and IFBench test
files), or training rows (HIR-16K, IF_multi_constraints) read as ``hirfast train`` reads them: HIR-16K
type4 criteria need ``--allow-dataset-code`` ([rule]) and ``--judge-model`` ([llm]), and count as
both strict and loose; response rows are ``{"prompt", "response"}``, matched to input rows by prompt as the
reference harness does (the last response wins if a prompt repeats). ``--out`` writes one JSON row
per (row, constraint) pair, ``{"key", "index", "instruction_id", "strict", "loose"}``, in input
order. With neither file given, the bundled example (the IFEval prompts and Qwen2.5-7B's responses)
is checked. This module never imports torch.
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import os
import sys
import time
from importlib import resources
from typing import Iterator

from . import rewards, verify


class InputFileError(ValueError):
    """A problem in an input file, located by file, line and (where known) row key and field."""


@dataclasses.dataclass
class InputRow:
    key: object
    prompt: str
    instruction_ids: list
    kwargs: list
    where: str  # "file:line", for messages


@dataclasses.dataclass
class Scored:
    """Verdicts of every input row: strict[r][j] and loose[r][j] for constraint j of row r."""

    rows: list
    responses: list
    strict: list
    loose: list
    seconds: float


def example_paths() -> tuple[str, str]:
    base = resources.files("hirfast") / "assets"
    return (os.fspath(base / "benchmarks" / "ifeval_input_data.jsonl"),
            os.fspath(base / "examples" / "ifeval_responses_qwen25_7b.jsonl"))


def read_jsonl(path: str) -> Iterator[tuple[int, dict]]:
    """Yields (line number, object) for each non-blank line; errors name the file and line."""
    try:
        f = open(path, "rb")
    except OSError as e:
        raise InputFileError(f"{path}: cannot open: {e.strerror}") from None
    with f:
        for number, raw in enumerate(f, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise InputFileError(f"{path}:{number}: invalid UTF-8 at byte {e.start} of the line") from None
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as e:
                raise InputFileError(f"{path}:{number}: invalid JSON: {e.msg} (column {e.colno})") from None
            if not isinstance(obj, dict):
                raise InputFileError(f"{path}:{number}: expected a JSON object, got {type(obj).__name__}")
            yield number, obj


def _field(path, number, obj, name, types, what):
    if name not in obj:
        raise InputFileError(f"{path}:{number}: key {obj.get('key')!r}: missing field {name!r}")
    value = obj[name]
    if not isinstance(value, types):
        raise InputFileError(f"{path}:{number}: key {obj.get('key')!r}: field {name!r} must be {what}, "
                             f"got {type(value).__name__}")
    return value


def load_inputs(path: str, *, allow_dataset_code: bool = False, judge: bool = False) -> list[InputRow]:
    rows = []
    for number, obj in read_jsonl(path):
        if "instruction_id_list" not in obj and "ground_truth" in obj:
            rows.append(_training_row(path, number, obj, allow_dataset_code, judge))
            continue
        prompt = _field(path, number, obj, "prompt", str, "a string")
        ids = _field(path, number, obj, "instruction_id_list", list, "a list of ids")
        kwargs = _field(path, number, obj, "kwargs", list, "a list of dicts")
        if len(ids) != len(kwargs):
            raise InputFileError(f"{path}:{number}: key {obj.get('key')!r}: {len(ids)} instruction ids but "
                                 f"{len(kwargs)} kwargs (one dict per id is required)")
        for j, (i, k) in enumerate(zip(ids, kwargs)):
            if not isinstance(i, str):
                raise InputFileError(f"{path}:{number}: key {obj.get('key')!r}: instruction_id_list[{j}] "
                                     f"must be a string, got {type(i).__name__}")
            if k is not None and not isinstance(k, dict):
                raise InputFileError(f"{path}:{number}: key {obj.get('key')!r}: kwargs[{j}] must be an "
                                     f"object or null, got {type(k).__name__}")
        rows.append(InputRow(obj.get("key"), prompt, ids, [k or {} for k in kwargs], f"{path}:{number}"))
    return rows


def _training_row(path, number, obj, allow_dataset_code, judge) -> InputRow:
    """A HIR-16K / IF_multi_constraints row (type4 criteria included), read as training does."""
    from . import data

    where = f"{path}:{number}"
    try:
        task = data.parse_row(obj, where=where, validate=False,
                              allow_dataset_code=allow_dataset_code, judge=judge)
    except data.DataError as e:
        raise InputFileError(f"{where}: key {obj.get('key')!r}: field {e.field!r}: {e.reason}") from None
    except data._Unsupported as e:
        raise InputFileError(f"{where}: key {obj.get('key')!r}: {e}") from None
    return InputRow(obj.get("key", obj.get("id")), task.instruction(), task.instruction_ids,
                    task.kwargs, where)


def load_responses(path: str) -> dict[str, str]:
    """prompt -> response; the last row wins when a prompt repeats (as in the reference)."""
    out = {}
    for number, obj in read_jsonl(path):
        prompt = _field(path, number, obj, "prompt", str, "a string")
        out[prompt] = _field(path, number, obj, "response", str, "a string")
    return out


def match_responses(rows: list[InputRow], by_prompt: dict[str, str], responses_path: str) -> list[str]:
    missing = [r for r in rows if r.prompt not in by_prompt]
    if missing:
        keys = ", ".join(repr(r.key) for r in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise InputFileError(f"{responses_path}: no response for {len(missing)} prompt(s); keys {keys}")
    return [by_prompt[r.prompt] for r in rows]


def score(rows: list[InputRow], responses: list[str], threads: int = 1,
          verifier: "rewards.MixedVerifier | None" = None) -> Scored:
    """Strict and loose verdicts of every pair; a bad constraint raises InputFileError naming the
    row's key, line, instruction id and field. Rows with type4 criteria need ``verifier`` (their
    sandbox / judge verdict counts as both strict and loose)."""
    ids = [r.instruction_ids for r in rows]
    kwargs = [r.kwargs for r in rows]
    prompts = [r.prompt for r in rows]
    start = time.perf_counter()
    try:
        if verifier is not None and any(i in rewards.DATASET_IDS for row in ids for i in row):
            def both(resp, ids_, kws, prs):
                s, l = verify.check_strict_and_loose(resp, ids_, kws, prs, num_threads=threads)
                return [list(zip(a, b)) for a, b in zip(s, l)]
            pairs = verifier.submit(responses, ids, kwargs, prompts, engine=both).result()
            strict = [[v[0] if isinstance(v, tuple) else v for v in row] for row in pairs]
            loose = [[v[1] if isinstance(v, tuple) else v for v in row] for row in pairs]
        else:
            strict, loose = verify.check_strict_and_loose(responses, ids, kwargs, prompts,
                                                          num_threads=threads)
    except verify.ConstraintError as e:
        row = rows[e.row]
        raise InputFileError(f"{row.where}: key {row.key!r}: constraint {e.constraint} "
                             f"({e.instruction_id!r}): {e.field}: {e.reason}") from None
    return Scored(rows, responses, strict, loose, time.perf_counter() - start)


def accuracy_lines(rows: list[InputRow], verdicts: list[list[bool]]) -> list[str]:
    """IFEval's print_report: prompt- and instruction-level accuracy, then per category and id."""
    prompt_correct = sum(all(v) for v in verdicts)
    inst_total = sum(len(v) for v in verdicts)
    inst_correct = sum(sum(v) for v in verdicts)
    tier0_total, tier0_correct = collections.Counter(), collections.Counter()
    tier1_total, tier1_correct = collections.Counter(), collections.Counter()
    for row, v in zip(rows, verdicts):
        for iid, ok in zip(row.instruction_ids, v):
            cat = iid.split(":")[0]
            tier0_total[cat] += 1
            tier0_correct[cat] += ok
            tier1_total[iid] += 1
            tier1_correct[iid] += ok
    lines = [f"prompt-level: {prompt_correct / max(1, len(verdicts))}",
             f"instruction-level: {inst_correct / max(1, inst_total)}", ""]
    lines += [f"{k} {tier0_correct[k] / tier0_total[k]}" for k in sorted(tier0_total)]
    lines.append("")
    lines += [f"{k} {tier1_correct[k] / tier1_total[k]}" for k in sorted(tier1_total)]
    return lines


def summary_table(scored: Scored) -> str:
    """The four headline numbers in one table."""
    def acc(verdicts):
        n_inst = sum(len(v) for v in verdicts)
        return (sum(all(v) for v in verdicts) / max(1, len(verdicts)),
                sum(sum(v) for v in verdicts) / max(1, n_inst))
    sp, si = acc(scored.strict)
    lp, li = acc(scored.loose)
    n_pairs = sum(len(v) for v in scored.strict)
    return "\n".join([
        f"{'':10} {'prompt-level':>13} {'instruction-level':>18}",
        f"{'strict':10} {sp:13.4f} {si:18.4f}",
        f"{'loose':10} {lp:13.4f} {li:18.4f}",
        f"({len(scored.rows)} prompts, {n_pairs} pairs, checked strict + loose in {scored.seconds * 1e3:.1f} ms)",
    ])


def report(scored: Scored) -> str:
    parts = [summary_table(scored), "", "== strict =="] + accuracy_lines(scored.rows, scored.strict)
    parts += ["", "== loose =="] + accuracy_lines(scored.rows, scored.loose)
    return "\n".join(parts)


def write_pairs(scored: Scored, path: str) -> None:
    """One JSON row per pair, in input order; written to a temporary file and renamed."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        for row, s, l in zip(scored.rows, scored.strict, scored.loose):
            for j, iid in enumerate(row.instruction_ids):
                f.write(json.dumps({"key": row.key, "index": j, "instruction_id": iid,
                                    "strict": s[j], "loose": l[j]}, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def verifier_from_args(args, rows: list[InputRow]) -> "rewards.MixedVerifier | None":
    """A verifier with the sandbox / judge the flags give, when some row has type4 criteria."""
    if not any(i in rewards.DATASET_IDS for r in rows for i in r.instruction_ids):
        return None
    opts = rewards.options_from_config(args)
    opts["judge_cache"] = args.judge_cache or None  # --out is a file (or an eval folder) here
    return rewards.build_verifier(verify.check, **opts)


def print_reward_metrics(verifier) -> None:
    m = verifier.metrics()
    if m:
        print("type4 criteria: " + ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                                             for k, v in sorted(m.items())))
    for source in (verifier.sandbox, verifier.judge):
        for msg in getattr(source, "first_failures", [])[:5]:
            print(f"  failure: {msg}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input-data", metavar="FILE",
                        help="prompts with constraints: JSONL rows {key, prompt, instruction_id_list, kwargs} "
                             "or HIR-16K rows (type4 with the flags below) (default: the bundled IFEval "
                             "prompts)")
    parser.add_argument("--responses", metavar="FILE",
                        help="JSONL rows {prompt, response} (default: the bundled Qwen2.5-7B responses)")
    parser.add_argument("--out", metavar="FILE",
                        help="write one JSON row per pair {key, index, instruction_id, strict, loose}")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, metavar="N",
                        help="worker threads for checking (default: all cores)")
    rewards.add_arguments(parser)


def main(args: argparse.Namespace) -> int:
    if (args.input_data is None) != (args.responses is None):
        print("hirfast verify: error: give both --input-data and --responses, or neither "
              "(to check the bundled example)", file=sys.stderr)
        return 2
    if args.threads < 1:
        print(f"hirfast verify: error: --threads must be at least 1, got {args.threads}", file=sys.stderr)
        return 2
    input_path, responses_path = (args.input_data, args.responses) if args.input_data else example_paths()
    if args.input_data is None:
        print(f"(no files given: checking the bundled example {os.path.basename(responses_path)})")
    try:
        rows = load_inputs(input_path, **rewards.load_options(args))
        responses = match_responses(rows, load_responses(responses_path), responses_path)
        verifier = verifier_from_args(args, rows)
        try:
            scored = score(rows, responses, args.threads, verifier)
        finally:
            if verifier is not None:
                print_reward_metrics(verifier)
                verifier.close()
    except (InputFileError, ValueError, RuntimeError) as e:
        print(f"hirfast verify: error: {e}", file=sys.stderr)
        return 2
    print(report(scored))
    if args.out:
        write_pairs(scored, args.out)
        print(f"\nwrote {sum(len(r.instruction_ids) for r in rows)} pairs to {args.out}")
    return 0
