"""BIG-Bench Hard as package data, its split, the per-task table, and `hirfast eval --bench bbh`
end to end on a tiny model (its written verdicts re-checked here by hand-normalized comparison)."""
import json

import pytest
import torch

from hirfast import bbh, cli
from hirfast.demo_model import build_model, build_tokenizer


def test_all_27_tasks_ship_with_their_license():
    from importlib import resources

    root = resources.files("hirfast") / "assets" / "bbh"
    assert "MIT License" in (root / "LICENSE").read_text()
    assert len(bbh.TASKS) == 27
    sizes = {t: len(bbh.load_examples(t)) for t in bbh.TASKS}
    assert sizes["boolean_expressions"] == 250 and sizes["penguins_in_a_table"] == 146
    assert sum(sizes.values()) == 6511


def test_split_is_disjoint_stable_and_80_20():
    train = bbh.load_tasks(["snarks"], "train")
    held = bbh.load_tasks(["snarks"], "heldout")
    every = bbh.load_tasks(["snarks"], "all")
    assert len(every) == 178 and (len(train), len(held)) == (142, 36)
    assert {t.key for t in train}.isdisjoint({t.key for t in held})
    assert {t.key for t in train} | {t.key for t in held} == {t.key for t in every}
    assert [t.key for t in bbh.load_tasks(["snarks"], "heldout")] == [t.key for t in held]
    row = bbh.load_examples("snarks")[int(held[0].key.split("/")[1])]
    assert (held[0].question, held[0].target) == (row["input"], row["target"])


@pytest.mark.parametrize("spec, message", [
    ("bbh:boolean_expresions", "did you mean boolean_expressions"),
    ("bbh:", "no task"),
    ("bbx", "expected bbh"),
])
def test_bad_task_specs_are_named(spec, message):
    with pytest.raises(ValueError, match=message):
        bbh.parse_tasks(spec)


def test_parse_tasks():
    assert bbh.parse_tasks("bbh") == list(bbh.TASKS)
    assert bbh.parse_tasks("bbh:navigate,snarks,navigate") == ["navigate", "snarks"]


def test_score_table():
    table = bbh.score_table([("a", True), ("a", False), ("b", True), ("a", True)])
    lines = table.splitlines()
    assert lines[1].split() == ["a", "3", "2", "0.667"]
    assert lines[2].split() == ["b", "1", "1", "1.000"]
    assert lines[3].split()[-3:] == ["4", "3", "0.750"]
    assert lines[4].split()[-1] == "0.833"


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    tasks = bbh.load_tasks(["boolean_expressions", "navigate"], "heldout")
    tok = build_tokenizer([t.instruction() for t in tasks] + [" True False Yes No",
                                                             "<|user|>\n<|end|>\n<|assistant|>\n"])
    torch.set_num_threads(1)
    path = tmp_path_factory.mktemp("tiny-bbh")
    build_model(tok, seed=0, hidden_size=32).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_eval_bbh_writes_a_per_task_table(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "out"
    code = cli.main(["eval", "--model", str(tiny_model_dir), "--bench", "bbh:boolean_expressions,navigate",
                     "--limit", "3", "--max-new-tokens", "3", "--batch-size", "4", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    rows = [json.loads(line) for line in open(out / "responses.jsonl")]
    assert [r["key"].split("/")[0] for r in rows] == ["boolean_expressions"] * 3 + ["navigate"] * 3
    held = {t.key: t for t in bbh.load_tasks(["boolean_expressions", "navigate"], "heldout")}
    for r in rows:
        assert r["target"] == held[r["key"]].target
        norm = lambda s: s.replace("\n", " ").replace(" ", "").replace(".", "").lower()  # noqa: E731
        assert r["correct"] == (norm(r["response"]) == norm(r["target"]))
    assert "boolean_expressions" in captured.out and "navigate" in captured.out
    assert "all (micro)" in captured.out
    assert (out / "report.txt").read_text().startswith("hirfast eval --bench bbh:")


def test_eval_refuses_unknown_bench_and_responses(tmp_path, capsys):
    assert cli.main(["eval", "--model", "x", "--bench", "bbh:nope"]) == 2
    assert "unknown BBH task 'nope'" in capsys.readouterr().err
    assert cli.main(["eval", "--model", "x", "--bench", "mmlu"]) == 2
    assert "expected one of" in capsys.readouterr().err
    assert cli.main(["eval", "--responses", str(tmp_path / "r.jsonl"), "--bench", "bbh"]) == 2
    assert "not supported with --bench bbh" in capsys.readouterr().err
