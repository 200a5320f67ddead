"""Data readers: the three row formats, rewritability, malformed rows, strict mode, the sampler."""
import dataclasses
import json

import pytest

from hirfast import verify
from hirfast.constraints import describe, render
from hirfast.data import DataError, TaskSampler, load_tasks, parse_row

NO_COMMA = "punctuation:no_comma"
NO_COMMA_TEXT = describe(NO_COMMA)


def _write(tmp_path, rows, name="data.jsonl"):
    path = tmp_path / name
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n",
                    encoding="utf-8")
    return str(path)


def _ifeval_row(key, prompt, ids=(NO_COMMA,), kwargs=None, **extra):
    return {"key": key, "prompt": prompt, "instruction_id_list": list(ids),
            "kwargs": kwargs if kwargs is not None else [{} for _ in ids], **extra}


def test_ifeval_rows_without_a_query_train_as_given_and_are_not_rewritable():
    task = parse_row(json.dumps(_ifeval_row(1, "Write a poem. Do not use any commas.")))
    assert task.instruction() == "Write a poem. Do not use any commas."
    assert not task.rewritable
    assert task.instruction_ids == [NO_COMMA] and task.kwargs == [{}]


def test_ifeval_rows_with_query_and_texts_are_rewritable():
    prompt = render("Write a poem.", ["No commas please."], style="space")
    task = parse_row(json.dumps(_ifeval_row(1, prompt, query="Write a poem.",
                                            texts=["No commas please."])))
    assert task.rewritable and task.style == "space"
    assert task.constraints[0].text == "No commas please."
    assert task.instruction() == prompt


def test_hir16k_type1_row_separates_its_query_from_its_criteria():
    question = "Tell me about tea"
    criteria = [NO_COMMA_TEXT, "Keep it short"]
    row = {"messages": [{"role": "system", "content": "Be kind."},
                        {"role": "user", "content": render(question, criteria, style="space")}],
           "criteria": criteria, "source": "type1",
           "ground_truth": json.dumps({"instruction_id_list": [NO_COMMA, NO_COMMA],
                                       "kwargs": [None, {}]})}
    task = parse_row(json.dumps(row))
    assert task.rewritable and task.query == question and task.style == "space"
    assert task.rewritten([True, False]).instruction() == f"{question} {NO_COMMA_TEXT}"


@pytest.mark.parametrize("style", ["newline", "rules", "dashes", "prefix", "lines"])
def test_every_render_style_is_recognized(style):
    q = "Plan a trip.\nTwo lines of query."
    row = {"messages": [{"role": "user", "content": render(q, [NO_COMMA_TEXT], style=style)}],
           "criteria": [NO_COMMA_TEXT], "source": "type2",
           "ground_truth": {"instruction_id_list": [NO_COMMA], "kwargs": [{}]}}
    task = parse_row(row)
    assert task.rewritable and task.style == style and task.query == q


def test_if_multi_constraints_row_uses_descriptions_for_its_texts():
    row = {"key": "m1", "messages": [{"role": "user", "content": f"Name a fruit.\n{NO_COMMA_TEXT}"}],
           "ground_truth": json.dumps([{"instruction_id": [NO_COMMA], "kwargs": [None]}]),
           "constraint_type": "single", "constraint": NO_COMMA_TEXT}
    task = parse_row(json.dumps(row))
    assert task.key == "m1" and task.rewritable and task.query == "Name a fruit."
    assert task.source == "if_multi_constraints"


