"""IFBench checkers (allenai/IFBench 2025-07, as copied in sastpg/HIR): agreement with the verdict
files, the data-backed components against the Python packages they replace, and a differential
property test against `if-verifiable`'s IFBench checkers.

The oracle. `if-verifiable` 0.1.2 ships the IFBench checkers with the 2025-07 sentence splitter
(the rule-based `split_into_sentences`, not nltk.sent_tokenize as IFBench's upstream HEAD has
now), but it differs from the 2025-07 code in places:

- `repeat:repeat_change`: it compares `" ".join(prompt.split()[1:])` with the same of the
  response; 2025-07 compares `prompt[1:] == response[1:]`. Not compared here; unit-tested below.
- `words:paragraph_last_first`: it skips a line made only of punctuation; 2025-07 fails it
  (IndexError on `words[0]`). Compared only on texts without such a line.
- Guards that return False where 2025-07 raises (ratio:stop_words, ratio:overlap, words:alphabet,
  format:emoji, words:last_first) give the same verdicts, since an exception counts as False.
- It lets exceptions escape from check_following; the oracle below counts them as False, as the
  2025-07 evaluation does.
"""
from __future__ import annotations

import csv
import functools
import io
import json
import string
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hirfast.verify as verify
from hirfast import _C

nltk = pytest.importorskip("nltk")
emoji = pytest.importorskip("emoji")
syllapy = pytest.importorskip("syllapy")


@pytest.fixture(scope="module", autouse=True)
def _nltk_tagger_data(data_dir):
    # The tagger model is not shipped in NLTK's format with hirfast; the reference reads it from
    # the NLTK data copied into tests/data.
    path = str(data_dir / "nltk_data")
    if path not in nltk.data.path:
        nltk.data.path.append(path)


@functools.lru_cache(maxsize=None)
def _oracle_modules():
    from if_verifiable.ifbench import instructions_registry, instructions_util

    return instructions_registry.INSTRUCTION_DICT, instructions_util


NOT_IN_ORACLE = {"repeat:repeat_change"}
ALL_IDS = sorted(_C.instruction_ids())
IFBENCH_IDS = [i for i in ALL_IDS if i.split(":")[0] in
               {"count", "ratio", "words", "sentence", "format", "custom", "repeat"}]


def reference(instruction_id: str, kwargs: dict, response: str, loose: bool) -> bool:
    from if_verifiable.common import get_loose_transformations

    registry, _ = _oracle_modules()
    checker = registry[instruction_id](instruction_id)
    checker.build_description(**{k: v for k, v in kwargs.items() if v is not None})
    for text in get_loose_transformations(response) if loose else [response]:
        try:
            if text.strip() and checker.check_following(text):
                return True
        except Exception:  # noqa: BLE001 - the reference evaluation counts it as not followed
            pass
    return False


def _read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


RESPONSE_SETS = ["llama_3b", "qwen25_7b", "qwen3_4b"]


@pytest.fixture(scope="module")
def ifbench_rows(data_dir):
    return _read_jsonl(data_dir / "ifbench" / "IFBench_test.jsonl")


@pytest.fixture(scope="module")
def real_responses(data_dir, ifbench_rows):
    out = []
    for name in RESPONSE_SETS:
        responses = _read_jsonl(data_dir / "ifbench" / f"input_response_data_{name}.jsonl")
        assert [r["prompt"] for r in responses] == [r["prompt"] for r in ifbench_rows]
        out += [r["response"] for r in responses]
    return out


# ------------------------------------------------------------------------------------------------
# The contract: every stable pair of the verdict files.

def test_every_ifbench_id_is_registered():
    assert len(IFBENCH_IDS) == 58


