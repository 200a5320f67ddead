// MulDimIF Content_Others and Content_Punctuation.
#include <memory>

#include "checks_muldimif.h"
#include "punkt.h"

namespace hirfast {
namespace {
using namespace md;

bool lstrip_lower_startswith(U32View text, U32View prefix) {
  size_t k = 0;
  while (k < text.size() && (text[k] == ' ' || text[k] == '#')) ++k;
  // s.lower().startswith(p.lower()): lowering may change lengths, so lower both whole.
  U32 a = py_lower(text.substr(k)), b = py_lower(prefix);
  return starts_with(a, b);
}

bool sources_at_end(U32View text) { return search(MD_RE(UR"(Sources:\s*.+$)", 0), text); }

// re.split(r'(?<=[.!?])\s+(?=\S)', text): cut at each whitespace run after . ! or ? that is
// followed by more text.
std::vector<U32View> split_sentences_on_space(U32View t) {
  std::vector<U32View> out;
  size_t start = 0;
  for (size_t i = 1; i < t.size(); ++i) {
    if (!re_space(t[i]) || !(t[i - 1] == '.' || t[i - 1] == '!' || t[i - 1] == '?')) continue;
    size_t j = i;
    while (j < t.size() && re_space(t[j])) ++j;
    if (j == t.size()) break;
    out.push_back(t.substr(start, i - start));
    start = j;
    i = j - 1;
  }
  out.push_back(t.substr(start));
  return out;
}

size_t emoji_runs(U32View s) {
  size_t n = 0;
  for (size_t i = 0; i < s.size(); ++i)
    if (s[i] >= 0x24C2 && (i == 0 || s[i - 1] < 0x24C2)) ++n;
  return n;
}

}  // namespace

bool md_content_others(U32View c, U32View t) {
  if (c == U"Keep it a paragraph long") return t.find('\n') == U32View::npos;
  RegexMatch start;
  bool has_start = match(MD_RE(UR"(Start identifier( must be|:)(?:.*)?\s'([^']+)')", 0), c, &start);
  if (contains(c, U"Each example must start with")) {
    if (!has_start) throw MdRaise("AttributeError: 'NoneType' object has no attribute 'group'");
    return contains(t, group(start, c, 2));
  }
  if (has_start) return lstrip_lower_startswith(t, group(start, c, 2));
  RegexMatch m;
  if (search(MD_RE(UR"((?:Start|start|begin|it is essential to start) (?:with|by) the (?:identifier|phrase) '?([^']+)'?)",
                   kI),
             c, &m))
    return lstrip_lower_startswith(t, group(m, c, 1));
  if (c == U"End identifier: Sources must be cited at the end of the response" ||
      c == U"make sure to conclude your response by citing your sources, as this is a crucial part of the answer")
    return sources_at_end(py_strip(t));
  if (match(MD_RE(UR"(The name of the showroom must start with the letter '([A-Za-z])'\.)", 0), c, &m)) {
    char32_t letter = simple_upper(group(m, c, 1)[0]);
    // \b{L}[a-zA-Z]*\b: an L after a non-word character; the letters after it end at a boundary
    // unless a digit or _ follows them (then no shorter run ends at one either).
    for (size_t i = 0; i < t.size(); ++i) {
      if (t[i] != letter || (i > 0 && re_word(t[i - 1]))) continue;
      size_t j = i + 1;
      while (j < t.size() && t[j] < 128 && py_isalpha(t[j])) ++j;
      if (j == t.size() || !re_word(t[j])) return true;
    }
    return false;
  }
  if (c == U"Response must be written as a short blurb" || c == U"ensure that the response is written as a short blurb" ||
      c == U"ensure the response is a short blurb" || c == U"The response must be short and simple")
    return t.size() <= 200;
  if (c == U"The response should be concise, with a maximum of 50 words") return py_split_ws(t).size() <= 50;
  if (c == U"Each sentence must include at least three emojis.") {
    for (U32View s : split_sentences_on_space(t)) {
      U32View st = py_strip(s);
      if (st.empty()) continue;
      if (emoji_runs(st) < 3) return false;
    }
    return true;
  }
  if (search(MD_RE(UR"([Mm]ust mention (.+) and the (.+))", 0), c, &m))
    return contains(t, group(m, c, 1)) && contains(t, U32(U"the ") + U32(group(m, c, 2)));
  if (c == U"Must include quotes from the sources" || c == U"with quotes from these sources")
    return search(MD_RE(UR"(["“”‘’'])", 0), t);
  if (c == U"Must provide sources that are cited" || c == U"The response must include sources that are cited")
    return sources_at_end(t) && search(MD_RE(UR"(\[\d+\])", 0), t);
  if (c == U"It must include in-text citations") return search(MD_RE(UR"(\[\d+\]|\([A-Za-z]+, \d{4}\))", 0), t);
  if (contains(c, U"be in full sentences")) return true;
  return false;
}

MdCheck md_content_others_plan(U32View c) {
  // The one raise that depends on the constraint alone: a start rule with no identifier to read.
  if (contains(c, U"Each example must start with") &&
      !match(MD_RE(UR"(Start identifier( must be|:)(?:.*)?\s'([^']+)')", 0), c))
    throw MdRaise("AttributeError: 'NoneType' object has no attribute 'group'");
  auto text = std::make_shared<const U32>(c);
  return [text](U32View t) { return md_content_others(*text, t); };
}

namespace {
constexpr char32_t kAsciiPunct[] = U"!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
bool is_ascii_punct(char32_t c) { return U32View(kAsciiPunct).find(c) != U32View::npos; }

// punctuation_map, in its order.
const std::pair<const char32_t*, char32_t> kPunctMap[] = {
    {U"period", '.'}, {U"question mark", '?'}, {U"exclamation mark", '!'}, {U"semicolon", ';'}};
}  // namespace

bool md_content_punctuation(U32View c, U32View t) {
  U32 cc = py_lower(py_strip(c));
  while (!cc.empty() && cc.back() == '.') cc.pop_back();
  U32View text = py_strip(t);
  std::vector<U32> sentences;
  if (contains(cc, U"paragraph") || contains(cc, U"section")) {
    for (U32View l : split_char(text, '\n'))
      if (!py_strip(l).empty()) sentences.emplace_back(py_strip(l));
  } else if (contains(cc, U"each") || contains(cc, U"any") || contains(cc, U"all")) {
    sentences = punkt_sentences(text);
  } else {
    sentences.emplace_back(text);
  }
  if (contains(cc, U"table") || contains(cc, U"cell")) {
    auto rows = split_char(text, '\n');
    if (rows.size() > 1) rows.erase(rows.begin(), rows.begin() + 2);
    sentences.clear();
    const Regex& bar = MD_RE(UR"(\s*\|\s*)", 0);
    for (U32View row : rows) {
      for (const auto& cell : bar.split(py_strip_chars(row, U"|"))) {
        U32View s = py_strip(*cell);
        if (s.empty() || py_strip_chars(s, U"-").empty()) continue;
        sentences.emplace_back(s);
      }
    }
  }
  RegexMatch special;
  bool has_special = search(
      MD_RE(UR"((period|question mark|exclamation mark|semicolon)\s+followed by a `([^`]+)`)", kI), cc, &special);
  if (contains(cc, U"bullet point")) {
    char32_t required = 0;
    for (const auto& p : kPunctMap)
      if (contains(cc, p.first)) {
        required = p.second;
        break;
      }
    for (const auto& bm : MD_RE(UR"(^[\-\*\•]\s.*$)", kM).finditer(text)) {
      U32View point = text.substr(bm.start, bm.end - bm.start);
      for (const auto& sent : punkt_sentences(point)) {
        U32View s = py_strip(sent);
        if (required) {
          if (s.empty() || s.back() != required) return false;
        } else {
          if (s.empty()) throw MdRaise("IndexError: string index out of range");
          if (!is_ascii_punct(s.back())) return false;
        }
      }
    }
    return true;
  }
  bool negative = search(MD_RE(UR"(\b(must not|avoid|exclude|not end with|do not use)\b)", kI), cc);
  for (const auto& s : sentences)
    if (s.empty()) return negative;
  if (has_special) {
    U32 kind = py_lower(group(special, cc, 1));
    U32 expected;
    for (const auto& p : kPunctMap)
      if (kind == p.first) expected.push_back(p.second);
    expected += group(special, cc, 2);
    for (const auto& s : sentences)
      if (!ends_with(s, expected)) return false;
    return true;
  }
  bool all_punct = false;
  U32 allowed;
  for (const auto& m :
       MD_RE(UR"(\b(periods?|question marks?|exclamation marks?|semicolons?|punctuation marks?)\b)", 0).finditer(cc)) {
    U32View name = group(m, cc, 1);
    while (!name.empty() && name.back() == 's') name.remove_suffix(1);
    if (contains(name, U"punctuation mark")) all_punct = true;
    for (const auto& p : kPunctMap)
      if (name == p.first) allowed.push_back(p.second);
  }
  if (all_punct) allowed = kAsciiPunct;
  for (const auto& s : sentences) {
    bool in = allowed.find(s.back()) != U32::npos;
    if (in == negative) return false;
  }
  return true;
}

}  // namespace hirfast
