"""The C++ Punkt sentence splitter (csrc/punkt.cpp) against NLTK 3.10.4's own.

The oracle is `nltk.sent_tokenize` / `PunktTokenizer("english")` with the punkt_tab parameters
shipped in hirfast/assets/nltk (conftest points NLTK_DATA there): sentences and spans must be
identical on every prompt and response of the IFEval/IFBench data (and the loose variants
the checkers build), on generated text full of Punkt's traps, and on hand-picked edge cases.
"""
import json
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hirfast.verify  # noqa: F401  (sets the assets directory the engine reads Punkt parameters from)
from hirfast import _C

nltk = pytest.importorskip("nltk")
from nltk.tokenize.punkt import PunktTokenizer  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFERENCE = PunktTokenizer("english")


def loose_variants(text: str) -> list[str]:
    """The texts IFEval's loose check tries: `*` removed, first/last/both lines dropped."""
    lines = text.split("\n")
    remove_first = "\n".join(lines[1:]).strip()
    remove_last = "\n".join(lines[:-1]).strip()
    remove_both = "\n".join(lines[1:-1]).strip()
    out = []
    for t in (text, remove_first, remove_last, remove_both):
        out += [t, t.replace("*", "")]
    return out


def data_texts(data_dir) -> list[str]:
    """Every prompt and response of the IFEval/IFBench files and their loose variants,
    without duplicates (test_treebank.py uses the same set)."""
    texts = []
    files = sorted((data_dir / "ifeval").glob("*.jsonl")) + sorted((data_dir / "ifbench").glob("*.jsonl"))
    for path in files:
        if path.name.endswith(".verdicts.jsonl"):
            continue
        with open(path, encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                for field in ("prompt", "response"):
                    if isinstance(row.get(field), str):
                        texts += loose_variants(row[field])
    return list(dict.fromkeys(texts))


def assert_same_as_nltk(text: str) -> None:
    expected = REFERENCE.tokenize(text)
    assert_bound_holds(text, len(expected))
    assert _C._punkt_sentences(text) == expected, ascii(text)
    assert [tuple(s) for s in _C._punkt_sentence_spans(text)] == list(REFERENCE.span_tokenize(text)), ascii(text)
    assert _C._punkt_count_sentences(text) == len(expected), ascii(text)


def assert_bound_holds(text: str, n_sentences: int) -> None:
    """`number_sentences` settles a pair without splitting when the text has fewer than N - 1
    sentence-end characters: NLTK's count must never exceed one more than their number, and the
    engine's bound must be that number (capped where it stops counting)."""
    ends = sum(text.count(c) for c in ".?!")
    assert n_sentences <= ends + 1, ascii(text)
    assert _C._punkt_sentences_at_most(text, 10**9) == ends + 1
    for enough in (0, 1, 2, ends, ends + 1, ends + 2):
        assert _C._punkt_sentences_at_most(text, enough) == min(ends + 1, max(enough, 1))


def test_regex_tables_match_installed_regex():
    """csrc/nltk_chars_data.inc holds the `regex` module's \\w \\d \\s; NLTK uses the installed one,
    so the tables must be what it gives (whatever its version)."""
    import regex

    result = subprocess.run(
        [sys.executable, os.path.join(REPO, "tools", "gen_nltk_chars.py"), "--check",
         "--out", os.path.join(REPO, "csrc", "nltk_chars_data.inc")],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, (
        f"the tables were generated from regex {_C._nltk_chars_regex_version()}, and regex "
        f"{regex.__version__} (installed) classifies some characters differently: pin regex=="
        f"{_C._nltk_chars_regex_version()} or rerun tools/gen_nltk_chars.py\n{result.stdout}"
    )


def test_benchmark_data_identical_to_nltk(data_dir):
    texts = data_texts(data_dir)
    assert len(texts) > 5000
    mismatches = []
    for t in texts:
        expected = REFERENCE.tokenize(t)
        if _C._punkt_sentences(t) != expected:
            mismatches.append(t)
        assert_bound_holds(t, len(expected))
    assert not mismatches, f"{len(mismatches)} of {len(texts)} differ; first: {mismatches[0][:300]!r}"
    # spans on a quarter of them (the same code path, cut differently)
    for t in texts[::4]:
        assert [tuple(s) for s in _C._punkt_sentence_spans(t)] == list(REFERENCE.span_tokenize(t))


EDGE_CASES = [
    "",
    " ",
    "\n\n",
    ".",
    "Hello.",
    "Hello. World.",
    "Mr. Smith went to Washington. He arrived at 3 p.m. on Monday.",
    "Punkt knows that the periods in Mr. Smith and Johann S. Bach\ndo not mark sentence boundaries.  "
    "And sometimes sentences\ncan start with non-capitalized words.  i is a good variable\nname.",
    '(How does it deal with this parenthesis?)  "It should be part of the\nprevious sentence." '
    '"(And the same with this one.)" (\'And this one!\')\n"(\'(And (this)) \'?)" [(and this. )]',
    "Very bad acting!!! I promise.",
    "Wait... what? Really?! Yes.",
    "It costs 3.14 dollars. 1. First item. 2. Second item.",
    "See e.g. the U.S. Army. It is big.",
    "He said “Stop.” Then he left. «Bon.» Fin. ‘Yes.’ No.",
    "A sentence.\u2028Another one.\u3000And a third.\xa0Fourth.",
    "Control\x1cchars. After\x1c. End.\x1c",
    "Trailing spaces.   \n\t ",
    "Dash follows.-- Next one.",
    "Quote then dash.\"--and more. Yes.",
    "Caf\u00e9. \u00c9t\u00e9 arrive. x\u0301. Y. \u00b2. Z.",
    "\u0394\u0399\u0391\u03a3. \u039f\u0394\u039f\u03a3. \u03a4\u03ad\u03bb\u03bf\u03c2.",
    "Привет. Как дела? Хорошо! 日本語の文。次の文。",
    "Digits \U00010d40\U00010d41. Next \u0663. Done.",
    "J. R. R. Tolkien wrote books. C. S. Lewis did too.",
    "No. 5 is here. Inc. is a suffix. Co. Ltd. too.",
    "the end of a sentence... The start of another.",
    ". . . and then. . . . Next.",
    "##number##. Strange. ##number## again.",
    "a.)b.)c.) D. e!? F",
    "*Bold.* **Also bold.** # Heading. - Item one. - Item two.",
    "Visit http://example.com/a.b?c=d. Then www.test.org. Done.",
]


@pytest.mark.parametrize("text", EDGE_CASES)
def test_edge_cases_identical_to_nltk(text):
    assert_same_as_nltk(text)


# Generated text: Punkt's traps glued with odd separators.
FRAGMENTS = [
    "Mr.", "Dr.", "Mrs.", "St.", "e.g.", "i.e.", "U.S.", "U.S.A.", "etc.", "vs.", "No.", "Inc.", "Jan.", "Ph.D.",
    "J.", "a.", "Z.", "é.", "ß.", "3.14", "1.", "12.", "-5", ".5", "5,000", "1.2.3", "##number##.",
    "...", "..", ". . .", ". . . .", "?", "!", "!!", "?!", ".", ",", ";", ":", "--", "-", "—",
    '"', "'", "``", "''", "`", "«", "»", "“", "”", "‘", "’", "„", "(", ")", "[", "]", "{", "}",
    "DON'T", "can't", "gonna", "'tis", "it's", "I'm",
    "http://x.com/a.b?c=d", "www.ex.org.", "*", "**", "-", "#", "##", "1)", "2.",
    "The", "the", "He", "he", "I", "i", "Hello", "world", "Smith", "However", "In", "It",
    "Привет.", "Δ.", "ΟΔΟΣ.", "日本語。", "中文", "x\u0301.", "\u0301", "²", "\u0663", "ſ", "İ", "ı",
]
SEPARATORS = [" ", " ", " ", "  ", "", "\n", "\n\n", "\t", "\r\n", "\x0b", "\x0c", "\x1c", "\x1f", "\x85",
              "\xa0", "\u2028", "\u3000", " \n "]

generated_text = st.lists(
    st.tuples(
        st.one_of(st.sampled_from(FRAGMENTS), st.text(alphabet=".?!'\"()-,:; aAzZ1\n\xa0", max_size=4)),
        st.sampled_from(SEPARATORS),
    ),
    max_size=30,
).map(lambda parts: "".join(a + b for a, b in parts))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(generated_text)
def test_generated_text_identical_to_nltk(text):
    assert_same_as_nltk(text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_arbitrary_unicode_identical_to_nltk(text):
    assert_same_as_nltk(text)


def test_threads_agree_with_one_thread():
    """Parameters load once (std::call_once) however many threads ask first; results are the
    same from any thread. Run in a fresh interpreter, so that the first use happens here."""
    code = (
        "import hirfast.verify\n"
        "from hirfast import _C\n"
        "from concurrent.futures import ThreadPoolExecutor\n"
        "texts = ['Mr. Smith arrived. He sat down. ' * (k % 7 + 1) + 'The end.' for k in range(400)]\n"
        "with ThreadPoolExecutor(8) as pool:\n"
        "    counts = list(pool.map(_C._punkt_count_sentences, texts))\n"
        "assert counts == [_C._punkt_count_sentences(t) for t in texts], counts\n"
        "print(sum(counts))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    expected = sum(len(REFERENCE.tokenize("Mr. Smith arrived. He sat down. " * (k % 7 + 1) + "The end."))
                   for k in range(400))
    assert int(result.stdout) == expected


def test_missing_parameters_raise_a_clear_error(tmp_path):
    code = (
        "from hirfast import _C\n"
        f"_C.set_assets_dir({str(tmp_path)!r})\n"
        "try:\n"
        "    _C._punkt_count_sentences('One. Two.')\n"
        "except RuntimeError as e:\n"
        "    print(e)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert "missing data file" in result.stdout and "punkt_tab/english" in result.stdout, result.stdout


def test_long_inputs_finish():
    """Long runs without whitespace, of marks or of closers (1 MB each) are split without trouble,
    and a smaller copy of each agrees with NLTK."""
    for unit in ("a.)", "x", ". ", "!", "a.\xa0", "'", ") "):
        small = unit * 2000
        assert_same_as_nltk(small)
        assert _C._punkt_count_sentences(unit * (1_000_000 // len(unit))) >= 1