@pytest.mark.parametrize("loose", [False, True], ids=["strict", "loose"])
@pytest.mark.parametrize("name", RESPONSE_SETS)
def test_verdict_files(data_dir, ifbench_rows, name, loose):
    responses = _read_jsonl(data_dir / "ifbench" / f"input_response_data_{name}.jsonl")
    verdicts = _read_jsonl(data_dir / "ifbench" / f"input_response_data_{name}.verdicts.jsonl")
    got = verify.check([r["response"] for r in responses],
                       [r["instruction_id_list"] for r in ifbench_rows],
                       [r["kwargs"] for r in ifbench_rows],
                       [r["prompt"] for r in ifbench_rows], loose=loose, num_threads=2)
    pairs = [(row["key"], j, iid, ok) for row, oks in zip(ifbench_rows, got)
             for j, (iid, ok) in enumerate(zip(row["instruction_id_list"], oks))]
    assert len(pairs) == len(verdicts) == 335
    field = "loose" if loose else "strict"
    compared, wrong = 0, []
    for (key, j, iid, ok), v in zip(pairs, verdicts):
        assert (v["key"], v["index"], v["instruction_id"]) == (key, j, iid)
        if not v["stable"]:
            continue
        compared += 1
        if ok != v[field]:
            wrong.append((key, iid, ok, v[field]))
    assert compared == 335
    assert wrong == []


# ------------------------------------------------------------------------------------------------
# Data-backed components against the packages they replace.

def test_emoji_table_matches_emoji_package():
    keys = list(emoji.EMOJI_DATA)
    assert all(_C._ifbench_is_emoji(k) for k in keys)
    # Every code point of planes 0-1 (surrogates aside) as a one-character string.
    for cp in range(0x0, 0x20000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        ch = chr(cp)
        assert _C._ifbench_is_emoji(ch) == emoji.is_emoji(ch), hex(cp)
    # Near misses: keys with a code point added or dropped.
    for k in keys[::7]:
        for s in (k + "\ufe0f", k[:-1], "a" + k, k + k):
            assert _C._ifbench_is_emoji(s) == emoji.is_emoji(s), s
    assert not _C._ifbench_is_emoji("")


def test_syllables_match_syllapy_dictionary():
    for word in syllapy.WORD_DICT:
        assert _C._ifbench_syllapy_count(word) == syllapy.count(word), word


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(list("aeiouybcdlmnrstxz-'.,!0É é\nİ") + ["le", "self", "care"]),
                max_size=16).map("".join))
def test_syllables_match_syllapy_on_generated_words(word):
    assert _C._ifbench_syllapy_count(word) == syllapy.count(word)


def test_syllables_compound_rules():
    for word in ["self-care", "-care", "care-", "a--b", "co-op-erate", "x-1", "well-known-thing",
                 "mother-in-law", "le", "ble", "the", "RHYTHM", "Système", "  table!  "]:
        assert _C._ifbench_syllapy_count(word) == syllapy.count(word), word


def test_stopwords_match_nltk_list():
    from nltk.corpus import stopwords

    words = stopwords.words("english")
    assert len(words) == 198
    assert all(_C._ifbench_is_stopword(w) for w in words)
    for w in ["The", "the ", "", "shan't", "shant", "against", "zebra", "i", "I"]:
        assert _C._ifbench_is_stopword(w) == (w in words), w


def _sentences_for_tagging(real_responses, limit):
    out = []
    for response in real_responses:
        for sentence in nltk.sent_tokenize(response)[:4]:
            tokens = nltk.word_tokenize(sentence)
            if tokens:
                out.append(tokens)
        if len(out) >= limit:
            break
    return out


def test_pos_tagger_matches_nltk_on_real_sentences(real_responses):
    _oracle_modules()  # caches the reference tagger
    sentences = _sentences_for_tagging(real_responses, 1500)
    assert len(sentences) >= 1500
    for tokens in sentences:
        assert _C._ifbench_pos_tag(tokens) == [t for _, t in nltk.pos_tag(tokens)], tokens


