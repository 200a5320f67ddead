"""str.lower() in C++ (unicode.cpp) against Python's, whole and by ranges (py_lower_range), with
the characters whose lowercase depends on context (final sigma) or expands (İ)."""
import random

import pytest

from hirfast import _C


def test_lower_of_every_code_point():
    for start in range(0, 0x110000, 0x8000):
        text = "".join(chr(c) for c in range(start, min(start + 0x8000, 0x110000)))
        assert _C._py_lower(text) == text.lower(), hex(start)


ALPHABET = ["a", "B", " ", "Σ", "Α", "İ", "\u0301", "'", "ς", "é", "Z", "\u212a", ".", "1"]


@pytest.mark.parametrize("seed", range(5))
def test_lower_ranges_are_pieces_of_the_whole(seed):
    rng = random.Random(seed)
    for _ in range(400):
        text = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 12)))
        whole = text.lower()
        assert _C._py_lower(text) == whole
        begin = rng.randint(0, len(text))
        end = rng.randint(begin, len(text))
        # s[begin:end] lowers to the piece of s.lower() between what s[:begin] and s[:end] lower to
        # (character by character, each Σ judged in all of s).
        piece_start = sum(len(_C._py_lower_range(text, k, k + 1)) for k in range(begin))
        piece = _C._py_lower_range(text, begin, end)
        assert whole[piece_start:piece_start + len(piece)] == piece, (text, begin, end)
        n = rng.randint(0, len(text))
        assert whole.startswith(_C._py_lower_range(text, 0, n)) and len(_C._py_lower_range(text, 0, n)) >= n
        assert whole.endswith(_C._py_lower_range(text, len(text) - n, len(text)))


def test_find_any_at_every_offset():
    # Hits before, inside and after the four-at-a-time blocks, in the tail, and none.
    for n in range(0, 21):
        for hit in range(n):
            text = "a" * hit + "\u212a" + "a" * (n - hit - 1)
            for start in range(n + 2):
                want = hit if start <= hit else None
                assert _C._find_any(text, start, "\u212a") == want, (n, hit, start)
                assert _C._find_any(text, start, "xy\u212a") == want
        assert _C._find_any("b" * n, 0, "a") is None
    text = "ab,cd\n\U0001f600e.f"
    for chars in ["a", "\n", ",.", "\U0001f600", "zyx.", "fedc"]:
        assert _C._find_any(text, 0, chars) == min((text.index(c) for c in chars if c in text), default=None)


def test_split_on_whitespace_of_every_code_point():
    # Every code point between two letters: str.split() cuts exactly at those that are
    # whitespace, so this compares py_isspace with str.isspace everywhere.
    text = "x".join(chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000)
    assert _C._py_split_ws(text) == text.split()


def test_isupper_islower_against_python():
    singles = [chr(c) for c in range(0, 0x3000)] + ["ǅ", "ᾈ", "\u2160", "\U0001d400"]
    for ch in singles:
        assert _C._py_isupper(ch) == ch.isupper() and _C._py_islower(ch) == ch.islower(), hex(ord(ch))
    rng = random.Random(7)
    for _ in range(3000):
        text = "".join(rng.choice(["A", "b", "1", " ", "É", "é", "ǅ", "ß", "\u2160", "."]) for _ in range(rng.randint(0, 8)))
        assert _C._py_isupper(text) == text.isupper() and _C._py_islower(text) == text.islower(), text
