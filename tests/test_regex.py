"""Differential tests of the C++ regex engine (csrc/regex*.cpp) against CPython 3.11's `re`.

The engine must give `re`'s answers (spans, groups, findall/split/sub results, error messages
and positions) on every pattern it accepts, refuse only the documented non-linear features with
RegexUnsupported, and never hang. Python's `re` is the oracle throughout; the engine is reached
through the test hooks `_C._re_*` (pattern, flags, ...).
"""
import pathlib
import re
import subprocess
import sys
import textwrap
import threading

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from hirfast import _C

# Phrases of the RegexUnsupported messages: the only features the engine may refuse.
UNSUPPORTED = (
    "backreferences cannot be matched",
    "lookahead assertions",
    "lookbehind assertions",
    "conditional groups",
    "named Unicode escapes are not supported",
    "possessive quantifiers",
    "atomic groups",
    "pattern too large",
    "pattern too complex",
    "nested more than",
    "too many groups",
)

# re warns about patterns that may change meaning in later versions ("Possible nested set") and
# about odd group names in templates; both are irrelevant to the comparison.
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::DeprecationWarning")

PY_ERRORS = (re.error, OverflowError, ValueError, IndexError, RecursionError)

# Characters with case quirks under IGNORECASE: Kelvin sign, long s, dotless/dotted i, micro
# sign and mu, sharp s, the three sigmas, a Deseret pair outside the BMP, Latin-1 accents.
CASE_CHARS = ("kK\u212a" "sS\u017f" "iI\u0131\u0130" "\u00b5\u03bc\u039c" "\u00df\u1e9e" "\u03a3\u03c3\u03c2"
              "\U00010400\U00010428" "\u00e9\u00c9")
TEXT_CHARS = "abcAB" + CASE_CHARS + " \n\t_-.019*\u00a0\u0663"
META = set(".\\[]{}()*+?^$|#")


def lit(c):
    return "\\" + c if c in META or c in " \t\n" else c


def py_match_tuple(m):
    if m is None:
        return None
    return (m.start(), m.end(), [m.span(g) for g in range(1, m.re.groups + 1)])


def ours_tuple(r):
    if r is None:
        return None
    return (r[0], r[1], [tuple(g) for g in r[2]])


def compile_both(pattern, flags):
    """(python error or None, our error or None); asserts the error contract."""
    try:
        re.compile(pattern, flags)
        perr = None
    except PY_ERRORS as e:
        perr = e
    try:
        _C._re_info(pattern, flags)
        oerr = None
    except _C.RegexError as e:
        oerr = e
    if oerr is not None and isinstance(oerr, _C.RegexUnsupported):
        assert any(p in oerr.args[0] for p in UNSUPPORTED), oerr.args[0]
        return perr, oerr
    if perr is None:
        assert oerr is None, f"we reject {pattern!r} ({oerr}) but Python compiles it"
    else:
        assert oerr is not None, f"Python rejects {pattern!r} ({perr!r}) but we compile it"
        if isinstance(perr, re.error):
            assert oerr.args[0] == str(perr), (pattern, oerr.args[0], str(perr))
            assert oerr.args[1] == perr.pos
    return perr, oerr


def both_engines(fn):
    """fn() with the default engine choice (the backtracker on these sizes) and with the Pike VM
    forced; the two must agree, and the answer is returned."""
    previous = _C._re_set_backtrack_budget(0)
    try:
        pike = fn()
    finally:
        _C._re_set_backtrack_budget(previous)
    default = fn()
    assert default == pike, (default, pike)
    return default


def compare_on(pattern, flags, texts, repls=()):
    both_engines(lambda: _compare_on(pattern, flags, texts, repls))


