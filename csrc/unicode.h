// Unicode primitives with CPython 3.11 semantics (Unicode 14.0.0).
//
// Text inside the engine is a sequence of code points (std::u32string). Every predicate here
// answers what the same call answers in Python: `py_isspace(c)` is `chr(c).isspace()`,
// `re_word(c)` is whether `re.match(r"\w", chr(c))` matches, and so on. The tables come from
// tools/gen_unicode_tables.py, which reads them off a CPython 3.11 interpreter.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace hirfast {

using U32 = std::u32string;
using U32View = std::u32string_view;

namespace uflag {
enum : uint16_t {
  kSpace = 1 << 0,
  kAlnum = 1 << 1,
  kAlpha = 1 << 2,
  kDecimal = 1 << 3,
  kDigit = 1 << 4,
  kNumeric = 1 << 5,
  kUpper = 1 << 6,
  kLower = 1 << 7,
  kTitle = 1 << 8,
  kCased = 1 << 9,
  kCaseIgnorable = 1 << 10,
  kPrintable = 1 << 11,
  kLinebreak = 1 << 12,
};
}  // namespace uflag

// Raw flag word of a code point (0 for anything beyond U+10FFFF).
uint16_t uflags(char32_t c);

inline bool py_isspace(char32_t c) {
  // ASCII: \t \n \v \f \r (9-13), 0x1c-0x1f and space (28-32), as one bit test for everything
  // up to the space and one comparison for the rest of printable ASCII: the word loops run this
  // on every character of whole responses.
  constexpr uint64_t kAsciiSpaces = 0x3E00 | uint64_t{0x1F} << 28;
  if (c <= 32) return (kAsciiSpaces >> c) & 1;
  return c >= 128 && (uflags(c) & uflag::kSpace);
}
inline bool py_isalnum(char32_t c) {
  if (c < 128) return (c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'z');
  return uflags(c) & uflag::kAlnum;
}
inline bool py_isalpha(char32_t c) {
  if (c < 128) return (c | 32) >= 'a' && (c | 32) <= 'z';
  return uflags(c) & uflag::kAlpha;
}
inline bool py_isdecimal(char32_t c) {
  if (c < 128) return c >= '0' && c <= '9';
  return uflags(c) & uflag::kDecimal;
}
inline bool py_isdigit(char32_t c) { return uflags(c) & uflag::kDigit; }
inline bool py_isnumeric(char32_t c) { return uflags(c) & uflag::kNumeric; }
// chr(c).isupper() / chr(c).islower()
inline bool py_isupper_char(char32_t c) {
  if (c < 128) return c >= 'A' && c <= 'Z';
  return uflags(c) & uflag::kUpper;
}
inline bool py_islower_char(char32_t c) {
  if (c < 128) return c >= 'a' && c <= 'z';
  return uflags(c) & uflag::kLower;
}
inline bool py_istitle_char(char32_t c) { return uflags(c) & uflag::kTitle; }
inline bool py_iscased(char32_t c) { return uflags(c) & uflag::kCased; }
inline bool py_iscaseignorable(char32_t c) { return uflags(c) & uflag::kCaseIgnorable; }
inline bool py_isprintable(char32_t c) { return uflags(c) & uflag::kPrintable; }

// unicodedata.decimal(chr(c)) for a code point with str.isdecimal(); -1 for any other.
int py_decimal_value(char32_t c);

// re (str patterns, Unicode mode): \w, \d, \s
inline bool re_word(char32_t c) { return c == '_' || py_isalnum(c); }
inline bool re_digit(char32_t c) { return py_isdecimal(c); }
inline bool re_space(char32_t c) { return py_isspace(c); }

// Simple (one code point) mappings: the code point str.lower()/str.upper() gives when the
// full mapping is a single code point, else c itself.
char32_t simple_lower(char32_t c);
char32_t simple_upper(char32_t c);
// _sre.unicode_tolower: the lowercase `re` compares under IGNORECASE.
char32_t sre_lower(char32_t c);
// Two code points match each other under re.IGNORECASE iff their fold keys are equal.
char32_t re_fold_key(char32_t c);
// All code points with the same fold key as c (c included), in ascending order.
void re_fold_orbit(char32_t c, std::vector<char32_t>* out);

// Full case mapping of one code point, appended to out (str.lower / str.upper of chr(c)).
void append_lower(char32_t c, U32* out);
void append_upper(char32_t c, U32* out);

