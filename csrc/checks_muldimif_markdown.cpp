// MulDimIF Format_Markdown and Format_Json.
#include <algorithm>
#include <memory>
#include <set>

#include "checks_muldimif.h"

namespace hirfast {
namespace {
using namespace md;

#define MD_NUM UR"((\b(?:one|two|three|four|five|six|seven|eight|nine|ten|\d+)\b))"

// Format_Markdown._word_to_number: digits, or one..ten; -1 for None.
int64_t word_to_number(U32View s) {
  U32 w = py_lower(py_strip(s));
  if (py_isdigit_str(w)) return py_int(w);
  return word_value(w, {{U"one", 1}, {U"two", 2}, {U"three", 3}, {U"four", 4}, {U"five", 5}, {U"six", 6},
                        {U"seven", 7}, {U"eight", 8}, {U"nine", 9}, {U"ten", 10}});
}

struct Heading {
  int64_t level;
  U32View content;
};

enum class RuleType { kMinLevelCount, kExactHeading, kLevelCount, kMaxLevel, kStartsWith, kRequired, kQuestions, kJustLevel };
struct Rule {
  RuleType type;
  int64_t level = 0;  // -2: any level
  std::set<int64_t> levels;  // -1 stands for None
  U32 content;
  int op = 0;  // level count: 0 at least, 1 at most, 2 exactly, 3 other
  int64_t count = 0;
};

const char32_t* kVerbs =
    UR"(include|includes|included|including|use|using|used|uses|formatted|presented|organized|structured|feature|should be|incorporate)";

std::vector<Rule> parse_rules(U32View constraint) {
  std::vector<Rule> rules;
  U32 low = py_lower(constraint);
  auto clauses = MD_RE(UR"(\b(?:,)\b)", kI).split(constraint);
  for (const auto& clause_opt : clauses) {
    U32 clause(*clause_opt);
    if (contains(low, U"include headings at two levels: main and subheadings") ||
        contains(low, U"be structured with a main heading and subheadings")) {
      rules.push_back({RuleType::kRequired, 0, {1, 2}});
      continue;
    }
    if (constraint == U"Questions must be organized under a level 2 heading.") {
      rules.push_back({RuleType::kQuestions, 0, {2}});
      continue;
    }
    if (contains(low, U"include a single level 1 heading")) {
      Rule r{RuleType::kJustLevel};
      r.level = 1;
      r.count = 1;
      rules.push_back(r);
      continue;
    }
    if (contains(low, U"be structured using a minimum of two heading levels") || contains(low, U"include headings at two levels")) {
      Rule r{RuleType::kLevelCount};
      r.op = 0;
      r.count = 2;
      rules.push_back(r);
      continue;
    }
    if (constraint ==
        U"format the response using Markdown, employing '##' for main points and '###' for subpoints to clearly organize the information") {
      rules.push_back({RuleType::kRequired, 0, {2, 3}});
      continue;
    }
    RegexMatch m;
    bool found = search(MD_RE(UR"((?i)use heading levels )" MD_NUM UR"( and )" MD_NUM, 0), clause, &m) ||
                 search(MD_RE(UR"((?i)use heading levels.*?level\s*)" MD_NUM UR"(.*?level\s*)" MD_NUM, 0), clause, &m);
    if (found) {
      int64_t a = word_to_number(group(m, clause, 1)), b = word_to_number(group(m, clause, 2));
      if (a >= 0 && b >= 0) rules.push_back({RuleType::kRequired, 0, {a, b}});
      continue;
    }
    auto ms = MD_RE(UR"((?i)a heading level )" MD_NUM, 0).finditer(clause);
    if (ms.empty()) ms = MD_RE(UR"((?i)H(\d+))", 0).finditer(clause);
    if (ms.empty()) ms = MD_RE(UR"((?i)Level )" MD_NUM UR"( for)", 0).finditer(clause);
    if (!ms.empty() && (contains(clause, U"must include") || contains(clause, U"should"))) {
      Rule r{RuleType::kRequired};
      for (const auto& x : ms) r.levels.insert(word_to_number(group(x, clause, 1)));
      rules.push_back(r);
      continue;
    }
    if (contains(clause, U"titled")) {
      U32 cl(py_strip(clause));
      while (!cl.empty() && cl.back() == '.') cl.pop_back();
      bool f = search(MD_RE(UR"((?i)level )" MD_NUM UR"( heading titled ["'](.*?)["'])", 0), cl, &m) ||
               search(MD_RE(UR"((?i)(?:a|at least one|two|three|four|five|six|seven|eight|nine|ten|\d+) level )" MD_NUM
                            UR"( heading with the text ["'](.*?)["'])",
                            0),
                      cl, &m);
      if (f) {
        int64_t level = word_to_number(group(m, cl, 1));
        if (level >= 0) {
          Rule r{RuleType::kExactHeading};
          r.level = level;
          r.content = U32(group(m, cl, 2));
          rules.push_back(r);
        }
        continue;
      }
    }
    {
      U32 cl = py_lower(py_strip(clause));
      while (!cl.empty() && cl.back() == '.') cl.pop_back();
      clause = cl;
    }
    const Regex& verbs = *[]() {
      static const auto r = Regex::compile(kVerbs, kI);
      return r.get();
    }();
    if (search(verbs, clause)) {
      bool f = search(MD_RE(UR"((?i)(?:a|at least \d+) heading level )" MD_NUM, 0), clause, &m) ||
               search(MD_RE(UR"((?i)(?:a|at least one|two|three|four|five|six|seven|eight|nine|ten|\d+) level )" MD_NUM
                            UR"( heading)",
                            0),
                      clause, &m) ||
               search(MD_RE(UR"((?i)must use a heading level of H(\d+))", 0), clause, &m);
      if (f) {
        int64_t level = word_to_number(group(m, clause, 1));
        if (level >= 0) {
          Rule r{RuleType::kMinLevelCount};
          r.level = level;
          rules.push_back(r);
        }
        continue;
      }
      f = search(MD_RE(UR"((?i)(at least|at most|exactly|up to|a maximum of|under) )" MD_NUM UR"( heading levels?)", 0),
                 clause, &m) ||
          search(MD_RE(UR"((?i)(at least|at most|exactly|up to|a maximum of|under) )" MD_NUM UR"( levels?)", 0), clause,
                 &m);
      if (f) {
        U32 op = py_lower(group(m, clause, 1));
        int64_t count = word_to_number(group(m, clause, 2));
        if (count >= 0) {
          Rule r{RuleType::kLevelCount};
          r.op = op == U"at least" ? 0 : op == U"exactly" ? 2 : 1;
          r.count = count;
          rules.push_back(r);
        }
        continue;
      }
    }
    if (search(MD_RE(UR"((?i)(?:heading levels)? must (?:not exceed|be limited to)\s+(?:level\s+)?)" MD_NUM, 0), clause,
               &m)) {
      int64_t v = word_to_number(group(m, clause, 1));
      if (v >= 0) {
        Rule r{RuleType::kMaxLevel};
        r.level = v;
        rules.push_back(r);
      }
      continue;
    }
    if (search(MD_RE(UR"((?i)must begin with a level )" MD_NUM UR"( heading)", 0), clause, &m)) {
      int64_t v = word_to_number(group(m, clause, 1));
      if (v >= 0) {
        Rule r{RuleType::kStartsWith};
        r.level = v;
        rules.push_back(r);
      }
      continue;
    }
    if (search(MD_RE(UR"((?i)use heading level )" MD_NUM, 0), clause, &m)) {
      int64_t v = word_to_number(group(m, clause, 1));
      if (v >= 0) {
        Rule r{RuleType::kMinLevelCount};
        r.level = v;
        rules.push_back(r);
      }
      continue;
    }
    if (contains(low, U"include headings") || contains(low, U"includes headings") || contains(low, U"use heading levels") ||
        contains(low, U"using heading levels") || contains(low, U"presented under a separate heading") ||
        contains(low, U"separated with headings") || contains(low, U"with headings")) {
      Rule r{RuleType::kMinLevelCount};
      r.level = -2;
      rules.push_back(r);
      continue;
    }
  }
  return rules;
}

