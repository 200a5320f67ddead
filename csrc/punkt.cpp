// Punkt sentence splitting, following nltk/tokenize/punkt.py (3.10.4) step by step:
//
//   _match_potential_end_contexts  find each [.?!] followed by other punctuation or by whitespace
//                                  and a token (the period-context regex), keep one candidate per
//                                  run of overlapping previous words, and take its context: the
//                                  word before, the mark and what follows
//   text_contains_sentbreak        split the context into Punkt word tokens (the word-tokenizer
//                                  regex, line by line), annotate them (first pass: sentence-end
//                                  marks, ellipses, known abbreviations; second pass: collocations,
//                                  orthographic heuristic, sentence starters, initials, numbers)
//                                  and ask whether a token other than the last ends a sentence
//   _slices_from_text              cut the text at the accepted candidates
//   _realign_boundaries            move closing quotes and brackets after a break onto the
//                                  sentence they close
//
// The regexes are hand-coded scanners (with their lookaheads), so one call is a few linear passes
// over the text with no allocation per character.
#include "punkt.h"

#include <cstdint>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include "assets.h"
#include "nltk_chars.h"
#include "unicode.h"

namespace hirfast {
namespace {

// ---------------------------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------------------------

// Open-addressing hash table from strings to ints, looked up by view (no allocation per lookup).
class StringTable {
 public:
  // Later entries with the same key replace earlier ones, as when a Python dict is built.
  void build(const std::vector<std::pair<U32, int>>& entries) {
    size_t capacity = 16;
    while (capacity < 2 * entries.size()) capacity *= 2;
    slots_.assign(capacity, Slot{});
    mask_ = capacity - 1;
    for (const auto& [key, value] : entries) {
      const uint64_t h = hash(key);
      size_t i = h & mask_;
      while (slots_[i].used && !(slots_[i].hash == h && view(slots_[i]) == U32View(key))) i = (i + 1) & mask_;
      if (!slots_[i].used) {
        slots_[i].used = true;
        slots_[i].hash = h;
        slots_[i].offset = pool_.size();
        slots_[i].length = key.size();
        pool_ += key;
      }
      slots_[i].value = value;
    }
  }
  const int* find(U32View key) const {
    const uint64_t h = hash(key);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (!s.used) return nullptr;
      if (s.hash == h && view(s) == key) return &s.value;
    }
  }
  bool contains(U32View key) const { return find(key) != nullptr; }

 private:
  struct Slot {
    uint64_t hash = 0;
    size_t offset = 0;
    size_t length = 0;
    int value = 0;
    bool used = false;
  };
  static uint64_t hash(U32View s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (char32_t c : s) h = (h ^ c) * 0x100000001b3ull;
    return h ^ (h >> 32);
  }
  U32View view(const Slot& s) const { return U32View(pool_).substr(s.offset, s.length); }

  std::vector<Slot> slots_;
  U32 pool_;
  size_t mask_ = 0;
};

// PunktParameters.ortho_context flags (punkt.py _ORTHO_*).
constexpr int kOrthoBegUc = 1 << 1;
constexpr int kOrthoMidUc = 1 << 2;
constexpr int kOrthoUnkUc = 1 << 3;
constexpr int kOrthoBegLc = 1 << 4;
constexpr int kOrthoMidLc = 1 << 5;
constexpr int kOrthoUnkLc = 1 << 6;
constexpr int kOrthoUc = kOrthoBegUc + kOrthoMidUc + kOrthoUnkUc;
constexpr int kOrthoLc = kOrthoBegLc + kOrthoMidLc + kOrthoUnkLc;

// A collocation (a, b) as one key: the length of a, then a, then b (unambiguous for any a, b).
void collocation_key(U32View first, U32View second, U32* key) {
  key->clear();
  key->push_back(static_cast<char32_t>(first.size()));
  key->append(first);
  key->append(second);
}

struct PunktParams {
  StringTable abbrev_types;
  StringTable collocations;
  StringTable sent_starters;
  StringTable ortho_context;
};

// The lines of a parameter file as NLTK's TabDecoder reads them: the file opened as UTF-8 text
// (universal newlines), one entry per line, its final "\n" removed.
std::vector<U32> read_param_lines(const std::string& name) {
  const std::string path = asset_path("nltk/tokenizers/punkt_tab/english/" + name);
  std::ifstream file(path, std::ios::binary);
  std::stringstream bytes;
  if (!(bytes << file.rdbuf())) throw AssetError("hirfast: cannot read " + path);
  U32 text;
  size_t bad = 0;
  if (!decode_utf8(bytes.str(), &text, &bad))
    throw AssetError("hirfast: " + path + " is not valid UTF-8 (bad byte at offset " + std::to_string(bad) + ")");
  std::vector<U32> lines;
  U32 line;
  for (size_t i = 0; i < text.size(); ++i) {
    const char32_t c = text[i];
    if (c == '\r' || c == '\n') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      lines.push_back(std::move(line));
      line.clear();
    } else {
      line.push_back(c);
    }
  }
  if (!line.empty()) lines.push_back(std::move(line));
  return lines;
}

