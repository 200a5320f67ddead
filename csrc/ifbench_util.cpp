#include "ifbench_util.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "assets.h"
#include "nltk_chars.h"
#include "treebank.h"

namespace hirfast {
namespace {
#include "ifbench_tables.inc"
}  // namespace

U32 remove_ascii_punct(U32View s) {
  U32 out;
  out.reserve(s.size());
  for (char32_t c : s)
    if (!is_ascii_punct(c)) out.push_back(c);
  return out;
}

U32View lstrip_punct_space(U32View s) {
  size_t b = 0;
  while (b < s.size() && is_punct_or_space(s[b])) ++b;
  return s.substr(b);
}

U32View rstrip_punct_space(U32View s) {
  size_t e = s.size();
  while (e > 0 && is_punct_or_space(s[e - 1])) --e;
  return s.substr(0, e);
}

U32View strip_punct_space(U32View s) { return rstrip_punct_space(lstrip_punct_space(s)); }

std::vector<U32View> nltk_word_runs(U32View s) {
  std::vector<U32View> out;
  size_t k = 0;
  while (k < s.size()) {
    if (!nre_word(s[k])) {
      ++k;
      continue;
    }
    size_t start = k;
    while (k < s.size() && nre_word(s[k])) ++k;
    out.push_back(s.substr(start, k - start));
  }
  return out;
}

size_t count_nltk_word_runs(U32View s) {
  size_t n = 0;
  bool in_word = false;
  for (char32_t c : s) {
    bool w = nre_word(c);
    if (w && !in_word) ++n;
    in_word = w;
  }
  return n;
}

std::string nfkd_ascii(U32View s) {
  constexpr size_t kEntries = sizeof(kNfkdAsciiCp) / sizeof(kNfkdAsciiCp[0]);
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) {
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
      continue;
    }
    const uint32_t* end = kNfkdAsciiCp + kEntries;
    const uint32_t* it = std::lower_bound(kNfkdAsciiCp, end, static_cast<uint32_t>(c));
    if (it == end || *it != c) continue;  // no ASCII in its decomposition: dropped by "ignore"
    size_t k = static_cast<size_t>(it - kNfkdAsciiCp);
    out.append(kNfkdAsciiPool + kNfkdAsciiOff[k], kNfkdAsciiOff[k + 1] - kNfkdAsciiOff[k]);
  }
  return out;
}

int decimal_value(char32_t c) {
  if (c >= '0' && c <= '9') return static_cast<int>(c - '0');
  if (!py_isdecimal(c)) return -1;
  const uint32_t* end = kDecimalZeros + sizeof(kDecimalZeros) / sizeof(kDecimalZeros[0]);
  const uint32_t* it = std::upper_bound(kDecimalZeros, end, static_cast<uint32_t>(c));
  return static_cast<int>(c - *(it - 1));  // the run's zero is the largest zero <= c
}

U32 read_asset_text(const std::string& relative) {
  const std::string path = asset_path(relative);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw AssetError("hirfast: cannot read data file " + path);
  std::ostringstream buf;
  buf << in.rdbuf();
  U32 text;
  size_t bad = 0;
  if (!decode_utf8(buf.str(), &text, &bad))
    throw AssetError("hirfast: data file " + path + " is not UTF-8 (byte " + std::to_string(bad) + ")");
  return text;
}

// ---------------------------------------------------------------------------------------------
// split_into_sentences: each regex substitution of the Python function is one left-to-right
// pass. A matcher looks at position p and returns the length it matched (0: no match); the pass
// then appends the replacement and resumes after the match, as re.sub does.

