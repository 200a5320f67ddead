// MulDimIF Format_Table and Format_Others.
#include <memory>

#include "checks_muldimif.h"

namespace hirfast {
namespace {
using namespace md;

#define MD_TN                                                                                          \
  UR"((\d+|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|)" \
  UR"(sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred)\b))"

int64_t table_number(U32View s) {
  int64_t v = word_value(s, {{U"one", 1},      {U"two", 2},        {U"three", 3},     {U"four", 4},
                             {U"five", 5},     {U"six", 6},        {U"seven", 7},     {U"eight", 8},
                             {U"nine", 9},     {U"ten", 10},       {U"eleven", 11},   {U"twelve", 12},
                             {U"thirteen", 13}, {U"fourteen", 14}, {U"fifteen", 15},  {U"sixteen", 16},
                             {U"seventeen", 17}, {U"eighteen", 18}, {U"nineteen", 19}, {U"twenty", 20},
                             {U"thirty", 30},  {U"forty", 40},     {U"fifty", 50},    {U"sixty", 60},
                             {U"seventy", 70}, {U"eighty", 80},    {U"ninety", 90},   {U"hundred", 100}});
  return v >= 0 ? v : py_int(s);
}

struct TableRules {
  int rows_type = 0;  // 0 none, 1 exact, 2 max
  int64_t rows = 0;
  int cols_type = 0;
  int64_t cols = 0;
  bool markdown = false;
  bool has_title_max = false;
  int64_t title_max = 0;
  std::vector<U32> columns, content;
};

struct Pat {
  const Regex* re;
  int type;  // 1 exact, 2 max, 3 exact_1, 4 title_max
};

U32 clean_quoted(U32View col) {
  U32View s = py_strip(col);
  while (!s.empty() && s.back() == ',') s.remove_suffix(1);
  return U32(py_strip(s));
}

TableRules parse_table_rules(const U32& c) {
  TableRules r;
  static const Pat kRows[] = {
      {&MD_RE(UR"(exactly\s+)" MD_TN UR"(\s+rows?)", 0), 1},
      {&MD_RE(UR"(no\s+more\s+than\s+)" MD_TN UR"(\s+rows?)", 0), 2},
      {&MD_RE(UR"(not\s+have\s+more\s+than\s+)" MD_TN UR"(\s+rows?)", 0), 2},
      {&MD_RE(UR"(must\s+not\s+exceed\s+)" MD_TN UR"(\s+rows?)", 0), 2},
      {&MD_RE(UR"(not\s+exceed\s+)" MD_TN UR"(\s+rows?)", 0), 2},
      {&MD_RE(UR"(not\s+exceeding\s+)" MD_TN UR"(\s+rows?)", 0), 2},
      {&MD_RE(UR"(should\s+not\s+exceed\s+)" MD_TN UR"(\s+rows?)", 0), 2},
      {&MD_RE(UR"(row\s+limit\s+of\s+)" MD_TN, 0), 2},
      {&MD_RE(MD_TN UR"(\s+rows?\s+must\s+be\s+included)", 0), 1},
      {&MD_RE(UR"(exactly\s+.+and )" MD_TN UR"(\s+rows?)", 0), 1},
      {&MD_RE(UR"(not exceed\s+.+and )" MD_TN UR"(\s+rows?)", 0), 2},
      {&MD_RE(UR"(a maximum of\s+)" MD_TN UR"(\s+rows)", 0), 2},
      {&MD_RE(UR"(limited to a maximum of\s+)" MD_TN UR"(\s+rows)", 0), 2},
      {&MD_RE(UR"(limited to\s+)" MD_TN UR"(\s+rows)", 0), 2},
      {&MD_RE(UR"(a row limit of\s+)" MD_TN, 0), 2},
      {&MD_RE(UR"(a maximum of\s+.+and )" MD_TN UR"(\s+rows?)", 0), 2},
      {&MD_RE(UR"(limit the number of rows to\s+)" MD_TN, 0), 2},
      {&MD_RE(UR"(limit it to\s+)" MD_TN UR"(\s+rows)", 0), 2},
      {&MD_RE(UR"(limit the table to\s+)" MD_TN UR"(\s+rows)", 0), 2},
      {&MD_RE(UR"(the number of rows in each table does not exceed\s+)" MD_TN, 0), 2},
  };
  static const Pat kCols[] = {
      {&MD_RE(UR"(exactly\s+)" MD_TN UR"(\s+columns?)", 0), 1},
      {&MD_RE(UR"(no\s+more\s+than\s+)" MD_TN UR"(\s+columns?)", 0), 2},
      {&MD_RE(UR"(not\s+have\s+more\s+than\s+)" MD_TN UR"(\s+columns?)", 0), 2},
      {&MD_RE(UR"(must\s+not\s+exceed\s+)" MD_TN UR"(\s+columns?)", 0), 2},
      {&MD_RE(UR"(not\s+exceed\s+)" MD_TN UR"(\s+columns?)", 0), 2},
      {&MD_RE(UR"(not\s+exceeding\s+)" MD_TN UR"(\s+columns?)", 0), 2},
      {&MD_RE(UR"(should\s+not\s+exceed\s+)" MD_TN UR"(\s+columns?)", 0), 2},
      {&MD_RE(UR"(column\s+limit\s+of\s+)" MD_TN, 0), 2},
      {&MD_RE(UR"(must\s+have\s+exactly\s+)" MD_TN UR"(\s+columns?)", 0), 1},
      {&MD_RE(UR"(exactly\s+.+and )" MD_TN UR"(\s+columns?)", 0), 1},
      {&MD_RE(UR"(in\s+)" MD_TN UR"(\s+columns)", 0), 1},
      {&MD_RE(UR"(not exceed\s+.+and )" MD_TN UR"(\s+columns?)", 0), 2},
      {&MD_RE(UR"(maximum of\s+)" MD_TN UR"(\s+columns)", 0), 2},
      {&MD_RE(UR"(maximum\s+)" MD_TN UR"(\s+columns)", 0), 2},
      {&MD_RE(UR"(at most\s+)" MD_TN UR"(\s+columns)", 0), 2},
      {&MD_RE(UR"(limited to a maximum of\s+)" MD_TN UR"(\s+columns)", 0), 2},
      {&MD_RE(UR"(limited to\s+)" MD_TN UR"(\s+columns)", 0), 2},
      {&MD_RE(UR"(a column limit of\s+)" MD_TN, 0), 2},
      {&MD_RE(UR"(a maximum of\s+.+and )" MD_TN UR"(\s+columns?)", 0), 2},
      {&MD_RE(UR"(limit the number of columns to\s+)" MD_TN, 0), 2},
      {&MD_RE(UR"(limit it to\s+)" MD_TN UR"(\s+columns)", 0), 2},
      {&MD_RE(UR"(limit the table to\s+)" MD_TN UR"(\s+columns)", 0), 2},
      {&MD_RE(UR"(the number of columns in each table does not exceed\s+)" MD_TN, 0), 2},
      {&MD_RE(UR"((a|each) (single) column)", 0), 3},
      {&MD_RE(UR"(presented in (a|one) single column)", 0), 3},
      {&MD_RE(UR"(title must not exceed )" MD_TN UR"(\s+words)", 0), 4},
  };
  RegexMatch m;
  for (const Pat& p : kRows)
    if (search(*p.re, c, &m)) {
      r.rows_type = p.type;
      r.rows = table_number(group(m, c, 1));
      break;
    }
  for (const Pat& p : kCols)
    if (search(*p.re, c, &m)) {
      if (p.type == 3) {
        r.cols_type = 1;
        r.cols = 1;
      } else if (p.type == 4) {
        r.has_title_max = true;
        r.title_max = table_number(group(m, c, 1));
      } else {
        r.cols_type = p.type;
        r.cols = table_number(group(m, c, 1));
      }
      break;
    }
  if (contains(c, U"markdown")) r.markdown = true;
  if (contains(c, U"series must include") && contains(c, U"title") && contains(c, U"author"))
    r.content = {U"title", U"author", U"year", U"publication"};
  if (contains(c, U"film title") && contains(c, U"release year")) r.content = {U"film title", U"release year"};
  const Regex& quoted = MD_RE(UR"re("([^"]+)")re", 0);
  if (contains(c, U"columns for") && c.find('"') != U32::npos) {
    std::vector<U32> clean;
    for (const auto& q : quoted.finditer(c)) {
      U32 col = clean_quoted(group(q, c, 1));
      if (!col.empty()) clean.push_back(std::move(col));
    }
    if (!clean.empty()) {
      r.columns = std::move(clean);
      return r;
    }
  }
  static const Pat kKeywords[] = {
      {&MD_RE(UR"(columns?\s+should\s+be\s+([\w\s,]+))", 0), 1},
      {&MD_RE(UR"(columns:\s+([\w\s,']+))", 0), 1},
      {&MD_RE(UR"re(must include columns for\s+"([^"]+)")re", 0), 1},
      {&MD_RE(UR"(must include the\s+([\w\s,]+))", 0), 2},
      {&MD_RE(UR"(each (entry|row|item|game|series) must include (?:the\s+)?([\w\s,]+(?:\s+and\s+(?:its|their)\s+[\w\s,]+)?))", 0), 2},
      {&MD_RE(UR"(table must include columns (for|named)\s+[""]([^""]+)[""])", 0), 1},
      {&MD_RE(UR"(each (entry|row|item|game|series) should (?:be )?(present|include|contain|show)(?:ed)? (?:in|with)?\s+([\w\s,]+))", 0), 2},
  };
  for (const Pat& p : kKeywords) {
    if (!search(*p.re, c, &m)) continue;
    if (p.type == 1) {
      U32View g = group(m, c, 1);
      if (g.empty()) continue;
      // re.split(r'[,、，和and]', ...): a character class, so every a, n and d splits too.
      for (const auto& piece : MD_RE(UR"([,、，和and])", 0).split(g)) {
        U32View s = py_strip_chars(*piece, U"'\" ");
        if (!s.empty()) r.columns.emplace_back(s);
      }
    } else if (m.groups.size() > 1) {
      U32View last = group(m, c, m.groups.size());
      if (contains(last, U" and ")) {
        auto parts = py_split(last, U" and ");
        if (parts[0].find(',') != U32View::npos) {
          for (U32View item : split_char(parts[0], ',')) r.content.emplace_back(py_strip(item));
        } else {
          r.content.emplace_back(py_strip(parts[0]));
        }
        if (starts_with(parts[1], U"its ")) {
          r.content.emplace_back(py_strip(parts[1].substr(4)));
        } else {
          r.content.emplace_back(py_strip(parts[1]));
        }
      } else {
        for (const auto& piece : MD_RE(UR"([,、，])", 0).split(last)) {
          U32View s = py_strip(*piece);
          if (!s.empty()) r.content.emplace_back(s);
        }
      }
    }
  }
  if (search(MD_RE(UR"re(include columns for\s+(?:"([^"]+)",?\s*)+)re", 0), c, &m)) {
    U32View span = U32View(c).substr(m.start, m.end - m.start);
    for (const auto& q : quoted.finditer(span)) {
      U32View s = py_strip(group(q, span, 1));
      if (!s.empty()) r.columns.emplace_back(s);
    }
  }
  auto quoted2 = MD_RE(UR"([""]([^""]+)[""])", 0).finditer(c);
  if (!quoted2.empty() && r.columns.empty()) {
    for (const auto& q : quoted2) {
      U32 col = clean_quoted(group(q, c, 1));
      if (!col.empty()) r.columns.push_back(std::move(col));
    }
  }
  if (search(MD_RE(UR"(each\s+\w+\s+must\s+include\s+(?:the\s+)?([\w\s]+\s+and\s+its\s+[\w\s]+))", 0), c, &m)) {
    U32View phrase = group(m, c, 1);
    for (const auto& piece : MD_RE(UR"(\s+and\s+its\s+)", 0).split(phrase)) {
      U32View s = py_strip(*piece);
      if (!s.empty()) r.content.emplace_back(s);
    }
  }
  if (contains(c, U"single column")) r.cols_type = 1, r.cols = 1;
  if (search(MD_RE(UR"(title\s+must\s+not\s+exceed\s+)" MD_TN UR"(\s+words)", 0), c, &m)) {
    r.has_title_max = true;
    r.title_max = table_number(group(m, c, 1));
  }
  std::vector<U32> dedup;
  for (auto& x : r.content) {
    if (x.empty()) continue;
    bool seen = false;
    for (const auto& y : dedup) seen |= y == x;
    if (!seen) dedup.push_back(std::move(x));
  }
  r.content = std::move(dedup);
  return r;
}

std::vector<U32> header_cells(const std::vector<U32View>& lines) {
  std::vector<U32> out;
  if (lines.empty()) return out;
  auto parts = split_char(lines[0], '|');
  for (size_t k = 1; k + 1 < parts.size(); ++k) out.push_back(py_lower(py_strip(parts[k])));
  return out;
}
bool any_contains(const std::vector<U32>& hs, U32View a, U32View b = U32View()) {
  for (const auto& h : hs)
    if (contains(h, a) || (!b.empty() && contains(h, b))) return true;
  return false;
}

}  // namespace

namespace {
bool check_table(const U32& c, const TableRules& rules, U32View text) {
  if (text.find('|') == U32View::npos) {
    if (!contains(c, U"table")) return true;
    static const Regex* kOptional[] = {
        &MD_RE(UR"(if you (include|use|utilize|incorporate|present) (a |any )?(tables?|tabular data))", kS),
        &MD_RE(UR"(if you (decide|choose|opt) to (use|include|incorporate|present|utilize) (a |any )?(tables?|tabular data))", kS),
        &MD_RE(UR"(if (a |any )?(tables?|tabular data|table format) (is|are) (used|included|utilized|incorporated|presented|chosen))", kS),
        &MD_RE(UR"(if there (is|are) (a |any )?(tables?|tabular data|table format) (used|included|utilized|incorporated|presented|chosen))", kS),
        // two patterns the reference's list glues together (a missing comma)
        &MD_RE(UR"(if you (decide|choose|opt) to (use|include|incorporate|present|utilize) (your )?information in a tableif presented in a table)", kS),
    };
    for (const Regex* re : kOptional)
      if (search(*re, c)) return true;
    return false;
  }
  size_t first = text.find('|'), last = text.rfind('|');
  U32View body = first == last ? U32View() : text.substr(first, last - first + 1);
  std::vector<U32View> lines;
  for (U32View l : split_char(body, '\n')) {
    U32View s = py_strip(l);
    if (!s.empty()) lines.push_back(s);
  }
  if (rules.markdown) {
    bool any = false;
    for (U32View l : lines) any |= search(MD_RE(UR"(^\s*\|)", 0), l);
    if (!any) return false;
  }
  if (rules.rows_type) {
    int64_t total = static_cast<int64_t>(lines.size());
    int64_t actual = (lines.size() > 1 && contains(lines[1], U"---")) ? total - 2 : total - 1;
    if (rules.rows_type == 1 && actual != rules.rows) return false;
    if (rules.rows_type == 2 && actual > rules.rows) return false;
  }
  if (rules.cols_type) {
    if (lines.empty()) return false;
    int64_t cols = static_cast<int64_t>(split_char(lines[0], '|').size()) - 2;
    if (rules.cols_type == 1 && cols != rules.cols) return false;
    if (rules.cols_type == 2 && cols > rules.cols) return false;
  }
  if (rules.has_title_max) {
    if (lines.empty()) return false;
    U32View title = py_strip(py_strip_chars(lines[0], U"|"));
    if (static_cast<int64_t>(py_split_ws(title).size()) > rules.title_max) return false;
  }
  if (contains(c, U"series must include") && contains(c, U"title") && contains(c, U"author") && contains(c, U"year")) {
    auto hs = header_cells(lines);
    return any_contains(hs, U"title") && any_contains(hs, U"author") && any_contains(hs, U"year");
  }
  if (contains(c, U"columns for") && !rules.columns.empty()) {
    if (lines.empty()) return false;
    auto hs = header_cells(lines);
    for (const auto& col : rules.columns) {
      U32 lc = py_lower(col);
      bool found = false;
      for (const auto& h : hs)
        if (contains(h, lc) || contains(lc, h)) {
          found = true;
          break;
        }
      if (!found) return false;
    }
    return true;
  }
  if (!rules.columns.empty()) {
    if (lines.empty()) return false;
    auto hs = header_cells(lines);
    for (const auto& col : rules.columns) {
      U32 lc = py_lower(col);
      if (!any_contains(hs, lc)) return false;
    }
  }
  if (contains(c, U"film title") && contains(c, U"release year")) {
    auto hs = header_cells(lines);
    return any_contains(hs, U"film", U"title") && any_contains(hs, U"release", U"year");
  }
  if (!rules.content.empty()) {
    std::vector<U32View> joined;
    U32 pieces;
    for (size_t k = 0; k < lines.size(); ++k) {
      if (k) pieces.push_back(' ');
      for (char32_t ch : lines[k]) pieces.push_back(ch == '|' ? ' ' : ch);
    }
    U32 table = py_lower(pieces);
    auto hs = header_cells(lines);
    for (const auto& req : rules.content) {
      U32 r = py_lower(req);
      if (r == U"film title" && any_contains(hs, U"film", U"title")) continue;
      if (r == U"release year" && any_contains(hs, U"release", U"year")) continue;
      if (r == U"title" && any_contains(hs, U"title")) continue;
      if (r == U"author" && any_contains(hs, U"author")) continue;
      if ((r == U"year" || r == U"year of publication") && any_contains(hs, U"year")) continue;
      if (r == U"publication") continue;
      if (contains(table, r)) continue;
      bool in_header = false;
      auto words = py_split_ws(r);
      for (const auto& h : hs) {
        for (U32View w : words)
          if (contains(h, w)) in_header = true;
        if (in_header) break;
      }
      if (in_header) continue;
      return false;
    }
  }
  return true;
}

struct TablePlan {
  U32 c;
  TableRules rules;
};
}  // namespace

MdCheck md_format_table_plan(U32View constraint) {
  auto plan = std::make_shared<TablePlan>();
  plan->c = py_lower(constraint);
  plan->rules = parse_table_rules(plan->c);
  return [plan](U32View t) { return check_table(plan->c, plan->rules, t); };
}
bool md_format_table(U32View constraint, U32View text) {
  U32 c = py_lower(constraint);
  return check_table(c, parse_table_rules(c), text);
}

// ---- Format_Others

namespace {
// re.escape (Python 3.7+: only these characters).
U32 re_escape(U32View s) {
  static const U32View special = U"()[]{}?*+-|^$\\.&~# \t\n\r\v\f";
  U32 out;
  for (char32_t ch : s) {
    if (special.find(ch) != U32View::npos) out.push_back('\\');
    out.push_back(ch);
  }
  return out;
}

int64_t others_number(U32View s) {
  U32 low = py_lower(s);
  int64_t v = word_value(low, {{U"one", 1}, {U"two", 2}, {U"three", 3}, {U"four", 4}, {U"five", 5}, {U"six", 6},
                               {U"seven", 7}, {U"eight", 8}, {U"nine", 9}, {U"ten", 10}});
  return v >= 0 ? v : py_int(s);  // int(str): digits only here
}

// The XML-attribute checks: every tag's attribute count against the bound.
bool attributes(U32View t, int64_t bound, int mode) {  // mode 0: at most, 1: at least
  U32View body = t;
  if (contains(t, U"```xml")) {
    RegexMatch m;
    if (!search(MD_RE(UR"(```xml(.*?)```)", kS), t, &m)) return false;
    body = group(m, t, 1);
  }
  const Regex& tag = MD_RE(UR"(<\s*([a-zA-Z_:][\w:.-]*)\s*(?:\s+[a-zA-Z_:][\w:.-]*=['"][^'"]*['"])*\s*/?>)", 0);
  const Regex& attr = MD_RE(UR"((\w+)=["'][^"']*["'])", 0);
  for (const auto& m : tag.finditer(body)) {
    int64_t n = static_cast<int64_t>(attr.count(body.substr(m.start, m.end - m.start)));
    if (mode == 0 ? n > bound : n < bound) return false;
  }
  return true;
}
}  // namespace

namespace {
// What Format_Others.check reads from the constraint: the first rule whose pattern it matches,
// that rule's number and (for "Must include '...'") the phrase's pattern.
struct OthersPlan {
  int handler = -1;  // -1: no rule matched
  int64_t num = 0;
  std::shared_ptr<const Regex> phrase;
};

OthersPlan plan_others(U32View c) {
  struct R {
    const Regex* re;
    int handler;
    int64_t arg;
  };
  // handler: 0 max attrs, 1 exact attrs, 2 min attrs, 3 phrase, 4 apa, 5 no bullets, 6 bullets, 7 block
  // quotes, 8 table rows, 9 true, 10 short blurb, 11 min references, 12 no lists, 13 no number
  // points, 14 medium length
#define MD_O(p) &MD_RE(p, kI)
  static const R kRules[] = {
      {MD_O(UR"(no more than (\d+|one|two|three|four|five|six|seven|eight|nine|ten) attributes?)"), 0, -1},
      {MD_O(UR"(must not exceed (\d+|one|two|three|four|five|six|seven|eight|nine|ten)(?:.*)?attributes?)"), 0, -1},
      {MD_O(UR"(Limit the number of attributes to two)"), 1, 2},
      {MD_O(UR"(Number of attributes must be exactly (\d+|one|two|three|four|five|six|seven|eight|nine|ten))"), 1, -1},
      {MD_O(UR"(must have exactly (\d+|one|two|three|four|five|six|seven|eight|nine|ten) attributes?)"), 1, -1},
      {MD_O(UR"(must include exactly (\d+|one|two|three|four|five|six|seven|eight|nine|ten) attributes?)"), 1, -1},
      {MD_O(UR"(at least (\d+|one|two|three|four|five|six|seven|eight|nine|ten) attributes?)"), 2, -1},
      {MD_O(UR"(Must include '(.*?)')"), 3, -1},
      {MD_O(UR"(Must be in APA format)"), 4, -1},
      {MD_O(UR"(must be provided in APA format)"), 4, -1},
      {MD_O(UR"(No bullet points)"), 5, -1},
      {MD_O(UR"(Must be listed as bullet points)"), 6, -1},
      {MD_O(UR"(is structured as bullet points)"), 6, -1},
      {MD_O(UR"(block quotes format)"), 7, -1},
      {MD_O(UR"(be formatted in block quotes)"), 7, -1},
      {MD_O(UR"(no more than (\d+|one|two|three|four|five|six|seven|eight|nine|ten) rows)"), 8, -1},
      {MD_O(UR"(table with no more than (\d+|one|two|three|four|five|six|seven|eight|nine|ten) rows)"), 8, -1},
      {MD_O(UR"(a table, which is limited to a maximum of (\d+|one|two|three|four|five|six|seven|eight|nine|ten) rows)"), 8, -1},
      {MD_O(UR"(full sentences)"), 9, -1},
      {MD_O(UR"(short blurb)"), 10, -1},
      {MD_O(UR"(The answer must include at least (\d+|one|two|three|four|five|six|seven|eight|nine|ten) references?)"), 11, -1},
      {MD_O(UR"(No lists)"), 12, -1},
      {MD_O(UR"(No number points)"), 13, -1},
      {MD_O(UR"(Response must be written at medium length)"), 14, -1},
  };
#undef MD_O
  OthersPlan p;
  for (const R& r : kRules) {
    RegexMatch m;
    if (!search(*r.re, c, &m)) continue;
    p.handler = r.handler;
    if (r.handler == 3) {
      U32View phrase = group(m, c, 1);
      // The reference turns a number word into an int before re.escape, which raises on it.
      if (word_value(py_lower(phrase), {{U"one", 1}, {U"two", 2}, {U"three", 3}, {U"four", 4}, {U"five", 5},
                                        {U"six", 6}, {U"seven", 7}, {U"eight", 8}, {U"nine", 9}, {U"ten", 10}}) >= 0)
        throw MdRaise("TypeError: first argument must be string or compiled pattern");
      p.phrase = cached_regex(U32(U"\\b") + re_escape(phrase) + U32(U"\\b"), kI);
    } else if (r.arg >= 0) {
      p.num = r.arg;
    } else if (!m.groups.empty() && has_group(m, 1)) {
      p.num = others_number(group(m, c, 1));
    }
    return p;
  }
  return p;
}

bool check_others(const OthersPlan& p, U32View t) {
  switch (p.handler) {
    case 0: return attributes(t, p.num, 0);
    case 1: return attributes(t, p.num, 0) && attributes(t, p.num, 1);
    case 2: return attributes(t, p.num, 1);
    case 3: return search(*p.phrase, t);
    case 4: return search(MD_RE(UR"(\(\s*\w+,\s*\d{4}\s*\))", 0), t);
    case 5: return !search(MD_RE(UR"(^\s*[-*])", kM), t);
    case 6: return search(MD_RE(UR"(^\s*[-*])", kM), t);
    case 7: return search(MD_RE(UR"(^>)", kM), t) || contains(py_lower(t), U"<blockquote>");
    case 8: {
      const Regex& sep = MD_RE(UR"(^\|(\s*-+\s*\|)+$)", 0);
      int64_t data_rows = 0;
      for (const auto& row : MD_RE(UR"(^\|.*\|$)", kM).finditer(t))
        data_rows += !match(sep, t.substr(row.start, row.end - row.start));
      int64_t html = static_cast<int64_t>(py_count(py_lower(t), U"<tr>"));
      return data_rows <= p.num && html <= p.num;
    }
    case 9: return true;
    case 10: return t.size() <= 200;
    case 11: return static_cast<int64_t>(MD_RE(UR"((\[\d+\]|\([A-Za-z]+, \d{4}\)))", 0).count(t)) >= p.num;
    case 12: return !search(MD_RE(UR"(^\s*(\d+\.)\s)", kM), t);
    case 13: return !search(MD_RE(UR"(^\s*\d+\.)", kM), t);
    case 14: return t.size() > 200 && t.size() <= 400;
  }
  return false;
}
}  // namespace

MdCheck md_format_others_plan(U32View c) {
  auto plan = std::make_shared<const OthersPlan>(plan_others(c));
  return [plan](U32View t) { return check_others(*plan, t); };
}
bool md_format_others(U32View c, U32View t) { return check_others(plan_others(c), t); }

}  // namespace hirfast
