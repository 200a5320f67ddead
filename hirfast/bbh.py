"""BIG-Bench Hard (Suzgun et al. 2022, MIT; 27 tasks, shipped in ``hirfast/assets/bbh/``): tasks
for ``algorithm: hir2023`` and ``hirfast eval --bench bbh[:task,...]``.

Each example is asked as HIR 2023 asks it (``hirfast.hir2023.render_answer_prompt``):
``"Solve the question with correct answer.\\n\\nQ: <input>\\nA:"`` as one user turn, and scored by
the seed's exact match (line breaks as spaces, spaces and dots removed, lower-cased).

Split: as the seed's code, each task's examples are permuted with a fixed seed and the first 80%
train, the last 20% are held out. ``hirfast train --data bbh`` trains on the first part and
evaluates on the second; ``hirfast eval --bench bbh`` scores the held-out part,
``--bench bbh-full`` every example.
"""
from __future__ import annotations

import datetime
import json
import os
import random
import sys
import time
from importlib import resources

from .hir2023 import CORRECT_INSTRUCTION, AnswerTask, answers_match, render_answer_prompt

__all__ = ["TASKS", "parse_tasks", "load_examples", "load_tasks", "is_bbh_bench", "eval_main",
           "score_table"]

TASKS = (
    "boolean_expressions", "causal_judgement", "date_understanding", "disambiguation_qa",
    "dyck_languages", "formal_fallacies", "geometric_shapes", "hyperbaton",
    "logical_deduction_five_objects", "logical_deduction_seven_objects",
    "logical_deduction_three_objects", "movie_recommendation", "multistep_arithmetic_two",
    "navigate", "object_counting", "penguins_in_a_table", "reasoning_about_colored_objects",
    "ruin_names", "salient_translation_error_detection", "snarks", "sports_understanding",
    "temporal_sequences", "tracking_shuffled_objects_five_objects",
    "tracking_shuffled_objects_seven_objects", "tracking_shuffled_objects_three_objects",
    "web_of_lies", "word_sorting",
)
SPLIT_SEED = 1          # the seed's default --seed
TRAIN_SHARE = 0.8


def is_bbh_bench(name: str) -> bool:
    return name.split(":", 1)[0] in ("bbh", "bbh-full")


def parse_tasks(spec: str) -> list[str]:
    """``bbh`` (all 27) or ``bbh:task,task``; an unknown task is an error naming close matches."""
    head, colon, rest = spec.partition(":")
    if head not in ("bbh", "bbh-full"):
        raise ValueError(f"{spec!r}: expected bbh or bbh:TASK[,TASK...]")
    if not colon:
        return list(TASKS)
    names = [n.strip() for n in rest.split(",") if n.strip()]
    for n in names:
        if n not in TASKS:
            import difflib

            close = difflib.get_close_matches(n, TASKS, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(TASKS)}"
            raise ValueError(f"unknown BBH task {n!r}{hint}")
    if not names:
        raise ValueError(f"{spec!r}: no task named after 'bbh:'")
    return list(dict.fromkeys(names))


def _path(task: str) -> str:
    return os.fspath(resources.files("hirfast") / "assets" / "bbh" / f"{task}.json")


def load_examples(task: str) -> list[dict]:
    """The task's examples, ``{"input", "target"}``, in file order (malformed rows are an error
    naming the file and index)."""
    path = _path(task)
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    rows = data.get("examples") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise ValueError(f"{path}: no 'examples' list")
    for i, r in enumerate(rows):
        if not (isinstance(r, dict) and isinstance(r.get("input"), str) and isinstance(r.get("target"), str)):
            raise ValueError(f"{path}: example {i} lacks a string 'input' or 'target'")
    return rows


