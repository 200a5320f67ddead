// MulDimIF Length_Words and its "each" variant (LengthWords_Each).
#include "checks_muldimif.h"

namespace hirfast {
namespace {
using namespace md;

const std::initializer_list<std::pair<const char32_t*, int>> kWords = {
    {U"zero", 0},     {U"one", 1},       {U"two", 2},        {U"three", 3},     {U"four", 4},      {U"five", 5},
    {U"six", 6},      {U"seven", 7},     {U"eight", 8},      {U"nine", 9},      {U"ten", 10},      {U"eleven", 11},
    {U"twelve", 12},  {U"thirteen", 13}, {U"fourteen", 14},  {U"fifteen", 15},  {U"sixteen", 16},  {U"seventeen", 17},
    {U"eighteen", 18}, {U"nineteen", 19}, {U"twenty", 20},   {U"thirty", 30},   {U"forty", 40},    {U"fifty", 50},
    {U"sixty", 60},   {U"seventy", 70},  {U"eighty", 80},    {U"ninety", 90},   {U"hundred", 100}};

// Length_Words._parse_number: digits (commas dropped), or compound number words; nullopt: None.
std::optional<int64_t> parse_number(U32View s) {
  U32 t = py_replace(py_strip(s), U",", U"");
  if (py_isdigit_str(t)) return py_int(t);
  U32 low = py_lower(py_strip(t));
  int64_t total = 0, current = 0;
  for (const auto& p : MD_RE(UR"([\s-]+)", 0).split(low)) {
    int64_t v = word_value(*p, kWords);
    if (v < 0) return std::nullopt;
    if (v >= 100) {
      if (current == 0) current = 1;
      current *= v;
      total += current;
      current = 0;
    } else {
      current += v;
    }
  }
  return total + current;
}

// ---- LengthWords_Each

struct EachInfo {
  bool has_target = false;
  U32 target;
  int64_t lo = -1, hi = -1;  // -1: None
};

bool count_ok(U32View s, const EachInfo& e) {
  int64_t n = static_cast<int64_t>(py_split_ws(s).size());
  if (e.lo >= 0 && e.hi >= 0) return e.lo <= n && n <= e.hi;
  if (e.lo >= 0) return n >= e.lo;
  if (e.hi >= 0) return n <= e.hi;
  return false;
}

bool parse_each(U32View constraint, EachInfo* info) {
  // Number words become digits first.
  const Regex& words = MD_RE(UR"(\b(zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred)\b)", kI);
  U32 c;
  size_t last = 0;
  for (const auto& m : words.finditer(constraint)) {
    c += constraint.substr(last, m.start - last);
    U32 w = py_lower(constraint.substr(m.start, m.end - m.start));
    c += from_ascii(std::to_string(word_value(w, kWords)));
    last = m.end;
  }
  c += constraint.substr(last);
  RegexMatch m;
  if (search(MD_RE(UR"((?:each entry in the|Each entry in the|Each|each|The|the)\s+(.+?)\s+(?:is|in the table|column|must|consists of|contains?|should|have))", kI),
             c, &m)) {
    info->has_target = true;
    U32 tgt = py_lower(group(m, c, 1));
    for (char32_t ch : tgt)
      if (ch != '"' && ch != '\'') info->target.push_back(ch);
  }
  enum { kRange, kMin, kMax, kExact };
  static const std::pair<const Regex*, int> kPats[] = {
      {&MD_RE(UR"(between (\d+) and (\d+) words)", kI), kRange},
      {&MD_RE(UR"(range: (\d+)-(\d+) words)", kI), kRange},
      {&MD_RE(UR"(at least (\d+) words)", kI), kMin},
      {&MD_RE(UR"(a minimum of (\d+) words)", kI), kMin},
      {&MD_RE(UR"(a minimum length of (\d+) words)", kI), kMin},
      {&MD_RE(UR"(at most (\d+) words)", kI), kMax},
      {&MD_RE(UR"(exactly (\d+) words)", kI), kExact},
      {&MD_RE(UR"(no more than (\d+) words)", kI), kMax},
      {&MD_RE(UR"(not exceed (\d+) words)", kI), kMax},
      {&MD_RE(UR"(a maximum of (\d+) words)", kI), kMax},
      {&MD_RE(UR"(a maximum length of (\d+) words)", kI), kMax},
      {&MD_RE(UR"(limit of (\d+) words)", kI), kMax},
      {&MD_RE(UR"(not exceeding (\d+) words)", kI), kMax},
      {&MD_RE(UR"(less than (\d+) words)", kI), kMax},
  };
  for (const auto& p : kPats) {
    if (!search(*p.first, c, &m)) continue;
    int64_t a = py_int(group(m, c, 1));
    if (p.second == kRange) {
      info->lo = a;
      info->hi = py_int(group(m, c, 2));
    } else if (p.second == kMin) {
      info->lo = a;
    } else if (p.second == kMax) {
      info->hi = a;
    } else {
      info->lo = info->hi = a;
    }
    return true;
  }
  return false;
}

const U32View kSplit = U"<TitleSplit>";

std::vector<U32> each_table(U32View text, U32View target) {
  std::vector<U32> cells;
  const Regex& sep = MD_RE(UR"(^[\s|*-]+$)", 0);
  for (U32View l : split_char(text, '\n')) {
    U32View line = py_strip(l);
    if (!starts_with(line, U"|")) continue;
    if (match(sep, line)) {
      cells.emplace_back(kSplit);
    } else {
      // line[1:-1] of a line that is just "|" is empty
      U32View inner = line.size() >= 2 ? line.substr(1, line.size() - 2) : U32View();
      for (U32View cell : split_char(inner, '|'))
        if (!py_strip(cell).empty()) cells.emplace_back(py_strip(cell));
    }
  }
  std::vector<U32> headers, data;
  size_t idx = cells.size();
  for (size_t k = 0; k < cells.size(); ++k)
    if (cells[k] == kSplit) {
      idx = k;
      break;
    }
  if (idx < cells.size()) {
    headers.assign(cells.begin(), cells.begin() + static_cast<ptrdiff_t>(idx));
    for (size_t k = idx + 1; k < cells.size(); ++k)
      if (cells[k] != kSplit) data.push_back(cells[k]);
  } else {
    headers = cells;
  }
  size_t width = headers.size();
  if (width == 0) return {};
  // dict(zip(headers, row)) for each full row: a repeated header keeps its first position and
  // its last value.
  std::vector<size_t> firsts;  // positions of distinct headers
  for (size_t k = 0; k < width; ++k) {
    bool seen = false;
    for (size_t j = 0; j < k; ++j) seen |= headers[j] == headers[k];
    if (!seen) firsts.push_back(k);
  }
  U32 tgt = py_lower(target);
  std::vector<U32> out;
  bool has_target = false;
  for (size_t r = 0; r + width <= data.size(); r += width) {
    for (size_t k : firsts) {
      size_t lastk = k;
      for (size_t j = k; j < width; ++j)
        if (headers[j] == headers[k]) lastk = j;
      const U32& key = headers[k];
      const U32& value = data[r + lastk];
      U32 lk = py_lower(key);
      if (lk == py_lower(value)) continue;
      if (contains(lk, tgt)) {
        out.push_back(value);
        has_target = true;
      }
    }
  }
  return has_target ? out : cells;
}

// What LengthWords_Each.check reads from the constraint (nothing of the response); MdRaise where
// the reference raises on it whatever the response.
struct EachPlan {
  int char_mode = 0;  // "each word must be": 1 at most, 2 at least N characters
  int64_t bound = 0;
  bool parsed = false;
  EachInfo info;
};

EachPlan plan_each(U32View c) {
  EachPlan p;
  if (search(MD_RE(UR"(each word must be)", kI), c)) {
    RegexMatch m;
    if (!search(MD_RE(UR"((?i)must be (at most|at least) (\b(?:one|two|three|four|five|six|seven|eight|nine|ten|\d+)\b) characters)", 0),
                c, &m)) {
      throw MdRaise("AttributeError: 'NoneType' object has no attribute 'group'");
    }
    U32View op = group(m, c, 1), n = group(m, c, 2);
    if (op == U"at most" || op == U"at least") {
      if (!py_isdigit_str(n)) {
        throw MdRaise("ValueError: invalid literal for int()");
      }
      p.char_mode = op == U"at most" ? 1 : 2;
      p.bound = py_int(n);
      return p;
    }
  }
  p.parsed = parse_each(c, &p.info);
  return p;
}

bool each_check(const EachPlan& plan, U32View t) {
  if (plan.char_mode) {
    for (U32View w : split_char(t, ' ')) {
      int64_t len = static_cast<int64_t>(w.size());
      if (plan.char_mode == 1 ? len > plan.bound : len < plan.bound) return false;
    }
    return true;
  }
  if (!plan.parsed) return false;
  const EachInfo& info = plan.info;
  std::vector<U32> elements;
  const Regex& numbered = MD_RE(UR"(^\s*\d+\.\s+)", 0);
  const Regex& bullet = MD_RE(UR"(^\s*[-*] )", 0);
  if (search(MD_RE(UR"(^\s*[{\[])", 0), t)) {
    auto v = json_loads(t);
    // The reference's bare except turns every failure (invalid JSON, a list, no target) into [].
    if (!v || v->kind != JsonValue::kDict || !info.has_target) return false;
    if (contains(info.target, U"entry")) {
      for (const auto& item : v->items) elements.push_back(py_str(item));
    } else {
      auto parts = py_split_ws(info.target);
      if (parts.empty()) return false;
      U32 value;
      for (size_t k = 0; k < v->keys.size(); ++k)
        if (v->keys[k] == parts.back()) value = py_str(v->items[k]);
      elements.push_back(value);
    }
  } else if (search(MD_RE(UR"(^\s*\|.+\|)", kM), t)) {
    elements = each_table(t, info.has_target ? U32View(info.target) : U32View(U"cells"));
  } else if (search(numbered, t)) {
    for (U32View line : split_char(t, '\n')) {
      if (!match(numbered, line)) continue;
      U32View after = line.substr(line.find(':') == U32View::npos ? 0 : line.find(':') + 1);
      size_t dot = after.find('.');
      elements.emplace_back(py_strip(dot == U32View::npos ? after : after.substr(dot + 1)));
    }
  } else if (search(bullet, t)) {
    for (U32View line : split_char(t, '\n'))
      if (match(bullet, line)) elements.emplace_back(py_strip(line.substr(line.find(' ') + 1)));
  } else {
    const Regex& piped = MD_RE(UR"(^\|.*\|$)", 0);
    for (U32View line : split_char(t, '\n')) {
      U32View s = py_strip(line);
      if (s.empty()) continue;
      if (ends_with(py_strip_chars(s, U"*#'\""), U":")) continue;
      if (match(piped, s)) continue;
      size_t k = 0;
      while (k < s.size() && s[k] == '#') ++k;
      elements.emplace_back(py_strip(s.substr(k)));
    }
  }
  if (elements.empty()) return false;
  for (const auto& e : elements)
    if (!count_ok(e, info)) return false;
  return true;
}

bool is_cjk(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x3000 && c <= 0x303F) || (c >= 0xFF00 && c <= 0xFFEF);
}

// What Length_Words.check reads from the constraint.
struct WordsPlan {
  bool each = false;
  EachPlan each_plan;
  std::optional<int64_t> exact;
  std::optional<int64_t> min_words, max_words, min_sent, max_sent;
  std::vector<U32> keywords;
};

WordsPlan plan_words(U32View constraint) {
  WordsPlan p;
  if (search(MD_RE(UR"(\beach\b)", kI), constraint)) {
    p.each = true;
    p.each_plan = plan_each(constraint);
    return p;
  }
  U32 c = py_lower(constraint);
  c = U32(py_strip(py_strip_chars(c, U"\"")));
  c = MD_RE(UR"(\s+)", 0).sub(c, U" ");
  c = py_replace(c, U"-word", U" word");
  c = py_replace(c, U"a total of ", U"");
  c = py_replace(c, U"words", U"word");
  c = py_replace(c, U"a single", U"exactly one");
  c = U32(py_strip(c));
  RegexMatch m;
  if (search(MD_RE(UR"(exactly\s+([a-z0-9-, ]+?)\s+(\S+))", 0), c, &m)) {
    p.exact = parse_number(py_strip(group(m, c, 1)));
    if (p.exact) return p;
  }
  // The reference's lookahead `(?=\s*word|$|\b)` ends each pattern, so consuming it instead gives
  // the same groups.
  static const Regex* kRanges[] = {
      &MD_RE(UR"(between\s+([a-z0-9-– ]+?)\s+to\s+([a-z0-9-– ]+?)(?:\s*word|$|\b))", 0),
      &MD_RE(UR"(between\s+([a-z0-9-– ]+?)\s+and\s+([a-z0-9-– ]+?)(?:\s*word|$|\b))", 0),
      &MD_RE(UR"(range:?\s*([a-z0-9-– ]+?)\s+to\s+([a-z0-9-– ]+?)(?:\s*word|$|\b))", 0),
      &MD_RE(UR"(range:?\s*([a-z0-9-– ]+?)\s*[-–]\s*([a-z0-9-– ]+?)(?:\s*word|$|\b))", 0),
      &MD_RE(UR"((\b[a-z0-9-–]+\b)\s+to\s+(\b[a-z0-9-–]+\b)(?:\s*word|$|\b))", 0),
      &MD_RE(UR"((\b[a-z0-9-–]+\b)\s*[-–]\s*(\b[a-z0-9-–]+\b)(?:\s*word|$|\b))", 0),
      &MD_RE(UR"(([0-9]+)\s*到\s*([0-9]+)(?:\s*个|字))", 0),
  };
  for (const Regex* re : kRanges) {
    if (!search(*re, c, &m)) continue;
    // A pattern whose numbers do not parse leaves what it read for the next ones.
    p.min_words = parse_number(py_strip(group(m, c, 1)));
    p.max_words = parse_number(py_strip(group(m, c, 2)));
    if (p.min_words && p.max_words) {
      if (*p.min_words > *p.max_words) std::swap(p.min_words, p.max_words);
      break;
    }
  }
  if (!p.min_words &&
      search(MD_RE(UR"((?:at\s+least|minimum\s+of|minimum\s+length\s+of|no\s+less\s+than)\s+(\S+)\s+word)", 0), c, &m))
    p.min_words = parse_number(py_strip(group(m, c, 1)));
  if (!p.max_words &&
      search(MD_RE(UR"((?:not\s+exceed|not\s+exceeding|not\s+surpass|at\s+most|no\s+more\s+than|maximum\s+of|maximum\s+length\s+of|no\s+longer\s+than|limit\s+of|within|within\s+a)\s+(\S+)\s+word)", 0),
             c, &m))
    p.max_words = parse_number(py_strip(group(m, c, 1)));
  if (!p.max_words) {
    if (search(MD_RE(UR"((?:最多)([0-9]+)(?:个|字))", 0), c, &m)) p.max_words = parse_number(py_strip(group(m, c, 1)));
    if (!p.max_words && search(MD_RE(UR"((?:在)([0-9]+)\s*(?:个单词以内|个字以内|字以内|单词以内|词以内|字))", 0), c, &m))
      p.max_words = parse_number(py_strip(group(m, c, 1)));
  }
  if (search(MD_RE(UR"((?:at\s+least|minimum\s+of)\s+(\S+)\s+sentence)", 0), c, &m))
    p.min_sent = parse_number(py_strip(group(m, c, 1)));
  if (search(MD_RE(UR"((?:not\s+exceed|at\s+most|no\s+more\s+than|maximum\s+of|maximum\s+length\s+of|no\s+longer\s+than)\s+(\S+)\s+sentence)", 0),
             c, &m))
    p.max_sent = parse_number(py_strip(group(m, c, 1)));
  for (const auto& km : MD_RE(UR"(["']([^']*)["'])", 0).finditer(c)) p.keywords.emplace_back(group(km, c, 1));
  return p;
}

