// NLTKWordTokenizer.tokenize (nltk/tokenize/destructive.py, 3.10.4): the same ordered list of
// substitutions, each a hand-coded scanner with the exact match semantics of its regex
// (leftmost, non-overlapping, lookarounds read from the pass's input), then str.split().
//
// Patterns compiled through nltk.redos use the `regex` module's \w, \d, \s (nre_* in
// nltk_chars.h); CONTRACTIONS2/3 are compiled with `re` and use Python's (re_word, py_isspace)
// and re's IGNORECASE equivalences (re_fold_key).
#include "treebank.h"

#include <algorithm>
#include <cstdint>
#include <iterator>

#include "nltk_chars.h"
#include "punkt.h"
#include "unicode.h"

namespace hirfast {
namespace {

// One regex.sub() pass over `in`: the caller reports each match with replace() and appends its
// replacement to the returned string. Nothing is copied when nothing matches.
class Rewrite {
 public:
  Rewrite(const U32& in, U32* out) : in_(in), out_(out) {}
  U32& replace(size_t start, size_t end) {
    if (!changed_) {
      out_->clear();
      changed_ = true;
    }
    out_->append(in_, done_, start - done_);
    done_ = end;
    return *out_;
  }
  // Appends the rest of the input; true if anything was replaced.
  bool finish() {
    if (changed_) out_->append(in_, done_, U32::npos);
    return changed_;
  }