def _compare_on(pattern, flags, texts, repls):
    rx = re.compile(pattern, flags)
    for text in texts:
        assert ours_tuple(_C._re_search(pattern, flags, text)) == py_match_tuple(rx.search(text))
        for pos in {1, len(text) // 2, len(text)}:
            assert ours_tuple(_C._re_search(pattern, flags, text, pos)) == py_match_tuple(rx.search(text, pos))
            assert ours_tuple(_C._re_match(pattern, flags, text, pos)) == py_match_tuple(rx.match(text, pos))
        assert ours_tuple(_C._re_match(pattern, flags, text)) == py_match_tuple(rx.match(text))
        assert ours_tuple(_C._re_fullmatch(pattern, flags, text)) == py_match_tuple(rx.fullmatch(text))
        expected = [py_match_tuple(m) for m in rx.finditer(text)]
        assert [ours_tuple(r) for r in _C._re_finditer(pattern, flags, text)] == expected
        assert _C._re_count(pattern, flags, text) == len(rx.findall(text))
        assert _C._re_split(pattern, flags, text) == rx.split(text)
        assert _C._re_split(pattern, flags, text, 1) == rx.split(text, 1)
        for repl in repls:
            try:
                want = rx.sub(repl, text)
            except PY_ERRORS as e:
                with pytest.raises(_C.RegexError) as got:
                    _C._re_sub(pattern, flags, repl, text)
                if isinstance(e, re.error):
                    assert got.value.args[0] == str(e)
                continue
            assert _C._re_sub(pattern, flags, repl, text) == want
            assert _C._re_sub(pattern, flags, repl, text, 1) == rx.sub(repl, text, count=1)


# ---------------------------------------------------------------------------------------------
# Generated patterns.

single = st.sampled_from(sorted(set(TEXT_CHARS) - {"\u00a0", "\u0663"})).map(lit)
escapes = st.sampled_from(
    [".", r"\w", r"\W", r"\d", r"\D", r"\s", r"\S", r"\b", r"\B", "^", "$", r"\A", r"\Z", r"\x41",
     r"\u00e9", r"\U00010428", r"\n", r"\t", r"\0", r"\101", r"\.", r"\*", r"\\", r"\-", r"\ "])
class_item = st.one_of(
    st.sampled_from(sorted(set(TEXT_CHARS) - {"]", "\\", "^", "-", "["})),
    st.sampled_from([r"\w", r"\W", r"\d", r"\s", r"\S", r"\]", r"\-", r"\\", "a-c", "A-Z", "h-t",
                     "\u0130-\u017f", "\u03a3-\u03c9", "\u00c0-\u00ff", "\U00010400-\U00010430",
                     "\u2120-\U00010401", r"\x00-\x7f", "0-9"]),
)
char_class = st.tuples(st.booleans(), st.lists(class_item, min_size=1, max_size=4)).map(
    lambda t: "[" + ("^" if t[0] else "") + "".join(t[1]) + "]")
empty_groups = st.sampled_from(["()", "(?:)", "(|a)", "(a|)", "(?:|b)", "(a?)", "(a*)", "(|)"])
atom = st.one_of(single, single, escapes, char_class, empty_groups)
quantifier = st.sampled_from(["*", "+", "?", "*?", "+?", "??", "{2}", "{1,3}", "{,2}", "{2,}", "{0}",
                              "{1,2}?", "*+", "++", "?+", "{1,2}+", "{", "{x}"])
group_open = st.sampled_from(["(", "(", "(?:", "(?P<g1>", "(?P<g2>", "(?i:", "(?-i:", "(?s:", "(?m:",
                              "(?x:", "(?a:", "(?>", "(?i-s:"])


def extend(inner):
    return st.one_of(
        st.tuples(inner, quantifier).map("".join),
        st.lists(inner, min_size=2, max_size=4).map("".join),
        st.lists(inner, min_size=2, max_size=3).map("|".join),
        st.tuples(group_open, inner).map(lambda t: t[0] + t[1] + ")"),
    )


wide_patterns = st.recursive(atom, extend, max_leaves=10)
# Two letters and dense nesting: most texts match, in many ways, so the priority between paths
# (greedy/lazy, alternation order, empty iterations) decides spans and groups.
dense_atom = st.one_of(st.sampled_from(["a", "b", "a", "b", ".", "()", "(a|)", "(|b)", "[ab]", "^", "$", r"\b"]))
dense_patterns = st.recursive(dense_atom, extend, max_leaves=8)
patterns = st.one_of(wide_patterns, dense_patterns)
global_flags = st.sampled_from(["", "", "", "(?i)", "(?m)", "(?s)", "(?a)", "(?x)", "(?ims)"])
flag_values = st.sampled_from([0, 0, re.I, re.M, re.S, re.X, re.A, re.I | re.M, re.I | re.A, re.S | re.M,
                               re.I | re.S | re.X])
REPLS = (r"<\g<0>>", r"[\1]", r"\g<g1>-\g<2>", r"x\n\\y", "plain")


def texts_for(pattern):
    """Random texts, mostly of the pattern's own characters, some over the whole text alphabet."""
    own = sorted(set(pattern) - set("\\()[]{}?*+|^$:<>P=!#"))
    wide = st.text(alphabet=sorted(set(TEXT_CHARS) | set(pattern)), max_size=14)
    texts = st.one_of(st.text(alphabet=own, max_size=14), wide) if own else wide
    return st.lists(texts, min_size=1, max_size=4)


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pattern=patterns, prefix=global_flags, flags=flag_values, data=st.data())
def test_generated_patterns_agree_with_python(pattern, prefix, flags, data):
    pattern = prefix + pattern
    perr, oerr = compile_both(pattern, flags)
    if perr is not None or oerr is not None:
        event("python error" if perr is not None else "refused: " + oerr.args[0].split(" ")[0])
        return
    event("compared")
    compare_on(pattern, flags, data.draw(texts_for(pattern)), REPLS)