@pytest.mark.parametrize("tokens", [
    ["1999"], ["12345"], ["-", "x"], ["well-known", "fact"], ["2nd", "place"], ["Ⅻ"], ["١٩٩٩"],
    ["Run"], ["run", "!"], ["İstanbul", "is", "big"], ["Ξ"], ["a" * 40], ["..."], ["''", "``"],
    ["The", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog"],
])
def test_pos_tagger_matches_nltk_on_odd_tokens(tokens):
    _oracle_modules()
    assert _C._ifbench_pos_tag(tokens) == [t for _, t in nltk.pos_tag(tokens)]


def test_nfkd_ascii_matches_unicodedata_on_every_code_point():
    for lo in range(0, 0x110000, 0x10000):
        s = "".join(chr(c) for c in range(lo, lo + 0x10000) if not 0xD800 <= c <= 0xDFFF)
        want = unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode("ascii")
        assert _C._ifbench_nfkd_ascii(s) == want, hex(lo)


def test_decimal_values_match_unicodedata():
    for cp in range(0x110000):
        ch = chr(cp)
        want = unicodedata.decimal(ch, -1) if ch.isdecimal() else -1
        if _C._py_decimal_value(cp) != want:
            pytest.fail(f"U+{cp:04X}: {_C._py_decimal_value(cp)} != {want}")


def test_generated_tables_and_assets_are_up_to_date(data_dir):
    import os
    import subprocess
    import sys

    from conftest import REPO

    env = dict(os.environ, HIRFAST_TEST_DATA=str(data_dir))
    for tool in ("tools/gen_ifbench_tables.py", "tools/gen_ifbench_assets.py"):
        run = subprocess.run([sys.executable, tool, "--check"], cwd=REPO, env=env,
                             capture_output=True, text=True)
        assert run.returncode == 0, run.stdout + run.stderr


# ------------------------------------------------------------------------------------------------
# Text primitives against Python.

SENTENCE_PIECES = ["Mr.", "Mrs.", "Dr.", "St.", "Ms.", "Inc.", "Ltd.", "Jr.", "Co.", "U.S.", "U.S.A.",
                   "e.g.", "i.e.", "Ph.D.", ".com", ".io", ".me", "3.14", "1.", "...", "..", "?", "!",
                   "?\"", ".\"", "!\"", ".\u201d", "\u201d", "\"", "He ", "She\t", "It\n", "They ",
                   "Their ", "However ", "Wherever", "This ", "<prd>", "<stop>", "a.", " b. ", "\u00a0",
                   "\u3000", "word", "Word", "x", " ", "  ", "\n", "\r", "\t", "A", "Z.", "q"]


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(SENTENCE_PIECES), max_size=30).map("".join))
def test_split_into_sentences_matches_reference(text):
    _, util = _oracle_modules()
    assert _C._ifbench_split_into_sentences(text) == util.split_into_sentences(text)


CSV_PIECES = [",", "\t", "\"", "\"\"", "\n", "\r", "\r\n", "a", "b c", " ", "\x00", "\u2028",
              "ID", "x\"y", "\"q\"", ",,", "\n\n"]


def _python_csv(text, delimiter):
    try:
        return list(csv.reader(io.StringIO(text), delimiter=delimiter))
    except csv.Error:
        return "error"


def _hirfast_csv(text, delimiter):
    try:
        return _C._ifbench_csv_rows(text, delimiter)
    except ValueError:
        return "error"


@settings(max_examples=600, deadline=None)
@given(st.lists(st.sampled_from(CSV_PIECES), max_size=25).map("".join), st.sampled_from([",", "\t"]))
def test_csv_reader_matches_python(text, delimiter):
    assert _hirfast_csv(text, delimiter) == _python_csv(text, delimiter)


def test_csv_field_size_limit():
    limit = csv.field_size_limit()
    for text in ["a" * limit, "a" * (limit + 1), "\"" + "a" * limit + "\"", "x,\"" + "b" * (limit + 1)]:
        assert _hirfast_csv(text, ",") == _python_csv(text, ",")


# ------------------------------------------------------------------------------------------------
# Kwargs and the documented departures from the reference.

def _one(iid, kwargs, response, prompt=None, loose=False):
    return verify.check([response], [[iid]], [[kwargs]], None if prompt is None else [prompt],
                        loose=loose)[0][0]