namespace {

bool ascii_letter(char32_t c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
bool ascii_upper(char32_t c) { return c >= 'A' && c <= 'Z'; }
bool ascii_digit(char32_t c) { return c >= '0' && c <= '9'; }
bool at(const U32& t, size_t p, U32View lit) { return t.compare(p, lit.size(), lit) == 0; }
char32_t char_at(const U32& t, size_t p) { return p < t.size() ? t[p] : 0; }

template <class Pass>
U32 substitute(const U32& t, Pass pass) {
  U32 out;
  out.reserve(t.size() + t.size() / 8);
  size_t p = 0;
  while (p < t.size()) {
    const size_t n = pass(t, p, &out);
    if (n > 0) {
      p += n;
    } else {
      out.push_back(t[p++]);
    }
  }
  return out;
}

// The first alternative of `alternatives` that occurs at p followed by '.', as in
// re "(A|B|...)[.]"; returns the alternative's length (0: none).
size_t alternative_then_dot(const U32& t, size_t p, std::initializer_list<U32View> alternatives) {
  for (U32View a : alternatives)
    if (at(t, p, a) && char_at(t, p + a.size()) == '.') return a.size();
  return 0;
}

// _STARTERS: (Mr|Mrs|Ms|Dr|Prof|Capt|Cpt|Lt|He\s|She\s|...|This\s|Wherever), first alternative
// wins. Returns the length of the group (0: none).
size_t starter(const U32& t, size_t p) {
  static const U32View kPlain[] = {U"Mr", U"Mrs", U"Ms", U"Dr", U"Prof", U"Capt", U"Cpt", U"Lt"};
  static const U32View kBeforeSpace[] = {U"He",  U"She", U"It",      U"They", U"Their",
                                         U"Our", U"We",  U"But",     U"However", U"That", U"This"};
  for (U32View a : kPlain)
    if (at(t, p, a)) return a.size();
  for (U32View a : kBeforeSpace)
    if (at(t, p, a) && p + a.size() < t.size() && re_space(t[p + a.size()])) return a.size() + 1;
  if (at(t, p, U"Wherever")) return 8;
  return 0;
}

constexpr std::initializer_list<U32View> kSuffixes = {U"Inc", U"Ltd", U"Jr", U"Sr", U"Co"};

}  // namespace

std::vector<U32> split_into_sentences(U32View input) {
  U32 t = U" ";
  t.append(input);
  t.append(U"  ");
  std::replace(t.begin(), t.end(), U'\n', U' ');

  // (Mr|St|Mrs|Ms|Dr)[.] -> \1<prd>
  t = substitute(t, [](const U32& s, size_t p, U32* out) -> size_t {
    const size_t n = alternative_then_dot(s, p, {U"Mr", U"St", U"Mrs", U"Ms", U"Dr"});
    if (!n) return 0;
    out->append(s, p, n);
    out->append(U"<prd>");
    return n + 1;
  });
  // [.](com|net|org|io|gov|edu|me) -> <prd>\1
  t = substitute(t, [](const U32& s, size_t p, U32* out) -> size_t {
    if (s[p] != '.') return 0;
    for (U32View a : {U32View(U"com"), U32View(U"net"), U32View(U"org"), U32View(U"io"),
                      U32View(U"gov"), U32View(U"edu"), U32View(U"me")}) {
      if (at(s, p + 1, a)) {
        out->append(U"<prd>");
        out->append(a);
        return a.size() + 1;
      }
    }
    return 0;
  });
  // ([0-9])[.]([0-9]) -> \1<prd>\2
  t = substitute(t, [](const U32& s, size_t p, U32* out) -> size_t {
    if (!ascii_digit(s[p]) || char_at(s, p + 1) != '.' || !ascii_digit(char_at(s, p + 2))) return 0;
    out->push_back(s[p]);
    out->append(U"<prd>");
    out->push_back(s[p + 2]);
    return 3;
  });
  // \.{2,} -> "<prd>" * len + "<stop>"
  t = substitute(t, [](const U32& s, size_t p, U32* out) -> size_t {
    size_t n = 0;
    while (p + n < s.size() && s[p + n] == '.') ++n;
    if (n < 2) return 0;
    for (size_t k = 0; k < n; ++k) out->append(U"<prd>");
    out->append(U"<stop>");
    return n;
  });
  t = py_replace(t, U"Ph.D.", U"Ph<prd>D<prd>");  // guarded by `"Ph.D" in text`: same effect
  // \s([A-Za-z])[.] -> " \1<prd> "
  t = substitute(t, [](const U32& s, size_t p, U32* out) -> size_t {
    if (!re_space(s[p]) || !ascii_letter(char_at(s, p + 1)) || char_at(s, p + 2) != '.' ||
        char_at(s, p + 3) != ' ')
      return 0;
    out->push_back(' ');
    out->push_back(s[p + 1]);
    out->append(U"<prd> ");
    return 4;
  });
  // ([A-Z][.][A-Z][.](?:[A-Z][.])?) _STARTERS -> \1<stop> \2 (the optional third letter is tried
  // first; without it the next character would have to be the space, which a letter is not).
  t = substitute(t, [](const U32& s, size_t p, U32* out) -> size_t {
    if (!ascii_upper(s[p]) || char_at(s, p + 1) != '.' || !ascii_upper(char_at(s, p + 2)) ||
        char_at(s, p + 3) != '.')
      return 0;
    size_t acronym = 4;
    if (ascii_upper(char_at(s, p + 4)) && char_at(s, p + 5) == '.') acronym = 6;
    if (char_at(s, p + acronym) != ' ') return 0;
    const size_t st = starter(s, p + acronym + 1);
    if (!st) return 0;
    out->append(s, p, acronym);
    out->append(U"<stop> ");
    out->append(s, p + acronym + 1, st);
    return acronym + 1 + st;
  });
  // ([A-Za-z])[.]([A-Za-z])[.]([A-Za-z])[.] -> \1<prd>\2<prd>\3<prd>, then the same for two.
  for (int letters : {3, 2}) {
    t = substitute(t, [letters](const U32& s, size_t p, U32* out) -> size_t {
      for (int k = 0; k < letters; ++k)
        if (!ascii_letter(char_at(s, p + 2 * k)) || char_at(s, p + 2 * k + 1) != '.') return 0;
      for (int k = 0; k < letters; ++k) {
        out->push_back(s[p + 2 * k]);
        out->append(U"<prd>");
      }
      return static_cast<size_t>(2 * letters);
    });
  }
  // " " _SUFFIXES "[.] " _STARTERS -> " \1<stop> \2"
  t = substitute(t, [](const U32& s, size_t p, U32* out) -> size_t {
    if (s[p] != ' ') return 0;
    const size_t n = alternative_then_dot(s, p + 1, kSuffixes);
    if (!n || char_at(s, p + n + 2) != ' ') return 0;
    const size_t st = starter(s, p + n + 3);
    if (!st) return 0;
    out->push_back(' ');
    out->append(s, p + 1, n);
    out->append(U"<stop> ");
    out->append(s, p + n + 3, st);
    return n + 3 + st;
  });
  // " " _SUFFIXES "[.]" -> " \1<prd>"
  t = substitute(t, [](const U32& s, size_t p, U32* out) -> size_t {
    if (s[p] != ' ') return 0;
    const size_t n = alternative_then_dot(s, p + 1, kSuffixes);
    if (!n) return 0;
    out->push_back(' ');
    out->append(s, p + 1, n);
    out->append(U"<prd>");
    return n + 2;
  });
  // " " ([A-Za-z]) "[.]" -> " \1<prd>"
  t = substitute(t, [](const U32& s, size_t p, U32* out) -> size_t {
    if (s[p] != ' ' || !ascii_letter(char_at(s, p + 1)) || char_at(s, p + 2) != '.') return 0;
    out->push_back(' ');
    out->push_back(s[p + 1]);
    out->append(U"<prd>");
    return 3;
  });
  // Each replacement below is guarded in Python by the presence of a character its pattern
  // contains, so the guards change nothing.
  t = py_replace(t, U".\u201D", U"\u201D.");
  t = py_replace(t, U".\"", U"\".");
  t = py_replace(t, U"!\"", U"\"!");
  t = py_replace(t, U"?\"", U"\"?");
  t = py_replace(t, U".", U".<stop>");
  t = py_replace(t, U"?", U"?<stop>");
  t = py_replace(t, U"!", U"!<stop>");
  t = py_replace(t, U"<prd>", U".");

  std::vector<U32> sentences;
  for (U32View piece : py_split(t, U"<stop>")) sentences.emplace_back(py_strip(piece));
  if (!sentences.empty() && sentences.back().empty()) sentences.pop_back();
  return sentences;
}

std::vector<U32> word_tokenize(U32View text) { return nltk_word_tokenize(text); }

}  // namespace hirfast