// int(field) for the counts in ortho_context.tab (plain decimal numbers).
int parse_count(U32View field, size_t line_no) {
  int value = 0;
  for (char32_t c : field) {
    if (c < '0' || c > '9' || value > 100000000)
      throw AssetError("hirfast: ortho_context.tab line " + std::to_string(line_no) +
                               ": expected a count, got \"" + encode_utf8(field) + "\"");
    value = value * 10 + static_cast<int>(c - '0');
  }
  if (field.empty())
    throw AssetError("hirfast: ortho_context.tab line " + std::to_string(line_no) + ": empty count");
  return value;
}

PunktParams load_params() {
  PunktParams p;
  std::vector<std::pair<U32, int>> entries;
  for (U32& line : read_param_lines("abbrev_types.txt")) entries.emplace_back(std::move(line), 1);
  p.abbrev_types.build(entries);

  entries.clear();
  for (U32& line : read_param_lines("sent_starters.txt")) entries.emplace_back(std::move(line), 1);
  p.sent_starters.build(entries);

  entries.clear();
  U32 key;
  for (const U32& line : read_param_lines("collocations.tab")) {
    const std::vector<U32View> fields = py_split(line, U"\t");
    if (fields.size() != 2) continue;  // a tuple of another length never equals a (word, word) pair
    collocation_key(fields[0], fields[1], &key);
    entries.emplace_back(key, 1);
  }
  p.collocations.build(entries);

  entries.clear();
  size_t line_no = 0;
  for (const U32& line : read_param_lines("ortho_context.tab")) {
    ++line_no;
    const std::vector<U32View> fields = py_split(line, U"\t");
    if (fields.size() != 2)
      throw AssetError("hirfast: ortho_context.tab line " + std::to_string(line_no) + ": expected two tab-separated fields");
    entries.emplace_back(U32(fields[0]), parse_count(fields[1], line_no));
  }
  p.ortho_context.build(entries);
  return p;
}

const PunktParams& params() {
  static std::once_flag once;
  static PunktParams loaded;
  std::call_once(once, [] { loaded = load_params(); });
  return loaded;
}

// ---------------------------------------------------------------------------------------------
// Character classes of PunktLanguageVars
// ---------------------------------------------------------------------------------------------

bool is_sent_end_char(char32_t c) { return c == '.' || c == '?' || c == '!'; }

// _re_non_word_chars: [)";}\]*:@'({[‘’“”«»] plus the sentence-end chars other than '.'
bool is_non_word_char(char32_t c) {
  switch (c) {
    case ')': case '"': case ';': case '}': case ']': case '*': case ':': case '@': case '\'':
    case '(': case '{': case '[': case 0x2018: case 0x2019: case 0x201C: case 0x201D:
    case 0xAB: case 0xBB: case '?': case '!':
      return true;
    default:
      return false;
  }
}

// The complement of _re_word_start: [^("`{\[:;&#*@)}\]\-,]
bool cannot_start_word(char32_t c) {
  switch (c) {
    case '(': case '"': case '`': case '{': case '[': case ':': case ';': case '&': case '#':
    case '*': case '@': case ')': case '}': case ']': case '-': case ',':
      return true;
    default:
      return false;
  }
}