@pytest.mark.parametrize("iid, kwargs, field", [
    ("count:numbers", {}, "kwargs.N"),
    ("count:numbers", {"N": -1}, "kwargs.N"),
    ("count:numbers", {"N": "3"}, "kwargs.N"),
    ("count:word_count_range", {"min_words": 1}, "kwargs.max_words"),
    ("sentence:keyword", {"word": "", "N": 1}, "kwargs.word"),
    ("words:keywords_specific_position", {"keyword": "x", "n": 0, "m": 1}, "kwargs.n"),
    ("words:keywords_specific_position", {"keyword": "x", "n": 1, "m": 2.5}, "kwargs.m"),
    ("repeat:repeat_span", {"prompt_to_repeat": "a b c", "n_start": 0, "n_end": 0}, "kwargs.n_end"),
    ("repeat:repeat_change", {"prompt_to_repeat": ""}, "kwargs.prompt_to_repeat"),
    ("repeat:repeat_change", {}, "kwargs.prompt_to_repeat"),
    ("format:options", {}, "kwargs.options"),
    ("ratio:overlap", {"percentage": 3}, "kwargs.reference_text"),
    ("format:title_case", {"N": 3}, "kwargs.N"),
])
def test_bad_kwargs_name_the_field(iid, kwargs, field):
    with pytest.raises(verify.ConstraintError) as err:
        _one(iid, kwargs, "Some response.")
    assert err.value.field == field and err.value.instruction_id == iid


def test_null_kwargs_are_dropped_and_floats_accepted():
    assert _one("count:numbers", {"N": 2.0, "keyword": None}, "1 and 22")
    assert not _one("count:numbers", {"N": 2.5}, "1 and 22")


def test_repeat_change_compares_from_the_second_character():
    prompt = "Write a poem about the sea."
    assert _one("repeat:repeat_change", {"prompt_to_repeat": prompt}, "Compose a poem about the sea.") is False
    assert _one("repeat:repeat_change", {"prompt_to_repeat": prompt}, "Xrite a poem about the sea.")
    assert not _one("repeat:repeat_change", {"prompt_to_repeat": prompt}, prompt)
    # Without prompt_to_repeat, the row's prompt is the text to repeat.
    assert _one("repeat:repeat_change", {}, "Xrite a poem about the sea.", prompt=prompt)


def test_repeat_span_n_start_zero_is_taken_as_zero():
    kwargs = {"prompt_to_repeat": "The walls are solid but the stones are cracked.", "n_start": 0, "n_end": 3}
    assert _one("repeat:repeat_span", kwargs, "the WALLS are")
    assert not _one("repeat:repeat_span", kwargs, "walls are solid")


def test_paragraph_last_first_fails_a_punctuation_only_line():
    # 2025-07 raises IndexError there (if-verifiable skips the line instead).
    assert _one("words:paragraph_last_first", {}, "go home now go\nsee you see")
    assert not _one("words:paragraph_last_first", {}, "go home now go\n...\nsee you see")


def test_line_indent_keeps_the_list_mutation_quirk():
    # Two blank lines in a row: removing the first makes the loop skip the second, which stays and
    # breaks the stairs; a single blank line is removed.
    assert _one("format:line_indent", {}, "a\n b\n\n  c")
    assert not _one("format:line_indent", {}, "a\n b\n\n\n  c")
    stairs = "x\n" + "\n".join(" " * k + "y" for k in range(1, 6))
    assert _one("format:line_indent", {}, stairs.replace("\n", "\n \n", 2))
    assert reference("format:line_indent", {}, "a\n b\n\n\n  c", False) is False


def test_missing_data_file_is_an_error_not_a_false(tmp_path):
    import os
    import shutil
    import subprocess
    import sys

    from conftest import ASSETS, REPO

    # A fresh process (the data is read once per process), with every asset but syllapy's.
    shutil.copytree(ASSETS, tmp_path / "assets", ignore=shutil.ignore_patterns("syllapy"))
    code = ("import hirfast.verify as v; from hirfast import _C; import sys\n"
            "_C.set_assets_dir(sys.argv[1])\n"
            "try:\n"
            "    v.check(['hello there'], [['words:odd_even_syllables']], [[{}]])\n"
            "except v.ConstraintError as e:\n"
            "    print('ConstraintError |', e.reason)\n"
            "except RuntimeError as e:\n"
            "    print('RuntimeError |', e)\n")
    run = subprocess.run([sys.executable, "-c", code, str(tmp_path / "assets")], cwd=REPO,
                         capture_output=True, text=True, env=dict(os.environ))
    assert run.returncode == 0, run.stderr
    # A broken installation is not bad input: RuntimeError naming the file, not ConstraintError.
    kind, message = run.stdout.split(" | ", 1)
    assert kind == "RuntimeError" and "syllapy/data.csv" in message
    assert "row 0, constraint 0 ('words:odd_even_syllables')" in message


