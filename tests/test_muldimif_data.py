"""HIR-16K type3 rows (MulDimIF constraint triples): load, render, rewrite, and train on the CPU."""
import json
import random

import pytest
import torch

from hirfast import verify
from hirfast.config import TrainConfig
from hirfast.constraints import render
from hirfast.data import DataError, load_tasks, parse_row
from hirfast.demo_model import build_model, build_tokenizer, demo_tasks, sample_response
from hirfast.trainer import HiRTrainer

ALWAYS = ["Length", "Sentences", "Keep it brief"]  # unreadable: the reference passes it
NEVER = ["Content", "Keywords", "Must include the keyword 'zebrafish'"]


def _type3_row(question, constraints, style="newline", criteria=True):
    texts = [c[2] for c in constraints]
    row = {"messages": [{"role": "user", "content": render(question, texts, style=style)}],
           "source": "type3",
           "ground_truth": json.dumps({"constraints": constraints, "constraint_pattern": "Listing"})}
    if criteria:
        row["criteria"] = texts
    return row


def test_type3_row_loads_as_muldimif_constraints_and_rewrites_keeping_texts():
    row = _type3_row("Describe a lake", [ALWAYS, NEVER, ["Length", "Words", "At most 40 words"]],
                     style="dashes")
    task = parse_row(json.dumps(row))
    assert task.source == "type3" and task.rewritable and task.query == "Describe a lake"
    assert task.instruction_ids == ["muldimif:Length_Sentences", "muldimif:Content_Keywords",
                                    "muldimif:Length_Words"]
    assert task.kwargs[1] == {"text": NEVER[2]}
    assert task.instruction() == row["messages"][0]["content"]
    sat = verify.check(["A calm lake."], [task.instruction_ids], [task.kwargs])[0]
    assert sat == [True, False, True]
    replay = task.rewritten(sat)
    assert replay.instruction() == render("Describe a lake", [ALWAYS[2], "At most 40 words"], style="dashes")
    assert replay.instruction_ids == ["muldimif:Length_Sentences", "muldimif:Length_Words"]


def test_type3_row_without_criteria_uses_the_constraint_texts():
    task = parse_row(_type3_row("Name a river", [NEVER], criteria=False))
    assert task.rewritable and [c.text for c in task.constraints] == [NEVER[2]]


@pytest.mark.parametrize("constraints,field,reason", [
    ([["Lenght", "Words", "x"]], "ground_truth.constraints[0]", "Lenght_Words"),
    ([["Length", "Words"]], "ground_truth.constraints[0]", "three strings"),
    ("nope", "ground_truth.constraints", "category, subcategory, text"),
])
def test_bad_type3_rows_name_the_field(constraints, field, reason):
    row = {"messages": [{"role": "user", "content": "q"}], "source": "type3",
           "ground_truth": {"constraints": constraints}}
    with pytest.raises(DataError) as err:
        parse_row(row, where="f.jsonl:7")
    assert err.value.field == field and reason in err.value.reason and err.value.where == "f.jsonl:7"


def test_a_type3_constraint_the_reference_raises_on_makes_the_row_malformed():
    row = _type3_row("q", [ALWAYS, ["Length", "Words", "Each word must be at most five characters"]])
    with pytest.raises(DataError) as err:
        parse_row(row, where="f.jsonl:3")
    assert err.value.field == "constraint 1 (muldimif:Length_Words): kwargs.text"
    assert "reference raises" in err.value.reason


def test_type3_rows_count_as_loaded(tmp_path):
    path = tmp_path / "hir.jsonl"
    path.write_text("\n".join(json.dumps(_type3_row(f"Question {i}", [ALWAYS, NEVER])) for i in range(3)) + "\n")
    tasks, report = load_tasks(str(path))
    assert report.loaded == 3 and not report.unsupported and report.not_rewritable == 0


def test_type3_tasks_train_with_the_engine_and_replay(tmp_path):
    torch.set_num_threads(1)
    tasks = [parse_row(_type3_row(f"Describe the river {i}", [ALWAYS, NEVER])) for i in range(4)]
    rng = random.Random(0)
    corpus = [sample_response(rng, t, 0.5) for t in demo_tasks(30, seed=3)]
    tokenizer = build_tokenizer(corpus + [t.instruction() for t in tasks]
                                + ["<|user|>\n<|end|>\n<|assistant|>\n"])
    cfg = TrainConfig(model="tiny", out=str(tmp_path / "run"), steps=2, tasks_per_step=2,
                      rollouts_per_task=3, max_new_tokens=8, lr=1e-3, progress=False, seed=5,
                      replay=True, replay_k=2)
    trainer = HiRTrainer(cfg, model=build_model(tokenizer, seed=0, hidden_size=32), tokenizer=tokenizer,
                         tasks=tasks, eval_tasks=tasks[:1])
    rows = trainer.train()
    # Every response meets the first constraint and misses the second: half the constraints, no
    # instruction fully met, and failures to replay under the rewritten instruction.
    assert all(r["cla"] == 0.5 and r["ila"] == 0 for r in rows)
    assert sum(r["replay_count"] for r in rows) > 0
    rewritten = tasks[0].rewritten([True, False]).instruction()
    assert rewritten == render("Describe the river 0", [ALWAYS[2]])