// re_boundary_realignment's class: ["')\]}‘’“”«»]
bool is_realign_char(char32_t c) {
  switch (c) {
    case '"': case '\'': case ')': case ']': case '}': case 0x2018: case 0x2019: case 0x201C:
    case 0x201D: case 0xAB: case 0xBB:
      return true;
    default:
      return false;
  }
}

// string.whitespace, which _get_last_whitespace_index tests against.
bool is_ascii_whitespace(char32_t c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

// Length of a match of _re_multi_char_punct, (?:\-{2,}|\.{2,}|(?:\.\s){2,}\.), at s[p]; 0 if none.
size_t multi_char_punct_len(U32View s, size_t p) {
  const size_t n = s.size();
  if (p >= n) return 0;
  if (s[p] == '-' || (s[p] == '.' && p + 1 < n && s[p + 1] == '.')) {
    size_t q = p + 1;
    while (q < n && s[q] == s[p]) ++q;
    return q - p >= 2 ? q - p : 0;
  }
  if (s[p] != '.') return 0;
  // (?:\.\s){2,}\. : take as many ". " pairs as there are, then a final '.', giving back one
  // pair (whose '.' then serves as the final one) when no '.' follows the last pair.
  size_t pairs = 0, q = p;
  while (q + 1 < n && s[q] == '.' && nre_space(s[q + 1])) {
    ++pairs;
    q += 2;
  }
  if (pairs >= 2 && q < n && s[q] == '.') return 2 * pairs + 1;
  if (pairs >= 3) return 2 * pairs - 1;
  return 0;
}

// The lookahead that ends a word in _word_tokenize_fmt:
//   \s | $ | NonWord | MultiChar | ,(?=$|\s|NonWord|MultiChar)
// `line` holds no "\n", so $ is the end of the line.
bool word_ends_at(U32View line, size_t q) {
  const size_t n = line.size();
  if (q >= n) return true;
  const char32_t c = line[q];
  if (nre_space(c) || is_non_word_char(c) || multi_char_punct_len(line, q)) return true;
  if (c != ',') return false;
  return q + 1 >= n || nre_space(line[q + 1]) || is_non_word_char(line[q + 1]) ||
         multi_char_punct_len(line, q + 1);
}

// ---------------------------------------------------------------------------------------------
// Tokens and their annotation (PunktToken, _first_pass_annotation, _second_pass_annotation)
// ---------------------------------------------------------------------------------------------

// str.lower() into a reused buffer (ASCII without a call into the Unicode tables).
void lower_into(U32View s, U32* out) {
  out->clear();
  for (char32_t c : s) {
    if (c >= 128) {
      *out = py_lower(s);
      return;
    }
    out->push_back((c >= 'A' && c <= 'Z') ? c + 32 : c);
  }
}

// PunktToken._RE_NUMERIC, ^-?[\.,]?\d[\d,\.-]*\.?$, matched against the whole (lowered) token.
bool is_numeric_type(U32View s) {
  size_t i = 0;
  const size_t n = s.size();
  if (i < n && s[i] == '-') ++i;
  if (i < n && (s[i] == '.' || s[i] == ',')) ++i;
  if (!(i < n && nre_digit(s[i]))) return false;
  for (++i; i < n; ++i) {
    const char32_t c = s[i];
    if (!(nre_digit(c) || c == ',' || c == '.' || c == '-')) return false;
  }
  return true;
}

const U32View kNumberType = U"##number##";

struct Token {
  U32View tok;
  bool sentbreak = false;
  bool abbr = false;
  bool ellipsis = false;
  bool has_type = false;
  U32 type_buf;  // PunktToken.type when it is not ##number## (filled on demand)
  bool is_number = false;

  void reset(U32View t) {
    tok = t;
    sentbreak = abbr = ellipsis = has_type = is_number = false;
  }
  bool period_final() const { return tok.back() == '.'; }
  U32View type() {
    if (!has_type) {
      lower_into(tok, &type_buf);
      is_number = is_numeric_type(type_buf);
      has_type = true;
    }
    return is_number ? kNumberType : U32View(type_buf);
  }
  U32View type_no_period() {
    U32View t = type();
    return (t.size() > 1 && t.back() == '.') ? t.substr(0, t.size() - 1) : t;
  }
  U32View type_no_sentperiod() { return sentbreak ? type_no_period() : type(); }
  bool first_upper() const { return py_isupper(tok.substr(0, 1)); }
  bool first_lower() const { return py_islower(tok.substr(0, 1)); }
  // _RE_INITIAL, [^\W\d]\.$
  bool is_initial() const { return tok.size() == 2 && tok[1] == '.' && nre_word(tok[0]) && !nre_digit(tok[0]); }
};

enum class Ortho { kFalse, kTrue, kUnknown };

class Annotator {
 public:
  explicit Annotator(const PunktParams& p) : p_(p) {}

  void first_pass(Token& t) {
    const U32View tok = t.tok;
    if (tok.size() == 1 && is_sent_end_char(tok[0])) {
      t.sentbreak = true;
    } else if (is_ellipsis(tok)) {
      t.ellipsis = true;
    } else if (tok.back() == '.' && !(tok.size() >= 2 && tok[tok.size() - 2] == '.')) {
      lower_into(tok.substr(0, tok.size() - 1), &scratch_);
      const U32View lowered = scratch_;
      const size_t dash = lowered.rfind('-');
      const U32View last_part = dash == U32View::npos ? lowered : lowered.substr(dash + 1);
      if (p_.abbrev_types.contains(lowered) || p_.abbrev_types.contains(last_part))
        t.abbr = true;
      else
        t.sentbreak = true;
    }
  }

  void second_pass(Token& t1, Token& t2) {
    if (!t1.period_final()) return;
    const U32View typ = t1.type_no_period();
    const U32View next_typ = t2.type_no_sentperiod();
    const bool initial = t1.is_initial();

    collocation_key(typ, next_typ, &scratch_);
    if (p_.collocations.contains(scratch_)) {
      t1.sentbreak = false;
      t1.abbr = true;
      return;
    }
    if ((t1.abbr || t1.ellipsis) && !initial) {
      if (ortho_heuristic(t2) == Ortho::kTrue) {
        t1.sentbreak = true;
        return;
      }
      if (t2.first_upper() && p_.sent_starters.contains(next_typ)) {
        t1.sentbreak = true;
        return;
      }
    }
    if (initial || typ == kNumberType) {
      const Ortho is_sent_starter = ortho_heuristic(t2);
      if (is_sent_starter == Ortho::kFalse) {
        t1.sentbreak = false;
        t1.abbr = true;
        return;
      }
      if (is_sent_starter == Ortho::kUnknown && initial && t2.first_upper() &&
          !(ortho_context(next_typ) & kOrthoLc)) {
        t1.sentbreak = false;
        t1.abbr = true;
      }
    }
  }

 private:
  // _RE_ELLIPSIS, \.\.+$
  static bool is_ellipsis(U32View tok) {
    if (tok.size() < 2) return false;
    for (char32_t c : tok)
      if (c != '.') return false;
    return true;
  }

  int ortho_context(U32View typ) const {
    const int* v = p_.ortho_context.find(typ);
    return v ? *v : 0;
  }

  Ortho ortho_heuristic(Token& t) const {
    if (t.tok.size() == 1) {
      switch (t.tok[0]) {
        case ';': case ':': case ',': case '.': case '!': case '?':
          return Ortho::kFalse;
        default:
          break;
      }
    }
    const int ctx = ortho_context(t.type_no_sentperiod());
    if (t.first_upper() && (ctx & kOrthoLc) && !(ctx & kOrthoMidUc)) return Ortho::kTrue;
    if (t.first_lower() && ((ctx & kOrthoUc) || !(ctx & kOrthoBegLc))) return Ortho::kFalse;
    return Ortho::kUnknown;
  }

  const PunktParams& p_;
  U32 scratch_;
};

// text_contains_sentbreak: tokenize `context` as _tokenize_words does (line by line, skipping
// blank lines), annotate, and report whether any token but the last is a sentence break.
bool contains_sentbreak(U32View context, Annotator& annotator, Token (&slots)[2]) {
  Token* prev = nullptr;
  Token* cur = &slots[0];
  size_t line_start = 0;
  while (line_start <= context.size()) {
    size_t line_end = context.find('\n', line_start);
    if (line_end == U32View::npos) line_end = context.size();
    const U32View line = context.substr(line_start, line_end - line_start);
    line_start = line_end + 1;
    if (py_strip(line).empty()) continue;
    const size_t n = line.size();
    size_t p = 0;
    while (p < n) {
      if (nre_space(line[p])) {
        ++p;
        continue;
      }
      size_t len = multi_char_punct_len(line, p);
      if (!len) {
        if (cannot_start_word(line[p])) {
          len = 1;
        } else {
          size_t q = p + 1;
          while (!word_ends_at(line, q)) ++q;
          len = q - p;
        }
      }
      cur->reset(line.substr(p, len));
      p += len;
      annotator.first_pass(*cur);
      if (prev) {
        annotator.second_pass(*prev, *cur);
        if (prev->sentbreak) return true;
      }
      prev = cur;
      cur = (cur == &slots[0]) ? &slots[1] : &slots[0];
    }
  }
  return false;
}

struct Slice {
  size_t start;
  size_t stop;
};

// _slices_from_text: the sentence slices before realignment, one at a time (as NLTK's generator
// yields them), so that a caller that needs the first sentences only stops there.
class SliceStream {
 public:
  explicit SliceStream(U32View text)
      : text_(text), annotator_(params()), next_mark_(find_any(text, 0, '.', '?', '!')) {}
  // The next slice; false after the last.
  bool next(Slice* out) {
    const size_t n = text_.size();
    while (stage_ == Stage::kScanning) {
      if (next_mark_ == U32View::npos) {
        stage_ = Stage::kLastCandidate;
        break;
      }
      const size_t i = next_mark_;
      next_mark_ = find_any(text_, i + 1, '.', '?', '!');
      // The period-context regex: [.?!](?=(?P<after_tok>NonWord|\s+(?P<next_tok>\S+)))
      Candidate m{i, 0, U32View::npos};
      if (i + 1 < n && is_non_word_char(text_[i + 1])) {
        m.after_end = i + 2;
      } else if (i + 1 < n && nre_space(text_[i + 1])) {
        size_t j = i + 1;
        while (j < n && nre_space(text_[j])) ++j;
        if (j == n) continue;
        size_t k = j;
        while (k < n && !nre_space(text_[k])) ++k;
        m.next_tok = j;
        m.after_end = k;
      } else {
        continue;
      }
      // The word before the mark starts after the last string.whitespace character since the
      // previous candidate's word ended; when there is none (or it is the first character of
      // that stretch, which NLTK's index test cannot tell from none), the previous word extends.
      size_t word_start = prev_slice_start_;
      for (size_t r = i; r > prev_slice_stop_ + 1;) {
        --r;
        if (is_ascii_whitespace(text_[r])) {
          word_start = r + 1;
          break;
        }
      }
      // The previous candidate stands only if this one's word does not overlap its word.
      const bool found = have_prev_ && prev_slice_stop_ <= word_start && decide(prev_, prev_slice_start_, out);
      prev_ = m;
      have_prev_ = true;
      prev_slice_start_ = word_start;
      prev_slice_stop_ = i;
      if (found) return true;
    }
    if (stage_ == Stage::kLastCandidate) {
      stage_ = Stage::kLastSlice;
      if (have_prev_ && decide(prev_, prev_slice_start_, out)) return true;
    }
    if (stage_ == Stage::kLastSlice) {
      stage_ = Stage::kDone;
      *out = {last_break_, py_rstrip(text_).size()};
      return true;
    }
    return false;
  }

 private:
  // A candidate break: the mark at `pos`, the end of the period-context regex's `after_tok`, and
  // where `next_tok` starts (npos when after_tok is a punctuation mark).
  struct Candidate {
    size_t pos;
    size_t after_end;
    size_t next_tok;
  };
  enum class Stage { kScanning, kLastCandidate, kLastSlice, kDone };

  bool decide(const Candidate& m, size_t word_start, Slice* out) {
    if (!contains_sentbreak(text_.substr(word_start, m.after_end - word_start), annotator_, slots_)) return false;
    *out = {last_break_, m.pos + 1};
    last_break_ = m.next_tok != U32View::npos ? m.next_tok : m.pos + 1;
    return true;
  }

  const U32View text_;
  Annotator annotator_;
  Token slots_[2];
  size_t next_mark_;
  Stage stage_ = Stage::kScanning;
  size_t last_break_ = 0;
  bool have_prev_ = false;
  Candidate prev_{};
  size_t prev_slice_start_ = 0, prev_slice_stop_ = 0;
};

// re_boundary_realignment, ["')\]}‘’“”«»]+?(?:\s+|(?=--)|$) (MULTILINE), matched at the start of
// `s`. Returns false if it does not match; else the number of closing marks and the match end.
bool match_realignment(U32View s, size_t* marks, size_t* end) {
  const size_t n = s.size();
  if (n == 0 || !is_realign_char(s[0])) return false;
  for (size_t k = 1;; ++k) {
    if (k < n && nre_space(s[k])) {
      size_t w = k;
      while (w < n && nre_space(s[w])) ++w;
      *marks = k;
      *end = w;
      return true;
    }
    // "\n" (where MULTILINE $ would also match) is whitespace, taken above.
    if (k == n || (k + 1 < n && s[k] == '-' && s[k + 1] == '-')) {
      *marks = *end = k;
      return true;
    }
    if (!is_realign_char(s[k])) return false;
  }
}

// The realigned spans in order, to `f(start, end)` until it returns false.
template <class F>
void for_each_realigned_span(U32View text, F f) {
  SliceStream slices(text);
  Slice slice, next;
  if (!slices.next(&slice)) return;
  size_t realign = 0;
  while (true) {
    const size_t start = slice.start + realign;
    const size_t stop = slice.stop;
    if (!slices.next(&next)) {
      if (start < stop) f(start, stop);
      return;
    }
    size_t marks = 0, end = 0;
    const U32View next_text =
        next.start < next.stop ? text.substr(next.start, next.stop - next.start) : U32View();
    if (match_realignment(next_text, &marks, &end)) {
      if (!f(start, next.start + marks)) return;
      realign = end;
    } else {
      realign = 0;
      if (start < stop && !f(start, stop)) return;
    }
    slice = next;
  }
}

std::vector<std::pair<size_t, size_t>> realigned_spans(U32View text) {
  std::vector<std::pair<size_t, size_t>> spans;
  for_each_realigned_span(text, [&spans](size_t start, size_t stop) {
    spans.emplace_back(start, stop);
    return true;
  });
  return spans;
}

}  // namespace

std::vector<std::pair<size_t, size_t>> punkt_sentence_spans(std::u32string_view text) {
  return realigned_spans(text);
}

void for_each_punkt_sentence_span(std::u32string_view text, const std::function<bool(size_t, size_t)>& f) {
  for_each_realigned_span(text, f);
}

std::vector<std::u32string> punkt_sentences(std::u32string_view text) {
  std::vector<std::u32string> out;
  for (const auto& [start, stop] : realigned_spans(text)) out.emplace_back(text.substr(start, stop - start));
  return out;
}

size_t punkt_count_sentences(std::u32string_view text) { return realigned_spans(text).size(); }

// Every sentence but the last ends at a sentence-end character of its own: a cut follows a match
// of the period-context pattern, one sentence-end character with a lookahead (so matches do not
// overlap), each match yields one context at most, and realigning boundaries never adds a span.
size_t punkt_sentences_at_most(std::u32string_view text, size_t enough) {
  size_t bound = 1;
  for (size_t i = find_any(text, 0, '.', '?', '!'); i != U32View::npos && bound < enough;
       i = find_any(text, i + 1, '.', '?', '!'))
    ++bound;
  return bound;
}

}  // namespace hirfast