// str methods over whole strings.
U32 py_lower(U32View s);  // str.lower(), final sigma included
// The part of py_lower(s) that s[begin:end] lowers to (a final Σ decided by its neighbours in
// all of s). Every code point lowers to at least one, so the first (last) n code points of
// s.lower() are those of py_lower_range(s, 0, n) (py_lower_range(s, len - n, len)).
U32 py_lower_range(U32View s, size_t begin, size_t end);
U32 py_upper(U32View s);  // str.upper()
bool py_isupper(U32View s);  // str.isupper(): no lower/title char and at least one upper
bool py_islower(U32View s);  // str.islower()
U32View py_strip(U32View s);   // str.strip()
U32View py_lstrip(U32View s);  // str.lstrip()
U32View py_rstrip(U32View s);  // str.rstrip()
U32View py_strip_chars(U32View s, U32View chars);  // str.strip(chars)
std::vector<U32View> py_split_ws(U32View s);         // str.split()
std::vector<U32View> py_split(U32View s, U32View sep);  // str.split(sep), sep non-empty
std::vector<U32View> py_splitlines(U32View s);     // str.splitlines() (no keepends)
U32 py_replace(U32View s, U32View old, U32View repl);  // str.replace (old non-empty)
size_t py_count(U32View s, U32View sub);  // str.count(sub), non-overlapping; sub non-empty
bool py_contains(U32View s, U32View sub);  // sub in s
U32 py_join(const std::vector<U32View>& parts, U32View sep);

#if defined(__GNUC__) && defined(__x86_64__)
#define HIRFAST_AVX2_SCAN 1
// Whether the CPU has AVX2: the module is built for any x86-64, and the few loops built for AVX2
// too are chosen at run time by this. Tests turn it off (bindings: _set_avx2) to check the plain
// loops on the same CPU, while no check runs.
extern bool cpu_has_avx2;
bool cpu_supports_avx2();
#endif

// Index of the first code point at or after `from` that is a, b, c or d (repeat one to look for
// fewer), or npos. Compares four code points at a time (SSE2, part of every x86-64): scanners
// looking for rare characters spent 2-6 instructions a character one at a time. Inline: some
// callers look for frequent characters (a keyword's first letter), and a call per hit cost more
// than the scan.
inline size_t find_any(U32View s, size_t from, char32_t a, char32_t b, char32_t c, char32_t d) {
  const size_t n = s.size();
  const char32_t* data = s.data();
  size_t i = from;
#if defined(__SSE2__)
  const __m128i va = _mm_set1_epi32(static_cast<int>(a)), vb = _mm_set1_epi32(static_cast<int>(b));
  const __m128i vc = _mm_set1_epi32(static_cast<int>(c)), vd = _mm_set1_epi32(static_cast<int>(d));
  auto hits = [&](const char32_t* p) {
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i eq = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi32(x, va), _mm_cmpeq_epi32(x, vb)),
                                    _mm_or_si128(_mm_cmpeq_epi32(x, vc), _mm_cmpeq_epi32(x, vd)));
    return _mm_movemask_ps(_mm_castsi128_ps(eq));
  };
  for (; i + 8 <= n; i += 8) {
    const int lo = hits(data + i), hi = hits(data + i + 4);
    if (lo | hi) return i + static_cast<size_t>(__builtin_ctz(static_cast<unsigned>(lo | hi << 4)));
  }
#endif
  for (; i < n; ++i)
    if (data[i] == a || data[i] == b || data[i] == c || data[i] == d) return i;
  return U32View::npos;
}
inline size_t find_any(U32View s, size_t from, char32_t a) { return find_any(s, from, a, a, a, a); }
inline size_t find_any(U32View s, size_t from, char32_t a, char32_t b) { return find_any(s, from, a, b, b, b); }
inline size_t find_any(U32View s, size_t from, char32_t a, char32_t b, char32_t c) {
  return find_any(s, from, a, b, c, c);
}

// UTF-8 <-> code points. decode_utf8 returns false on invalid UTF-8 (CPython's strict
// decoder: no surrogates, no overlongs) and sets *error_offset to the first bad byte.
bool decode_utf8(std::string_view in, U32* out, size_t* error_offset);
std::string encode_utf8(U32View s);  // lone surrogates are written as CPython's surrogatepass
U32 from_ascii(std::string_view s);   // for literals in C++ source (ASCII/UTF-8 both fine)
U32 from_utf8_literal(std::string_view s);  // UTF-8 literal in C++ source; aborts if invalid

const char* unicode_version();

}  // namespace hirfast