# Untrusted strings used as patterns (keywords, splitters, markers from training data).
raw_pattern = st.text(alphabet="ab()[]{}*+?|^$.\\-:=!<>P#,0123456789gkKswdxuUNimLtAZB\u212a\u00e9 \n", max_size=16)


@settings(max_examples=3000, deadline=None)
@given(pattern=raw_pattern, flags=flag_values, text=st.text(alphabet="ab()[]{}*+?|.\\-kK \n019", max_size=20))
def test_random_strings_as_patterns(pattern, flags, text):
    perr, oerr = compile_both(pattern, flags)
    if perr is not None or oerr is not None:
        event("python error" if perr is not None else "refused")
        return
    event("compared")
    compare_on(pattern, flags, [text, pattern, pattern * 2])


# ---------------------------------------------------------------------------------------------
# Case folding and classes, exhaustively over a wide text.

WIDE_TEXT = "".join(chr(c) for c in range(0x3000) if not 0xD800 <= c <= 0xDFFF) + "".join(
    chr(c) for c in list(range(0xFF00, 0xFF80)) + list(range(0x10400, 0x10450)) + list(range(0x1E900, 0x1E950)))


@pytest.mark.parametrize("flags", [0, re.I, re.I | re.A, re.A])
@pytest.mark.parametrize("pattern", [
    "[a-z]", "[^a-z]", "[A-Z0-9_]", "[\u0130-\u017f]", "[\u03a3-\u03c9]", "[\\w]", "[\\W\u00b5]", "[^\\d\u212a]",
    "[\\s]", "[\\S]", "[\U00010400\u00e9]", "[\U00010428x]", "[\u2120-\U00010401]", "[\U00010400-\U00010430]",
    "[\U0001E900-\U0001E922k]", "[ſ-ǿ]", "[µ]", "[ß]", "[K]", "\u212a", "k", "s", "\u017f", "\u0131", "\u0130",
    "\u03c2", "\U00010400", "\U0001E900", "[^k]", "[^\u03c3]", "\\w", "\\W", "\\d", "\\s", ".", "\\b", "\\B",
])
def test_character_semantics_over_all_code_points(pattern, flags):
    rx = re.compile(pattern, flags)
    want = [m.span() for m in rx.finditer(WIDE_TEXT)]
    got = [(r[0], r[1]) for r in _C._re_finditer(pattern, flags, WIDE_TEXT)]
    assert got == want


def fold_orbits():
    """Groups of code points that IGNORECASE matches to each other (only cased ones have any)."""
    import _sre

    groups = {}
    for c in range(0x110000):
        if _sre.unicode_iscased(c):
            groups.setdefault(_C._re_fold_key(c), []).append(chr(c))
    return [g for g in groups.values() if len(g) > 1]


def test_ignorecase_literals_match_their_whole_case_orbit():
    orbits = fold_orbits()
    assert len(orbits) > 1000
    text = "".join("".join(g) for g in orbits)
    for group in orbits:
        for c in group:
            for pattern in (re.escape(c), "[" + c + "\u0000]"):
                want = [m.span() for m in re.finditer(pattern, text, re.I)]
                assert [(r[0], r[1]) for r in _C._re_finditer(pattern, re.I, text)] == want, pattern


# ---------------------------------------------------------------------------------------------
# Errors and refusals.