def load_tasks(tasks: list[str], split: str = "heldout") -> list[AnswerTask]:
    """``AnswerTask``s of the split ("train", "heldout" or "all"), task by task; keys are
    ``task/index`` (the index in the task's file)."""
    if split not in ("train", "heldout", "all"):
        raise ValueError(f"split = {split!r}: expected train, heldout or all")
    out = []
    for task in tasks:
        rows = load_examples(task)
        order = list(range(len(rows)))
        random.Random(SPLIT_SEED).shuffle(order)
        cut = int(TRAIN_SHARE * len(rows))
        chosen = {"train": order[:cut], "heldout": order[cut:], "all": range(len(rows))}[split]
        out += [AnswerTask(rows[i]["input"], rows[i]["target"], key=f"{task}/{i}") for i in chosen]
    return out


def score_table(results: list[tuple[str, bool]]) -> str:
    """The per-task table: examples, correct and accuracy per task, then the micro and macro mean."""
    per: dict[str, list[bool]] = {}
    for task, ok in results:
        per.setdefault(task, []).append(ok)
    width = max([len(t) for t in per] + [len("task")])
    lines = [f"{'task':{width}s}  {'examples':>8s}  {'correct':>7s}  {'accuracy':>8s}"]
    for task, oks in per.items():
        lines.append(f"{task:{width}s}  {len(oks):8d}  {sum(oks):7d}  {sum(oks) / len(oks):8.3f}")
    total = sum(len(v) for v in per.values())
    correct = sum(sum(v) for v in per.values())
    macro = sum(sum(v) / len(v) for v in per.values()) / max(1, len(per))
    lines.append(f"{'all (micro)':{width}s}  {total:8d}  {correct:7d}  {correct / max(1, total):8.3f}")
    lines.append(f"{'mean of tasks (macro)':{width}s}  {'':8s}  {'':7s}  {macro:8.3f}")
    return "\n".join(lines)


def eval_main(args) -> int:
    """``hirfast eval --bench bbh[:task,...]`` (arguments of ``hirfast.evaluate``)."""
    from . import evaluate

    def error(message):
        print(f"hirfast eval: error: {message}", file=sys.stderr)
        return 2

    if args.responses is not None:
        return error("--responses is not supported with --bench bbh; give --model")
    problem = evaluate._check_args(args)
    if problem:
        return error(problem)
    try:
        names = parse_tasks(args.bench)
        split = "all" if args.bench.startswith("bbh-full") else "heldout"
        tasks = []
        for name in names:
            part = load_tasks([name], split)
            tasks += part[:args.limit] if args.limit is not None else part
        tokenizer, model = evaluate.load_model(args.model, args.device, args.dtype)
        started = time.perf_counter()
        responses = evaluate.generate_texts(tokenizer, model, [t.instruction() for t in tasks],
                                            [f"BBH {t.key}" for t in tasks], args)
        seconds = time.perf_counter() - started
    except (ValueError, OSError) as e:
        return error(str(e))

    results = [(t.key.split("/")[0], answers_match(r, t.target)) for t, r in zip(tasks, responses)]
    header = (f"hirfast eval --bench {args.bench}: {len(tasks)} examples ({split} split) of "
              f"{len(names)} task(s); model {args.model}, temperature {args.temperature}, "
              f"max_new_tokens {args.max_new_tokens}; prompt \"{CORRECT_INSTRUCTION}\\n\\nQ: ...\\nA:\"; "
              f"exact match after removing spaces and dots")
    table = score_table(results)
    print(f"generated {len(responses)} responses in {seconds:.1f} s")
    print(header)
    print(table)
    out_dir = args.out or os.path.join(
        "hirfast-out", f"eval-bbh-{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "responses.jsonl"), "w", encoding="utf-8") as fh:
        for t, r, (_, ok) in zip(tasks, responses, results):
            fh.write(json.dumps({"key": t.key, "input": t.question, "target": t.target,
                                 "response": r, "correct": ok}, ensure_ascii=False) + "\n")
    with open(os.path.join(out_dir, "report.txt"), "w", encoding="utf-8") as fh:
        fh.write(header + "\n\n" + table + "\n")
    print(f"\nwrote responses.jsonl and report.txt to {out_dir}")
    return 0


# The prompt as the model sees it, for readers of this module.
EXAMPLE_PROMPT = render_answer_prompt(CORRECT_INSTRUCTION, "not ( True ) and ( True ) is")
