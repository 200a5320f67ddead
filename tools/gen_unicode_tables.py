#!/usr/bin/env python3
"""Generate csrc/unicode_data.inc: the Unicode tables the C++ engine needs to behave exactly like
CPython's `str` methods and `re` module.

The reference checkers ran on CPython 3.11.7 (Unicode 14.0.0), so the tables must be generated
with a CPython 3.11 interpreter; the script refuses any other Unicode version unless --force is
given. Everything is derived from the interpreter's own behaviour (str methods, `_sre`,
`re._casefix`), not from the Unicode data files, so the C++ side copies Python, quirks included.

Usage:  python tools/gen_unicode_tables.py [--out csrc/unicode_data.inc] [--check]
  --check   exit 1 if the file on disk differs from what would be generated (used by the tests)
"""
import argparse
import sys
import unicodedata

import _sre  # noqa: E402  (the case-folding primitives `re` itself compiles with)

try:
    from re import _casefix
except ImportError:  # pragma: no cover - Python < 3.11
    _casefix = None

EXPECTED_UNIDATA = "14.0.0"
MAX_CP = 0x110000
BLOCK = 256

# Flag bits; keep in sync with csrc/unicode.h
F_SPACE = 1 << 0      # str.isspace
F_ALNUM = 1 << 1      # str.isalnum  (re's \w is ALNUM or '_')
F_ALPHA = 1 << 2      # str.isalpha
F_DECIMAL = 1 << 3    # str.isdecimal (re's \d)
F_DIGIT = 1 << 4      # str.isdigit
F_NUMERIC = 1 << 5    # str.isnumeric
F_UPPER = 1 << 6      # chr(c).isupper()
F_LOWER = 1 << 7      # chr(c).islower()
F_TITLE = 1 << 8      # category Lt (CPython's TITLE flag)
F_CASED = 1 << 9      # Unicode "Cased" as CPython's final-sigma rule sees it
F_CASE_IGNORABLE = 1 << 10  # Unicode "Case_Ignorable" as the final-sigma rule sees it
F_PRINTABLE = 1 << 11  # str.isprintable
F_LINEBREAK = 1 << 12  # str.splitlines boundary


def _cased(ch: str) -> bool:
    # A capital sigma right after `ch` (and nothing after it) is final iff `ch` is cased, or is
    # case-ignorable and preceded by a cased letter. With nothing before `ch`, only "cased" counts.
    return (ch + "\u03a3").lower()[-1] == "\u03c2"


def _case_ignorable(ch: str) -> bool:
    if _cased(ch):
        # After "AΣ", a following cased letter makes Σ non-final unless it is skipped as ignorable.
        return ("A\u03a3" + ch).lower()[1] == "\u03c2"
    # Not cased: between "A" and Σ, Σ stays final only if `ch` is skipped as ignorable.
    return ("A" + ch + "\u03a3").lower()[-1] == "\u03c2"


def _is_linebreak(ch: str) -> bool:
    return len(("a" + ch + "b").splitlines()) == 2


def flags_of(cp: int) -> int:
    ch = chr(cp)
    f = 0
    if ch.isspace():
        f |= F_SPACE
    if ch.isalnum():
        f |= F_ALNUM
    if ch.isalpha():
        f |= F_ALPHA
    if ch.isdecimal():
        f |= F_DECIMAL
    if ch.isdigit():
        f |= F_DIGIT
    if ch.isnumeric():
        f |= F_NUMERIC
    if ch.isupper():
        f |= F_UPPER
    if ch.islower():
        f |= F_LOWER
    if unicodedata.category(ch) == "Lt":
        f |= F_TITLE
    if _cased(ch):
        f |= F_CASED
    if _case_ignorable(ch):
        f |= F_CASE_IGNORABLE
    if ch.isprintable():
        f |= F_PRINTABLE
    if _is_linebreak(ch):
        f |= F_LINEBREAK
    return f


def two_level(values, name, ctype):
    """Split `values` (one per code point) into a block index and deduplicated blocks, as C++
    arrays `<name>_index` and `<name>_data` (tools/gen_nltk_chars.py uses this too)."""
    blocks = {}
    index = []
    data = []
    for start in range(0, MAX_CP, BLOCK):
        blk = tuple(values[start:start + BLOCK])
        if blk not in blocks:
            blocks[blk] = len(blocks)
            data.extend(blk)
        index.append(blocks[blk])
    idx_type = "uint16_t"
    out = [f"// {name}: {len(blocks)} distinct blocks of {BLOCK}"]
    out.append(f"static const {idx_type} {name}_index[{len(index)}] = {{")
    out.extend(_rows(index))
    out.append("};")
    out.append(f"static const {ctype} {name}_data[{len(data)}] = {{")
    out.extend(_rows(data))
    out.append("};")
    return out