@pytest.mark.parametrize("pattern", [
    "*a", "a**", "a{2}{3}", "(", ")", "a)", "[a", "[]", "[^]", "[z-a]", "[\\d-z]", r"\q", "\\", r"\x4",
    r"\u12", r"\U0011ffff", r"\777", r"\8", r"\1", "(a)\\2", "(?P<1>a)", "(?P<a>x)(?P<a>y)", "(?P=b)",
    "(?Px)", "(?", "(?z)", "a(?i)", "(?L)a", "(?au:a)", "(?-a:a)", "(?i-i:a)", "(?#unterminated", "(?<x)",
    "(?(a)b)", "(?(0)b)", "(?(2)b)", "(a)(?(1)b|c|d)", "a{3,2}", "x{99999999999}", "(?P<a", "\\N", "\\N{",
    "\\N{}", "[a\nb", "ab\n(cd\nef", "(?x)a[", "(?i", "(?t:a)", "(?-t:a)", "(?<=a+)b", "(?<!a|bc)d", "(?t)a*",
    "(?<=a)(?<=x*)", "[\\A]", "\\g", "(?P<a>a)(?P=a", "(?P", "(?a)(?u)x", "a{" + "1" * 5000 + "}",
])
def test_invalid_patterns_raise_pythons_error(pattern):
    try:
        re.compile(pattern)
    except PY_ERRORS as e:
        perr = e
    else:
        pytest.fail(f"Python accepts {pattern!r}")
    with pytest.raises(_C.RegexError) as got:
        _C._re_info(pattern, 0)
    assert not isinstance(got.value, _C.RegexUnsupported)
    if isinstance(perr, re.error):
        assert got.value.args == (str(perr), perr.pos)


@pytest.mark.parametrize("pattern, phrase", [
    (r"(a)\1", "backreferences"), ("(?P<n>a)(?P=n)", "backreferences"), ("a(?=b)", "lookahead"),
    ("a(?!b)", "lookahead"), ("(?<=a)b", "lookbehind"), ("(?<!a)b", "lookbehind"),
    ("(a)?(?(1)b|c)", "conditional"), (r"\N{EM DASH}", "named Unicode escapes"), ("(ab)++", "possessive"),
    ("(?:ab)*+", "possessive"), ("(?>a*ab)", "atomic"), ("(?>a|bc)", "atomic"), ("a{30000}", "pattern too large"),
    ("(?:a{100}){300}", "pattern too large"), ("(" * 210 + ")" * 210, "nested more than"),
])
def test_refusals_are_documented_features(pattern, phrase):
    re.compile(pattern)  # valid Python
    with pytest.raises(_C.RegexUnsupported) as got:
        _C._re_info(pattern, 0)
    assert phrase in got.value.args[0]


@pytest.mark.parametrize("name", ["a", "_x", "\u00e9t\u00e9", "\u01c5", "\u2118", "a\u00b7", "\u00b7a", "x\u0300",
                                  "\u0300x", "a-b", "\u0663", "a\u0663", "1a", "a b", "\U0001d400", "\u2160x"])
def test_group_names_follow_str_isidentifier(name):
    pattern = f"(?P<{name}>x)(?P<{name}2>y)?"
    perr, oerr = compile_both(pattern, 0)
    assert (perr is None) == name.isidentifier()
    if perr is None:
        compare_on(pattern, 0, ["xy", "x"], [f"\\g<{name}>", f"\\g<{name}2>"])


def test_identifier_tables_are_current():
    tool = pathlib.Path(__file__).resolve().parents[1] / "tools" / "gen_regex_tables.py"
    assert subprocess.run([sys.executable, str(tool), "--check"]).returncode == 0, "run tools/gen_regex_tables.py"


def test_flag_errors():
    with pytest.raises(_C.RegexError, match="cannot use LOCALE flag with a str pattern"):
        _C._re_info("a", re.L)
    with pytest.raises(_C.RegexError, match="ASCII and UNICODE flags are incompatible"):
        _C._re_info("a", re.A | re.U)
    with pytest.raises(_C.RegexError, match="unsupported flag bits"):
        _C._re_info("a", 1 << 12)


