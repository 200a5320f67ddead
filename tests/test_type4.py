"""HIR-16K type4 rows: loading (off by default, per-type report), routing each criterion to the
engine, the sandbox or the judge, replay rewriting, and `hirfast verify` / `hirfast eval` on them."""
from __future__ import annotations

import json
import shutil

import pytest

from hirfast import verify
from hirfast.data import DataError, load_tasks, parse_row
from hirfast.rewards import LLM_ID, RULE_ID, CheckItem, MixedVerifier
from hirfast.rewards.type4 import REASON_NO_CODE, REASON_NO_JUDGE, Type4Error, parse_type4


@pytest.fixture
def sample(data_dir, tmp_path):
    path = tmp_path / "hir.jsonl"
    shutil.copy(data_dir / "hir16k" / "sample.jsonl", path)
    return str(path)


def _rows(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


# --- parsing -------------------------------------------------------------------------------------

def test_parse_type4_aligned_and_rule_only_function_lists():
    ids, kwargs, texts = parse_type4({"checker": ["[rule] A.", "[LLM]  B."],
                                      "functions": ["def check_following(r): return True", ""]})
    assert ids == [RULE_ID, LLM_ID] and texts == ["A.", "B."]
    assert kwargs == [{"function": "def check_following(r): return True", "criterion": "A."},
                      {"criterion": "B."}]
    ids2, kwargs2, _ = parse_type4(json.dumps({"checker": ["[llm] B.", "[rule] A."],
                                               "functions": ["src"]}))
    assert ids2 == [LLM_ID, RULE_ID] and kwargs2[1]["function"] == "src"


@pytest.mark.parametrize("gt,field", [
    ({"checker": []}, "ground_truth.checker"),
    ({"checker": ["no tag"]}, "ground_truth.checker[0]"),
    ({"checker": ["[rule]  "]}, "ground_truth.checker[0]"),
    ({"checker": ["[rule] a", "[rule] b"], "functions": ["x"]}, "ground_truth.functions"),
    ({"checker": ["[rule] a"], "functions": [""]}, "ground_truth.functions[0]"),
    ({"checker": ["[rule] a"], "functions": [3]}, "ground_truth.functions"),
    ("{bad json", "ground_truth"),
    ([1], "ground_truth"),
])
def test_parse_type4_errors_name_the_field(gt, field):
    with pytest.raises(Type4Error) as e:
        parse_type4(gt)
    assert e.value.field == field


def test_malformed_type4_row_is_a_data_error_naming_row_and_field():
    row = {"messages": [{"role": "user", "content": "q"}], "source": "type4",
           "ground_truth": {"checker": ["oops"], "functions": []}}
    with pytest.raises(DataError) as e:
        parse_row(row, where="f.jsonl:7", allow_dataset_code=True, judge=True)
    assert e.value.where == "f.jsonl:7" and e.value.field == "ground_truth.checker[0]"


# --- loading -------------------------------------------------------------------------------------

def test_type4_is_off_by_default_and_counted_per_type(sample, caplog):
    with caplog.at_level("INFO", logger="hirfast.data"):
        tasks, report = load_tasks(sample)
    assert sorted(t.source for t in tasks) == ["type1", "type2", "type3"]
    assert report.unsupported[REASON_NO_CODE] == 4       # every row with a [rule] criterion
    assert report.unsupported[REASON_NO_JUDGE] == 1      # the [llm]-only row
    t4 = report.by_source["type4"]
    assert (t4["rows_used"], t4["rows_skipped"], t4["criteria_skipped"]) == (0, 5, 9)
    # type3 (MulDimIF triples) rows train through the C++ engine
    assert report.by_source["type3"]["rows_used"] == 1 and report.by_source["type3"]["criteria_used"] == 1
    assert report.by_source["type1"]["criteria_used"] == 1
    assert "type4: 0 rows used (0 criteria), 5 skipped (9 criteria)" in report.per_source()
    assert "allow_dataset_code" in caplog.text and "judge_model" in caplog.text


def test_dataset_code_alone_loads_the_rule_rows(sample):
    tasks, report = load_tasks(sample, allow_dataset_code=True)
    assert sorted(t.key for t in tasks if t.source == "type4") == ["t4-rule-0", "t4-rule-1"]
    assert report.unsupported[REASON_NO_JUDGE] == 3 and REASON_NO_CODE not in report.unsupported


def test_every_type4_row_loads_with_code_and_judge(sample):
    tasks, report = load_tasks(sample, allow_dataset_code=True, judge=True)
    t4 = {t.key: t for t in tasks if t.source == "type4"}
    assert sorted(t4) == ["t4-llm-0", "t4-mix-0", "t4-mix-1", "t4-rule-0", "t4-rule-1"]
    assert report.by_source["type4"]["criteria_used"] == 9
    # Rows rendered as query + criteria are rewritable: replay can drop failed criteria.
    assert all(t.rewritable for t in t4.values())
    mix = t4["t4-mix-0"]
    assert mix.query == "Describe the sea in one line." and mix.style == "rules"
    assert mix.instruction_ids == [RULE_ID, LLM_ID]
    kept = mix.rewritten([False, True])
    assert kept.instruction_ids == [LLM_ID] and "'blue'" in kept.instruction()
    assert "ocean" not in kept.instruction()
    assert t4["t4-mix-1"].kwargs[0]["function"].startswith("import json")


# --- routing -------------------------------------------------------------------------------------

class _Recorder:
    """A reward source that answers from a table and records what it was asked."""

    def __init__(self, answer):
        self.answer, self.items = answer, []

    def submit(self, items):
        from concurrent.futures import Future
        self.items += items
        f = Future()
        f.set_result([self.answer(it) for it in items])
        return f

    def metrics(self):
        return {"asked": len(self.items)}

    def close(self):
        pass


def test_mixed_verifier_routes_each_constraint():
    sandbox = _Recorder(lambda it: it.function == "yes")
    judge = _Recorder(lambda it: "good" in it.response)
    v = MixedVerifier(verify.check, sandbox, judge)
    out = v(["good, text", "bad text"],
            [["punctuation:no_comma", RULE_ID, LLM_ID], [LLM_ID, RULE_ID]],
            [[{}, {"function": "yes", "criterion": "r"}, {"criterion": "c"}],
             [{"criterion": "c2"}, {"function": "no", "criterion": "r2"}]],
            ["p1", "p2"])
    assert out == [[False, True, True], [False, False]]
    assert judge.items == [CheckItem("p1", "c", "good, text", None),
                           CheckItem("p2", "c2", "bad text", None)]
    assert [it.function for it in sandbox.items] == ["yes", "no"]
    assert v.metrics() == {"asked": 2}


def test_recheck_keeps_dataset_verdicts_and_checks_engine_ids_again():
    # A replay's dataset criteria were met under x: re-checking it under x' asks neither the
    # sandbox nor the judge again (counted), while engine ids are checked as ever.
    sandbox, judge = _Recorder(lambda it: False), _Recorder(lambda it: False)
    v = MixedVerifier(verify.check, sandbox, judge)
    out = v.recheck(["a, b", "no commas"],
                    [[RULE_ID, "punctuation:no_comma", LLM_ID], [LLM_ID, "punctuation:no_comma"]],
                    [[{"function": "f", "criterion": "r"}, {}, {"criterion": "c"}],
                     [{"criterion": "c2"}, {}]], ["x'", "x2'"])
    assert out == [[True, False, True], [True, True]]
    assert sandbox.items == [] and judge.items == []
    assert v.metrics() == {"asked": 0, "rule_recheck_reused": 1, "judge_recheck_reused": 2}
    # The ordinary call still asks both.
    assert v(["a"], [[RULE_ID, LLM_ID]], [[{"function": "f"}, {"criterion": "c"}]]) == [[False, False]]
    assert len(sandbox.items) == len(judge.items) == 1


def test_start_wraps_a_plain_verifier():
    from hirfast.rewards import start
    calls = []

    def plain(responses, ids, kwargs, prompts):
        calls.append(prompts)
        return [[True] for _ in responses]

    pending = start(plain, ["r"], [["x"]], [[{}]], ["p"])
    assert calls == [["p"]] and pending.result() == [[True]] and pending.result() == [[True]]


def test_missing_source_is_false_and_counted():
    v = MixedVerifier(verify.check)
    assert v(["x"], [[RULE_ID, LLM_ID]], [[{"function": "f"}, {}]]) == [[False, False]]
    assert v.metrics() == {"rule_disabled": 1, "judge_disabled": 1}


# --- hirfast verify / eval ----------------------------------------------------------------------

def _responses(path, sample):
    answers = {"t1-0": "The sea is calm", "t2-0": "Bread and milk and eggs", "t3-0": "x",
               "t4-rule-0": "The ocean is wide.", "t4-rule-1": "Whales sing 3 songs.",
               "t4-llm-0": "An apple, cheerful!", "t4-mix-0": "A blue ocean.",
               "t4-mix-1": '{"sea": "ocean"}'}
    with open(path, "w", encoding="utf-8") as f:
        for r in _rows(sample):
            if r["source"] != "type3":
                f.write(json.dumps({"prompt": r["messages"][-1]["content"],
                                    "response": answers[r["key"]]}) + "\n")


def _without_type3(sample, tmp_path):
    path = tmp_path / "no3.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for r in _rows(sample):
            if r["source"] != "type3":
                f.write(json.dumps(r) + "\n")
    return str(path)


def test_verify_cli_checks_type4_rows(sample, tmp_path, capsys):
    pytest.importorskip("openai")
    from hirfast.cli import main
    from judge_server import JudgeServer

    inputs, responses, out = _without_type3(sample, tmp_path), tmp_path / "resp.jsonl", tmp_path / "pairs.jsonl"
    _responses(responses, sample)
    assert main(["verify", "--input-data", inputs, "--responses", str(responses)]) == 2
    assert "allow_dataset_code" in capsys.readouterr().err
    with JudgeServer() as server:
        code = main(["verify", "--input-data", inputs, "--responses", str(responses), "--out", str(out),
                     "--allow-dataset-code", "--judge-model", "tiny", "--judge-base-url", server.base_url])
    text = capsys.readouterr().out
    assert code == 0, text
    verdicts = {(p["key"], p["index"]): p["strict"] for p in _rows(out)}
    assert verdicts[("t4-rule-0", 0)] and verdicts[("t4-rule-0", 1)]
    assert not verdicts[("t4-rule-1", 0)]                  # a digit
    assert verdicts[("t4-llm-0", 0)] and verdicts[("t4-llm-0", 1)]
    assert verdicts[("t4-mix-0", 0)] and verdicts[("t4-mix-0", 1)]
    assert verdicts[("t4-mix-1", 0)] and verdicts[("t4-mix-1", 1)]
    assert verdicts[("t1-0", 0)]
    assert "hir:rule" in text and "rule_calls 5," in text and "judge_requests 4," in text


def test_eval_scores_type4_rows_from_a_file(sample, tmp_path, capsys):
    pytest.importorskip("openai")
    from hirfast.cli import main
    from judge_server import JudgeServer

    inputs, responses = _without_type3(sample, tmp_path), tmp_path / "resp.jsonl"
    _responses(responses, sample)
    with JudgeServer() as server:
        code = main(["eval", "--input-data", inputs, "--responses", str(responses),
                     "--out", str(tmp_path / "ev"), "--allow-dataset-code", "--judge-model", "tiny",
                     "--judge-base-url", server.base_url])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "hirfast eval --bench no3.jsonl: 7 prompts" in text
    assert (tmp_path / "ev" / "verdicts.jsonl").exists()


@pytest.mark.parametrize("kw,message", [
    ({"sandbox_timeout_s": 0}, "sandbox_timeout_s"),
    ({"judge_timeout_s": -1}, "judge_timeout_s"),
    ({"sandbox_memory_mb": 10}, "sandbox_memory_mb"),
    ({"judge_retries": -1}, "judge_retries"),
    ({"sandbox_workers": 0}, "sandbox_workers"),
    ({"judge_concurrency": 0}, "judge_concurrency"),
])
def test_type4_settings_are_validated(kw, message):
    from hirfast.config import TrainConfig
    with pytest.raises(ValueError, match=message):
        TrainConfig(model="m", **kw).validate()