 private:
  const U32& in_;
  U32* out_;
  size_t done_ = 0;
  bool changed_ = false;
};

void append_padded(U32& out, const U32& s, size_t start, size_t end) {
  out.push_back(' ');
  out.append(s, start, end - start);
  out.push_back(' ');
}

// Which characters a text holds, so that passes that cannot match are skipped. A pass can only
// match where its trigger characters are; passes add spaces, and only these new characters:
// `` (from " and '') and '' (from "), which the conditions below account for.
namespace has {
enum : uint32_t {
  kBacktick = 1 << 0,
  kDoubleQuote = 1 << 1,
  kSingleQuote = 1 << 2,
  kOpeningQuote = 1 << 3,  // « “ ‘ „
  kClosingQuote = 1 << 4,  // » ” ’
  kColonComma = 1 << 5,
  kPeriod = 1 << 6,
  kSymbol = 1 << 7,  // ; @ # $ % &
  kDash = 1 << 8,    // U+2012-U+2015
  kQuestionExclamation = 1 << 9,
  kStar = 1 << 10,
  kBracket = 1 << 11,
  kHyphen = 1 << 12,
};
}  // namespace has

constexpr uint32_t character_bits(char32_t c) {
  switch (c) {
    case '`': return has::kBacktick;
    case '"': return has::kDoubleQuote;
    case '\'': return has::kSingleQuote;
    case 0xAB: case 0x201C: case 0x2018: case 0x201E: return has::kOpeningQuote;
    case 0xBB: case 0x201D: case 0x2019: return has::kClosingQuote;
    case ':': case ',': return has::kColonComma;
    case '.': return has::kPeriod;
    case ';': case '@': case '#': case '$': case '%': case '&': return has::kSymbol;
    case 0x2012: case 0x2013: case 0x2014: case 0x2015: return has::kDash;
    case '?': case '!': return has::kQuestionExclamation;
    case '*': return has::kStar;
    case '[': case ']': case '(': case ')': case '{': case '}': case '<': case '>': return has::kBracket;
    case '-': return has::kHyphen;
    default: return 0;
  }
}

struct AsciiCharacterBits {
  uint32_t bits[128] = {};
  constexpr AsciiCharacterBits() {
    for (char32_t c = 0; c < 128; ++c) bits[c] = character_bits(c);
  }
};
constexpr AsciiCharacterBits kAsciiCharacterBits;

uint32_t characters_present(U32View s) {
  uint32_t m = 0;
  for (char32_t c : s) m |= c < 128 ? kAsciiCharacterBits.bits[c] : character_bits(c);
  return m;
}

// sub(literal, replacement, s) for a literal of two characters.
void replace_pairs(const U32& s, Rewrite& rw, char32_t a, char32_t b, const char32_t* replacement) {
  for (size_t i = 0; i + 1 < s.size(); ++i) {
    if (s[i] == a && s[i + 1] == b) {
      rw.replace(i, i + 2) += replacement;
      ++i;
    }
  }
}

// ---- STARTING_QUOTES ----------------------------------------------------------------------

// ([«“‘„]|[`]+) -> " \1 "
void starting_quotes_open(const U32& s, Rewrite& rw) {
  const size_t n = s.size();
  for (size_t i = 0; i < n; ++i) {
    const char32_t c = s[i];
    if (c == 0xAB || c == 0x201C || c == 0x2018 || c == 0x201E) {
      append_padded(rw.replace(i, i + 1), s, i, i + 1);
    } else if (c == '`') {
      size_t j = i + 1;
      while (j < n && s[j] == '`') ++j;
      append_padded(rw.replace(i, j), s, i, j);
      i = j - 1;
    }
  }
}

// ^\" -> ``
void starting_quote_at_start(const U32& s, Rewrite& rw) {
  if (!s.empty() && s[0] == '"') rw.replace(0, 1) += U"``";
}

// ([ \(\[{<])(\"|\'{2}) -> "\1 `` "
void starting_quotes_after_open(const U32& s, Rewrite& rw) {
  const size_t n = s.size();
  for (size_t i = 0; i + 1 < n; ++i) {
    const char32_t c = s[i];
    if (!(c == ' ' || c == '(' || c == '[' || c == '{' || c == '<')) continue;
    size_t quote_len = 0;
    if (s[i + 1] == '"')
      quote_len = 1;
    else if (s[i + 1] == '\'' && i + 2 < n && s[i + 2] == '\'')
      quote_len = 2;
    if (!quote_len) continue;
    U32& out = rw.replace(i, i + 1 + quote_len);
    out.push_back(c);
    out += U" `` ";
    i += quote_len;
  }
}

// Under the `regex` module's IGNORECASE (simple folding): does c match the ASCII letter `lower`?
bool regex_ci_letter(char32_t c, char32_t lower) {
  if (c < 128) return (c | 32) == lower;
  return lower == 's' && c == 0x17F;  // LATIN SMALL LETTER LONG S; no other non-ASCII folds here
}

// (?i)(?<!\w)(\')(?!(?:re|ve|ll|m|t|s|d|n)\b)(?=\w) -> "\1 "
void starting_single_quote(const U32& s, Rewrite& rw) {
  const size_t n = s.size();
  auto boundary_after_letter = [&](size_t q) { return q >= n || !nre_word(s[q]); };
  for (size_t i = 0; i + 1 < n; ++i) {
    if (s[i] != '\'') continue;
    if (i > 0 && nre_word(s[i - 1])) continue;
    const char32_t a = s[i + 1];
    if (!nre_word(a)) continue;
    bool clitic = false;
    if (boundary_after_letter(i + 2)) {
      for (char32_t x : {U'm', U't', U's', U'd', U'n'}) clitic = clitic || regex_ci_letter(a, x);
    }
    if (!clitic && i + 2 < n && boundary_after_letter(i + 3)) {
      const char32_t b = s[i + 2];
      clitic = (regex_ci_letter(a, 'r') && regex_ci_letter(b, 'e')) ||
               (regex_ci_letter(a, 'v') && regex_ci_letter(b, 'e')) ||
               (regex_ci_letter(a, 'l') && regex_ci_letter(b, 'l'));
    }
    if (clitic) continue;
    rw.replace(i, i + 1) += U"' ";
  }
}

// ---- PUNCTUATION --------------------------------------------------------------------------

bool is_final_closer(char32_t c) {  // [\]\)}>"\']
  return c == ']' || c == ')' || c == '}' || c == '>' || c == '"' || c == '\'';
}
bool is_final_closer_or_space(char32_t c) {  // [\]\)}>"\'»”’ ]
  return is_final_closer(c) || c == 0xBB || c == 0x201D || c == 0x2019 || c == ' ';
}

// The final-period patterns, ([^\.])(\.)(CLOSERS*)\s*$: only the last '.' of the text can match,
// since nothing after it may be a '.'. Finds it; returns false if there is no match, else the
// position of that '.' and the end of the closers after it (the rest of the text is whitespace).
template <typename Closer>
bool find_final_period(const U32& s, Closer closer, size_t* period, size_t* closers_end) {
  const size_t p = s.rfind('.');
  if (p == U32::npos || p == 0 || s[p - 1] == '.') return false;
  size_t r = p + 1;
  while (r < s.size() && closer(s[r])) ++r;
  for (size_t k = r; k < s.size(); ++k)
    if (!nre_space(s[k])) return false;
  *period = p;
  *closers_end = r;
  return true;
}

// ([^\.])(\.)([\]\)}>"\'»”’ ]*+)\s*$ -> "\1 \2 \3 "
void final_period_with_space(const U32& s, Rewrite& rw) {
  size_t p, r;
  if (!find_final_period(s, is_final_closer_or_space, &p, &r)) return;
  U32& out = rw.replace(p, s.size());
  out += U" . ";
  out.append(s, p + 1, r - p - 1);
  out.push_back(' ');
}

// ([^\.])(\.)([\]\)}>"\']*)\s*$ -> "\1 \2\3 "
void final_period(const U32& s, Rewrite& rw) {
  size_t p, r;
  if (!find_final_period(s, is_final_closer, &p, &r)) return;
  U32& out = rw.replace(p, s.size());
  out += U" .";
  out.append(s, p + 1, r - p - 1);
  out.push_back(' ');
}

// ([:,])([^\d]) -> " \1 \2"
void colon_comma(const U32& s, Rewrite& rw) {
  for (size_t i = 0; i + 1 < s.size(); ++i) {
    if ((s[i] == ':' || s[i] == ',') && !nre_digit(s[i + 1])) {
      U32& out = rw.replace(i, i + 2);
      out.push_back(' ');
      out.push_back(s[i]);
      out.push_back(' ');
      out.push_back(s[i + 1]);
      ++i;
    }
  }
}

// ([:,])$ -> " \1 "  ($: the end, or before a final "\n")
void colon_comma_at_end(const U32& s, Rewrite& rw) {
  const size_t n = s.size();
  size_t i = U32::npos;
  if (n >= 1 && (s[n - 1] == ':' || s[n - 1] == ','))
    i = n - 1;
  else if (n >= 2 && s[n - 1] == '\n' && (s[n - 2] == ':' || s[n - 2] == ','))
    i = n - 2;
  if (i != U32::npos) append_padded(rw.replace(i, i + 1), s, i, i + 1);
}

// PUNCTUATION's \.{2,}, [;@#$%&], [\u2012-\u2015] and [?!] paddings in one scan. They match
// disjoint characters regardless of context, so applying them together equals applying them in
// turn. NLTK pads [?!] after the final-period pass, not before it; the two commute: that pass
// reads only the last '.', the closers after it and the whitespace ending the text, which a '?'
// or '!' padded before that '.' leaves as they were, and one after it fails the match either way.
void pad_punctuation(const U32& s, Rewrite& rw) {
  const size_t n = s.size();
  for (size_t i = 0; i < n; ++i) {
    const char32_t c = s[i];
    const uint32_t bits = c < 128 ? kAsciiCharacterBits.bits[c] : character_bits(c);
    if (!(bits & (has::kPeriod | has::kSymbol | has::kDash | has::kQuestionExclamation))) continue;
    if (c == '.') {
      size_t j = i + 1;
      while (j < n && s[j] == '.') ++j;
      if (j - i >= 2) append_padded(rw.replace(i, j), s, i, j);
      i = j - 1;
    } else {
      append_padded(rw.replace(i, i + 1), s, i, i + 1);
    }
  }
}

// [*] -> " \g<0> ", then PARENS_BRACKETS and DOUBLE_DASHES (-- -> " -- ") in one scan: disjoint
// characters, matched regardless of context.
void pad_star_brackets_dashes(const U32& s, Rewrite& rw) {
  const size_t n = s.size();
  for (size_t i = 0; i < n; ++i) {
    const char32_t c = s[i];
    if (c >= 128 || !(kAsciiCharacterBits.bits[c] & (has::kStar | has::kBracket | has::kHyphen))) continue;
    if (c == '-') {
      if (i + 1 < n && s[i + 1] == '-') {
        rw.replace(i, i + 2) += U" -- ";
        ++i;
      }
    } else {
      append_padded(rw.replace(i, i + 1), s, i, i + 1);
    }
  }
}

// " " + s + " ", then ENDING_QUOTES' first four substitutions, [»”’] -> " \1 ", '' -> " '' ",
// " -> " '' " (disjoint characters, no context) and \s+ -> " ", in one scan writing `out`: the
// whitespace runs are collapsed as the output is written.
void ending_quotes_and_whitespace(const U32& s, U32* out) {
  const size_t n = s.size();
  out->resize(4 * n + 2);  // each input character becomes at most 4 ('' and " become " '' ")
  char32_t* const begin = &(*out)[0];
  char32_t* w = begin;
  bool in_space = false;
  auto put = [&](char32_t c) {
    if (nre_space(c)) {
      if (!in_space) *w++ = ' ';
      in_space = true;
    } else {
      *w++ = c;
      in_space = false;
    }
  };
  put(' ');
  for (size_t i = 0; i < n; ++i) {
    const char32_t c = s[i];
    if (c == 0xBB || c == 0x201D || c == 0x2019) {
      put(' ');
      put(c);
      put(' ');
    } else if (c == '"' || (c == '\'' && i + 1 < n && s[i + 1] == '\'')) {
      if (c == '\'') ++i;
      put(' ');
      put('\'');
      put('\'');
      put(' ');
    } else {
      put(c);
    }
  }
  put(' ');
  out->resize(w - begin);
}

// ([^'])' -> "\1 ' "
void quote_before_space(const U32& s, Rewrite& rw) {
  for (size_t i = 0; i + 2 < s.size(); ++i) {
    if (s[i] != '\'' && s[i + 1] == '\'' && s[i + 2] == ' ') {
      U32& out = rw.replace(i, i + 3);
      out.push_back(s[i]);
      out += U" ' ";
      i += 2;
    }
  }
}

// ---- ENDING_QUOTES ------------------------------------------------------------------------

// ([^' ])('[sS]|'[mM]|'[dD]|') -> "\1 \2 "
void clitic_s_m_d(const U32& s, Rewrite& rw) {
  const size_t n = s.size();
  for (size_t i = 0; i + 2 < n; ++i) {
    if (s[i] == '\'' || s[i] == ' ' || s[i + 1] != '\'') continue;
    const char32_t x = s[i + 2];
    size_t clitic_len = 0;
    if (i + 3 < n && s[i + 3] == ' ' && (x == 's' || x == 'S' || x == 'm' || x == 'M' || x == 'd' || x == 'D'))
      clitic_len = 2;
    else if (x == ' ')
      clitic_len = 1;
    if (!clitic_len) continue;
    U32& out = rw.replace(i, i + 2 + clitic_len);
    out.push_back(s[i]);
    out.push_back(' ');
    out.append(s, i + 1, clitic_len);
    out.push_back(' ');
    i += clitic_len + 1;
  }
}

// ([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) -> "\1 \2 "
void clitic_ll_re_ve_nt(const U32& s, Rewrite& rw) {
  static const char32_t* const kClitics[] = {U"'ll", U"'LL", U"'re", U"'RE", U"'ve", U"'VE", U"n't", U"N'T"};
  const size_t n = s.size();
  for (size_t i = 0; i + 4 < n; ++i) {
    if (s[i] == '\'' || s[i] == ' ' || s[i + 4] != ' ') continue;
    bool found = false;
    for (const char32_t* c : kClitics) found = found || (s[i + 1] == c[0] && s[i + 2] == c[1] && s[i + 3] == c[2]);
    if (!found) continue;
    U32& out = rw.replace(i, i + 5);
    out.push_back(s[i]);
    out.push_back(' ');
    out.append(s, i + 1, 3);
    out.push_back(' ');
    i += 4;
  }
}

// ---- CONTRACTIONS2 / CONTRACTIONS3 (compiled with `re`) -------------------------------------

// Under re.IGNORECASE: does c match the pattern character p (lowercase ASCII or an apostrophe)?
bool re_ci_eq(char32_t c, char32_t p) {
  if (c < 128) return ((c >= 'A' && c <= 'Z') ? c + 32 : c) == p;
  return re_fold_key(c) == re_fold_key(p);
}

bool re_ci_match(U32View s, size_t at, std::u32string_view lit) {
  if (at + lit.size() > s.size()) return false;
  for (size_t k = 0; k < lit.size(); ++k)
    if (!re_ci_eq(s[at + k], lit[k])) return false;
  return true;
}

// MacIntyre's contractions: CONTRACTIONS2, (?i)\b(FIRST)(SECOND)\b (or (?=\s) instead of the
// final \b), and CONTRACTIONS3, (?i) (FIRST)(SECOND)\b with a leading space; each -> " \1 \2 ".
struct Contraction {
  std::u32string_view first;
  std::u32string_view second;
  bool space_after;    // (?=\s) instead of \b at the end
  bool leading_space;  // CONTRACTIONS3: a space (replaced too) before FIRST instead of \b
};
constexpr Contraction kContractions[] = {
    {U"can", U"not", false, false}, {U"d", U"'ye", false, false}, {U"gim", U"me", false, false},
    {U"gon", U"na", false, false},  {U"got", U"ta", false, false}, {U"lem", U"me", false, false},
    {U"more", U"'n", false, false}, {U"wan", U"na", true, false},  {U"'t", U"is", false, true},
    {U"'t", U"was", false, true},
};
constexpr size_t kNumContractions = sizeof(kContractions) / sizeof(kContractions[0]);

void contraction(const U32& s, Rewrite& rw, const Contraction& k) {
  const size_t n = s.size(), lead = k.leading_space ? 1 : 0;
  const size_t len = lead + k.first.size() + k.second.size();
  for (size_t i = 0; i + len <= n; ++i) {
    const size_t at = i + lead;
    if (!re_ci_eq(s[at], k.first[0])) continue;
    if (k.leading_space ? s[i] != ' ' : (i > 0 && re_word(s[i - 1]))) continue;
    if (!re_ci_match(s, at, k.first) || !re_ci_match(s, at + k.first.size(), k.second)) continue;
    const size_t j = i + len;
    if (k.space_after ? !(j < n && py_isspace(s[j])) : (j < n && re_word(s[j]))) continue;
    U32& out = rw.replace(i, j);
    append_padded(out, s, at, at + k.first.size());
    out.append(s, at + k.first.size(), k.second.size());
    out.push_back(' ');
    i = j - 1;
  }
}

// For each ASCII character, the contractions whose first character it matches (a bit each).
struct ContractionsByFirstChar {
  uint32_t bits[128] = {};
  constexpr ContractionsByFirstChar() {
    for (size_t k = 0; k < kNumContractions; ++k) {
      const char32_t c = kContractions[k].first[0];
      bits[c] |= 1u << k;
      if (c >= 'a' && c <= 'z') bits[c - 32] |= 1u << k;
    }
  }
};
constexpr ContractionsByFirstChar kContractionsByFirstChar;

// Bit k set: the letters of kContractions[k] occur in `s` (ignoring case as `re` does, and the
// boundary conditions). A contraction pass only inserts spaces, so it never creates such an
// occurrence for a later one: passes whose bit is clear cannot match and are skipped.
uint32_t contraction_candidates(const U32& s) {
  uint32_t mask = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    // The first characters (c d g l m w ') have no non-ASCII equivalents under re.IGNORECASE.
    const char32_t c = s[i];
    if (c >= 128) continue;
    for (uint32_t ks = kContractionsByFirstChar.bits[c] & ~mask; ks; ks &= ks - 1) {
      size_t k = 0;
      while (!(ks & (1u << k))) ++k;
      const Contraction& x = kContractions[k];
      if (re_ci_match(s, i, x.first) && re_ci_match(s, i + x.first.size(), x.second)) mask |= 1u << k;
    }
  }
  return mask;
}

// Runs the passes in order over one text, alternating between two buffers.
class Tokenizer {
 public:
  // Calls emit(token) for each token of NLTKWordTokenizer().tokenize(text).
  template <typename Emit>
  void tokenize(U32View text, Emit emit) {
    cur_.assign(text.begin(), text.end());
    const uint32_t present = characters_present(text);
    auto any = [present](uint32_t bits) { return (present & bits) != 0; };

    // STARTING_QUOTES
    if (any(has::kOpeningQuote | has::kBacktick)) run(starting_quotes_open);
    if (any(has::kDoubleQuote)) run(starting_quote_at_start);
    if (any(has::kBacktick | has::kDoubleQuote))
      run([](const U32& s, Rewrite& rw) { replace_pairs(s, rw, '`', '`', U" `` "); });
    if (any(has::kDoubleQuote | has::kSingleQuote)) run(starting_quotes_after_open);
    if (any(has::kSingleQuote)) run(starting_single_quote);

    // PUNCTUATION
    if (any(has::kPeriod)) run(final_period_with_space);
    if (any(has::kColonComma)) {
      run(colon_comma);
      run(colon_comma_at_end);
    }
    if (any(has::kPeriod | has::kSymbol | has::kDash | has::kQuestionExclamation)) run(pad_punctuation);
    if (any(has::kPeriod)) run(final_period);
    if (any(has::kSingleQuote)) run(quote_before_space);
    if (any(has::kStar | has::kBracket | has::kHyphen)) run(pad_star_brackets_dashes);

    // text = " " + text + " ", then ENDING_QUOTES
    ending_quotes_and_whitespace(cur_, &next_);
    cur_.swap(next_);
    if (any(has::kSingleQuote | has::kDoubleQuote)) {
      run(clitic_s_m_d);
      run(clitic_ll_re_ve_nt);
    }

    // CONTRACTIONS2, CONTRACTIONS3
    const uint32_t candidates = contraction_candidates(cur_);
    for (size_t k = 0; k < kNumContractions; ++k) {
      if (candidates & (1u << k)) run([k](const U32& s, Rewrite& rw) { contraction(s, rw, kContractions[k]); });
    }

    // str.split()
    const size_t n = cur_.size();
    for (size_t i = 0; i < n;) {
      while (i < n && py_isspace(cur_[i])) ++i;
      size_t j = i;
      while (j < n && !py_isspace(cur_[j])) ++j;
      if (j > i) emit(U32View(cur_).substr(i, j - i));
      i = j;
    }
  }