@pytest.mark.parametrize("repl", [
    "\\", r"\g", r"\g<", r"\g<>", r"\g<a", r"\g<1a>", r"\g<-1>", r"\g<9>", r"\9", r"\q", r"\g<nope>",
    r"\400", r"\g<٣>", r"\g< 1 >", r"\g<1_0>", r"\01", r"\1000", r"\g<+1>", "\\&",
])
def test_replacement_templates(repl):
    pattern, text = "(a)(b)?(?P<name>c)" + "()" * 7, "xacx"
    try:
        want = re.sub(pattern, repl, text)
    except PY_ERRORS as e:
        with pytest.raises(_C.RegexError) as got:
            _C._re_sub(pattern, 0, repl, text)
        if isinstance(e, re.error):
            assert got.value.args == (str(e), e.pos)
        else:
            assert got.value.args[0] == str(e).strip("'\"") or str(e) in got.value.args[0]
        return
    assert _C._re_sub(pattern, 0, repl, text) == want


# ---------------------------------------------------------------------------------------------
# Checker-style patterns and API details.

RESPONSE = ("Here is my answer. SECTION 1\nThe Kelvin sign \u212a and STRASSE, stra\u00dfe.\n"
            "* bullet one\n* bullet two\n- dash item\nSECTION 2 ends [placeholder] here *highlight*.\n"
            "P.S. thanks!\np.p.s also\n") * 3


@pytest.mark.parametrize("pattern, flags", [
    ("kelvin", re.I), ("k", re.I), ("strasse", re.I), (r"\bsection\b", re.I), (r"\s?SECTION\s?\d+\s?", 0),
    (r"^\s*\*[^\*].*$", re.M), (r"^\s*-.*$", re.M), (r"\s*p\.s\..*$", re.M | re.I), (r"\[.*?\]", 0),
    (r"\*[^\n\*]*\*", 0), (r"\*\*[^\n\*]*\*\*", 0), (r"\w+", 0), (r"[^\w\s]", 0), ("C++", 0), ("U.S.", re.I),
    ("", 0), ("$", re.M), (r"\b", 0), ("(?:)", 0), ("a*", 0), (r"(\w)(\w)?", 0),
])
def test_checker_patterns(pattern, flags):
    compare_on(pattern, flags, [RESPONSE, "", "\n", RESPONSE.lower()], REPLS[:2])


@pytest.mark.parametrize("pattern, flags", [
    (r"(?a:\W)", 0), (r"(?a:x|\W)", 0), (r"((?a:[\t\w]))\d", 0), (r"(?u:\W)", re.A), (r"(?u:\w)+", re.A),
    (r"(?a:\s)", 0), (r"(?a:[^\d])", 0),
])
def test_search_start_filter_uses_global_flags(pattern, flags):
    # sre's search skips positions by a first-character set compiled with the global flags,
    # even inside a leading (?a:...): search can miss what match finds.
    compare_on(pattern, flags, ["\u00b5", "a\u00b5", "\u00e91", "\u0663 x\u00e9", "\u2003\u00a0 "])


REQUIRED_TEXTS = ["", "ab", "xab", " ab c", "aab bab ab", "SECTION 1 Section 2 section3\nSECTION", "kab \u212aAB kk",
                  "\u00b5ab \u00e9ab", "\nab\n ab", "1ab 22ab 333ab 4444ab", "cbab bbc abc"]


@pytest.mark.parametrize("pattern, flags", [
    (r"\s?SECTION\s?\d+\s?", 0), (r"\s?section\s?\d+\s?", re.I), ("a?b", 0), (r"\d{0,3}ab", 0),
    ("(a|bb)?c", 0), ("(?i)k?ab", 0), ("k?ab", re.I | re.A), (r"^a?b", re.M), (r"(?a:\W)?ab", 0),
    (r"(?a:\W)ab", 0), (r"\bx?ab\b", 0), ("(a*)b", 0), (".{1,3}c", re.S), (r"(?:a|)(b|)ab", 0), (r"\B.?ab", 0),
])
def test_required_literal_after_a_bounded_head(pattern, flags):
    # Patterns that start with something of bounded width followed by a plain string: only
    # positions at the right distance before an occurrence of the string are tried.
    compare_on(pattern, flags, REQUIRED_TEXTS, REPLS[:2])


def test_literal_detection():
    assert _C._re_info("hello world", re.I)["literal"]
    assert _C._re_info(r"U\.S\.", 0)["literal"]
    assert not _C._re_info("U.S.", 0)["literal"]
    assert not _C._re_info("(a)", 0)["literal"]
    assert not _C._re_info("", 0)["literal"]


