"""The C++ word tokenizer (csrc/treebank.cpp) against NLTK 3.10.4's own.

Oracles: `nltk.word_tokenize(text)` (Punkt sentences, then NLTKWordTokenizer on each) and
`NLTKWordTokenizer().tokenize(text)` alone. Tokens must be identical on every prompt and response
of the IFEval/IFBench data (and the loose variants), on generated text full of quotes,
contractions and punctuation, and on hand-picked edge cases.
"""
import functools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hirfast.verify  # noqa: F401  (sets the assets directory the engine reads Punkt parameters from)
from hirfast import _C
from test_punkt import FRAGMENTS, SEPARATORS, data_texts  # the same data set and trap vocabulary

nltk = pytest.importorskip("nltk")
from nltk.tokenize import NLTKWordTokenizer  # noqa: E402

TREEBANK = NLTKWordTokenizer()


def assert_same_as_nltk(text: str) -> None:
    assert _C._treebank_tokenize(text) == TREEBANK.tokenize(text), ascii(text)
    assert _C._nltk_word_tokenize(text) == nltk.word_tokenize(text), ascii(text)


@functools.lru_cache(maxsize=None)
def reference_sentence_tokens(sentence: str) -> tuple[str, ...]:
    return tuple(TREEBANK.tokenize(sentence))


def reference_word_tokenize(text: str) -> list[str]:
    """nltk.word_tokenize(text), computed as its source does (sent_tokenize, then
    NLTKWordTokenizer per sentence), with each distinct sentence tokenized once: the loose
    variants repeat most sentences, and this halves the test's time."""
    return [tok for sentence in nltk.sent_tokenize(text) for tok in reference_sentence_tokens(sentence)]


def test_benchmark_data_identical_to_nltk(data_dir):
    texts = data_texts(data_dir)
    assert len(texts) > 5000
    for t in texts[::50]:  # the shortcut above is nltk.word_tokenize itself
        assert reference_word_tokenize(t) == nltk.word_tokenize(t)
    mismatches = [t for t in texts if _C._nltk_word_tokenize(t) != reference_word_tokenize(t)]
    assert not mismatches, f"{len(mismatches)} of {len(texts)} differ; first: {mismatches[0][:300]!r}"
    # The tokenizer alone, on whole texts (many sentences, newlines inside): one in eight.
    for t in texts[::8]:
        assert _C._treebank_tokenize(t) == TREEBANK.tokenize(t), t[:300]


EDGE_CASES = [
    "",
    " ",
    "Good muffins cost $3.88 (roughly 3,36 euros)\nin New York.  Please buy me\ntwo of them.\nThanks.",
    "They'll save and invest more. I'm sure they're right. You've got it. He'd go. She's here.",
    "DON'T SHOUT. CAN'T STOP. WE'LL SEE. THEY'RE HERE. I'VE DONE IT. IT'S OK. I'M FINE. HE'D GO.",
    "I cannot go. Gimme that. I'm gonna win. Gotta go. Lemme see. More'n enough. I wanna go. D'ye know?",
    "CANNOT. GIMME. GONNA. GOTTA. LEMME. MORE'N. WANNA go. D'YE see?",
    "wanna", "wanna.", "I wanna\tgo", "'Tis the season. 'twas the night. 'TIS true. 'TWAS so.",
    "\u0130 'tis \u017f 'ti\u017f gimme g\u0130mme 'T\u0130S gim\u0131e",
    '"Hello," she said. "Goodbye."',
    "He said ``hello'' and ''bye''. `single` ```triple```.",
    "«Bonjour» “quoted” ‘single’ „low“ ’tis”.",
    "'re 'll 've 'm 't 's 'd 'n 'x 'hello' 'Re 'S 'sa ' 'x'",
    "x's x'S x'm x'd x' x'll x'LL x're x'RE x've x'VE xn't XN'T x'Ll",
    "Ellipsis... and more..... and . . . spaced.",
    "Dashes -- and --- and - and \u2012\u2013\u2014\u2015 figure/en/em/bar.",
    "Symbols ; @ # $ % & * and (brackets) [square] {curly} <angle>.",
    "Question? Exclamation! Both?! Colon: comma, 3,000 and 3:00.",
    "Ends with colon:", "Ends with comma,", "ends:\n", "Final period.)\"' ", "Final period. ) ’ » ",
    "Abbrev. inside. And U.S. end.",
    "Tab\tand\nnewline\x0band\x0cform\rfeed\x1cfs\x1dgs\x1ers\x1fus\x85nel\xa0nbsp\u2028ls\u3000ideo.",
    "x\u0301's y\u0301n't '\u0301x \u00b2's \u0663'd",
    "Привет, мир! Как дела? 日本語の文です。",
    "**Bold** and *italic* and # heading and - item.",
    "http://example.com/path?q=1&r=2. mailto:a@b.c",
    "it's' 's' ''' \"'\" '\"' ``'' ''``",
]


