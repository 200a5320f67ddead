"""The C++ port of langdetect 1.0.9's detect() (csrc/langdetect.cpp) against the Python package,
seeded with 0 as the IFEval reference seeds it: same language or same exception, for every
response and prompt of the benchmark data in tests/data (and their loose variants), and for generated text in many
scripts, with URLs, e-mail-like strings, capital words and texts past the 10,000-character cap.
"""
import concurrent.futures
import json
import pathlib
import random
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langdetect import DetectorFactory, detect, detector_factory
from langdetect.lang_detect_exception import LangDetectException
from langdetect.utils.ngram import NGram

import hirfast.verify  # noqa: F401  (points the engine at hirfast/assets)
from hirfast import _C

REPO = pathlib.Path(__file__).resolve().parents[1]
DetectorFactory.seed = 0


def reference_detect(text: str) -> str | None:
    """langdetect.detect with seed 0; None where it raises LangDetectException."""
    try:
        return detect(text)
    except LangDetectException:
        return None


def reference_appended_text(text: str) -> str:
    """The text a fresh Detector holds after append(text)."""
    detector_factory.init_factory()
    detector = detector_factory._factory.create()
    detector.append(text)
    return detector.text


def assert_same_detection(texts, what: str):
    mismatches = []
    for text in texts:
        expected, got = reference_detect(text), _C._langdetect_detect(text)
        if expected != got:
            mismatches.append((text[:120], expected, got))
    assert not mismatches, f"{len(mismatches)} of {len(texts)} {what} differ, first: {mismatches[:3]}"


# --- the data file -------------------------------------------------------------------------------