 private:
  template <typename Pass>
  void run(Pass pass) {
    Rewrite rw(cur_, &next_);
    pass(cur_, rw);
    if (rw.finish()) cur_.swap(next_);
  }

  U32 cur_;
  U32 next_;
};

}  // namespace

std::vector<std::u32string> treebank_tokenize(std::u32string_view text) {
  std::vector<U32> tokens;
  Tokenizer().tokenize(text, [&](U32View t) { tokens.emplace_back(t); });
  return tokens;
}

void for_each_nltk_word_token(std::u32string_view text, const std::function<void(std::u32string_view)>& fn) {
  Tokenizer tokenizer;
  for (const auto& [start, stop] : punkt_sentence_spans(text)) tokenizer.tokenize(text.substr(start, stop - start), fn);
}

namespace {

// Whether the tokenizer can cut between s[i - 1] and s[i], two word characters (re's \w): only
// before the n of a clitic n't / N'T (ENDING_QUOTES) and between the parts of a contraction
// (CONTRACTIONS2/3, re.IGNORECASE). Every other pass cuts next to a character that is not a
// word character: the punctuation and quotes it pads, a \b of a contraction, whitespace. Looser
// than the passes themselves (their other conditions are not checked), never tighter.
bool may_cut_in_a_contraction(U32View s, size_t i);

inline bool may_cut_between_word_characters(U32View s, size_t i) {
  const char32_t x = s[i - 1], y = s[i];
  if ((y == 'n' || y == 'N') && i + 1 < s.size() && s[i + 1] == '\'') return true;
  // ASCII letters other than n, m, t, i, w (either case) end no contraction's first part or
  // start no second part; the rest is tested out of line.
  constexpr uint32_t kContractionLetters = 1u << ('n' - 'a') | 1u << ('m' - 'a') | 1u << ('t' - 'a') |
                                           1u << ('i' - 'a') | 1u << ('w' - 'a');
  const auto plain = [](char32_t c) {
    const char32_t l = c | 32;
    return c < 128 && !(l >= 'a' && l <= 'z' && (kContractionLetters >> (l - 'a') & 1));
  };
  if (plain(x) || plain(y)) return false;
  return may_cut_in_a_contraction(s, i);
}

bool may_cut_in_a_contraction(U32View s, size_t i) {
  const char32_t x = s[i - 1], y = s[i];
  // Between word characters a contraction is cut after n, m or t (can|not, gon|na, wan|na,
  // gim|me, lem|me, got|ta, 't|is, 't|was): n|n, m|m, t|t, t|i or t|w, ignoring case as re does.
  // Testing that first keeps the full match off almost every position.
  auto fold = [](char32_t c) -> char32_t {
    if (c < 128) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
    static const char32_t kKeys[][2] = {{re_fold_key('n'), 'n'}, {re_fold_key('m'), 'm'}, {re_fold_key('t'), 't'},
                                        {re_fold_key('i'), 'i'}, {re_fold_key('w'), 'w'}};
    const char32_t key = re_fold_key(c);
    for (const auto& k : kKeys)
      if (key == k[0]) return k[1];
    return 0;
  };
  const char32_t a = fold(x), b = fold(y);
  if (!((a == 'n' && b == 'n') || (a == 'm' && b == 'm') || (a == 't' && (b == 't' || b == 'i' || b == 'w'))))
    return false;
  for (const Contraction& k : kContractions)
    if (k.first.size() <= i && re_ci_match(s, i - k.first.size(), k.first) && re_ci_match(s, i, k.second))
      return true;
  return false;
}

// Per ASCII character: Python whitespace, re's \w, upper case, lower case; kCutBefore for the
// letters a cut between word characters can come before (n, m, t, i, w, either case) and
// kCutAfter for those it can come after in a contraction (n, m, t): see
// may_cut_between_word_characters. Non-ASCII characters get both, so that they are tested.
enum : uint8_t { kIsSpace = 1, kIsWord = 2, kIsUpper = 4, kIsLowerOrTitle = 8, kCutBefore = 16, kCutAfter = 32 };
struct AsciiCaseClass {
  uint8_t bits[128] = {};
  constexpr AsciiCaseClass() {
    for (char32_t c = 0; c < 128; ++c) {
      const bool upper = c >= 'A' && c <= 'Z', lower = c >= 'a' && c <= 'z', digit = c >= '0' && c <= '9';
      const bool space = c == ' ' || (c >= 9 && c <= 13) || (c >= 0x1c && c <= 0x1f);
      const char32_t l = c | 32;
      const bool letter = upper || lower;
      const bool before = letter && (l == 'n' || l == 'm' || l == 't' || l == 'i' || l == 'w');
      const bool after = letter && (l == 'n' || l == 'm' || l == 't');
      bits[c] = static_cast<uint8_t>((space ? kIsSpace : 0) | ((letter || digit || c == '_') ? kIsWord : 0) |
                                     (upper ? kIsUpper : 0) | (lower ? kIsLowerOrTitle : 0) |
                                     (before ? kCutBefore : 0) | (after ? kCutAfter : 0));
    }
  }
};
constexpr AsciiCaseClass kAsciiCaseClass;

}  // namespace

