// Lookups into the generated tables and the str methods built on them.
#include "unicode.h"

#include <algorithm>
#include <cstdlib>

namespace hirfast {
namespace {

struct SpecialCase {
  uint32_t cp;
  uint8_t n;
  uint32_t out[3];
};
struct OrbitEntry {
  uint32_t key;
  uint32_t start;
  uint32_t count;
};

#include "unicode_data.inc"

constexpr uint32_t kMaxCp = 0x110000;

template <typename T, size_t NI, size_t ND>
inline T lookup(const uint16_t (&index)[NI], const T (&data)[ND], char32_t c) {
  return data[static_cast<size_t>(index[c >> 8]) * 256 + (c & 255)];
}

const SpecialCase* find_special(const SpecialCase* begin, const SpecialCase* end, char32_t c) {
  const SpecialCase* it =
      std::lower_bound(begin, end, c, [](const SpecialCase& s, char32_t v) { return s.cp < v; });
  return (it != end && it->cp == c) ? it : nullptr;
}

}  // namespace

uint16_t uflags(char32_t c) { return c < kMaxCp ? lookup(kFlags_index, kFlags_data, c) : 0; }

char32_t simple_lower(char32_t c) {
  if (c < 128) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
  if (c >= kMaxCp) return c;
  return static_cast<char32_t>(static_cast<int64_t>(c) + lookup(kLowerDelta_index, kLowerDelta_data, c));
}
char32_t simple_upper(char32_t c) {
  if (c < 128) return (c >= 'a' && c <= 'z') ? c - 32 : c;
  if (c >= kMaxCp) return c;
  return static_cast<char32_t>(static_cast<int64_t>(c) + lookup(kUpperDelta_index, kUpperDelta_data, c));
}
char32_t sre_lower(char32_t c) {
  if (c < 128) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
  if (c >= kMaxCp) return c;
  return static_cast<char32_t>(static_cast<int64_t>(c) +
                               lookup(kSreLowerDelta_index, kSreLowerDelta_data, c));
}
char32_t re_fold_key(char32_t c) {
  if (c >= kMaxCp) return c;
  return static_cast<char32_t>(static_cast<int64_t>(c) + lookup(kFoldDelta_index, kFoldDelta_data, c));
}

void re_fold_orbit(char32_t c, std::vector<char32_t>* out) {
  out->clear();
  char32_t key = re_fold_key(c);
  const OrbitEntry* end = kOrbits + sizeof(kOrbits) / sizeof(kOrbits[0]);
  const OrbitEntry* it =
      std::lower_bound(kOrbits, end, key, [](const OrbitEntry& e, char32_t v) { return e.key < v; });
  if (it != end && it->key == key) {
    for (uint32_t i = 0; i < it->count; ++i) out->push_back(kOrbitMembers[it->start + i]);
  } else {
    out->push_back(c);
  }
}

void append_lower(char32_t c, U32* out) {
  if (c < 128) {
    out->push_back((c >= 'A' && c <= 'Z') ? c + 32 : c);
    return;
  }
  constexpr size_t n = sizeof(kSpecialLower) / sizeof(kSpecialLower[0]);
  if (const SpecialCase* s = find_special(kSpecialLower, kSpecialLower + n, c)) {
    out->append(reinterpret_cast<const char32_t*>(s->out), s->n);
    return;
  }
  out->push_back(simple_lower(c));
}

void append_upper(char32_t c, U32* out) {
  if (c < 128) {
    out->push_back((c >= 'a' && c <= 'z') ? c - 32 : c);
    return;
  }
  constexpr size_t n = sizeof(kSpecialUpper) / sizeof(kSpecialUpper[0]);
  if (const SpecialCase* s = find_special(kSpecialUpper, kSpecialUpper + n, c)) {
    out->append(reinterpret_cast<const char32_t*>(s->out), s->n);
    return;
  }
  out->push_back(simple_upper(c));
}

namespace {
// CPython's handle_capital_sigma: Σ lowercases to ς when it ends a cased word.
bool is_final_sigma(U32View s, size_t i) {
  size_t j = i;
  char32_t c = 0;
  while (j > 0) {
    c = s[j - 1];
    if (!py_iscaseignorable(c)) break;
    --j;
  }
  bool final_sigma = j > 0 && py_iscased(c);
  if (final_sigma) {
    size_t k = i + 1;
    while (k < s.size()) {
      c = s[k];
      if (!py_iscaseignorable(c)) break;
      ++k;
    }
    final_sigma = k == s.size() || !py_iscased(c);
  }
  return final_sigma;
}
}  // namespace

namespace {
// Appends what s[begin:end] contributes to s.lower(): each code point's full lowercase, Σ looking
// at its neighbours in all of s. Runs of ASCII are copied and lowered in place: 2 KB English
// responses are almost only ASCII, and one out-of-line append_lower per character was 19
// instructions a character.
void lower_range_into(U32View s, size_t begin, size_t end, U32* out) {
  size_t i = begin;
  while (i < end) {
    size_t j = i;
    while (j < end && s[j] < 128) ++j;
    if (j > i) {
      const size_t at = out->size();
      out->append(s.data() + i, j - i);
      for (char32_t* c = &(*out)[at], *stop = c + (j - i); c != stop; ++c)
        *c += (*c >= 'A' && *c <= 'Z') ? 32 : 0;
      i = j;
      continue;
    }
    const char32_t c = s[i];
    if (c == 0x03A3) {
      out->push_back(is_final_sigma(s, i) ? 0x03C2 : 0x03C3);
    } else {
      append_lower(c, out);
    }
    ++i;
  }
}
}  // namespace

U32 py_lower(U32View s) {
  U32 out;
  out.reserve(s.size());
  lower_range_into(s, 0, s.size(), &out);
  return out;
}

U32 py_lower_range(U32View s, size_t begin, size_t end) {
  U32 out;
  out.reserve(end - begin);
  lower_range_into(s, begin, end, &out);
  return out;
}

U32 py_upper(U32View s) {
  U32 out;
  out.reserve(s.size());
  for (char32_t c : s) append_upper(c, &out);
  return out;
}

// ASCII is tested without the tables: english_capital and english_lowercase run these over
// whole responses.
bool py_isupper(U32View s) {
  bool cased = false;
  for (char32_t c : s) {
    if (c < 128) {
      if (c >= 'a' && c <= 'z') return false;
      cased |= c >= 'A' && c <= 'Z';
      continue;
    }
    uint16_t f = uflags(c);
    if (f & (uflag::kLower | uflag::kTitle)) return false;
    if (f & uflag::kUpper) cased = true;
  }
  return cased;
}

bool py_islower(U32View s) {
  bool cased = false;
  for (char32_t c : s) {
    if (c < 128) {
      if (c >= 'A' && c <= 'Z') return false;
      cased |= c >= 'a' && c <= 'z';
      continue;
    }
    uint16_t f = uflags(c);
    if (f & (uflag::kUpper | uflag::kTitle)) return false;
    if (f & uflag::kLower) cased = true;
  }
  return cased;
}

int py_decimal_value(char32_t c) {
  if (c < 128) return (c >= '0' && c <= '9') ? static_cast<int>(c - '0') : -1;
  if (!py_isdecimal(c)) return -1;
  // Unicode keeps every decimal digit in a contiguous run 0..9 (tests/test_ifbench.py checks
  // every code point against unicodedata): the value is the distance from the run's start,
  // modulo 10 where runs of ten follow each other (the mathematical digits).
  char32_t start = c;
  while (start > 0 && py_isdecimal(start - 1)) --start;
  return static_cast<int>((c - start) % 10);
}

U32View py_lstrip(U32View s) {
  size_t i = 0;
  while (i < s.size() && py_isspace(s[i])) ++i;
  return s.substr(i);
}
U32View py_rstrip(U32View s) {
  size_t j = s.size();
  while (j > 0 && py_isspace(s[j - 1])) --j;
  return s.substr(0, j);
}
U32View py_strip(U32View s) { return py_rstrip(py_lstrip(s)); }

U32View py_strip_chars(U32View s, U32View chars) {
  size_t i = 0, j = s.size();
  while (i < j && chars.find(s[i]) != U32View::npos) ++i;
  while (j > i && chars.find(s[j - 1]) != U32View::npos) --j;
  return s.substr(i, j - i);
}

std::vector<U32View> py_split_ws(U32View s) {
  std::vector<U32View> out;
  size_t i = 0, n = s.size();
  while (true) {
    while (i < n && py_isspace(s[i])) ++i;
    if (i >= n) break;
    size_t j = i;
    while (j < n && !py_isspace(s[j])) ++j;
    out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

std::vector<U32View> py_split(U32View s, U32View sep) {
  std::vector<U32View> out;
  size_t start = 0;
  while (true) {
    size_t p = find_any(s, start, sep[0]);
    while (p != U32View::npos && s.substr(p, sep.size()) != sep) p = find_any(s, p + 1, sep[0]);
    if (p == U32View::npos) break;
    out.push_back(s.substr(start, p - start));
    start = p + sep.size();
  }
  out.push_back(s.substr(start));
  return out;
}

std::vector<U32View> py_splitlines(U32View s) {
  std::vector<U32View> out;
  size_t i = 0, n = s.size();
  while (i < n) {
    size_t j = i;
    while (j < n && !(uflags(s[j]) & uflag::kLinebreak)) ++j;
    out.push_back(s.substr(i, j - i));
    if (j < n) {
      if (s[j] == '\r' && j + 1 < n && s[j + 1] == '\n') ++j;
      ++j;
    }
    i = j;
  }
  return out;
}

U32 py_replace(U32View s, U32View old, U32View repl) {
  U32 out;
  out.reserve(s.size());
  size_t start = 0;
  while (true) {
    size_t p = s.find(old, start);
    if (p == U32View::npos) break;
    out.append(s.substr(start, p - start));
    out.append(repl);
    start = p + old.size();
  }
  out.append(s.substr(start));
  return out;
}

size_t py_count(U32View s, U32View sub) {
  size_t count = 0, start = 0;
  while (true) {
    size_t p = s.find(sub, start);
    if (p == U32View::npos) return count;
    ++count;
    start = p + sub.size();
  }
}

bool py_contains(U32View s, U32View sub) { return s.find(sub) != U32View::npos; }

U32 py_join(const std::vector<U32View>& parts, U32View sep) {
  U32 out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out.append(sep);
    out.append(parts[i]);
  }
  return out;
}

bool decode_utf8(std::string_view in, U32* out, size_t* error_offset) {
  out->clear();
  out->reserve(in.size());
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  size_t n = in.size(), i = 0;
  while (i < n) {
    unsigned char b = p[i];
    if (b < 0x80) {
      out->push_back(b);
      ++i;
      continue;
    }
    size_t len;
    char32_t cp;
    char32_t min;
    if (b >= 0xC2 && b <= 0xDF) {
      len = 2, cp = b & 0x1F, min = 0x80;
    } else if (b >= 0xE0 && b <= 0xEF) {
      len = 3, cp = b & 0x0F, min = 0x800;
    } else if (b >= 0xF0 && b <= 0xF4) {
      len = 4, cp = b & 0x07, min = 0x10000;
    } else {
      if (error_offset) *error_offset = i;
      return false;
    }
    if (i + len > n) {
      if (error_offset) *error_offset = i;
      return false;
    }
    for (size_t k = 1; k < len; ++k) {
      unsigned char cb = p[i + k];
      if ((cb & 0xC0) != 0x80) {
        if (error_offset) *error_offset = i;
        return false;
      }
      cp = (cp << 6) | (cb & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      if (error_offset) *error_offset = i;
      return false;
    }
    out->push_back(cp);
    i += len;
  }
  return true;
}

std::string encode_utf8(U32View s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) {
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
    } else if (c < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (c >> 6)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else if (c < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (c >> 12)));
      out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (c >> 18)));
      out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
  }
  return out;
}

U32 from_ascii(std::string_view s) { return from_utf8_literal(s); }

U32 from_utf8_literal(std::string_view s) {
  U32 out;
  size_t bad = 0;
  if (!decode_utf8(s, &out, &bad)) std::abort();  // a bug in a literal of our own source
  return out;
}

const char* unicode_version() { return kUnicodeVersion; }

#if defined(HIRFAST_AVX2_SCAN)
bool cpu_supports_avx2() {
  __builtin_cpu_init();  // cpu_has_avx2's initializer may run before libgcc's own
  return __builtin_cpu_supports("avx2");
}

bool cpu_has_avx2 = cpu_supports_avx2();
#endif

}  // namespace hirfast
