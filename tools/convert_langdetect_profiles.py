#!/usr/bin/env python3
"""Convert the installed langdetect 1.0.9 package into hirfast/assets/langdetect/profiles.bin,
the one data file the C++ port (csrc/langdetect.cpp) reads.

Everything is read off the installed package itself, so the C++ side sees exactly what
`langdetect.detect` sees:
- the 55 language profiles, in the order `DetectorFactory.load_profile` assigns them (that of
  `os.listdir` on the machine that runs this script; see ORDER below);
- `NGram`'s normalization tables, built by langdetect from `utils/messages.properties`
  (LATIN1_EXCLUDED, the Vietnamese tables, CJK_MAP);
- the ranges of the Unicode blocks `NGram.normalize` tests, from `utils/unicode_block.py`.
The script checks that the stored integers reproduce the package's `word_lang_prob_map` bit for
bit (frequency / n_words, both exact in a double) before writing.

ORDER: the language order only decides (a) the order in which `Detector._normalize_prob` sums the
55 probabilities, so the last bits of every normalized probability, and (b) which language wins a
tie for the highest probability. Both are reproduced by storing the order seen here. langdetect's
own order comes from `os.listdir`, which is file-system order: it may differ on another machine,
where Python itself could (very rarely) round differently. `--check` therefore keeps the order of
the file on disk and checks everything else.

Format (all integers unsigned LEB128 varints unless noted):
  magic b"HFLD", version (= 1)
  languages: count, then per language: name (length + ASCII bytes), n_words[0..2]
  characters: count, then the code points; a character's id is its index + 1 (0 = not in any
    profile). Id 1 is ' ', then 'a'..'z', 'A'..'Z', then the rest by falling total unigram
    frequency: the C++ keeps a dense n-gram table for ids < 64, so the common Latin letters land
    there.
  grams: count, then per gram: length (1..3), the char ids, the number of languages that have it,
    then per language: language index, frequency. Grams whose ids are all below 64 come first, so
    the C++ dense table can hold 16-bit gram indices.
  blocks: count, then per block: name (length + ASCII), first code point, last code point
  latin1_excluded, vi_base_chars, vi_marks, vi_normalized[5]: each a code-point string (length +
    code points)
  cjk_map: count, then (from, to) pairs: only pairs inside the CJK Unified Ideographs block with
    from != to (NGram.normalize consults CJK_MAP for that block only)
  magic b"END!"

Usage:  python tools/convert_langdetect_profiles.py [--out PATH] [--check]
  --check   exit 1 if the file on disk differs from what would be generated (used by the tests)
"""
import argparse
import json
import os
import pathlib
import sys

from langdetect import detector_factory
from langdetect.utils import unicode_block as ub
from langdetect.utils.ngram import NGram

REPO = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "hirfast" / "assets" / "langdetect" / "profiles.bin"

# The blocks NGram.normalize compares against (cleaning_text compares an int with a str, so it
# never uses a block). The C++ loader expects exactly these names in this order.
BLOCKS = [
    ("BASIC_LATIN", ub.UNICODE_BASIC_LATIN),
    ("LATIN_1_SUPPLEMENT", ub.UNICODE_LATIN_1_SUPPLEMENT),
    ("LATIN_EXTENDED_B", ub.UNICODE_LATIN_EXTENDED_B),
    ("GENERAL_PUNCTUATION", ub.UNICODE_GENERAL_PUNCTUATION),
    ("ARABIC", ub.UNICODE_ARABIC),
    ("LATIN_EXTENDED_ADDITIONAL", ub.UNICODE_LATIN_EXTENDED_ADDITIONAL),
    ("HIRAGANA", ub.UNICODE_HIRAGANA),
    ("KATAKANA", ub.UNICODE_KATAKANA),
    ("BOPOMOFO", ub.UNICODE_BOPOMOFO),
    ("BOPOMOFO_EXTENDED", ub.UNICODE_BOPOMOFO_EXTENDED),
    ("CJK_UNIFIED_IDEOGRAPHS", ub.UNICODE_CJK_UNIFIED_IDEOGRAPHS),
    ("HANGUL_SYLLABLES", ub.UNICODE_HANGUL_SYLLABLES),
]
MAX_CHAR_ID = 4095  # the C++ packs three 12-bit char ids into one n-gram key
DENSE_CHAR_IDS = 64  # the C++ dense n-gram table covers ids below this
FORMAT_VERSION = 1