def test_data_file_is_what_the_converter_makes():
    result = subprocess.run(
        [sys.executable, str(REPO / "tools" / "convert_langdetect_profiles.py"), "--check"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _run_with_assets(assets_dir: pathlib.Path) -> subprocess.CompletedProcess:
    code = (
        "from hirfast import _C\n"
        f"_C.set_assets_dir({str(assets_dir)!r})\n"
        "_C._langdetect_detect('hello world')\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_missing_data_file_is_a_clear_error(tmp_path):
    result = _run_with_assets(tmp_path)
    assert result.returncode != 0
    assert "langdetect/profiles.bin" in result.stderr and "RuntimeError" in result.stderr


@pytest.mark.parametrize("cut", [0, 3, 5, 1000, -4])
def test_corrupt_data_file_is_a_clear_error(tmp_path, cut):
    data = (REPO / "hirfast" / "assets" / "langdetect" / "profiles.bin").read_bytes()
    (tmp_path / "langdetect").mkdir()
    (tmp_path / "langdetect" / "profiles.bin").write_bytes(data[:cut])
    result = _run_with_assets(tmp_path)
    assert result.returncode != 0
    assert "corrupt langdetect data file" in result.stderr, result.stderr


# --- Python's random.Random(0) -------------------------------------------------------------------


def test_random_draws_match_python():
    # gauss() (op -1) and choice(range(n)) (op n), interleaved as the detector interleaves them,
    # with n at powers of two and their neighbours (getrandbits' rejection loop).
    rng = random.Random(1234)
    sizes = [1, 2, 3, 4, 5, 7, 8, 9, 255, 256, 257, 30000, 2**16, 2**31 - 1, 2**31, 2**32 - 1]
    ops = [-1 if rng.random() < 0.2 else rng.choice(sizes + [rng.randint(1, 40000)]) for _ in range(5000)]
    reference = random.Random()
    reference.seed(0)
    expected = [reference.gauss(0.0, 1.0) if op < 0 else reference.choice(range(op)) for op in ops]
    assert _C._langdetect_random_trace(ops) == expected


# --- Detector.append: URL_RE, MAIL_RE, normalize_vi, the cap -------------------------------------

APPEND_CASES = [
    "",
    "see http://example.com/a?b=c&d#e now",
    "https://x",
    "http://",
    "http:/x https:/x httpss://x hxxp://x HTTP://x",
    "http://" + "a" * 2076 + "b" * 10,
    "http://" + "a" * 2075 + ":" + "b",
    "xhttp://http://a",
    "see http://a\x00b c",
    "a\x00@b\x00c.d e@\x00",
    "mail me: john.doe@example.com.",
    "a@b@c",
    "x@y@z.com",
    "ab@cd",
    "a@bc",
    "a@b",
    "a@b.c",
    "a@.bc",
    "@abc",
    "a@-_.",
    "l" * 64 + "@dd",
    "l" * 65 + "@dd",
    ".l" * 40 + "@dd",
    "a@" + "d" * 255 + "x",
    "a@" + "d" * 255,
    "a@" + "d" * 256,
    "a@" + "d" * 254 + "." + "e" * 300,
    "a@" + "d" * 300 + "." + "e" * 600,
    "a@" + "d" * 600 + "@" + "e" * 3,
    "a@b.c@d.e@f",
    "user@http://site.org/x ok",
    "Vie\u0323\u0302t Nam co\u0301 a\u0300 A\u0309 ơ\u0303 Ư\u0323 y\u0301 e\u0302\u0301 a\u0300\u0301",
    "  lots   of    spaces \n\n  and\ttabs  ",
    " " * 20000 + "end",
    "word " * 2500,
    "a\u0301" * 12000,
]


@pytest.mark.parametrize("text", APPEND_CASES, ids=range(len(APPEND_CASES)))
def test_appended_text_matches_python(text):
    assert _C._langdetect_appended_text(text) == reference_appended_text(text)


# Texts built from the characters the two regexes care about, with run lengths around their
# bounds (64, 255, 2076).
_regex_piece = st.one_of(
    st.text(alphabet="ab.-_@:/hts\x00", min_size=1, max_size=12),
    st.sampled_from(["http://", "https://", "@", ".", " ", "\n", "http", "://", "é", "ơ\u0301"]),
    st.builds(lambda c, n: c * n, st.sampled_from(["a", ".", "-", "Z9"]),
              st.sampled_from([1, 2, 63, 64, 65, 254, 255, 256, 2075, 2076, 2077])),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_regex_piece, max_size=12).map("".join))
def test_appended_text_matches_python_on_regex_edges(text):
    assert _C._langdetect_appended_text(text) == reference_appended_text(text)


# --- detect(): the benchmark data ----------------------------------------------------------------


def _loose_variants(response: str) -> list[str]:
    lines = response.split("\n")
    variants = [
        response,
        "\n".join(lines[1:]).strip(),
        "\n".join(lines[:-1]).strip(),
        "\n".join(lines[1:-1]).strip(),
    ]
    return variants + [v.replace("*", "") for v in variants]


def _data_texts(data_dir: pathlib.Path) -> list[str]:
    texts = set()
    for path in sorted(data_dir.glob("ifeval/*.jsonl")) + sorted(data_dir.glob("ifbench/*.jsonl")):
        if path.name.endswith(".verdicts.jsonl"):
            continue
        with open(path, encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                if isinstance(row.get("prompt"), str):
                    texts.add(row["prompt"])
                if isinstance(row.get("response"), str):
                    texts.update(_loose_variants(row["response"]))
    return sorted(texts)


@pytest.mark.slow
def test_detect_matches_python_on_the_benchmark_data(data_dir):
    # About 9,500 distinct texts; Python takes ~30 s over them on one core.
    texts = _data_texts(data_dir)
    assert len(texts) > 5000
    assert_same_detection(texts, "benchmark-data texts")


# --- detect(): generated text in many scripts ----------------------------------------------------


def _chars(first: int, last: int) -> str:
    return "".join(chr(c) for c in range(first, last + 1) if chr(c).isprintable() or c >= 0x0300)


SCRIPTS = {
    "latin": "abcdefghijklmnopqrstuvwxyz" * 4 + _chars(0xC0, 0x24F),
    "cyrillic": _chars(0x400, 0x4FF),
    "greek": _chars(0x370, 0x3FF),
    "arabic": _chars(0x600, 0x6FF) + "\u06cc" * 10,
    "devanagari": _chars(0x900, 0x97F),
    "cjk": _chars(0x4E00, 0x4FFF) + "".join(NGram.CJK_MAP)[:400],
    "kana": _chars(0x3040, 0x30FF),
    "hangul": _chars(0xAC00, 0xAD00),
    "thai": _chars(0xE00, 0xE7F),
    "latin_extended_additional": _chars(0x1E00, 0x1EFF),
    "bopomofo": _chars(0x3100, 0x312F) + _chars(0x31A0, 0x31BF),
    "hebrew": _chars(0x590, 0x5FF),
}
VI_BASES, VI_MARKS = NGram.TO_NORMALIZE_VI_CHARS, NGram.DMARK_CLASS

_word = st.one_of(
    *[st.text(alphabet=alphabet, min_size=1, max_size=10) for alphabet in SCRIPTS.values()],
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ" + "АБВГДЕЖЗ" + "ΑΒΓΔ" + "ÀÉÎ", min_size=2, max_size=8),
    st.lists(st.tuples(st.sampled_from(VI_BASES + "bcdn"), st.sampled_from(VI_MARKS + "\u0302\u0306 ")),
             min_size=1, max_size=6).map(lambda pairs: "".join(a + b for a, b in pairs)),
    st.sampled_from(["the", "and", "The", "THE", "IFEval", "Hello", "naïve", "ș", "ț", "ß"]),
)
_other = st.one_of(
    st.text(alphabet="0123456789", min_size=1, max_size=6),
    st.text(alphabet=".,;:!?()[]{}'\"*#-_/\\|<>=+~`^@&%$", min_size=1, max_size=4),
    st.text(alphabet="\u2000\u2013\u2014\u2019\u201c\u2026\u00a0\u00ab\u00bb\u00b0\u3000\ufffd", min_size=1, max_size=3),
    st.text(alphabet="\U0001F600\U0001F680\U00020000\U0001D400\ud800", min_size=1, max_size=2),
    st.builds(lambda s, host, path: f"http{s}://{host}/{path}", st.sampled_from(["", "s"]),
              st.from_regex(r"[a-z0-9.-]{1,20}", fullmatch=True),
              st.from_regex(r"[-_.?&~;+=/#0-9A-Za-z]{0,30}", fullmatch=True)),
    st.builds(lambda user, host: f"{user}@{host}",
              st.from_regex(r"[-_.0-9A-Za-z]{1,70}", fullmatch=True),
              st.from_regex(r"[-_.0-9A-Za-z]{1,30}", fullmatch=True)),
)
_separator = st.sampled_from([" ", " ", " ", "  ", "\n", "\n\n", ", ", ". ", "\t", ""])
_piece = st.tuples(st.one_of(_word, _word, _word, _other), _separator).map("".join)


@st.composite
def _texts(draw):
    pieces = draw(st.lists(_piece, max_size=60))
    text = "".join(pieces)
    if draw(st.integers(0, 9)) == 0 and text:  # past the 10,000-character cap
        text = text * (10_500 // len(text) + 1)
    return text


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_texts())
def test_detect_matches_python_on_generated_text(text):
    assert _C._langdetect_appended_text(text) == reference_appended_text(text)
    assert _C._langdetect_detect(text) == reference_detect(text)


@pytest.mark.parametrize("text", [
    "", " ", "12345", "!!! ??? ...", "\u2014\u2014", "http://example.com", "a@b.com",
    "AB", "ABC DEF", "I", "x", "\U0001F600", "ßß",
    # cleaning_text counts U+1E00..U+1EFF as non-Latin (its block test compares an int with a
    # str), so here the Latin letters are dropped and nothing is left to detect.
    "ḁḃḅḇḉḋḍḏḑḓ" * 2 + " dog house",
    "ạảấầẩẫậắằẳẵặẹẻẽếềểễệ the cat",
])
def test_detect_matches_python_on_edge_cases(text):
    assert _C._langdetect_detect(text) == reference_detect(text)


# --- threads -------------------------------------------------------------------------------------


def test_concurrent_detection_gives_the_sequential_answers(data_dir):
    with open(data_dir / "ifeval" / "input_response_data_qwen25_7b.jsonl", encoding="utf-8") as f:
        texts = [json.loads(line)["response"] for line in f][:200]
    sequential = [_C._langdetect_detect(t) for t in texts]
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        concurrent_results = list(pool.map(_C._langdetect_detect, texts * 3))
    assert concurrent_results == sequential * 3
    assert sequential[:50] == [reference_detect(t) for t in texts[:50]]