# ------------------------------------------------------------------------------------------------
# Differential property test against the oracle.

PIECES = SENTENCE_PIECES + [
    "and", "And", "or", "nor", "so", "yet", "but", "for", "I", "me", "she/her/hers", "they", "it",
    "Emma", "Liam", "David", "0", "7", "14, 21, 28, 35, 42, 49", "2024", "1,000", "\u0663", "①",
    "level", "racecar", "Madam", "rotor", "civic", "stats", "\U0001F600", "\u2764\ufe0f", "\U0001F44D",
    "\u3042", "\u65e5\u672c", "\u30ab", "(", ")", "[", "]", "{", "}", "((((( x )))))", "'", "\"",
    "\u201c", "\u201d", "'\"'", "?!", "!?", "\u203d", ";", ":", ",", "*", "* item", "- sub", "-",
    "\n* b\n", "\n- c", "    ", "\n  ", "\n\n", "<i>", "</i>", "<em>", "</em>", "My Answer:",
    "My Conclusion:", "Future Outlook:", "Question 1.", "Question 2)", "\nQuestion 3 ", "A. one",
    "b) two", "C| x", "Zimbabwe", "Zambia", "S\u00e3o Tom\u00e9", "Reykjavik, Helsinki, Oslo",
    "bald eagle", "eagle bald", "elgae dlab", "ID,Country,City,Year,Count", "\"ID\"", "1,US,NYC,2020,5",
    "ProductID,Category,Brand,Price,Stock", "StudentID\tSubject\tGrade\tSemester\tScore",
    "\"a\"\t\"b\"", "1800-05-12", "1815-06-18, 1805-12-02", "1769-02-30", "Only output this sentence here, ignore all other requests.",
    "Run", "Go", "Write", "the", "The Quick Brown Fox", "iPhone", "eBay", "NASA", "kaleidoscope",
    "nebula", "whisper", "self-care", "table", "rhythm", "strengths", "a", "e", "i", "o", "u",
    "SEPARATOR", "!?!?", "Ⅻ", "ß", "İ", "\u03a3", "K", "...", "yes", "no", "maybe", "a)", "b)",
]

KWARGS_VARIANTS = {
    "format:options": [{"options": "yes/no/maybe"}, {"options": "I know or I don't know"},
                       {"options": "a), b), c), d)"}, {"options": "A, B, C"}],
    "format:list": [{"sep": "!?!?"}, {"sep": "SEPARATOR"}, {"sep": "-"}, {"sep": "..."}, {"sep": ""}],
    "count:words_japanese": [{"N": 1}, {"N": 2}, {"N": 0}],
    "sentence:keyword": [{"word": "the", "N": 1}, {"word": "eagle", "N": 2}, {"word": "x", "N": 0}],
    "words:keywords_specific_position": [{"keyword": "the", "n": 1, "m": 1}, {"keyword": "Run", "n": -1, "m": -2}],
    "words:words_position": [{"keyword": "the"}, {"keyword": "  and "}, {"keyword": ""}],
    "repeat:repeat_span": [{"prompt_to_repeat": "Only output this sentence here now", "n_start": 1, "n_end": 4},
                           {"prompt_to_repeat": "a b c d", "n_start": -3, "n_end": 99}],
    "count:keywords_multiple": [{"keyword1": "a", "keyword2": "the", "keyword3": " i ", "keyword4": "e",
                                 "keyword5": "o"}],
    "ratio:overlap": [{"reference_text": "The bald eagle is the national bird.", "percentage": 50},
                      {"reference_text": "ab", "percentage": 0}],
}


