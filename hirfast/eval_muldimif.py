"""`hirfast eval --bench muldimif`: the MulDimIF benchmark (Junjie Ye et al., as shipped in
sastpg/HIR `evaluation/MulDimIF/`): 1,200 prompts, each with 1-6 constraints given as
``[category, subcategory, text]``, checked by the C++ engine (``hirfast.verify.check_muldimif``),
and the reference's report (its ``get_score``):

- overall: prompts whose every constraint holds, the macro average (mean per-prompt fraction of
  constraints met) and the micro average (constraints met over all constraints);
- the same three per constraint pattern (Example, Incorporation, Listing) and per difficulty
  (Level 1-4);
- per first-level type (Content, Format, Language, Length): prompts whose every constraint of
  that type holds, over prompts with one; per second-level type: constraints met.

The reference first maps its 55 category keys onto 4 first-level and 12 second-level types
(:data:`TYPE_OF_KEY`). MulDimIF has no loose mode. `--responses FILE` takes JSONL rows
``{"id", "response"}`` (the test set's ids) or ``{"prompt", "response"}``.
"""
from __future__ import annotations

import collections
import json
import os
from dataclasses import dataclass
from importlib import resources

from . import verify, verify_cli

ASSET = "muldimif_test.json"

# The reference's constraint_mapping: its 55 keys onto the 12 "First_Second" types.
_TYPES = {
    "Content_Keywords": ["Content_Keywords", "Content_Keywords: Must include", "Content_Mention"],
    "Length_Words": ["Length_Words", "Length_Words: At most", "Length_Words: At least", "Length_Words: Range",
                     "Words_At most", "Content_Length", "Format_Blurb", "Format_Word Count", "Format_Length"],
    "Length_Sentences": ["Length_Sentences", "Length_Sentences: At least", "Length_Sentences: At most",
                         "Length_Sentences: Range", "Sentences_At most", "Sentences_At least"],
    "Length_Paragraphs": ["Length_Paragraphs", "Length_Paragraphs: At most", "Length_Paragraphs: At least",
                          "Length_Paragraphs: Range", "Paragraphs_At most"],
    "Format_Table": ["Format_Table", "Table_Row limit", "Table_Column limit", "Format_Table: Row limit",
                     "Format_Table: Column limit", "Table_Table"],
    "Content_Punctuation": ["Punctuation_Ending punctuation", "Content_Punctuation: Ending punctuation",
                            "Content_Punctuation", "Content_Quotes"],
    "Language_English": ["Language_English", "Language_English: Capitalized", "Language_English: All Uppercase"],
    "Format_Markdown": ["Format_Markdown", "Markdown_Heading levels", "Format_Markdown: Heading levels",
                        "Markdown_Block quotes", "Format_Markdown: Block quotes"],
    "Format_Json": ["Json_Object nesting levels", "Format_Json", "Json_Number of attributes"],
    "Language_Chinese": ["Language_Chinese", "Language_Chinese: Simplified", "Language_Chinese: Traditional"],
    "Content_Identifiers": ["Content_Identifiers", "Citations_In-text", "Content_Sources", "Format_Text",
                            "References_Format", "Format_Bullet Points"],
    "Format_XML": ["XML_Number of attributes", "Format_XML"],
}
TYPE_OF_KEY = {key: t for t, keys in _TYPES.items() for key in keys}


@dataclass
class Prompt:
    """A benchmark row, shaped for :func:`hirfast.evaluate.generate_responses` (key, prompt, where)."""

    key: str
    prompt: str
    constraints: list
    pattern: str
    difficulty: str
    where: str


def benchmark_path() -> str:
    return os.fspath(resources.files("hirfast") / "assets" / "benchmarks" / ASSET)


def load_prompts(path: str | None = None) -> list[Prompt]:
    path = path or benchmark_path()
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    out = []
    for n, row in enumerate(data):
        users = [m["content"] for m in row["conversations"] if m.get("role") == "user"]
        out.append(Prompt(str(row["id"]), users[-1], [list(c) for c in row["constraints"]],
                          row["constraint_pattern"], row["difficulty"], f"{path}[{n}]"))
    return out


def load_responses(path: str, prompts: list[Prompt]) -> list[str]:
    """One response per prompt from rows ``{"id" | "prompt", "response"}`` (the last row wins)."""
    by_id, by_prompt = {}, {}
    for number, obj in verify_cli.read_jsonl(path):
        response = obj.get("response")
        if not isinstance(response, str):
            raise verify_cli.InputFileError(f"{path}:{number}: field 'response' must be a string")
        if "id" in obj:
            by_id[str(obj["id"])] = response
        elif isinstance(obj.get("prompt"), str):
            by_prompt[obj["prompt"]] = response
        else:
            raise verify_cli.InputFileError(f"{path}:{number}: expected an 'id' or a 'prompt' field")
    out, missing = [], []
    for p in prompts:
        r = by_id.get(p.key, by_prompt.get(p.prompt))
        if r is None:
            missing.append(p.key)
        out.append(r)
    if missing:
        raise verify_cli.InputFileError(f"{path}: no response for {len(missing)} prompt(s); ids "
                                        + ", ".join(map(repr, missing[:5])) + (" ..." if len(missing) > 5 else ""))
    return out