def varint(n: int) -> bytes:
    if n < 0:
        raise ValueError(f"negative value {n} cannot be stored")
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def code_points(s: str) -> bytes:
    return varint(len(s)) + b"".join(varint(ord(c)) for c in s)


def ascii_name(s: str) -> bytes:
    b = s.encode("ascii")
    return varint(len(b)) + b


def load_profiles(profile_dir: str, order: list[str] | None):
    """The profiles in DetectorFactory.load_profile's order (or in `order`), plus a function
    giving the package's own probability of (gram, language name)."""
    factory = detector_factory.DetectorFactory()
    factory.load_profile(profile_dir)
    listed = os.listdir(profile_dir)
    if any(n.startswith(".") or not os.path.isfile(os.path.join(profile_dir, n)) for n in listed):
        sys.exit(f"{profile_dir} holds entries langdetect skips; this converter assumes it does not")
    if order is None:
        order = listed
    elif sorted(order) != sorted(listed):
        sys.exit(f"stored languages {order} are not the profiles in {profile_dir}")
    profiles = []
    for name in order:
        with open(os.path.join(profile_dir, name), encoding="utf-8") as f:
            data = json.load(f)
        if data["name"] != name:
            sys.exit(f"profile file {name} names its language {data['name']!r}")
        profiles.append((data["name"], data["freq"], data["n_words"]))
    if listed != factory.langlist:
        sys.exit("DetectorFactory.langlist is not in os.listdir order")
    factory_index = {name: i for i, name in enumerate(factory.langlist)}

    def package_prob(gram: str, name: str) -> float:
        return factory.word_lang_prob_map[gram][factory_index[name]]

    return profiles, factory, package_prob