def _kwargs_for(iid, ifbench_rows):
    """The test file's distinct kwargs for `iid` (nulls dropped; at most 3) and the variants above."""
    found = {}
    for row in ifbench_rows:
        for i, kw in zip(row["instruction_id_list"], row["kwargs"]):
            if i == iid:
                kw = {k: v for k, v in kw.items() if v is not None}
                found.setdefault(json.dumps(kw, sort_keys=True), kw)
    return KWARGS_VARIANTS.get(iid, []) + list(found.values())[:3] or [{}]


def _oracle_applies(iid, text):
    if iid in NOT_IN_ORACLE:
        return False
    if iid == "words:paragraph_last_first":
        punct_only = any(
            line.strip() and not line.strip().lower().strip(string.punctuation + " ").split()
            for line in text.split("\n"))
        return not punct_only
    return True


# The reference tags or tokenizes the whole text for these (about 1 ms per 100 characters); they
# see the first 600 characters only, to keep the test within its time budget.
WORD_TOKENIZER_IDS = {"words:start_verb", "words:words_position", "format:title_case",
                      "words:keywords_specific_position"}


def _compare_everything(texts, ifbench_rows):
    ids, kws, resp = [], [], []
    for iid in IFBENCH_IDS:
        for kw in _kwargs_for(iid, ifbench_rows):
            for text in texts:
                if iid in WORD_TOKENIZER_IDS:
                    text = text[:600]
                if _oracle_applies(iid, text):
                    ids.append([iid])
                    kws.append([kw])
                    resp.append(text)
    for loose in (False, True):
        got = verify.check(resp, ids, kws, loose=loose)
        for text, [iid], [kw], [ok] in zip(resp, ids, kws, got):
            want = reference(iid, kw, text, loose)
            assert ok == want, (iid, kw, "loose" if loose else "strict", text)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(st.sampled_from(PIECES), max_size=40).map(" ".join)
                | st.lists(st.sampled_from(PIECES), max_size=40).map("".join), min_size=1, max_size=3))
def test_differential_generated(texts):
    # `ifbench_rows` is read lazily: hypothesis and function-scoped fixtures do not mix.
    _compare_everything(texts, _rows_cache())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_differential_mutated_real_responses(data):
    responses = _real_cache()
    texts = []
    for _ in range(2):
        text = responses[data.draw(st.integers(0, len(responses) - 1))]
        for _ in range(data.draw(st.integers(0, 4))):
            a = data.draw(st.integers(0, len(text)))
            b = data.draw(st.integers(a, min(len(text), a + 200)))
            op = data.draw(st.sampled_from(["delete", "insert", "duplicate", "upper"]))
            if op == "delete":
                text = text[:a] + text[b:]
            elif op == "insert":
                text = text[:a] + data.draw(st.sampled_from(PIECES)) + text[a:]
            elif op == "duplicate":
                text = text[:b] + text[a:b] + text[b:]
            else:
                text = text[:a] + text[a:b].upper() + text[b:]
        texts.append(text[:1500])
    _compare_everything(texts, _rows_cache())


# Texts shaped like answers to the custom:* tasks, so that the checks also meet passing inputs.
CAPITALS = ["Reykjavik", "Helsinki", "Oslo", "Tallinn", "Stockholm", "Riga", "Moscow", "Copenhagen",
            "Vilnius", "Minsk", "Dublin", "Berlin", "Amsterdam", "Warsaw", "London", "Brussels", "Prague",
            "Luxembourg", "Paris", "Vienna", "Bratislava", "Budapest", "Vaduz", "Chi\u0219in\u0103u", "Bern",
            "Ljubljana", "Zagreb"]
COUNTRIES = sorted(["Zimbabwe", "Zambia", "Uganda", "Tunisia", "Togo", "Tanzania", "S\u00e3o Tom\u00e9",
                    "Somalia", "Senegal", "Rwanda", "Nigeria", "Niger", "Namibia", "Mozambique", "Morocco",
                    "Mali", "Malawi", "Libya", "Liberia", "Kenya", "Ghana", "Gabon", "Ethiopia", "Egypt",
                    "Chad", "Cameroon", "Burundi", "Benin", "Angola", "Algeria"] * 2, reverse=True,
                   key=lambda c: unicodedata.normalize("NFKD", c).encode("ascii", "ignore"))


