"""MulDimIF checks against the reference's contract (tests/data/muldimif) and its parsing traps.

The contract: for each of the 1,200 MulDimIF test prompts, four responses (a small model's, a
mutation of it, two structured synthetic ones) and the verdict of the reference checker
(sastpg/HIR evaluation/MulDimIF, run with Python 3.11.7, nltk 3.10.4, zhconv 1.4.3) for every
constraint. MulDimIF has no loose mode: each verdict is the check on the response as given.
The expected values of the trap tests below are the reference's answers (run on the same
inputs), not hirfast's.
"""
import collections
import gzip
import json

import pytest

from hirfast import eval_muldimif, verify


@pytest.fixture(scope="module")
def contract(data_dir):
    prompts = {p.key: p for p in eval_muldimif.load_prompts()}
    with gzip.open(data_dir / "muldimif" / "responses.jsonl.gz", "rt", encoding="utf-8") as f:
        responses = [json.loads(line) for line in f]
    with open(data_dir / "muldimif" / "verdicts.jsonl", encoding="utf-8") as f:
        verdicts = {(v["id"], v["index"]): v for v in map(json.loads, f)}
    rows = [(prompts[r["id"]], r, verdicts[(r["id"], r["index"])]) for r in responses]
    return rows


def _disagreements(rows, got):
    bad = []
    for (prompt, resp, ref), verdict in zip(rows, got):
        assert len(verdict) == len(ref["verdicts"]) == len(prompt.constraints)
        if not ref["stable"]:
            continue
        for j, (c, mine, theirs) in enumerate(zip(prompt.constraints, verdict, ref["verdicts"])):
            if int(mine) != theirs:
                bad.append((prompt.key, resp["index"], j, f"{c[0]}_{c[1]}", c[2], theirs))
    return bad


def test_every_stable_pair_of_the_contract_agrees(contract):
    stable = sum(len(ref["verdicts"]) for _, _, ref in contract if ref["stable"])
    assert stable >= 12_000
    got = verify.check_muldimif([r["response"] for _, r, _ in contract], [p.constraints for p, _, _ in contract])
    bad = _disagreements(contract, got)
    by_key = collections.Counter(b[3] for b in bad)
    assert not bad, f"{len(bad)} of {stable} stable pairs disagree ({dict(by_key)}); first: {bad[:5]}"


def test_two_threads_give_the_single_thread_verdicts(contract):
    responses = [r["response"] for _, r, _ in contract[:800]]
    constraints = [p.constraints for p, _, _ in contract[:800]]
    assert verify.check_muldimif(responses, constraints, num_threads=2) == verify.check_muldimif(responses, constraints)


def test_the_contract_holds_both_verdicts_for_every_class(contract):
    # A contract with one verdict per class could not catch a checker stuck at True or False.
    seen = collections.defaultdict(set)
    for prompt, _, ref in contract:
        for c, v in zip(prompt.constraints, ref["verdicts"]):
            seen[eval_muldimif.TYPE_OF_KEY[f"{c[0]}_{c[1]}"]].add(v)
    assert len(seen) == 12
    assert all(v == {0, 1} for k, v in seen.items() if k not in ("Format_XML", "Content_Identifiers")), seen


def _one(category, subcategory, text, response):
    return verify.check_muldimif([response], [[[category, subcategory, text]]])[0][0]


