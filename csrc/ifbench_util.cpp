#include "ifbench_util.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "assets.h"
#include "nltk_chars.h"
#include "punkt.h"
#include "treebank.h"

namespace hirfast {
namespace {
#include "ifbench_tables.inc"
}  // namespace

U32 remove_ascii_punct(U32View s) {
  U32 out(s.size(), 0);
  size_t n = 0;
  for (char32_t c : s) {
    out[n] = c;
    n += !is_ascii_punct(c);
  }
  out.resize(n);
  return out;
}

U32 lower_text(U32View s) {
  char32_t any = 0;
  for (char32_t c : s) any |= c;
  if (any >= 0x80) return py_lower(s);
  U32 out(s.size(), 0);
  for (size_t k = 0; k < s.size(); ++k) out[k] = (s[k] >= 'A' && s[k] <= 'Z') ? s[k] + 32 : s[k];
  return out;
}

size_t count_words(U32View s) {
  size_t n = 0;
  for_each_word(s, [&n](U32View) {
    ++n;
    return true;
  });
  return n;
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
// split_into_sentences. Every regex substitution of the Python function (passes 1-12 below) has a
// '.' at a fixed offset (or one of two) from the start of its match, so a pass only tests the few
// positions in front of each '.', in increasing order, skipping what an earlier match consumed, as
// re.sub does; a pass without a match leaves the text as it is. (Testing every position of every
// pass instead made sentence:keyword over the 1,005 IFBench pairs, strict + loose, 70 ms instead
// of 9 ms.)

namespace {

bool ascii_letter(char32_t c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
bool ascii_upper(char32_t c) { return c >= 'A' && c <= 'Z'; }
bool ascii_digit(char32_t c) { return c >= '0' && c <= '9'; }
// Compared in place, code point by code point: every dot tests several literals, and most differ
// at the first (a call of compare for each was a tenth of sentence:keyword).
inline bool at(const U32& t, size_t p, U32View lit) {
  if (p > t.size() || lit.size() > t.size() - p) return false;
  for (size_t i = 0; i < lit.size(); ++i)
    if (t[p + i] != lit[i]) return false;
  return true;
}
char32_t char_at(const U32& t, size_t p) { return p < t.size() ? t[p] : 0; }

// The positions of '.' in t.
void find_dots(const U32& t, std::vector<size_t>* dots) {
  dots->clear();
  for (size_t k = 0; k < t.size(); ++k)
    if (t[k] == '.') dots->push_back(k);
}

// What a pass writes, kept from pass to pass (a pass that matches swaps its output with the text
// it read): a new copy of the text per matching pass was fresh memory each time, and its page
// faults alone were 6% of sentence:keyword.
struct PassBuffers {
  U32 text, replacement;
  std::vector<size_t> dots;
};

// One re.sub pass whose matches have a '.' at offset min_dot..max_dot from their start; `dots`
// holds the positions of '.' in *text and is kept up to date (shifted, not searched again).
// `match(t, s, &replacement)` returns the length matched at s (0: none) and sets the replacement.
template <class Match>
void substitute_near_dots(U32* text, std::vector<size_t>* dots, PassBuffers* spare, size_t min_dot, size_t max_dot,
                          Match match) {
  const U32& t = *text;
  const std::vector<size_t>& d = *dots;
  U32& out = spare->text;
  U32& replacement = spare->replacement;
  std::vector<size_t>& out_dots = spare->dots;
  out.clear();
  out_dots.clear();
  size_t resume = 0, next_unchecked = 0;
  size_t carried = 0;  // d[0 .. carried) are accounted for in out_dots (or consumed by a match)
  auto carry_dots_before = [&](size_t end) {  // dots of t[resume, end), copied to the end of out
    for (; carried < d.size() && d[carried] < end; ++carried) out_dots.push_back(d[carried] - resume + out.size());
  };
  for (size_t dot : d) {
    if (dot < min_dot) continue;
    size_t lo = dot >= max_dot ? dot - max_dot : 0;
    lo = std::max({lo, next_unchecked, resume});
    const size_t hi = dot - min_dot;
    for (size_t s = lo; s <= hi; ++s) {
      if (s < resume) continue;
      replacement.clear();
      const size_t n = match(t, s, &replacement);
      if (n == 0) continue;
      if (out.empty()) {
        out.reserve(t.size() + t.size() / 8);
        out_dots.reserve(d.size());
      }
      carry_dots_before(s);
      out.append(t, resume, s - resume);
      for (size_t k = 0; k < replacement.size(); ++k)
        if (replacement[k] == '.') out_dots.push_back(out.size() + k);
      out.append(replacement);
      resume = s + n;
      while (carried < d.size() && d[carried] < resume) ++carried;  // replaced by the match
    }
    next_unchecked = std::max(next_unchecked, hi + 1);
  }
  if (out.empty()) return;  // no match (a match always leaves something in out)
  carry_dots_before(t.size());
  out.append(t, resume, U32::npos);
  text->swap(out);
  dots->swap(out_dots);
}

// The first alternative that occurs at p followed by '.', as in re "(A|B|...)[.]"; returns its
// length (0: none).
size_t alternative_then_dot(const U32& t, size_t p, std::initializer_list<U32View> alternatives) {
  for (U32View a : alternatives)
    if (char_at(t, p + a.size()) == '.' && at(t, p, a)) return a.size();
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

// *t = t->replace(a + b, b + a) for a != b, in place: each match is swapped where it stands, and
// the search goes on past it, where the text is as it was (a copy of the text per replace was
// a sixth of sentence:keyword). Returns whether anything was replaced.
bool swap_pairs(U32* t, char32_t a, char32_t b) {
  U32& s = *t;
  bool any = false;
  for (size_t k = find_any(s, 0, a); k != U32View::npos && k + 1 < s.size(); k = find_any(s, k + 1, a)) {
    if (s[k + 1] != b) continue;
    s[k] = b;
    s[k + 1] = a;
    any = true;
    ++k;
  }
  return any;
}

constexpr std::initializer_list<U32View> kSuffixes = {U"Inc", U"Ltd", U"Jr", U"Sr", U"Co"};

}  // namespace

// What for_each_sentence works in.
struct SentenceBuffers {
  U32 text;
  std::vector<size_t> dots;
  PassBuffers spare;
  bool busy = false;  // in use by a call on this thread
};
// Sets *flag for its lifetime.
class BusyFlag {
 public:
  explicit BusyFlag(bool* flag) : flag_(flag) { *flag_ = true; }
  ~BusyFlag() { *flag_ = false; }
  BusyFlag(const BusyFlag&) = delete;
  BusyFlag& operator=(const BusyFlag&) = delete;

 private:
  bool* flag_;
};

// Its two scans find the few characters they act on with find_any (unicode.h): character by
// character they were most of the function's time.
bool for_each_sentence(U32View input, const std::function<bool(U32View)>& f) {
  // text = " " + text + "  " with newlines made spaces, then one scan that notes the dots and
  // which of the quote swaps of steps 13-16 can apply (steps 1-12 never make a '"' follow '.',
  // '!' or '?').
  // The text and the passes' buffers are kept per thread (a call inside a callback, which has
  // none of its own, uses fresh ones): allocated per call, their pages were faulted in again and
  // again (8% of sentence:keyword).
  thread_local SentenceBuffers kept;
  SentenceBuffers fresh;
  SentenceBuffers& buffers = kept.busy ? fresh : kept;
  const BusyFlag busy(&buffers.busy);
  U32& t = buffers.text;
  t.assign(input.size() + 3, U' ');
  for (size_t k = 0; k < input.size(); ++k) t[k + 1] = input[k] == '\n' ? U' ' : input[k];
  std::vector<size_t>& dots = buffers.dots;
  dots.clear();
  bool right_quote = false, quote_after[3] = {false, false, false};  // after '.', '!', '?'
  for (size_t k = find_any(t, 0, '.', '"', 0x201D); k != U32View::npos; k = find_any(t, k + 1, '.', '"', 0x201D)) {
    if (t[k] == '.') {
      dots.push_back(k);
    } else if (t[k] == '"') {
      const char32_t previous = t[k - 1];  // t[0] is the added ' '
      quote_after[0] |= previous == '.';
      quote_after[1] |= previous == '!';
      quote_after[2] |= previous == '?';
    } else {
      right_quote = true;
    }
  }

  PassBuffers& spare = buffers.spare;
  // 1. (Mr|St|Mrs|Ms|Dr)[.] -> \1<prd>
  substitute_near_dots(&t, &dots, &spare, 2, 3, [](const U32& s, size_t p, U32* r) -> size_t {
    if (s[p] != 'M' && s[p] != 'S' && s[p] != 'D') return 0;  // the alternatives' initials
    const size_t n = alternative_then_dot(s, p, {U"Mr", U"St", U"Mrs", U"Ms", U"Dr"});
    if (!n) return 0;
    r->append(s, p, n);
    r->append(U"<prd>");
    return n + 1;
  });
  // 2. [.](com|net|org|io|gov|edu|me) -> <prd>\1
  substitute_near_dots(&t, &dots, &spare, 0, 0, [](const U32& s, size_t p, U32* r) -> size_t {
    // Every alternative starts with a letter from c to o; most dots are followed by a space.
    const char32_t next = char_at(s, p + 1);
    if (next < 'c' || next > 'o') return 0;
    for (U32View a : {U32View(U"com"), U32View(U"net"), U32View(U"org"), U32View(U"io"),
                      U32View(U"gov"), U32View(U"edu"), U32View(U"me")}) {
      if (at(s, p + 1, a)) {
        r->append(U"<prd>");
        r->append(a);
        return a.size() + 1;
      }
    }
    return 0;
  });
  // 3. ([0-9])[.]([0-9]) -> \1<prd>\2
  substitute_near_dots(&t, &dots, &spare, 1, 1, [](const U32& s, size_t p, U32* r) -> size_t {
    if (!ascii_digit(s[p]) || !ascii_digit(char_at(s, p + 2))) return 0;
    r->push_back(s[p]);
    r->append(U"<prd>");
    r->push_back(s[p + 2]);
    return 3;
  });
  // 4. \.{2,} -> "<prd>" * len + "<stop>": a match starts at the first dot of a run.
  substitute_near_dots(&t, &dots, &spare, 0, 0, [](const U32& s, size_t p, U32* r) -> size_t {
    size_t n = 0;
    while (p + n < s.size() && s[p + n] == '.') ++n;
    if (n < 2) return 0;
    for (size_t k = 0; k < n; ++k) r->append(U"<prd>");
    r->append(U"<stop>");
    return n;
  });
  // 5. text.replace("Ph.D.", "Ph<prd>D<prd>") (its guard `"Ph.D" in text` changes nothing)
  auto dot_between = [&t, &dots](U32View before, U32View after) {
    for (size_t d : dots)
      if (d >= before.size() && t.compare(d - before.size(), before.size(), before) == 0 &&
          t.compare(d + 1, after.size(), after) == 0)
        return true;
    return false;
  };
  if (dot_between(U"Ph", U"D.")) {
    t = py_replace(t, U"Ph.D.", U"Ph<prd>D<prd>");
    find_dots(t, &dots);
  }
  // 6. \s([A-Za-z])[.]  -> " \1<prd> "
  substitute_near_dots(&t, &dots, &spare, 2, 2, [](const U32& s, size_t p, U32* r) -> size_t {
    if (!re_space(s[p]) || !ascii_letter(s[p + 1]) || char_at(s, p + 3) != ' ') return 0;
    r->push_back(' ');
    r->push_back(s[p + 1]);
    r->append(U"<prd> ");
    return 4;
  });
  // 7. ([A-Z][.][A-Z][.](?:[A-Z][.])?) _STARTERS -> \1<stop> \2 (the optional third letter is
  // tried first; without it the next character would have to be the space, which a letter is not).
  substitute_near_dots(&t, &dots, &spare, 1, 1, [](const U32& s, size_t p, U32* r) -> size_t {
    if (!ascii_upper(s[p]) || !ascii_upper(char_at(s, p + 2)) || char_at(s, p + 3) != '.') return 0;
    size_t acronym = 4;
    if (ascii_upper(char_at(s, p + 4)) && char_at(s, p + 5) == '.') acronym = 6;
    if (char_at(s, p + acronym) != ' ') return 0;
    const size_t st = starter(s, p + acronym + 1);
    if (!st) return 0;
    r->append(s, p, acronym);
    r->append(U"<stop> ");
    r->append(s, p + acronym + 1, st);
    return acronym + 1 + st;
  });
  // 8, 9. ([A-Za-z])[.]([A-Za-z])[.]([A-Za-z])[.] -> \1<prd>\2<prd>\3<prd>, then for two letters.
  for (size_t letters : {3, 2}) {
    substitute_near_dots(&t, &dots, &spare, 1, 1, [letters](const U32& s, size_t p, U32* r) -> size_t {
      for (size_t k = 0; k < letters; ++k)
        if (!ascii_letter(s[p + 2 * k]) || char_at(s, p + 2 * k + 1) != '.') return 0;
      for (size_t k = 0; k < letters; ++k) {
        r->push_back(s[p + 2 * k]);
        r->append(U"<prd>");
      }
      return 2 * letters;
    });
  }
  // 10. " " _SUFFIXES "[.] " _STARTERS -> " \1<stop> \2"
  substitute_near_dots(&t, &dots, &spare, 3, 4, [](const U32& s, size_t p, U32* r) -> size_t {
    if (s[p] != ' ') return 0;
    const size_t n = alternative_then_dot(s, p + 1, kSuffixes);
    if (!n || char_at(s, p + n + 2) != ' ') return 0;
    const size_t st = starter(s, p + n + 3);
    if (!st) return 0;
    r->push_back(' ');
    r->append(s, p + 1, n);
    r->append(U"<stop> ");
    r->append(s, p + n + 3, st);
    return n + 3 + st;
  });
  // 11. " " _SUFFIXES "[.]" -> " \1<prd>"
  substitute_near_dots(&t, &dots, &spare, 3, 4, [](const U32& s, size_t p, U32* r) -> size_t {
    if (s[p] != ' ') return 0;
    const size_t n = alternative_then_dot(s, p + 1, kSuffixes);
    if (!n) return 0;
    r->push_back(' ');
    r->append(s, p + 1, n);
    r->append(U"<prd>");
    return n + 2;
  });
  // 12. " " ([A-Za-z]) "[.]" -> " \1<prd>"
  substitute_near_dots(&t, &dots, &spare, 2, 2, [](const U32& s, size_t p, U32* r) -> size_t {
    if (s[p] != ' ' || !ascii_letter(s[p + 1])) return 0;
    r->push_back(' ');
    r->push_back(s[p + 1]);
    r->append(U"<prd>");
    return 3;
  });
  // 13-16, in order. Each is guarded in Python by the presence of a character its pattern
  // contains, so the guards change nothing. A swap can make a pattern of a later one appear
  // (".\u201D\"" -> "\u201D.\"", "!.\"" -> "!\".", "?!\"" -> "?\"!"), so after a change the later
  // ones run unconditionally (swap_pairs finds nothing where there is nothing).
  bool swapped = false;
  if (right_quote && dot_between(U"", U"\u201D")) swapped = swap_pairs(&t, '.', 0x201D);
  const char32_t marks[3] = {'.', '!', '?'};
  for (int m = 0; m < 3; ++m) {
    if (!swapped && !quote_after[m]) continue;
    swapped = swap_pairs(&t, marks[m], '"') || swapped;
  }
  // 17-19 in one scan: "." "?" "!" gain a following "<stop>", then "<prd>" becomes ".", then the
  // text is split at "<stop>" and each piece stripped; a last piece that strips to nothing is
  // dropped. The inserted and the literal "<stop>"s are all the split points: "<stop>" holds no
  // ".?!" and cannot overlap itself or "<prd>", so no replacement makes or breaks one. A piece
  // without "<prd>" is passed as a view of the text; one with it is rebuilt in `scratch`.
  U32& scratch = buffers.spare.text;  // the passes are done with it
  size_t start = 0;
  bool has_prd = false;
  auto emit = [&](size_t end, bool last) {
    U32View piece = U32View(t).substr(start, end - start);
    if (has_prd) {  // piece.replace("<prd>", ".")
      scratch.clear();
      for (size_t k = 0; k < piece.size(); ++k) {
        if (piece[k] == '<' && piece.compare(k, 5, U"<prd>") == 0) {
          scratch.push_back('.');
          k += 4;
        } else {
          scratch.push_back(piece[k]);
        }
      }
      piece = scratch;
    }
    piece = py_strip(piece);
    has_prd = false;
    return (last && piece.empty()) || f(piece);
  };
  for (size_t k = find_any(t, 0, '.', '?', '!', '<'); k != U32View::npos; k = find_any(t, k + 1, '.', '?', '!', '<')) {
    const char32_t c = t[k];
    if (c == '.' || c == '?' || c == '!') {
      if (!emit(k + 1, false)) return false;
      start = k + 1;
    } else if (c == '<' && at(t, k, U"<stop>")) {
      if (!emit(k, false)) return false;
      start = k + 6;
      k += 5;
    } else if (c == '<' && at(t, k, U"<prd>")) {
      has_prd = true;
      k += 4;
    }
  }
  return emit(t.size(), true);
}

std::vector<U32> split_into_sentences(U32View text) {
  std::vector<U32> sentences;
  for_each_sentence(text, [&sentences](U32View s) {
    sentences.emplace_back(s);
    return true;
  });
  return sentences;
}

std::vector<U32> word_tokenize(U32View text) { return nltk_word_tokenize(text); }

std::vector<std::pair<size_t, size_t>> word_tokenize_spans(U32View text) { return punkt_sentence_spans(text); }

void for_each_word_tokenize_span(U32View text, const std::function<bool(std::pair<size_t, size_t>)>& f) {
  for_each_punkt_sentence_span(text, [&f](size_t start, size_t end) { return f({start, end}); });
}

std::vector<U32> word_tokenize_span(U32View text, std::pair<size_t, size_t> span) {
  return treebank_tokenize(text.substr(span.first, span.second - span.first));
}

}  // namespace hirfast