def test_overlapping_literal_keys_found_in_linear_scan():
    text = "aab" * 50 + "aaab" + "\u212a" * 3
    for pattern in ("aaab", "aab", "\u212ak", "kk\u212a", "abaa"):
        for flags in (0, re.I):
            assert _C._re_count(pattern, flags, text) == len(re.findall(pattern, text, flags))
            assert ours_tuple(_C._re_search(pattern, flags, text)) == py_match_tuple(re.search(pattern, text, flags))


@pytest.mark.parametrize("avx2", [True, False])
def test_literal_scan_finds_every_position_with_and_without_avx2(avx2):
    # A literal's first two code points are scanned for eight (AVX2) or four (SSE2) positions a
    # compare, then one at a time near the end: an occurrence at each offset of texts of every
    # length up to 40, alone or after a decoy of its first letter, is found where `re` finds it,
    # with the AVX2 loop and, on the same CPU, without it.
    had = _C._set_avx2(avx2)
    try:
        for pattern, flags in (("ab", 0), ("abc", 0), ("sk", re.I), ("\u212ax", re.I), ("kk", re.I)):
            for n in range(1, 41):
                for at in range(n):
                    for filler in (".", "a", "s", "k"):
                        occurrence = pattern.upper() if flags == re.I and at % 2 else pattern
                        text = filler * at + occurrence + filler * (n - at)
                        expected = py_match_tuple(re.search(pattern, text, flags))
                        assert ours_tuple(_C._re_search(pattern, flags, text)) == expected, (pattern, text)
    finally:
        _C._set_avx2(had)


def test_concurrent_use_of_one_pattern():
    pattern = r"(?i)\bsection\s*(\d+)"
    texts = [RESPONSE * k for k in range(1, 9)]
    want = [len(re.findall(pattern, t)) for t in texts]
    results = [None] * len(texts)

    def work(k):
        for _ in range(20):
            results[k] = _C._re_count(pattern, 0, texts[k])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == want


# ---------------------------------------------------------------------------------------------
# Pathological patterns: linear time, never a hang (checked in a subprocess with a timeout).

def run_with_timeout(code, timeout=120):
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_pathological_patterns_finish():
    out = run_with_timeout("""
        from hirfast import _C
        N = 1_000_000
        print(_C._re_search("(a+)+$", 0, "a" * N + "b"))
        print(_C._re_search("(a|aa)*b", 0, "a" * N))
        print(_C._re_count("(x+x+)+y", 0, "x" * N))
        print(_C._re_search("((a?)*)*b", 0, "a" * N))
        print(_C._re_split(r"(.*a){20}", 0, "b" * N) == ["b" * N])
    """)
    # Python would take exponential (or N**2) time on these; the answers follow from the texts:
    # no "b" after the a's, no "y", no "a" in the last one.
    assert out.split() == ["None", "None", "0", "None", "True"]


def test_pathological_pattern_with_a_match_agrees_with_python():
    # (.*a){20} on a's: Python backtracks only a little before succeeding, so it can answer.
    text = "a" * 200_000
    run_with_timeout(f"""
        import re
        from hirfast import _C
        text = "a" * {len(text)}
        m = re.search(r"(.*a){{20}}", text)
        r = _C._re_search(r"(.*a){{20}}", 0, text)
        assert (r[0], r[1], tuple(r[2][0])) == (m.start(), m.end(), m.span(1)), (r, m)
    """)


def test_deep_backtracking_falls_back_to_the_pike_vm():
    # Two pending alternatives per character: the backtracker's stack passes its cap (2**20
    # entries) and the call is redone by the Pike VM, with the same answer as Python.
    text = "ab" * 400_000 + "c"
    for pattern in (r"(?:(a)|b)*c", r"(a|b)*c", r"((?:x|a|b)*)(c|$)"):
        rx = re.compile(pattern)
        assert ours_tuple(_C._re_search(pattern, 0, text)) == py_match_tuple(rx.search(text))
        assert _C._re_count(pattern, 0, text) == len(rx.findall(text))


def test_ten_megabyte_text():
    text = ("Lorem ipsum SECTION 12 dolor Kelvin \u212a sit amet.\n" * 210_000)[:10_000_000]
    assert len(text) == 10_000_000
    assert _C._re_count("kelvin", re.I, text) == len(re.findall("kelvin", text, re.I))
    assert _C._re_split(r"\s?SECTION\s?\d+\s?", 0, text) == re.split(r"\s?SECTION\s?\d+\s?", text)
    assert ours_tuple(_C._re_search(r"(?m)^dolor", 0, text)) is None