bool check_rule(const Rule& r, const std::vector<Heading>& hs) {
  switch (r.type) {
    case RuleType::kMinLevelCount: {
      if (hs.empty()) return false;
      int64_t n = 0;
      for (const auto& h : hs) n += h.level == r.level || (r.level == -2 && h.level > 0);
      return n >= 1;
    }
    case RuleType::kExactHeading:
      if (hs.empty()) return false;
      for (const auto& h : hs)
        if (h.level == r.level && h.content == r.content) return true;
      return false;
    case RuleType::kLevelCount: {
      std::set<int64_t> levels;
      for (const auto& h : hs) levels.insert(h.level);
      int64_t actual = static_cast<int64_t>(levels.size());
      if (r.op == 0) return actual >= r.count;
      if (r.op == 1) return actual <= r.count;
      return actual == r.count;
    }
    case RuleType::kMaxLevel:
      if (hs.empty()) return false;
      for (const auto& h : hs)
        if (h.level > r.level) return false;
      return true;
    case RuleType::kStartsWith:
      if (hs.empty()) return false;
      return hs[0].level == r.level;
    case RuleType::kRequired: {
      if (hs.empty()) return false;
      for (int64_t l : r.levels) {
        bool found = false;
        for (const auto& h : hs) found |= h.level == l;
        if (!found) return false;
      }
      return true;
    }
    case RuleType::kQuestions:
      if (hs.empty()) return false;
      for (const auto& h : hs)
        if (h.content.find('?') != U32View::npos && !r.levels.count(h.level)) return false;
      return true;
    case RuleType::kJustLevel: {
      if (hs.empty()) return false;
      int64_t n = 0;
      for (const auto& h : hs) n += h.level == r.level;
      return n == r.count;
    }
  }
  return false;
}

