// MulDimIF checkers (Junjie Ye et al., as shipped in sastpg/HIR `evaluation/MulDimIF/eval/`).
//
// A MulDimIF constraint is (category, subcategory, text); the reference maps
// f"{category}_{subcategory}" onto one of 12 checker classes and calls `check(text, response)`,
// which reads numbers, keywords and comparisons out of the text with regular expressions. Each
// class is one function here, `bool md_<class>(U32View constraint, U32View response)`, that gives
// the reference's verdict, quirks included (see docs/MULDIMIF.md). Where the reference would raise
// (a TypeError on a number it could not read, ...), the function throws MdRaise; the engine
// counts that pair as not followed.
//
// The regular expressions the reference applies run on hirfast's linear-time engine (CPython `re`
// semantics); the few with lookarounds are written out by hand next to their use.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "regex.h"
#include "unicode.h"

namespace hirfast {

// The reference raised (its caller sees the exception).
struct MdRaise : std::runtime_error {
  explicit MdRaise(const std::string& what) : std::runtime_error(what) {}
};

namespace md {

// A pattern compiled once per process (the literal is the reference's pattern, as a UTF-32 raw
// string).
#define MD_RE(pattern, flags)                                                                     \
  (*[]() -> const ::hirfast::Regex* {                                                             \
    static const std::shared_ptr<const ::hirfast::Regex> compiled = ::hirfast::Regex::compile(pattern, flags); \
    return compiled.get();                                                                        \
  }())

constexpr uint32_t kI = Regex::kIgnoreCase, kM = Regex::kMultiline, kS = Regex::kDotAll;

inline bool search(const Regex& re, U32View text, RegexMatch* m = nullptr) {
  RegexMatch local;
  return re.search(text, 0, m ? m : &local);
}
inline bool match(const Regex& re, U32View text, RegexMatch* m = nullptr) {
  RegexMatch local;
  return re.match(text, 0, m ? m : &local);
}
// Group k (1-based) of a match; empty when it did not participate.
inline U32View group(const RegexMatch& m, U32View text, size_t k) {
  const auto& g = m.groups[k - 1];
  if (g.first < 0) return U32View();
  return text.substr(static_cast<size_t>(g.first), static_cast<size_t>(g.second - g.first));
}
inline bool has_group(const RegexMatch& m, size_t k) { return m.groups[k - 1].first >= 0; }

inline bool contains(U32View s, U32View sub) { return py_contains(s, sub); }
inline bool starts_with(U32View s, U32View p) { return s.substr(0, p.size()) == p; }
inline bool ends_with(U32View s, U32View p) { return s.size() >= p.size() && s.substr(s.size() - p.size()) == p; }

// str.isdigit() (non-empty, every code point a digit).
bool py_isdigit_str(U32View s);
// int(s) for a str.isdigit() string: Unicode decimal digits; a digit that is not decimal (²)
// raises ValueError in Python (MdRaise here). Values beyond int64 saturate.
int64_t py_int(U32View s);
// s.lower() == s etc.
bool in_list(U32View s, std::initializer_list<const char32_t*> words);
// Position of `word` in `words` (+ offset) or -1.
int64_t word_value(U32View s, std::initializer_list<std::pair<const char32_t*, int>> words);

// `re.findall(r'(?<!\w)' + re.escape(kw) + r'(?!\w)', text, re.I)` counted (kw non-empty);
// stops at `enough`.
size_t count_bounded_keyword(U32View text, U32View kw, size_t enough = SIZE_MAX);
// The keyword pattern of Content_Keywords / Length_Words: a keyword holding a CJK ideograph
// (U+4E00..U+9FFF) is searched as a plain, case-sensitive substring; any other with the word
// boundaries above.
size_t count_keyword(U32View text, U32View kw, size_t enough = SIZE_MAX);

// Python's text.split('\n') etc.
std::vector<U32View> split_char(U32View s, char32_t c);

// A JSON value as json.loads builds it (duplicate keys: the last value at the first position).
struct JsonValue {
  enum Kind { kNull, kBool, kInt, kFloat, kStr, kList, kDict } kind = kNull;
  bool b = false;
  U32 text;    // kStr: the string; kInt: its digits (Python int repr); kFloat: the literal
  double f = 0;
  std::vector<JsonValue> items;                // kList, and kDict's values
  std::vector<U32> keys;                       // kDict
};
// json.loads(s): nullopt where it raises JSONDecodeError; MdRaise where it raises something
// else (RecursionError, ValueError on an integer of over 4300 digits).
std::optional<JsonValue> json_loads(U32View s);
// str(v) of the value json.loads built.
U32 py_str(const JsonValue& v);

}  // namespace md

// The twelve classes.
bool md_content_keywords(U32View c, U32View t);
bool md_content_others(U32View c, U32View t);
bool md_content_punctuation(U32View c, U32View t);
bool md_format_json(U32View c, U32View t);
bool md_format_markdown(U32View c, U32View t);
bool md_format_others(U32View c, U32View t);
bool md_format_table(U32View c, U32View t);
bool md_language_english(U32View c, U32View t);
bool md_length_paragraphs(U32View c, U32View t);
bool md_length_sentences(U32View c, U32View t);
bool md_length_words(U32View c, U32View t);

// The check of one constraint text, with what the reference reads from the text parsed once (a
// checker is built once per batch for all the responses that share the constraint). Classes
// without one are checked by calling md_<class>(text, response) per response. A plan throws
// MdRaise where the reference raises on the constraint text whatever the response.
using MdCheck = std::function<bool(U32View)>;
MdCheck md_format_others_plan(U32View c);
MdCheck md_content_others_plan(U32View c);
MdCheck md_length_words_plan(U32View c);
MdCheck md_format_markdown_plan(U32View c);
MdCheck md_format_table_plan(U32View c);
MdCheck md_content_keywords_plan(U32View c);
MdCheck md_length_sentences_plan(U32View c);
MdCheck md_language_english_plan(U32View c);

// Language_Chinese: which of the reference's rules a constraint text picks (the first whose
// pattern it matches), and the phrase of the first rule. Checking then needs zhconv's tables,
// which hirfast does not ship: hirfast.verify calls zhconv (an optional dependency) for them.
enum class MdChineseRule {
  kNone = 0,                // no rule matched: False
  kPhrase = 1,              // phrase in text
  kShenLim = 2,             // '沈林' in text
  kEntirelyTraditional = 3,
  kHasTraditional = 4,
  kHasSimplified = 5,
  kEntirelySimplified = 6,
};
MdChineseRule md_chinese_rule(U32View c, U32* phrase);

// The verdict of a conversion rule (kEntirelyTraditional..kEntirelySimplified) on a response,
// computed with zhconv by the Python side (bindings install it; it throws AssetError, which no
// check turns into a False, when zhconv is missing). Set once, before any check runs.
using MdZhconvHook = bool (*)(MdChineseRule rule, U32View response);
void set_md_zhconv_hook(MdZhconvHook hook);

}  // namespace hirfast