# The reference's answers on inputs that exercise its parsing quirks.
TRAPS = [
    # Length_Sentences: a constraint the parser cannot read passes (`if not params` tests a
    # 2-tuple); sentences are the [.!?] characters.
    ("Length", "Sentences", "Keep the answer brief", "no punctuation at all", True),
    ("Length", "Sentences", "The answer must contain at most 2 sentences", "Hi... there", False),
    # Length_Paragraphs: an unreadable constraint fails instead.
    ("Length", "Paragraphs", "Keep the answer brief", "one paragraph", False),
    # Content_Keywords: "at least N" is a count unless "words long" follows (a negative lookahead).
    ("Content", "Keywords", "Include the keyword 'tea' at least 2 times", "tea and more tea", True),
    ("Content", "Keywords", "Include the keyword 'tea' at least 3 words long", "tea and tea", True),
    ("Content", "Keywords", "Include the keyword 'tea' at least twice", "tea, teapot", False),
    # keywords match whole words, case-insensitively
    ("Content", "Keywords", "Must include the keyword 'Tea'", "TEA time", True),
    ("Content", "Keywords", "Must include the keyword 'tea'", "teatime", False),
    # "avoid using the term" excludes the first quoted keyword
    ("Content", "Keywords", "Avoid using the term 'coffee'", "I like Coffee.", False),
    # each/every: each element of the response must hold the keyword
    ("Content", "Keywords", "Each item must include the keyword 'x'", "- a x\n- b x", True),
    ("Content", "Keywords", "Each item must include the keyword 'x'", "- a x\n- b", False),
    # Length_Words: number words and ranges (its lookahead at the end of each pattern)
    ("Length", "Words", "The answer must be between ten and twenty words", "word " * 15, True),
    ("Length", "Words", "The answer must be between ten and twenty words", "word " * 9, False),
    ("Length", "Words", "Answer in exactly three words", "one two three", True),
    # Length_Words "each word must be at most N characters": text.split(' ') pieces
    ("Length", "Words", "Each word must be at most 3 characters", "the cat  sat", True),
    ("Length", "Words", "Each word must be at most 3 characters", "the cats", False),
    # Format_Table: columns counted on the first line with a '|' (split('|') - 2)
    ("Table", "Column limit", "The table must have no more than 2 columns", "| a | b |\n|---|---|\n| 1 | 2 |", True),
    ("Table", "Column limit", "The table must have no more than 2 columns", "| a | b | c |\n|---|---|---|", False),
    ("Table", "Row limit", "The table must not exceed 1 rows", "| a |\n|---|\n| 1 |\n| 2 |", False),
    # no '|' at all: a constraint that mentions no table passes
    ("Table", "Row limit", "Keep it to 3 rows at most", "plain text", True),
    # Language_English: blank fails; upper case is text == text.upper()
    ("Language", "English", "The response must be in all uppercase", "   ", False),
    ("Language", "English", "The response must be in all uppercase", "HELLO 123!", True),
    ("Language", "English", "The response must be in all uppercase", "Hello", False),
    # title case: only a word starting with an ASCII a-z fails
    ("Language", "English", "Capitalize the first letter of each word", "Hello World 1st éclair", True),
    # Content_Others: exact constraint strings; a blank response is checked like any other
    ("Content", "Length", "Keep it a paragraph long", "", True),
    ("Content", "Identifiers", "It must include in-text citations", "as shown (Smith, 2020)", True),
    # Format_Json: depth of the parsed JSON, in a ```json block if there is one
    ("Json", "Object nesting levels", "The JSON must not exceed two levels of nesting",
     "```json\n{\"a\": {\"b\": 1}}\n```", True),
    ("Json", "Object nesting levels", "The JSON must not exceed two levels of nesting",
     "{\"a\": {\"b\": {\"c\": 1}}}", False),
    ("Json", "Object nesting levels", "The JSON must not exceed two levels of nesting", "not json", False),
    # Format_Markdown: heading levels
    ("Markdown", "Heading levels", "Use heading levels 1 and 2", "# A\n## B", True),
    ("Markdown", "Heading levels", "Use heading levels 1 and 2", "# A\n### B", False),
    # Content_Punctuation: the last character of the stripped response
    ("Content", "Punctuation", "The response must end with a period", "Done.  ", True),
    ("Content", "Punctuation", "The response must end with a period", "Done!", False),
]


@pytest.mark.parametrize("category,subcategory,text,response,expected", TRAPS)
def test_parsing_traps_give_the_reference_answer(category, subcategory, text, response, expected):
    assert _one(category, subcategory, text, response) is expected


@pytest.mark.parametrize("category,subcategory,text", [
    # int("five") (ValueError)
    ("Length", "Words", "Each word must be at most five characters"),
    # the phrase "two" becomes the int 2, and re.escape(2) raises TypeError
    ("Format", "Text", "Must include 'two'"),
    # "at least" without a number before "block quotes": None.group (AttributeError)
    ("Markdown", "Block quotes", "Use at least some block quotes"),
    # "Each example must start with" but no start identifier to read (None.group)
    ("Content", "Identifiers", "Each example must start with a verb"),
    # a word bound written with a digit that int() refuses ("²".isdigit() is True)
    ("Content", "Keywords", "Use at least \u00b2 words and the keyword 'a'"),
])
def test_a_constraint_text_the_reference_raises_on_is_an_error_naming_it(category, subcategory, text):
    with pytest.raises(verify.ConstraintError) as err:
        verify.check_muldimif(["a response", "another"], [[], [["Length", "Words", "ok"], [category, subcategory, text]]])
    assert (err.value.row, err.value.constraint, err.value.field) == (1, 1, "kwargs.text")
    assert "reference raises" in err.value.reason


@pytest.mark.parametrize("category,subcategory,text,response", [
    # the unreadable word bound is None, compared with the count (TypeError) only when the
    # response gets that far
    ("Content", "Keywords", "Use at least many words with the keyword 'a'", "a"),
    # json.loads raises ValueError (not JSONDecodeError) on an integer of over 4300 digits
    ("Json", "Object nesting levels", "The JSON must have a nesting level of 2", "[" + "1" * 5000 + "]"),
])
def test_a_response_the_reference_raises_on_is_not_followed(category, subcategory, text, response):
    assert _one(category, subcategory, text, response) is False