// _check_block_quotes: mode 0 every line quoted, 1 some line quoted, 2 at least `need` quoted.
struct BlockQuotes {
  int mode = 0;
  int64_t need = 0;
};

BlockQuotes plan_block_quotes(U32View c, U32View low) {
  BlockQuotes b;
  if (contains(low, U"at least")) {
    RegexMatch m;
    if (!search(MD_RE(UR"((?i)(\b(?:one|two|three|four|five|six|seven|eight|nine|ten|\d+)\b) block quotes)", 0), c, &m))
      throw MdRaise("AttributeError: 'NoneType' object has no attribute 'group'");
    b.mode = 2;
    b.need = word_to_number(group(m, c, 1));
    if (b.need < 0) throw MdRaise("TypeError: '<' not supported between int and NoneType");
  } else if (contains(low, U"use block quotes") || contains(low, U"using block quotes") ||
             contains(low, U"include a block quote") || contains(low, U"using markdown block quotes") ||
             contains(low, U"employ block quotes") || contains(low, U"present the headline as a block quote")) {
    b.mode = 1;
  }
  return b;
}

bool block_quotes(const BlockQuotes& b, U32View t) {
  auto lines = split_char(t, '\n');
  size_t quoted = 0;
  for (U32View l : lines) {
    U32View s = py_strip(l);
    if (!s.empty() && s[0] == '>') ++quoted;
  }
  if (b.mode == 2) return static_cast<int64_t>(quoted) >= b.need;
  if (b.mode == 1) return quoted != 0;
  return quoted == lines.size();
}

}  // namespace

namespace {
// What Format_Markdown.check reads from the constraint.
struct MarkdownPlan {
  bool block_quotes = false, bold = false, bullets = false, each = false;
  BlockQuotes quotes;
  std::vector<Rule> rules;
};

bool check_markdown(const MarkdownPlan& p, U32View t) {
  if (p.block_quotes && !block_quotes(p.quotes, t)) return false;
  if (p.bold && !search(MD_RE(UR"((\*\*.*?\*\*|__.*?__))", 0), t)) return false;
  if (p.bullets) {
    bool any = false;
    const Regex& b = MD_RE(UR"(^\s*[-\*\+]\s)", 0);
    for (U32View l : split_char(t, '\n'))
      if (search(b, l)) {
        any = true;
        break;
      }
    if (!any) return false;
  }
  std::vector<Heading> hs;
  const Regex& hre = MD_RE(UR"(^(#+)\s+(.*?)\s*$)", 0);
  for (U32View l : split_char(t, '\n')) {
    U32View s = py_strip(l);
    if (s.empty() || s[0] != '#') continue;  // the pattern needs a leading '#'
    RegexMatch m;
    if (match(hre, s, &m)) hs.push_back({static_cast<int64_t>(group(m, s, 1).size()), py_strip(group(m, s, 2))});
  }
  auto all_rules = [&](const std::vector<Heading>& h) {
    for (const auto& r : p.rules)
      if (!check_rule(r, h)) return false;
    return true;
  };
  if (p.each) {
    if (hs.empty()) return false;
    for (const auto& h : hs)
      if (!all_rules({h})) return false;
    return true;
  }
  return all_rules(hs);
}

MarkdownPlan plan_markdown(U32View c) {
  MarkdownPlan p;
  U32 low = py_lower(c);
  p.block_quotes = contains(low, U"block quotes");
  if (p.block_quotes) p.quotes = plan_block_quotes(c, low);
  p.bold = contains(low, U"bold");
  p.bullets = contains(low, U"bullet points");
  p.each = contains(low, U"each") || contains(low, U"any");
  p.rules = parse_rules(c);
  return p;
}
}  // namespace

MdCheck md_format_markdown_plan(U32View c) {
  auto plan = std::make_shared<const MarkdownPlan>(plan_markdown(c));
  return [plan](U32View t) { return check_markdown(*plan, t); };
}
bool md_format_markdown(U32View c, U32View t) { return check_markdown(plan_markdown(c), t); }