def test_load_counts_skips_and_logs_bad_rows(tmp_path, caplog):
    rows = [
        _ifeval_row(1, "Fine. No commas."),
        "{not json",
        _ifeval_row(3, "Unknown id.", ids=["punctuation:no_comm"]),
        _ifeval_row(4, "Bad kwargs.", kwargs=[{"num_words": 3}]),
        _ifeval_row(5, "Length mismatch.", kwargs=[{}, {}]),
        {"prompt": "no ids"},
        [1, 2],
        {"messages": [{"role": "user", "content": "x"}], "criteria": ["a"], "source": "type3",
         "ground_truth": {}},
        {"messages": [{"role": "user", "content": "x"}], "criteria": ["a"], "source": "type4",
         "ground_truth": {"checker": ["[llm] ok"], "functions": []}},
        _ifeval_row(10, "Also fine."),
    ]
    with caplog.at_level("WARNING", logger="hirfast.data"):
        tasks, report = load_tasks(_write(tmp_path, rows), max_logged_errors=3)
    assert [t.key for t in tasks] == ["1", "10"]
    # the type3 row has no ground_truth.constraints: malformed, not unsupported
    assert report.rows == 10 and report.loaded == 2 and report.malformed == 7
    assert sum(report.unsupported.values()) == 1
    assert len(report.first_errors) == 3
    assert ":2: field '<json>'" in report.first_errors[0]
    assert "punctuation:no_comm" in report.first_errors[1] and "instruction_id" in report.first_errors[1]
    assert "kwargs.num_words" in report.first_errors[2]
    text = caplog.text
    assert "and 4 more malformed rows" in text
    assert "type4" in text
    assert "2 not rewritable" in report.summary()


def test_strict_mode_rejects_the_first_bad_row_naming_line_and_field(tmp_path):
    path = _write(tmp_path, [_ifeval_row(1, "ok"), _ifeval_row(2, "bad", kwargs=[{"x": 1}])])
    with pytest.raises(DataError) as err:
        load_tasks(path, strict=True)
    assert err.value.where.endswith("data.jsonl:2")
    assert "kwargs.x" in err.value.field


def test_engine_validation_can_be_turned_off(tmp_path):
    path = _write(tmp_path, [_ifeval_row(1, "unknown id", ids=["made:up"])])
    tasks, report = load_tasks(path, validate=False)
    assert report.loaded == 1 and tasks[0].instruction_ids == ["made:up"]


def test_ifeval_file_loads_every_row_the_engine_can_check(data_dir):
    path = data_dir / "ifeval" / "input_data.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    known = set(verify.instruction_ids())
    checkable = sum(all(i in known for i in r["instruction_id_list"]) for r in rows)
    tasks, report = load_tasks(str(path))
    assert report.rows == len(rows) == 541
    assert report.loaded == checkable and report.malformed == len(rows) - checkable
    # Human-written prompts rarely end in the template texts; the few that do are rewritable, and
    # re-rendering them gives the prompt back exactly.
    rewritable = [t for t in tasks if t.rewritable]
    assert report.not_rewritable == report.loaded - len(rewritable) and len(rewritable) < 20
    prompts = {str(r["key"]): r["prompt"] for r in rows}
    for t in rewritable:
        assert t.instruction() == prompts[t.key] and t.query != prompts[t.key]


def test_sampler_is_seeded_reshuffles_and_resumes():
    tasks = [parse_row(_ifeval_row(i, f"p{i}")) for i in range(5)]
    a = TaskSampler(tasks, seed=1)
    first = [t.key for t in a.next_batch(5)]
    second = [t.key for t in a.next_batch(5)]
    assert sorted(first) == sorted(second) == [str(i) for i in range(5)]
    assert first != second  # a new order each epoch
    b = TaskSampler(tasks, seed=1)
    b.next_batch(3)
    c = TaskSampler(tasks, seed=1)
    c.load_state_dict(b.state_dict())
    assert [t.key for t in c.next_batch(7)] == [t.key for t in b.next_batch(7)]
    with pytest.raises(ValueError, match="same data"):
        TaskSampler(tasks[:4], seed=1).load_state_dict(b.state_dict())


def test_written_tasks_read_back_as_the_same_rewritable_tasks(tmp_path):
    from hirfast.constraints import Constraint, Task
    from hirfast.data import write_tasks

    cons = (Constraint.from_spec(NO_COMMA, {}),
            Constraint(NO_COMMA, {}, "Keep commas out of it"))
    tasks = [Task("Write a haiku.", cons, key="a", style="dashes"),
             Task("q", cons[:1], key="b", prompt="Verbatim prompt, no commas.")]
    path = str(tmp_path / "tasks.jsonl")
    write_tasks(path, tasks)
    back, report = load_tasks(path)
    assert report.loaded == 2
    assert dataclasses.replace(back[0], source="") == tasks[0]
    assert back[1].instruction() == "Verbatim prompt, no commas." and not back[1].rewritable
