"""Constraint descriptions (against the reference build_description), rendering, rewriting and
the synthetic task generator."""
import json
import random

import pytest

from hirfast import verify
from hirfast.constraints import (CONFLICTS, Constraint, ConstraintSpecError, SyntheticSpec, Task,
                                 describable_ids, describe, generate_tasks, normalize_kwargs, render)

# sastpg/HIR's IFEval copy offers five more (Chinese) options than Google's, which the PyPI
# oracle follows; the expected text is written out here instead.
CONSTRAINED_RESPONSE = (
    "Answer with one of the following options: ('My answer is yes.', 'My answer is no.', "
    "'My answer is maybe.', '我的答案是肯定的', '我的答案是否定的', '我的答案是可能', "
    "'我的答案是也许', '我的答案是不确定')")


def _reference_registries():
    pytest.importorskip("if_verifiable")
    from if_verifiable.ifbench.instructions_registry import INSTRUCTION_DICT as ifbench
    from if_verifiable.ifeval.instructions_registry import INSTRUCTION_DICT as ifeval
    return ifeval, ifbench


def _data_pairs(data_dir):
    for path in (data_dir / "ifeval" / "input_data.jsonl",
                 data_dir / "ifbench" / "IFBench_test.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            for iid, kw in zip(row["instruction_id_list"], row["kwargs"]):
                yield iid, normalize_kwargs(kw)


def test_describe_matches_reference_on_every_benchmark_row(data_dir):
    ifeval, ifbench = _reference_registries()
    compared = 0
    for iid, kw in _data_pairs(data_dir):
        if iid == "detectable_format:constrained_response":
            assert describe(iid, kw) == CONSTRAINED_RESPONSE
            continue
        letter = kw.get("letter")
        if letter is not None and not (len(letter) == 1 and letter.isascii() and letter.isalpha()):
            continue  # the reference draws a random letter instead (unstable pairs)
        if any(v == 0 for v in kw.values() if isinstance(v, int)):
            continue  # the reference takes a 0 (repeat_span's n_start) as missing and draws one
        reference = (ifeval.get(iid) or ifbench[iid])(iid)
        random.seed(0)
        assert describe(iid, kw) == reference.build_description(**kw), iid
        compared += 1
    assert compared > 1100


def test_every_reference_id_has_a_description():
    ifeval, ifbench = _reference_registries()
    assert set(ifeval) | set(ifbench) == set(describable_ids())
    assert len(describable_ids()) == 25 + 58


def test_describe_fixed_and_parametrized_texts():
    assert describe("punctuation:no_comma") == \
        "In your entire response, refrain from the use of any commas."
    assert describe("keywords:existence", {"keywords": ["zeta", "alpha"]}) == \
        "Include keywords ['alpha', 'zeta'] in the response."
    assert describe("keywords:forbidden_words", {"forbidden_words": ["b", "a", "b"]}) == \
        "Do not include keywords ['a', 'b'] in the response."
    assert describe("length_constraints:number_words", {"relation": "at least", "num_words": 40.0}) \
        == "Answer with at least 40 words."
    assert describe("count:words_japanese", {"N": 12}) == \
        "Every 12nd of your response must be in Japanese."
    assert describe("count:words_japanese", {"N": 7}) == \
        "Every 7th word of your response must be in Japanese."
    assert describe("detectable_content:postscript", {"postscript_marker": " P.S. "}) == \
        "At the end of your response, please explicitly add a postscript starting with P.S."


@pytest.mark.parametrize("iid,kwargs,field", [
    ("length_constraints:number_words", {"relation": "at least"}, "kwargs.num_words"),
    ("length_constraints:number_words", {"relation": "about", "num_words": 3}, "kwargs.relation"),
    ("length_constraints:number_words", {"relation": "at least", "num_words": "3"}, "kwargs.num_words"),
    ("keywords:existence", {"keywords": "alpha"}, "kwargs.keywords"),
    ("language:response_language", {"language": "xx"}, "kwargs.language"),
    ("no:such_id", {}, "instruction_id"),
])
def test_describe_rejects_bad_kwargs_naming_the_field(iid, kwargs, field):
    with pytest.raises(ConstraintSpecError) as err:
        describe(iid, kwargs)
    assert err.value.field == field
    assert iid in str(err.value)


def test_normalize_kwargs_drops_none_and_integral_floats():
    assert normalize_kwargs({"N": 5.0, "x": None, "p": 0.5, "s": "a"}) == {"N": 5, "p": 0.5, "s": "a"}
    assert normalize_kwargs(None) == {}


def test_render_styles():
    texts = ["Answer with at least 3 words", "No commas.", "Why?"]
    assert render("Q.", texts, style="space") == \
        "Q. Answer with at least 3 words. No commas. Why?"
    assert render("Q.", texts) == "Q.\nAnswer with at least 3 words. No commas. Why?"
    assert render("Q.", texts, style="rules") == ("Q.\n\nThe output must follow the following "
                                                  "rules:\n1. Answer with at least 3 words\n"
                                                  "2. No commas.\n3. Why?")
    assert render("Q.", texts, style="dashes") == \
        "Q.\n\n- Answer with at least 3 words\n- No commas.\n- Why?"
    assert render("Q.", texts, style="prefix") == \
        "Answer with at least 3 words. No commas. Why?\n\nQ."
    assert render("Q.", texts, style="lines") == "Q.\n\nAnswer with at least 3 words\nNo commas.\nWhy?"
    assert render("Q.", []) == "Q."
    with pytest.raises(ValueError, match="unknown render style"):
        render("Q.", texts, style="fancy")


def test_rewrite_is_render_of_the_kept_constraints_in_order():
    cons = tuple(Constraint.from_spec(i, kw) for i, kw in [
        ("punctuation:no_comma", {}),
        ("detectable_format:title", {}),
        ("length_constraints:number_words", {"relation": "less than", "num_words": 9}),
    ])
    task = Task("Describe a cat.", cons, key="k")
    replay = task.rewritten([True, False, True])
    assert replay.constraints == (cons[0], cons[2])
    assert replay.instruction() == (
        "Describe a cat.\nIn your entire response, refrain from the use of any commas. "
        "Answer with less than 9 words.")
    assert replay.key == "k/replay"
    fixed = Task("p", cons, prompt="given prompt")
    assert fixed.instruction() == "given prompt" and not fixed.rewritable
    with pytest.raises(ValueError, match="cannot be rewritten"):
        fixed.rewritten([True, True, True])


def test_generate_tasks_is_deterministic_valid_and_conflict_free():
    spec = SyntheticSpec()
    a = generate_tasks(200, seed=3, spec=spec)
    b = generate_tasks(200, seed=3, spec=spec)
    assert [t.instruction() for t in a] == [t.instruction() for t in b]
    assert [t.instruction() for t in generate_tasks(200, seed=4)] != [t.instruction() for t in a]
    for t in a:
        ids = t.instruction_ids
        assert spec.min_constraints <= len(ids) <= spec.max_constraints
        assert len(set(ids)) == len(ids)
        assert not any(frozenset((x, y)) in CONFLICTS for x in ids for y in ids if x != y)
        for c in t.constraints:
            assert c.text == describe(c.instruction_id, c.kwargs)
        words = [w for c in t.constraints for k in ("keywords", "forbidden_words", "keyword")
                 for w in ([c.kwargs[k]] if isinstance(c.kwargs.get(k), str) else c.kwargs.get(k, []))]
        assert len(words) == len(set(words)), "keyword constraints of one task share a word"


def test_generate_tasks_keeps_to_the_available_ids_and_their_kwargs_are_valid():
    known = verify.instruction_ids()
    usable = [i for i in SyntheticSpec().instruction_ids if i in known]
    if len(usable) < 3:
        pytest.skip(f"the checker knows only {usable} of the generator's ids so far")
    tasks = generate_tasks(100, seed=0, available_ids=known)
    assert {i for t in tasks for i in t.instruction_ids} <= set(usable)
    # The engine accepts every generated kwargs (it raises ConstraintError otherwise).
    verify.check(["x"] * len(tasks), [t.instruction_ids for t in tasks], [t.kwargs for t in tasks])


def test_generate_tasks_explains_too_few_ids():
    with pytest.raises(ValueError, match="usable instruction ids"):
        generate_tasks(3, seed=0, available_ids=["punctuation:no_comma"])