// ---- Format_Json

namespace {
int64_t json_number(U32View s) {  // Format_Json.parse_number; -1 for None
  U32 w = py_lower(s);
  if (w == U"two") return 2;
  if (w == U"three") return 3;
  if (py_isdigit_str(w)) return py_int(w);
  return -1;
}

int64_t depth(const JsonValue& v, int64_t d) {
  if ((v.kind == JsonValue::kDict || v.kind == JsonValue::kList) && !v.items.empty()) {
    int64_t best = INT64_MIN;
    for (const auto& x : v.items) best = std::max(best, depth(x, d + 1));
    return best;
  }
  return d;
}

#define MD_JN UR"((\d+|two|three))"
}  // namespace

bool md_format_json(U32View c, U32View t) {
  U32 s = MD_RE(UR"([^\w\s])", 0).sub(py_lower(c), U"");
  int64_t exact = -1, max_level = -1, min_level = -1;
  static const Regex* kExact[] = {
      &MD_RE(UR"(exactly )" MD_JN UR"( levels? of nesting)", 0),
      &MD_RE(UR"(structured as a json object with a nesting level of )" MD_JN, 0),
      &MD_RE(UR"(json example with exactly )" MD_JN UR"( levels?)", 0),
      &MD_RE(UR"(object nesting levels must be )" MD_JN, 0),
      &MD_RE(UR"(answer must include a json example with exactly )" MD_JN UR"( levels?)", 0),
      &MD_RE(UR"(nesting level of )" MD_JN, 0),
      &MD_RE(UR"(be limited to )" MD_JN UR"( levels of nesting)", 0),
  };
  for (const Regex* re : kExact) {
    RegexMatch m;
    if (search(*re, s, &m)) {
      int64_t n = json_number(group(m, s, 1));
      if (n >= 0) {
        exact = n;
        break;
      }
    }
  }
  if (exact < 0) {
    static const Regex* kMax[] = {
        &MD_RE(UR"(must not exceed )" MD_JN UR"( levels? of nesting)", 0),
        &MD_RE(UR"(no more than )" MD_JN UR"( levels?)", 0),
        &MD_RE(UR"(maximum of )" MD_JN UR"( nesting levels)", 0),
        &MD_RE(UR"(maximum of )" MD_JN UR"( object nesting levels)", 0),
        &MD_RE(UR"(maximum of )" MD_JN UR"( levels)", 0),
        &MD_RE(UR"(not exceed )" MD_JN UR"( levels)", 0),
        &MD_RE(UR"(levels not exceeding )" MD_JN, 0),
        &MD_RE(UR"(with the structure not exceeding )" MD_JN UR"( levels)", 0),
        &MD_RE(UR"(object nesting levels must not exceed )" MD_JN UR"( levels)", 0),
        &MD_RE(UR"(object nesting levels must not exceed )" MD_JN, 0),
        &MD_RE(UR"(json must have a maximum of )" MD_JN UR"( nesting levels)", 0),
        &MD_RE(UR"(response must not exceed )" MD_JN UR"( levels? of nesting)", 0),
        &MD_RE(UR"(and at most )" MD_JN, 0),
    };
    for (const Regex* re : kMax)
      for (const auto& m : re->finditer(s)) {
        int64_t n = json_number(group(m, s, 1));
        if (n >= 0 && (max_level < 0 || n < max_level)) max_level = n;
      }
    static const Regex* kMin[] = {
        &MD_RE(UR"(at least )" MD_JN UR"( levels? of nesting)", 0),
        &MD_RE(UR"(at least )" MD_JN UR"( levels? deep)", 0),
        &MD_RE(UR"(must include a json object with at least )" MD_JN UR"( levels?)", 0),
        &MD_RE(UR"(answer must include a json object with at least )" MD_JN UR"( levels?)", 0),
        &MD_RE(UR"(and at least )" MD_JN, 0),
    };
    for (const Regex* re : kMin)
      for (const auto& m : re->finditer(s)) {
        int64_t n = json_number(group(m, s, 1));
        if (n >= 0 && (min_level < 0 || n > min_level)) min_level = n;
      }
  }
  U32 body(t);
  RegexMatch m;
  if (search(MD_RE(UR"(```json(.*?)```)", kS), t, &m)) body = U32(py_strip(group(m, t, 1)));
  auto v = json_loads(body);
  if (!v) return false;
  int64_t d = depth(*v, 0);
  if (exact >= 0) return d == exact;
  if (max_level >= 0 && min_level >= 0) return min_level <= d && d <= max_level;
  if (max_level >= 0) return d <= max_level;
  if (min_level >= 0) return d >= min_level;
  return false;
}

}  // namespace hirfast