def judge(prompts: list[Prompt], responses: list[str], threads: int = 1) -> list[list[bool]]:
    return verify.check_muldimif(responses, [p.constraints for p in prompts], num_threads=threads)


def _ratio(a, b) -> str:
    return f"{a:.6g}/{b} = {a / b:.4f}" if b else "0/0"


def report(prompts: list[Prompt], verdicts: list[list[bool]]) -> str:
    """The reference's get_score, as text."""
    def triple(rows):
        n = len(rows)
        every = sum(all(v) for _, v in rows)
        macro = sum(sum(v) / len(v) for _, v in rows)
        met, total = sum(sum(v) for _, v in rows), sum(len(v) for _, v in rows)
        return (f"all constraints {_ratio(every, n)}   macro {_ratio(macro, n)}   "
                f"micro {_ratio(met, total)}")

    rows = list(zip(prompts, verdicts))
    lines = [f"MulDimIF: {len(prompts)} prompts, {sum(len(v) for v in verdicts)} constraints (strict; "
             "MulDimIF has no loose mode)", "", "overall: " + triple(rows), "", "per constraint pattern:"]
    by_pattern = collections.defaultdict(list)
    by_level = collections.defaultdict(list)
    for p, v in rows:
        by_pattern[p.pattern].append((p, v))
        by_level[p.difficulty].append((p, v))
    for name, group in by_pattern.items():
        lines.append(f"  {name:<14} " + triple(group))
    lines += ["", "per first-level type (prompts whose constraints of that type all hold):"]
    first_ok, first_n = collections.Counter(), collections.Counter()
    second_ok, second_n = collections.Counter(), collections.Counter()
    for p, v in rows:
        per = collections.defaultdict(list)
        for c, ok in zip(p.constraints, v):
            t = TYPE_OF_KEY[f"{c[0]}_{c[1]}"]
            per[t.split("_")[0]].append(ok)
            second_n[t] += 1
            second_ok[t] += ok
        for first, oks in per.items():
            first_n[first] += 1
            first_ok[first] += all(oks)
    for first in first_n:
        lines.append(f"  {first:<20} {_ratio(first_ok[first], first_n[first])}")
    lines += ["", "per second-level type (constraints met):"]
    for t in second_n:
        lines.append(f"  {t:<20} {_ratio(second_ok[t], second_n[t])}")
    lines += ["", "per difficulty:"]
    for name in sorted(by_level):
        lines.append(f"  {name:<14} " + triple(by_level[name]))
    return "\n".join(lines)


def write_outputs(out_dir: str, prompts, responses, verdicts, header: str, text: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "responses.jsonl"), "w", encoding="utf-8") as f:
        for p, r in zip(prompts, responses):
            f.write(json.dumps({"id": p.key, "prompt": p.prompt, "response": r}, ensure_ascii=False) + "\n")
    with open(os.path.join(out_dir, "verdicts.jsonl"), "w", encoding="utf-8") as f:
        for p, v in zip(prompts, verdicts):
            for j, (c, ok) in enumerate(zip(p.constraints, v)):
                f.write(json.dumps({"id": p.key, "index": j, "constraint": c, "verdict": bool(ok)},
                                   ensure_ascii=False) + "\n")
    with open(os.path.join(out_dir, "report.txt"), "w", encoding="utf-8") as f:
        f.write(header + "\n\n" + text + "\n")


def main(args) -> int:
    """`hirfast eval --bench muldimif` (arguments as hirfast.evaluate's)."""
    import datetime
    import time

    from . import evaluate

    try:
        prompts = load_prompts()
        if args.limit is not None:
            prompts = prompts[:args.limit]
        if args.responses is not None:
            responses = load_responses(args.responses, prompts)
        else:
            tokenizer, model = evaluate.load_model(args.model, args.device, args.dtype)
            started = time.perf_counter()
            responses = evaluate.generate_responses(tokenizer, model, prompts, args)
            print(f"generated {len(responses)} responses in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        verdicts = judge(prompts, responses, args.threads)
        seconds = time.perf_counter() - started
    except (verify_cli.InputFileError, verify.ConstraintError, ValueError, OSError) as e:
        return evaluate._error(str(e))
    source = f"responses {args.responses}" if args.responses else (
        f"model {args.model}, temperature {args.temperature}, top_p {args.top_p}, "
        f"max_new_tokens {args.max_new_tokens}, seed {args.seed}")
    header = f"hirfast eval --bench muldimif: {len(prompts)} prompts; {source}"
    text = report(prompts, verdicts) + f"\n\nchecked in {seconds * 1e3:.1f} ms on {args.threads} thread(s)"
    print(header)
    print(text)
    out_dir = args.out or os.path.join(
        "hirfast-out", f"eval-muldimif-{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}")
    write_outputs(out_dir, prompts, responses, verdicts, header, text)
    print(f"\nwrote responses.jsonl, verdicts.jsonl and report.txt to {out_dir}")
    return 0