@pytest.mark.parametrize("text", EDGE_CASES)
def test_edge_cases_identical_to_nltk(text):
    assert_same_as_nltk(text)


CONTRACTION_WORDS = [
    "cannot", "Cannot", "CANNOT", "d'ye", "D'Ye", "gimme", "GIMME", "gonna", "Gonna", "gotta", "GOTTA",
    "lemme", "more'n", "MORE'N", "wanna", "WANNA", "'tis", "'Tis", "'TIS", "'twas", "'Twas", "'TWAS",
    "don't", "DON'T", "Don't", "can't", "CAN'T", "won't", "isn't", "ISN'T", "I'm", "I'M", "you're", "YOU'RE",
    "we've", "WE'VE", "they'll", "THEY'LL", "he'd", "HE'D", "it's", "IT'S", "o'clock", "rock'n'roll",
]
QUOTE_CHARS = ['"', "'", "`", "``", "''", "«", "»", "“", "”", "‘", "’", "„"]

generated_text = st.lists(
    st.tuples(
        st.one_of(
            st.sampled_from(FRAGMENTS),
            st.sampled_from(CONTRACTION_WORDS),
            st.sampled_from(QUOTE_CHARS),
            st.text(alphabet="'\"`.,:;?!*()[]{}<>-@#$%&aAsStTnNdDmMlLrRvVeE \n\u2019\u201d\xbb", max_size=5),
        ),
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


def test_case_insensitive_letters_identical_to_nltk():
    """The scanners list by hand the non-ASCII characters that match a pattern letter under
    IGNORECASE: for `regex` (clitics after an opening quote) and for `re` (the contractions).
    Every code point that does match, by the engines themselves, is tried against NLTK here."""
    import re

    import regex

    every_char = "".join(map(chr, range(0x110000)))
    clitic_matches = {m.group() for m in regex.finditer(r"(?i)[revlmtsdn]", every_char)}
    contraction_matches = {m.group() for m in re.finditer(r"(?i)[a-z]", every_char)}
    for c in sorted(clitic_matches | contraction_matches):
        if ord(c) < 128:
            continue
        for text in (f"'{c} x", f"'{c}e x", f"'{c}{c} x", f"x '{c}is y", f"wan{c}a ", f"'t{c}s 'tw{c}s x",
                     f"g{c}mme go{c}na {c}ore'n d'{c}e ca{c}not"):
            assert_same_as_nltk(text)
    # The contractions' first characters have no non-ASCII equivalents (the prefilter relies on it).
    assert [m.group() for m in re.finditer(r"(?i)[cdglmw']", every_char)] == list("'CDGLMWcdglmw")


def test_long_inputs_finish():
    """1 MB runs of each character class a pass scans for are tokenized without trouble, and a
    smaller copy of each agrees with NLTK."""
    for unit in ("'", "!", "-", ". ", "``", "''", "cannot ", "'t", "a.)", "«x» "):
        assert_same_as_nltk(unit * (2000 // len(unit)))
        assert len(_C._treebank_tokenize(unit * (1_000_000 // len(unit)))) > 0