bool check_words(const WordsPlan& p, U32View t) {
  if (p.each) return each_check(p.each_plan, t);
  int64_t cjk = 0;
  for (char32_t ch : t) cjk += is_cjk(ch);
  int64_t word_count = cjk > 0 ? cjk : static_cast<int64_t>(py_split_ws(t).size());
  if (p.exact) return word_count == *p.exact;
  for (const auto& kw : p.keywords)
    if (count_keyword(t, kw, 1) < 1) return false;
  if (p.min_words && word_count < *p.min_words) return false;
  if (p.max_words && word_count > *p.max_words) return false;
  if (p.min_sent || p.max_sent) {
    int64_t sentence_count = 0;
    for (size_t i = 0; i < t.size(); ++i) {
      bool q = t[i] == '.' || t[i] == '!' || t[i] == '?';
      bool prev = i > 0 && (t[i - 1] == '.' || t[i - 1] == '!' || t[i - 1] == '?');
      sentence_count += q && !prev;
    }
    if (p.min_sent && sentence_count < *p.min_sent) return false;
    if (p.max_sent && sentence_count > *p.max_sent) return false;
  }
  return true;
}

}  // namespace

MdCheck md_length_words_plan(U32View c) {
  auto plan = std::make_shared<const WordsPlan>(plan_words(c));
  return [plan](U32View t) { return check_words(*plan, t); };
}
bool md_length_words(U32View c, U32View t) { return check_words(plan_words(c), t); }

}  // namespace hirfast
