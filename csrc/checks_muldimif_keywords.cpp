// MulDimIF Content_Keywords (and its "each/every" variant, Content_Keywords_Each).
#include <cmath>
#include <memory>

#include "checks_muldimif.h"

namespace hirfast {
namespace {
using namespace md;

struct KeywordRule {
  std::vector<U32> keywords;
  int64_t min_count = 1;
  bool exclude = false, logical_or = false, end_period = false, capitalize = false;
  // None (the reference's _parse_number gave None) raises when compared.
  std::optional<int64_t> min_words = 0, max_words = INT64_MAX;
};

// Content_Keywords._parse_number: digits, or a sum of the number words (once..ten, twice)
// split on whitespace and hyphens; None otherwise.
std::optional<int64_t> parse_number(U32View s) {
  U32 t = py_replace(py_strip(s), U",", U"");
  if (py_isdigit_str(t)) return py_int(t);
  U32 low = py_lower(py_strip(t));
  int64_t total = 0;
  auto parts = MD_RE(UR"([\s-]+)", 0).split(low);
  for (const auto& p : parts) {
    int64_t v = word_value(*p, {{U"once", 1}, {U"one", 1}, {U"two", 2}, {U"three", 3}, {U"four", 4}, {U"five", 5},
                                {U"six", 6}, {U"seven", 7}, {U"eight", 8}, {U"nine", 9}, {U"ten", 10}, {U"twice", 2}});
    if (v < 0) return std::nullopt;
    total += v;
  }
  return total;
}

bool match_ci(U32View text, size_t pos, U32View lit) {
  if (pos + lit.size() > text.size()) return false;
  for (size_t k = 0; k < lit.size(); ++k)
    if (re_fold_key(text[pos + k]) != re_fold_key(lit[k])) return false;
  return true;
}
bool word_boundary(U32View t, size_t p) {
  bool before = p > 0 && re_word(t[p - 1]), after = p < t.size() && re_word(t[p]);
  return before != after;
}

// re.search(r"at least (\d+|one|...|once|twice)(?:\s+times?)?\b(?!\s+words\s+long)", c, re.I),
// group 1 (the negative lookahead written out, in sre's backtracking order).
bool find_count(U32View c, U32View* count) {
  static const char32_t* kWords[] = {U"one", U"two", U"three", U"four", U"five", U"six", U"seven",
                                     U"eight", U"nine", U"ten", U"once", U"twice"};
  auto lookahead_ok = [&](size_t p) {  // (?!\s+words\s+long)
    size_t q = p;
    while (q < c.size() && re_space(c[q])) ++q;
    if (q == p || !match_ci(c, q, U"words")) return true;
    size_t r = q + 5, r0 = r;
    while (r < c.size() && re_space(c[r])) ++r;
    return r == r0 || !match_ci(c, r, U"long");
  };
  auto tail_ok = [&](size_t e) {  // (?:\s+times?)?\b(?!...) after group 1 ends at e
    size_t q = e;
    while (q < c.size() && re_space(c[q])) ++q;
    if (q > e) {
      // \s+ backtracks from the longest run; only the full run can be followed by "time".
      for (size_t run = q; run > e; --run) {
        if (!match_ci(c, run, U"time")) continue;
        size_t after = run + 4;
        if (after < c.size() && (c[after] == 's' || c[after] == 'S' || re_fold_key(c[after]) == re_fold_key('s'))) {
          if (word_boundary(c, after + 1) && lookahead_ok(after + 1)) return true;
        }
        if (word_boundary(c, after) && lookahead_ok(after)) return true;
      }
    }
    return word_boundary(c, e) && lookahead_ok(e);
  };
  for (size_t s = 0; s + 9 <= c.size(); ++s) {
    if (!match_ci(c, s, U"at least ")) continue;
    size_t g = s + 9;
    size_t d = g;
    while (d < c.size() && re_digit(c[d])) ++d;
    for (size_t e = d; e > g; --e)
      if (tail_ok(e)) {
        *count = c.substr(g, e - g);
        return true;
      }
    for (const char32_t* w : kWords) {
      U32View wv(w);
      if (match_ci(c, g, wv) && tail_ok(g + wv.size())) {
        *count = c.substr(g, wv.size());
        return true;
      }
    }
  }
  return false;
}

KeywordRule parse_rule(U32View constraint_in) {
  U32 c(py_strip(constraint_in));
  const Regex& outer = MD_RE(UR"re(^"+(.*[^"])"+$)re", 0);
  while (match(outer, c)) c = outer.sub(c, UR"(\1)");
  KeywordRule rule;
  if (search(MD_RE(UR"(must\s+end\s+with\s+(a\s+)?period)", kI), c)) rule.end_period = true;
  if (search(MD_RE(UR"(must\s+use\s+capitalized\s+letters\s+for\s+each\s+word)", kI), c)) rule.capitalize = true;
  RegexMatch m;
  if (search(MD_RE(UR"((?:at\s+least|minimum\s+of)\s+(\S+)\s+word)", kI), c, &m))
    rule.min_words = parse_number(group(m, c, 1));
  if (search(MD_RE(UR"((?:not\s+exceed|at\s+most|no\s+more\s+than|maximum\s+of)\s+(\S+)\s+word)", kI), c, &m))
    rule.max_words = parse_number(group(m, c, 1));
  if (search(MD_RE(UR"(is\s+a\s+single\s+word)", kI), c)) rule.min_words = rule.max_words = 1;
  if (search(MD_RE(UR"((avoid\s+using\s+(the\s+)?term|must\s+be\s+avoided))", kI), c)) {
    if (search(MD_RE(UR"(["']([^"']+)["'])", 0), c, &m)) {
      rule.keywords.emplace_back(group(m, c, 1));
      rule.exclude = true;
    }
    return rule;
  }
  if (search(MD_RE(UR"(\bOR\b)", kI), c)) rule.logical_or = true;
  U32View count;
  if (find_count(c, &count)) {
    if (py_isdigit_str(count)) {
      rule.min_count = py_int(count);
    } else {
      U32 low = py_lower(count);
      int64_t v = word_value(low, {{U"once", 1}, {U"one", 1}, {U"two", 2}, {U"three", 3}, {U"four", 4}, {U"five", 5},
                                   {U"six", 6}, {U"seven", 7}, {U"eight", 8}, {U"nine", 9}, {U"ten", 10},
                                   {U"twice", 2}});
      rule.min_count = v < 0 ? 1 : v;
    }
  }
  if (search(MD_RE(UR"(must appear multiple times)", kI), c)) rule.min_count = 2;
  const Regex& dbl = MD_RE(UR"(["”]{2}([^"“]+)["“]{2})", 0);
  if (search(dbl, c)) {
    for (const auto& mm : dbl.finditer(c)) rule.keywords.emplace_back(group(mm, c, 1));
  } else {
    const Regex& one = MD_RE(UR"(["'「“]([^"']+)["'」”])", 0);
    for (const auto& mm : one.finditer(c)) rule.keywords.emplace_back(group(mm, c, 1));
  }
  return rule;
}

bool validate(U32View text, const KeywordRule& rule) {
  if (rule.capitalize) {
    for (U32View w : py_split_ws(text))
      if (!py_isupper_char(w[0])) return false;
  }
  if (rule.end_period && !ends_with(py_strip(text), U".")) return false;
  int64_t words = static_cast<int64_t>(py_split_ws(text).size());
  auto none = []() { return MdRaise("TypeError: '<' not supported between int and NoneType"); };
  if (!rule.min_words) throw none();
  if (words < *rule.min_words) return false;
  if (!rule.max_words) throw none();
  if (words > *rule.max_words) return false;
  if (rule.exclude) {
    for (const auto& kw : rule.keywords)
      if (count_keyword(text, kw, 1) > 0) return false;
    return true;
  }
  size_t need = rule.min_count <= 0 ? 0 : static_cast<size_t>(rule.min_count);
  if (rule.logical_or) {
    for (const auto& kw : rule.keywords)
      if (count_keyword(text, kw, need) >= need) return true;
    return false;
  }
  for (const auto& kw : rule.keywords)
    if (count_keyword(text, kw, need) < need) return false;
  return true;
}

// ---- Content_Keywords_Each

bool is_separator(U32View line) {
  U32View s = py_strip(line);
  if (s.size() < 3) return false;
  char32_t f = s[0];
  for (char32_t c : s)
    if (c != f) return false;
  return f == '-' || f == '*' || f == '=';
}

U32 normalize_word(U32View w) { return py_lower(MD_RE(UR"(\W)", 0).sub(w, U"")); }
U32 clean_cell(U32View cell) { return U32(py_strip(MD_RE(UR"(^#+\s*)", 0).sub(cell, U""))); }

std::vector<U32> parse_table(U32View text, U32View target) {
  std::vector<U32View> lines;
  for (U32View l : split_char(text, '\n')) {
    U32View s = py_strip(l);
    if (starts_with(s, U"|") && ends_with(s, U"|")) lines.push_back(s);
  }
  if (lines.size() < 3) return {};
  auto cells = [](U32View line) {
    auto parts = split_char(line, '|');
    std::vector<U32View> out;
    for (size_t k = 1; k + 1 < parts.size(); ++k) out.push_back(py_strip(parts[k]));
    return out;
  };
  std::vector<U32View> headers = cells(lines[0]);
  if (headers.empty()) return {};
  // dict(zip(headers, row)): a repeated header keeps its last cell. Rows hold every header.
  std::vector<std::vector<U32View>> data;
  for (size_t k = 2; k < lines.size(); ++k) {
    auto row = cells(lines[k]);
    if (row.size() == headers.size()) data.push_back(std::move(row));
  }
  if (data.empty()) return {};
  auto value_of = [&](const std::vector<U32View>& row, U32View header) {
    U32View v;
    for (size_t k = 0; k < headers.size(); ++k)
      if (headers[k] == header) v = row[k];
    return v;
  };
  std::vector<U32> target_words;
  for (U32View w : py_split_ws(target)) {
    U32 n = normalize_word(w);
    if (!n.empty()) target_words.push_back(std::move(n));
  }
  U32View best;
  int64_t best_matches = -1;
  for (U32View h : headers) {
    int64_t matches = 0;
    for (U32View w : py_split_ws(h)) {
      U32 n = normalize_word(w);
      if (n.empty()) continue;
      for (const auto& t : target_words)
        if (t == n) {
          ++matches;
          break;
        }
    }
    if (matches > best_matches) {
      best_matches = matches;
      best = h;
    }
  }
  std::vector<U32> out;
  if (best_matches > 0) {
    for (const auto& row : data) out.push_back(clean_cell(value_of(row, best)));
    return out;
  }
  // The column with the most words per cell (every column has len(data) cells); the first wins.
  U32View content;
  int64_t most = -1;
  for (U32View h : headers) {
    int64_t total = 0;
    for (const auto& row : data) total += static_cast<int64_t>(py_split_ws(clean_cell(value_of(row, h))).size());
    if (total > most) {
      most = total;
      content = h;
    }
  }
  for (const auto& row : data) out.push_back(clean_cell(value_of(row, content)));
  return out;
}

bool each_check(const U32& target, const KeywordRule& rule, U32View text) {
  std::vector<U32> elements;
  const Regex& numbered = MD_RE(UR"(^\s*\d+\.\s+)", 0);
  const Regex& bullet = MD_RE(UR"(^\s*[-*] )", 0);
  if (search(MD_RE(UR"(^\s*[{\[])", 0), text)) {
    auto v = json_loads(text);
    if (!v) return false;
    if (v->kind != JsonValue::kDict && v->kind != JsonValue::kList) return false;  // parse_json gave None
    for (const auto& item : v->items) elements.push_back(py_str(item));
  } else if (search(MD_RE(UR"(^\s*\|.+\|)", kM), text)) {
    elements = parse_table(text, target);
  } else if (search(numbered, text)) {
    for (U32View line : split_char(text, '\n'))
      if (match(numbered, line)) elements.emplace_back(py_strip(line.substr(line.find('.') + 1)));
  } else if (search(bullet, text)) {
    for (U32View line : split_char(text, '\n'))
      if (match(bullet, line)) elements.emplace_back(py_strip(line.substr(line.find(' ') + 1)));
  } else {
    std::vector<U32View> current;
    bool any = false;
    auto flush = [&]() {
      elements.emplace_back(py_strip(py_join(current, U"\n")));
      current.clear();
    };
    for (U32View line : split_char(text, '\n')) {
      if (is_separator(line)) {
        if (!current.empty()) flush(), any = true;
      } else {
        current.push_back(line);
      }
    }
    if (!current.empty()) flush(), any = true;
    if (!any) elements.emplace_back(text);
  }
  if (elements.empty()) return false;
  for (const auto& e : elements)
    if (!validate(e, rule)) return false;
  return true;
}

// What Content_Keywords.check reads from the constraint: which of its paths applies, and that
// path's keywords and rule.
struct KeywordsPlan {
  enum Path { kEachUnparsed, kEach, kIncludeAvoid, kDiscussing, kRule } path = kRule;
  U32 target, include, avoid;
  // check_02's clauses: the topic's spellings (any found makes the keyword required) and keyword.
  std::vector<std::pair<std::vector<U32>, U32>> clauses;
  KeywordRule rule;
};

KeywordsPlan plan_keywords(U32View c) {
  KeywordsPlan p;
  RegexMatch m;
  if (search(MD_RE(UR"(\b(each|every)\b)", kI), c) && !contains(c, U"for each word")) {
    if (!search(MD_RE(UR"(\b(each|every)\s+(.+?)\s+(must|should|needs to|has to)\s+(.*))", kI), c, &m)) {
      p.path = KeywordsPlan::kEachUnparsed;
      return p;
    }
    p.path = KeywordsPlan::kEach;
    p.target = py_lower(group(m, c, 2));
    p.rule = parse_rule(group(m, c, 4));
    return p;
  }
  // check_01: "include(s) the keyword 'x'" together with "avoid(s) the keyword 'y'".
  RegexMatch avo;
  if (search(MD_RE(UR"(includes?\s+the\s+keyword\s+["']([^"']+)["'])", kI), c, &m) &&
      search(MD_RE(UR"(avoids?\s+the\s+keyword\s+["']([^"']+)["'])", kI), c, &avo)) {
    p.path = KeywordsPlan::kIncludeAvoid;
    p.include = U32(group(m, c, 1));
    p.avoid = U32(group(avo, c, 1));
    return p;
  }
  // check_02: "If discussing X, the summary must include the keyword 'y'" clauses.
  auto conds = MD_RE(UR"(If discussing\s+([^,]+),\s*the summary must include the keyword\s+["']([^"']+)["'])", kI)
                   .finditer(c);
  if (!conds.empty()) {
    p.path = KeywordsPlan::kDiscussing;
    for (const auto& cm : conds) {
      U32View topic = group(cm, c, 1);
      std::vector<U32> spellings;
      if (topic.find('/') != U32View::npos) {
        RegexMatch sm;
        if (match(MD_RE(UR"(^(.*\s)(\S+)\/(\S+)(\s.*)$)", 0), topic, &sm)) {
          spellings.push_back(U32(group(sm, topic, 1)) + U32(group(sm, topic, 2)) + U32(group(sm, topic, 4)));
          spellings.push_back(U32(group(sm, topic, 1)) + U32(group(sm, topic, 3)) + U32(group(sm, topic, 4)));
        } else {
          for (U32View part : split_char(topic, '/')) spellings.emplace_back(py_strip(part));
        }
      } else {
        spellings.emplace_back(topic);
      }
      p.clauses.emplace_back(std::move(spellings), U32(group(cm, c, 2)));
    }
    return p;
  }
  p.rule = parse_rule(c);
  return p;
}

bool check_keywords(const KeywordsPlan& p, U32View t) {
  switch (p.path) {
    case KeywordsPlan::kEachUnparsed: return false;
    case KeywordsPlan::kEach: return each_check(p.target, p.rule, t);
    case KeywordsPlan::kIncludeAvoid: return contains(t, p.include) && !contains(t, p.avoid);
    case KeywordsPlan::kDiscussing:
      for (const auto& clause : p.clauses) {
        bool found = false;
        for (const auto& s : clause.first) found = found || contains(t, s);
        if (found && !contains(t, clause.second)) return false;
      }
      return true;
    case KeywordsPlan::kRule: break;
  }
  return validate(t, p.rule);
}

}  // namespace

MdCheck md_content_keywords_plan(U32View c) {
  auto plan = std::make_shared<const KeywordsPlan>(plan_keywords(c));
  return [plan](U32View t) { return check_keywords(*plan, t); };
}
bool md_content_keywords(U32View c, U32View t) { return check_keywords(plan_keywords(c), t); }

}  // namespace hirfast