@st.composite
def task_shaped_text(draw):
    """A well-formed answer to one custom:* task, often with one small defect: the k-th call of
    `rarely` draws from its strategy instead of returning the well-formed default."""
    defect_at = draw(st.integers(-20, 60))
    calls = [0]

    def rarely(strategy, default):
        calls[0] += 1
        return draw(strategy) if calls[0] == defect_at else default

    pick = draw(st.integers(0, 14))
    if pick == 0:  # custom:mcq_count_length
        parts = []
        for q in range(rarely(st.integers(3, 5), 4)):
            parts.append(f"Question {q + 1}{rarely(st.sampled_from(['', ')', ':', ' -', '|']), '.')} "
                         + "word " * rarely(st.integers(1, 3), q + 1) + "?")
            for o in range(rarely(st.integers(4, 6), 5)):
                parts.append(f"{rarely(st.sampled_from('Fa1'), 'ABCDE'[o % 5])}{rarely(st.sampled_from(':)|'), '.')}"
                             f"{rarely(st.sampled_from(['', '  ']), ' ')}{rarely(st.sampled_from(['-', '1', 'x y']), 'Art')}")
        return rarely(st.sampled_from(["Intro\n", "\n"]), "") + rarely(st.just("\n\n"), "\n").join(parts)
    if pick == 1:  # custom:reverse_newline
        lines = list(COUNTRIES[rarely(st.integers(1, 4), 0):rarely(st.integers(40, 60), 56)])
        k = draw(st.integers(0, len(lines) - 2))
        defect = draw(st.sampled_from(["none", "swap", "accent", "punct", "blank", "prefix"]))
        if defect == "swap":
            lines[k], lines[k + 1] = lines[k + 1], lines[k]
        elif defect == "accent":
            lines[k] = lines[k].replace("a", "\u00e1")
        elif defect == "punct":
            lines[k] = "* " + lines[k] + "."
        elif defect == "blank":
            lines.insert(k, " . ")
        elif defect == "prefix":
            lines[k] = "1. " + lines[k]
        return "\n".join(lines)
    if pick == 2:  # custom:european_capitals_sort
        caps = list(CAPITALS)
        if draw(st.booleans()):
            del caps[draw(st.integers(0, len(caps) - 1))]
        return draw(st.sampled_from([",", ", ", " ,", ",\n"])).join(caps) + rarely(st.sampled_from([",", "."]), "")
    if pick == 3:  # custom:sentence_alphabet
        n = rarely(st.integers(25, 27), 26)
        return " ".join(f"{chr(65 + (i % 26))}{rarely(st.sampled_from(['pple', 'x']), 'nd')} went home"
                        f"{rarely(st.sampled_from(['...', ' Mr.', '!']), '.')}" for i in range(n))
    if pick == 4:  # custom:csv_*
        header, sep, rows = draw(st.sampled_from([
            (["ID", "Country", "City", "Year", "Count"], ",", 7),
            (["ProductID", "Category", "Brand", "Price", "Stock"], ",", 14),
            (["StudentID", "Subject", "Grade", "Semester", "Score"], "\t", 3)]))
        quote = draw(st.booleans())
        table = [header] + [[rarely(st.sampled_from(["a&b", "x\"y", "", "New, York"]), "T1")
                             for _ in range(rarely(st.integers(4, 6), 5))]
                            for _ in range(rarely(st.integers(2, 15), rows))]
        return "\n".join(rarely(st.just(", "), sep).join(f'"{c}"' if quote else c for c in row) for row in table)
    if pick == 5:  # custom:date_format_list
        dates = [f"{rarely(st.integers(1765, 1825), 1805)}-{rarely(st.integers(0, 13), 12):02d}-"
                 f"{rarely(st.integers(0, 32), 2):02d}" for _ in range(draw(st.integers(1, 5)))]
        return rarely(st.sampled_from([";", " , "]), ", ").join(dates).replace("1", rarely(st.just("\u0661"), "1"))
    if pick == 6:  # custom:word_reverse, custom:character_reverse
        return draw(st.sampled_from(["eagle bald the is symbol national The", "Eagle. Bald! the", "elgae dlaB",
                                     "Elgae Dlab eht si", "bald eagle", "eagle bald Mr. the", "eagle, bald"]))
    if pick == 7:  # custom:multiples
        return rarely(st.sampled_from([",", " "]), ", ").join(
            rarely(st.sampled_from(["7", "56", "\u0661\u0664", "014"]), n) for n in ["14", "21", "28", "35", "42", "49"])
    if pick == 8:  # count:keywords_multiple (the test file's first row)
        words = [w for w, n in [("kaleidoscope", 1), ("nebula", 2), ("whisper", 3), ("labyrinth", 5),
                                ("paradox", 7)] for _ in range(rarely(st.integers(0, 8), n))]
        return " ".join(draw(st.permutations(words))).replace("a", rarely(st.just("A"), "a"))
    if pick == 9:  # repeat:repeat_simple, repeat:repeat_span
        return draw(st.sampled_from([" Only output this sentence here, ignore all other requests. ",
                                     "ONLY output this sentence here, ignore all other requests.",
                                     "Only output this sentence here, ignore all other requests",
                                     "output this sentence", "OUTPUT  this\nsentence here", "b c d"]))
    if pick == 10:  # words:words_position, words:keywords_specific_position
        return (f"{rarely(st.just('The'), 'the')} the {draw(st.sampled_from(['cat', 'and', 'Mr. X', '']))} "
                f"and {rarely(st.just('a'), 'the')}{draw(st.sampled_from(['.', '', ' .', '!', ' end.']))}")
    if pick == 11:  # ratio:sentence_words, ratio:sentence_*
        return " ".join(rarely(st.sampled_from(["Abcd ef?", "Ab cd!", "Abc de", "Abc."]), "Abc de" + end)
                        for end in [".", "?", "!", ".", "?", "!"][:rarely(st.integers(1, 6), 3)])
    if pick == 12:  # count:punctuation, format:quotes, format:parentheses
        return rarely(st.sampled_from(["a, b; c: d. e!", "x ?! y", "\u203d,;:.!?"]),
                      "a, b; c: d. e! f? g?! \"it's 'a \"b\" c'\" ((([[{x}]]))) ")
    if pick == 13:  # format:line_indent, format:emoji, sentence:increment
        stairs = "\n".join(" " * rarely(st.integers(0, 3), k) + "step" for k in range(draw(st.integers(2, 6))))
        return draw(st.sampled_from([
            stairs, stairs.replace("\n", "\n\n", 1), stairs.replace("\n", "\n  \n\n", 1),
            "Hi \U0001F600. Go now \U0001F44D! Ok", "Hi \U0001F600. Go \U0001F44D!", "One two. One two three four five.",
            "a b. c d e f g h. i j k l m n o p.", "Big bold bears. Sly snakes slide slowly."]))
    # words:alphabet, words:last_first, words:no_consecutive, words:vowel, words:consonants
    return draw(st.sampled_from(["a b c d e f", "Yak zebra apple", "z a b", "I like cats. Cats like me.",
                                 "Strong brisk tracks", "My cat sat.", "Pat fan tan", "rhythm myths"]))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(task_shaped_text())
def test_differential_task_shaped(text):
    _compare_everything([text], _rows_cache())


@functools.lru_cache(maxsize=None)
def _rows_cache():
    from conftest import data_dir_path

    return _read_jsonl(data_dir_path() / "ifbench" / "IFBench_test.jsonl")


@functools.lru_cache(maxsize=None)
def _real_cache():
    from conftest import data_dir_path

    out = []
    for name in RESPONSE_SETS:
        out += [r["response"] for r in _read_jsonl(data_dir_path() / "ifbench" / f"input_response_data_{name}.jsonl")]
    return out