def test_the_reference_answers_where_its_raise_depends_on_the_response():
    # The same unreadable bound: a response that fails the capital-letter rule first is a plain False
    # for the reference too, and one that passes every rule before it raises there.
    text = "Must use capitalized letters for each word, at least many words"
    assert _one("Content", "Keywords", text, "lower case") is False


def test_an_unknown_key_is_an_error_naming_it():
    with pytest.raises(verify.ConstraintError) as err:
        verify.check_muldimif(["x"], [[["Length", "Words", "ok"], ["Lenght", "Words", "at most 3 words"]]])
    assert err.value.row == 0 and err.value.constraint == 1 and err.value.field == "constraint"
    assert "'Lenght_Words'" in str(err.value) and "Length_Words" in str(err.value)
    with pytest.raises(verify.ConstraintError, match="category, subcategory, text"):
        verify.check_muldimif(["x"], [[["Length", "Words"]]])
    with pytest.raises(ValueError, match="unknown MulDimIF constraint key"):
        verify.muldimif_constraint("Format", "Yaml", "x")


def test_keys_are_the_reference_class_mapping():
    keys = verify.muldimif_keys()
    assert len(keys) == len(set(keys)) == 55
    assert set(keys) == set(eval_muldimif.TYPE_OF_KEY)


def test_muldimif_ids_have_no_blank_rule_and_no_loose_mode():
    i, kw = verify.muldimif_constraint("Content", "Length", "Keep it a paragraph long")
    strict, loose = verify.check_strict_and_loose(["", "a\nb"], [[i], [i]], [[kw], [kw]])
    assert strict == [[True], [False]] and loose == strict


def test_language_chinese_through_zhconv():
    assert _one("Language", "Chinese", "Must use Traditional Chinese characters", "這是繁體中文") is True
    assert _one("Language", "Chinese", "Must use Traditional Chinese characters", "这是简体中文") is False
    assert _one("Language", "Chinese", "Use Simplified Chinese characters", "这是简体") is True
    assert _one("Language", "Chinese", "Must include the phrase \"你好\"", "他说你好") is True


def test_language_chinese_without_zhconv_is_an_error_not_a_false(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "zhconv", None)  # import zhconv now raises ImportError
    with pytest.raises(RuntimeError, match="zhconv"):
        _one("Language", "Chinese", "Must use Traditional Chinese characters", "這是繁體中文")


def test_eval_report_counts(contract):
    prompts = eval_muldimif.load_prompts()[:3]
    verdicts = [[True] * len(p.constraints) for p in prompts]
    verdicts[1][0] = False
    text = eval_muldimif.report(prompts, verdicts)
    n = sum(len(p.constraints) for p in prompts)
    assert "all constraints 2/3 = 0.6667" in text
    assert f"micro {n - 1}/{n} = {(n - 1) / n:.4f}" in text
    assert "per difficulty" in text and "per constraint pattern" in text


def test_mangled_constraints_and_responses_give_verdicts_not_crashes(contract):
    # Untrusted text on both sides: constraint texts with characters inserted, deleted and
    # swapped, against responses cut, repeated and spliced, must give a verdict for every pair.
    import random

    rng = random.Random(7)
    alphabet = list("|#>-*{}[]\":,.!? \n\t'`0123456789aeoxyz") + ["两", "十", "“", "”", "–", "\u2028", "😀"]
    rows = rng.sample(contract, 300)
    responses, constraints = [], []
    for prompt, resp, _ in rows:
        text = resp["response"]
        cut = rng.randrange(len(text) + 1)
        responses.append(rng.choice([text[:cut], text * 3, text[cut:] + "{" * 50 + text[:cut],
                                     "".join(rng.choice(alphabet) for _ in range(200))]))
        row = []
        for c in prompt.constraints:
            t = list(c[2])
            for _ in range(rng.randrange(1, 6)):
                op, k = rng.randrange(3), rng.randrange(len(t) + 1)
                if op == 0:
                    t.insert(k, rng.choice(alphabet))
                elif op == 1 and t:
                    del t[min(k, len(t) - 1)]
                elif len(t) > 1:
                    j = rng.randrange(len(t))
                    t[min(k, len(t) - 1)], t[j] = t[j], t[min(k, len(t) - 1)]
            row.append([c[0], c[1], "".join(t)])
        constraints.append(row)
    got = verify.check_muldimif(responses, constraints, num_threads=2)
    assert [len(v) for v in got] == [len(c) for c in constraints]
    assert all(isinstance(x, bool) for v in got for x in v)