def stored_order(path: pathlib.Path) -> list[str] | None:
    """The language order of an existing data file (None if there is none or it is unreadable)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if data[:4] != b"HFLD":
        return None
    pos = 4

    def read() -> int:
        nonlocal pos
        value = shift = 0
        while True:
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value

    if read() != FORMAT_VERSION:
        return None
    names = []
    for _ in range(read()):
        length = read()
        names.append(data[pos:pos + length].decode("ascii"))
        pos += length
        for _ in range(3):
            read()
    return names


def char_order(profiles) -> list[str]:
    chars = set()
    unigram_total = {}
    for _, freq, _ in profiles:
        for gram, count in freq.items():
            if not 1 <= len(gram) <= 3:
                sys.exit(f"profile n-gram {gram!r} has length {len(gram)}, expected 1..3")
            chars.update(gram)
            if len(gram) == 1:
                unigram_total[gram] = unigram_total.get(gram, 0) + count
    head = [" "] + [chr(c) for c in range(ord("a"), ord("z") + 1)] + [chr(c) for c in range(ord("A"), ord("Z") + 1)]
    if not set(head) <= chars:
        sys.exit("expected ' ' and every ASCII letter in the profiles")
    rest = sorted(chars - set(head), key=lambda c: (-unigram_total.get(c, 0), ord(c)))
    order = head + rest
    if max(map(ord, order)) > 0xFFFF:
        sys.exit("a profile character lies outside the BMP; the C++ tables cover the BMP only")
    if len(order) > MAX_CHAR_ID:
        sys.exit(f"{len(order)} distinct characters; the C++ key packing allows {MAX_CHAR_ID}")
    return order


def build(profile_dir: str, order: list[str] | None = None) -> bytes:
    profiles, factory, package_prob = load_profiles(profile_dir, order)
    chars = char_order(profiles)
    char_id = {c: i + 1 for i, c in enumerate(chars)}

    out = bytearray(b"HFLD")
    out += varint(FORMAT_VERSION)

    out += varint(len(profiles))
    for name, _, n_words in profiles:
        if len(n_words) != 3:
            sys.exit(f"profile {name}: n_words has {len(n_words)} entries, expected 3")
        out += ascii_name(name) + b"".join(varint(n) for n in n_words)

    out += varint(len(chars)) + b"".join(varint(ord(c)) for c in chars)

    # gram -> [(language index, frequency)], in language order.
    grams: dict[str, list[tuple[int, int]]] = {}
    for index, (name, freq, n_words) in enumerate(profiles):
        for gram, count in freq.items():
            if not isinstance(count, int) or count <= 0:
                sys.exit(f"profile {name}: frequency of {gram!r} is {count!r}")
            grams.setdefault(gram, []).append((index, count))
            # The C++ divides the same two integers as doubles; both are far below 2**53.
            expected = package_prob(gram, name)
            if float(count) / float(n_words[len(gram) - 1]) != expected or count >= 2**53:
                sys.exit(f"profile {name}: {gram!r} does not reproduce its probability")
    if set(grams) != set(factory.word_lang_prob_map):
        sys.exit("the gram set differs from DetectorFactory.word_lang_prob_map")
    ordered = sorted(grams, key=lambda g: (max(char_id[c] for c in g) >= DENSE_CHAR_IDS, [char_id[c] for c in g]))
    out += varint(len(ordered))
    for gram in ordered:
        out += varint(len(gram)) + b"".join(varint(char_id[c]) for c in gram)
        langs = grams[gram]
        out += varint(len(langs)) + b"".join(varint(i) + varint(n) for i, n in langs)

    ranges = {block: (start, end) for block, start, end in ub._unicode_blocks}
    starts = [start for _, start, _ in ub._unicode_blocks]
    if starts != sorted(starts) or any(
        a[2] >= b[1] for a, b in zip(ub._unicode_blocks, ub._unicode_blocks[1:])
    ):
        # unicode_block() is a binary search; with sorted disjoint ranges it means "the range
        # holding the code point", which is what the C++ tests.
        sys.exit("unicode_block's table is not sorted and disjoint")
    out += varint(len(BLOCKS))
    for name, block in BLOCKS:
        start, end = ranges[block]
        if end > 0xFFFF:
            sys.exit(f"block {name} leaves the BMP; the C++ normalizes only BMP code points")
        out += ascii_name(name) + varint(start) + varint(end)

    out += code_points(NGram.LATIN1_EXCLUDED)
    out += code_points(NGram.TO_NORMALIZE_VI_CHARS)
    out += code_points(NGram.DMARK_CLASS)
    if len(NGram.NORMALIZED_VI_CHARS) != 5:
        sys.exit("expected 5 Vietnamese normalization rows")
    for row in NGram.NORMALIZED_VI_CHARS:
        if len(row) != len(NGram.TO_NORMALIZE_VI_CHARS):
            sys.exit("a Vietnamese normalization row does not match TO_NORMALIZE_VI_CHARS")
        out += code_points(row)
    cjk_start, cjk_end = ranges[ub.UNICODE_CJK_UNIFIED_IDEOGRAPHS]
    cjk = sorted(
        (ord(a), ord(b)) for a, b in NGram.CJK_MAP.items() if a != b and cjk_start <= ord(a) <= cjk_end
    )
    out += varint(len(cjk)) + b"".join(varint(a) + varint(b) for a, b in cjk)
    out += b"END!"
    return bytes(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT)
    ap.add_argument("--check", action="store_true", help="compare with the file on disk instead of writing")
    args = ap.parse_args()
    if args.check:
        data = build(detector_factory.PROFILES_DIRECTORY, stored_order(args.out))
        current = args.out.read_bytes() if args.out.exists() else b""
        if current != data:
            print(f"{args.out} is stale: run tools/convert_langdetect_profiles.py")
            return 1
        return 0
    data = build(detector_factory.PROFILES_DIRECTORY)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(data)
    print(f"wrote {args.out} ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