std::pair<size_t, size_t> nltk_upper_token_bounds(std::u32string_view s, size_t enough) {
  // The tokens are pieces of the whitespace-separated words of `s`: Punkt's sentences are spans
  // of it, the Treebank passes insert spaces and turn quote characters into other quote
  // characters (uncased), and the final split removes whitespace only. A cut inside a word falls
  // where may_cut_between_word_characters says, or next to a character that is not a word
  // character. So, with `segments` the pieces of `s` cut at every such place:
  // - a word w with w.isupper() leaves at least one token with isupper() (the one holding an
  //   upper-case character of w: it has no lower- or title-case one), and tokens of different
  //   words differ: at least `upper_words` tokens;
  // - a token with isupper() is a union of whole segments, one of which has an upper-case
  //   character and none a lower- or title-case one, and tokens do not overlap: at most
  //   `upper_segments` tokens.
  // The scan counts the upper-case segments cut next to non-word characters only, and notes the
  // places between word characters where a contraction or clitic might be cut (a handful per
  // text); those are tested after it. A cut splits one segment in two and so adds at most one
  // upper-case segment: adding one per confirmed cut keeps the bound. Nothing in the scan
  // branches on the text but that rare note (whitespace and word boundaries come every few
  // characters; branching on them, and a call in the loop, cost ~15 cycles a character).
  constexpr size_t kMaxNoted = 256;
  size_t noted[kMaxNoted];
  size_t n_noted = 0, unnoted = 0;  // places past kMaxNoted are counted as cuts
  size_t upper_words = 0, upper_segments = 0;
  unsigned word = 0, segment = 0;  // kIsUpper / kIsLowerOrTitle seen in the current word, segment
  unsigned previous = kIsSpace;    // class of the previous character
  const size_t n = s.size();
  // Every upper-case token holds an upper-case character of its own, hence the upper bound n
  // when the pass stops early. Checked once per block of 512 characters: a "capital words at
  // least N" response usually has N of them well before its end.
  constexpr size_t kBlock = 512;
  for (size_t i = 0; i < n; ++i) {
    if (i % kBlock == 0 && i != 0 && upper_words >= enough) return {upper_words, n};
    const char32_t c = s[i];
    unsigned cls;
    if (c < 128) {
      cls = kAsciiCaseClass.bits[c];
    } else {
      const uint16_t f = uflags(c);
      cls = ((f & uflag::kSpace) ? kIsSpace : 0) | (re_word(c) ? kIsWord : 0) | ((f & uflag::kUpper) ? kIsUpper : 0) |
            ((f & (uflag::kLower | uflag::kTitle)) ? kIsLowerOrTitle : 0) | kCutBefore | kCutAfter;
    }
    const unsigned casing = cls & (kIsUpper | kIsLowerOrTitle);
    const bool space = cls & kIsSpace;
    const bool cut = !(cls & previous & kIsWord);
    const bool note = !cut && (cls & kCutBefore) && ((previous & kCutAfter) || (i + 1 < n && s[i + 1] == '\''));
    if (note) {
      if (n_noted < kMaxNoted) {
        noted[n_noted++] = i;
      } else {
        ++unnoted;
      }
    }
    upper_segments += cut & (segment == kIsUpper);
    segment = (cut ? 0 : segment) | casing;
    upper_words += space & (word == kIsUpper);
    word = (space ? 0 : word) | casing;
    previous = cls;
  }
  upper_words += word == kIsUpper;
  upper_segments += segment == kIsUpper;
  for (size_t k = 0; k < n_noted; ++k) upper_segments += may_cut_between_word_characters(s, noted[k]);
  upper_segments += unnoted;
  return {upper_words, upper_segments};
}

std::vector<std::u32string> nltk_word_tokenize(std::u32string_view text) {
  std::vector<U32> tokens;
  for_each_nltk_word_token(text, [&](U32View t) { tokens.emplace_back(t); });
  return tokens;
}

}  // namespace hirfast