def _rows(vals, per_row=24):
    return ["  " + ",".join(str(v) for v in vals[i:i + per_row]) + "," for i in range(0, len(vals), per_row)]


def special_mappings(fn, name):
    """Code points whose full mapping (str.lower/upper) is not one code point."""
    rows = []
    for cp in range(MAX_CP):
        m = fn(chr(cp))
        if len(m) != 1:
            assert 2 <= len(m) <= 3, (cp, m)
            cps = [ord(c) for c in m] + [0] * (3 - len(m))
            rows.append((cp, len(m), cps))
    out = [f"static const SpecialCase {name}[{len(rows)}] = {{"]
    for cp, n, cps in rows:
        out.append(f"  {{{cp},{n},{{{cps[0]},{cps[1]},{cps[2]}}}}},")
    out.append("};")
    return out


def generate() -> str:
    if unicodedata.unidata_version != EXPECTED_UNIDATA and "--force" not in sys.argv:
        raise SystemExit(
            f"this interpreter has Unicode {unicodedata.unidata_version}; the reference used "
            f"{EXPECTED_UNIDATA} (CPython 3.11). Run with Python 3.11, or pass --force."
        )
    flags = [flags_of(cp) for cp in range(MAX_CP)]

    def single_delta(fn):
        out = []
        for cp in range(MAX_CP):
            m = fn(chr(cp))
            out.append(ord(m) - cp if len(m) == 1 else 0)
        return out

    lower_delta = single_delta(str.lower)
    upper_delta = single_delta(str.upper)
    # re.IGNORECASE on str patterns: `_sre.unicode_tolower` (simple lowercase), then the extra
    # equivalences of re._casefix (e.g. 'ı'/'i', 'ſ'/'s', 'µ'/'μ'). Two code points match under
    # IGNORECASE iff they have the same key = min of the lowercase and its extra equivalents.
    extra = _casefix._EXTRA_CASES if _casefix else {}
    fold_delta = []
    orbits = {}
    for cp in range(MAX_CP):
        lo = _sre.unicode_tolower(cp)
        key = min((lo,) + tuple(extra.get(lo, ())))
        fold_delta.append(key - cp)
        orbits.setdefault(key, []).append(cp)
    sre_lower_delta = [_sre.unicode_tolower(cp) - cp for cp in range(MAX_CP)]

    out = [
        "// Generated by tools/gen_unicode_tables.py from CPython "
        f"{sys.version.split()[0]} (Unicode {unicodedata.unidata_version}). Do not edit.",
        "// clang-format off",
    ]
    out += two_level(flags, "kFlags", "uint16_t")
    out += two_level(lower_delta, "kLowerDelta", "int32_t")
    out += two_level(upper_delta, "kUpperDelta", "int32_t")
    out += two_level(sre_lower_delta, "kSreLowerDelta", "int32_t")
    out += two_level(fold_delta, "kFoldDelta", "int32_t")
    out += special_mappings(str.lower, "kSpecialLower")
    out += special_mappings(str.upper, "kSpecialUpper")
    # Orbits with more than one member, flattened: for each key, its members (sorted).
    multi = sorted((k, sorted(v)) for k, v in orbits.items() if len(v) > 1)
    flat = []
    starts = []
    for k, members in multi:
        starts.append((k, len(flat), len(members)))
        flat.extend(members)
    out.append(f"static const uint32_t kOrbitMembers[{len(flat)}] = {{")
    out.extend(_rows(flat))
    out.append("};")
    out.append(f"static const OrbitEntry kOrbits[{len(starts)}] = {{")
    out.extend(f"  {{{k},{s},{n}}}," for k, s, n in starts)
    out.append("};")
    out.append(f'static const char kUnicodeVersion[] = "{unicodedata.unidata_version}";')
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="csrc/unicode_data.inc")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--force", action="store_true", help="allow a Unicode version other than 14.0.0")
    args = ap.parse_args()
    text = generate()
    if args.check:
        with open(args.out, encoding="utf-8") as f:
            same = f.read() == text
        print("up to date" if same else f"{args.out} differs from the generator's output")
        raise SystemExit(0 if same else 1)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {args.out} ({len(text) // 1024} KiB)")


if __name__ == "__main__":
    main()
