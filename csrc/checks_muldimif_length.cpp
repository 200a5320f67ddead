// MulDimIF Length_Paragraphs, Length_Sentences, Length_Words (and its "each" variant),
// Language_English and Language_Chinese's rule choice.
#include "checks_muldimif.h"

namespace hirfast {
namespace {
using namespace md;

// _parse_number of Length_Paragraphs / Length_Sentences: digits, else the word table, else 0.
int64_t small_number(U32View s, bool sentences) {
  if (py_isdigit_str(s)) return py_int(s);
  U32 w = py_lower(s);
  int64_t v = word_value(w, {{U"one", 1}, {U"two", 2}, {U"three", 3}, {U"four", 4}, {U"five", 5}, {U"six", 6},
                             {U"seven", 7}, {U"eight", 8}, {U"nine", 9}, {U"ten", 10}, {U"一", 1}, {U"二", 2},
                             {U"三", 3}, {U"四", 4}, {U"五", 5}, {U"六", 6}, {U"七", 7}, {U"八", 8}, {U"九", 9},
                             {U"十", 10}, {U"两", 2}});
  if (v < 0 && sentences)
    v = word_value(w, {{U"eleven", 11}, {U"twelve", 12}, {U"fifteen", 15}, {U"twenty", 20}, {U"thirty", 30},
                       {U"fifty", 50}, {U"hundred", 100}, {U"thousand", 1000}});
  return v < 0 ? 0 : v;
}

enum Kind { kExact, kSingle, kMin, kMax, kRange };
struct Pat {
  const Regex* re;
  Kind kind;
};

// (min, max); -1 stands for None.
void apply(Kind kind, const RegexMatch& m, U32View c, bool sentences, bool int_range, int64_t* lo, int64_t* hi) {
  switch (kind) {
    case kExact: *lo = *hi = small_number(group(m, c, 1), sentences); break;
    case kSingle: *lo = *hi = 1; break;
    case kMin: *lo = small_number(group(m, c, 1), sentences); break;
    case kMax: *hi = small_number(group(m, c, 1), sentences); break;
    case kRange:
      if (int_range) {
        *lo = py_int(group(m, c, 1));
        *hi = py_int(group(m, c, 2));
      } else {
        *lo = small_number(group(m, c, 1), sentences);
        *hi = small_number(group(m, c, 2), sentences);
      }
      break;
  }
}

#define MD_PN UR"((\d+|one|two|three|four|five|six|seven|eight|nine|ten))"
#define MD_SN UR"((\d+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|fifty|hundred|thousand|一|二|三|四|五|六|七|八|九|十|两))"

}  // namespace

bool md_length_paragraphs(U32View constraint, U32View t) {
#define P(p, k) {&MD_RE(p, kI), k}
  static const Pat kPats[] = {
      P(UR"(exactly )" MD_PN UR"( paragraphs?)", kExact),
      P(UR"(must be exactly )" MD_PN UR"( paragraphs?)", kExact),
      P(UR"((?:should|must) contain )" MD_PN UR"( paragraphs?)", kExact),
      P(UR"((?:must|should)? be a single paragraph)", kSingle),
      P(UR"((?:the response|the text|the answer) must be a single paragraph)", kSingle),
      P(UR"(at least )" MD_PN UR"( paragraphs?)", kMin),
      P(UR"(least: )" MD_PN UR"( paragraphs?)", kMin),
      P(UR"(a minimum of )" MD_PN UR"((?: distinct)? paragraphs?)", kMin),
      P(UR"(at most )" MD_PN UR"( paragraphs?)", kMax),
      P(UR"(not exceeding )" MD_PN UR"( paragraphs?)", kMax),
      P(UR"(no more than )" MD_PN UR"( paragraphs?)", kMax),
      P(UR"(最多(?:分为)?(\d+|一|两|二|三|四|五|六|七|八|九|十)个段落)", kMax),
      P(UR"(range (\d+)-(\d+) paragraphs?)", kRange),
      P(UR"(range: (\d+)-(\d+))", kRange),
      P(UR"(between (\d+) and (\d+) paragraphs?)", kRange),
      P(UR"(between (\d+) to (\d+) paragraphs?)", kRange),
      P(UR"((\d+) to (\d+) paragraphs?)", kRange),
      P(UR"((?:divided)? into (\d+) to (\d+) paragraphs?)", kRange),
      P(UR"(a range of (\d+) to (\d+) paragraphs?)", kRange),
      P(UR"(organized into at least )" MD_PN UR"( paragraphs?)", kMin),
      P(UR"(structured into at most )" MD_PN UR"( paragraphs?)", kMax),
  };
#undef P
  U32 c = py_lower(constraint);
  int64_t lo = -1, hi = -1;
  for (const Pat& p : kPats) {
    RegexMatch m;
    if (search(*p.re, c, &m)) {
      apply(p.kind, m, c, false, true, &lo, &hi);
      break;
    }
  }
  if (lo < 0 && hi < 0) return false;
  int64_t count = 0;
  for (U32View p : py_split(t, U"\n\n")) count += !py_strip(p).empty();
  if (lo >= 0 && count < lo) return false;
  if (hi >= 0 && count > hi) return false;
  return true;
}

namespace {
// (min, max) of Length_Sentences, -1 for None.
std::pair<int64_t, int64_t> sentence_bounds(U32View constraint) {
#define P(p, k) {&MD_RE(p, 0), k}
  static const Pat kPats[] = {
      P(UR"(exactly(?:[:])? )" MD_SN UR"( (?:topic )?sentences?)", kExact),
      P(UR"((?:should|must) contain )" MD_SN UR"( sentences?)", kExact),
      P(UR"(must be exactly )" MD_SN UR"( sentences?)", kExact),
      P(UR"((?:must|should)? be a single sentence)", kSingle),
      P(UR"(consisting of (?:only )?one sentence)", kSingle),
      P(UR"((?:the response|the text|the answer) must be a single sentence)", kSingle),
      P(UR"(in a single sentence)", kSingle),
      P(UR"(at least(?:[:])? )" MD_SN UR"( sentences?)", kMin),
      P(UR"(a minimum of )" MD_SN UR"( sentences?)", kMin),
      P(UR"(no fewer than )" MD_SN UR"( sentences?)", kMin),
      P(UR"((?:包含)?(?:至少|最少)(?:包含)?)" MD_SN UR"((?:个句子|句话|句|個句子))", kMin),
      P(UR"((?:must )?contain at most )" MD_SN UR"( sentences?)", kMax),
      P(UR"(at most(?:[:])? )" MD_SN UR"( sentences?)", kMax),
      P(UR"(not exceeding )" MD_SN UR"( sentences?)", kMax),
      P(UR"(no (?:more|longer) than )" MD_SN UR"( sentences?)", kMax),
      P(UR"(limited to )" MD_SN UR"( sentences?)", kMax),
      P(UR"((?:must|should)? not exceed )" MD_SN UR"( sentences?)", kMax),
      P(UR"(a maximum (?:length )?of )" MD_SN UR"( sentences?)", kMax),
      P(UR"(not to exceed )" MD_SN UR"( sentences?)", kMax),
      P(UR"(not surpass(?: a total of)? )" MD_SN UR"( sentences?)", kMax),
      P(UR"((?:至多|最多)(?:包含)?)" MD_SN UR"((?:个句子|句话|句|個句子))", kMax),
      P(UR"(range(?:[:])? )" MD_SN UR"(-)" MD_SN UR"( sentences?)", kRange),
      P(UR"(between )" MD_SN UR"( and )" MD_SN UR"( sentences?)", kRange),
      P(UR"(between )" MD_SN UR"( to )" MD_SN UR"( sentences?)", kRange),
      P(UR"(into )" MD_SN UR"( to )" MD_SN UR"( sentences?)", kRange),
      P(UR"(a range of )" MD_SN UR"( to )" MD_SN UR"( sentences?)", kRange),
      P(UR"(be composed of )" MD_SN UR"( to )" MD_SN UR"( sentences?)", kRange),
      P(UR"(consists? of )" MD_SN UR"( to )" MD_SN UR"( sentences?)", kRange),
      P(UR"(consisting of )" MD_SN UR"( to )" MD_SN UR"( sentences?)", kRange),
      P(MD_SN UR"(到)" MD_SN UR"((?:个句子|句话|句|個句子))", kRange),
      P(UR"(organized into at least )" MD_SN UR"( sentences?)", kMin),
      P(UR"(structured into at most )" MD_SN UR"( sentences?)", kMax),
  };
#undef P
  U32 c = py_lower(py_strip(constraint));
  c = U32(py_strip(c));
  int64_t lo = -1, hi = -1;
  for (const Pat& p : kPats) {
    RegexMatch m;
    if (search(*p.re, c, &m)) {
      apply(p.kind, m, c, true, false, &lo, &hi);
      break;
    }
  }
  return {lo, hi};
}

// The reference tests `if not params` on a (min, max) tuple, which is never empty: a constraint
// it cannot read passes. Sentences are the [.!?] characters.
bool check_sentences(int64_t lo, int64_t hi, U32View t) {
  int64_t count = 0;
  for (char32_t ch : t) count += ch == '.' || ch == '!' || ch == '?';
  if (lo >= 0 && count < lo) return false;
  if (hi >= 0 && count > hi) return false;
  return true;
}
}  // namespace

MdCheck md_length_sentences_plan(U32View c) {
  auto b = sentence_bounds(c);
  return [b](U32View t) { return check_sentences(b.first, b.second, t); };
}
bool md_length_sentences(U32View c, U32View t) {
  auto b = sentence_bounds(c);
  return check_sentences(b.first, b.second, t);
}

// ---- Language_English

namespace {
bool all_upper(U32View s) { return py_upper(s) == s; }
bool all_lower(U32View s) { return py_lower(s) == s; }
bool title_case(U32View s) {
  for (U32View w : py_split_ws(s))
    if (w[0] >= 'a' && w[0] <= 'z') return false;
  return true;
}

U32 join_cells(const std::vector<U32View>& rows, size_t from) {
  U32 out;
  bool first = true;
  for (size_t r = from; r < rows.size(); ++r)
    for (U32View cell : split_char(rows[r], '|')) {
      U32View s = py_strip(cell);
      if (s.empty()) continue;
      if (!first) out.push_back(' ');
      out += s;
      first = false;
    }
  return out;
}

// _extract_table_content: part 0 all/content, 1 headers, 2 entries.
U32 table_content(U32View t, int part) {
  if (t.find('|') == U32View::npos) return U32(t);
  std::vector<U32View> rows;
  for (U32View l : split_char(t, '\n'))
    if (!py_strip(l).empty()) rows.push_back(py_strip(l));
  if (rows.empty()) return U32(t);
  if (part == 1) {
    std::vector<U32View> first{rows[0]};
    return join_cells(first, 0);
  }
  if (part == 2) return rows.size() > 1 ? join_cells(rows, 1) : U32(t);
  return join_cells(rows, 0);
}

U32 join_groups(const Regex& re, U32View t) {
  U32 out;
  bool first = true;
  for (const auto& m : re.finditer(t)) {
    if (!first) out.push_back(' ');
    out += group(m, t, 1);
    first = false;
  }
  return out;
}

U32 heading_content(U32View t) {
  U32 h = join_groups(MD_RE(UR"(^#+\s*(.+)$)", kM), t);
  // findall gives [] (then the text) or non-empty groups: `.+` matches at least one character.
  return h.empty() ? U32(t) : h;
}
}  // namespace

namespace {
// What Language_English.check reads from the constraint.
struct EnglishPlan {
  enum Format { kNone, kMixed, kTable, kJson, kHeading } format = kNone;
  int table_part = 0;  // 0 all/content, 1 headers, 2 entries
  int json_part = 0;   // 0 all, 1 keys, 2 values
  enum Type { kUnknown, kUpper, kTitle, kLower, kBlurb } type = kUnknown;
};

EnglishPlan plan_english(U32View constraint) {
  EnglishPlan p;
  U32 c = py_lower(py_strip(constraint));
  if (contains(c, U"headings") && contains(c, U"table")) {
    p.format = EnglishPlan::kMixed;
  } else if (contains(c, U"table")) {
    p.format = EnglishPlan::kTable;
    if (contains(c, U"headers") || contains(c, U"header")) {
      p.table_part = 1;
    } else if (contains(c, U"entries")) {
      p.table_part = 2;
    } else if (contains(c, U"headings")) {
      p.table_part = 1;
    }
  } else if (contains(c, U"json")) {
    p.format = EnglishPlan::kJson;
    p.json_part = contains(c, U"keys") ? 1 : contains(c, U"values") ? 2 : 0;
  } else if (contains(c, U"heading") || contains(c, U"headings")) {
    p.format = EnglishPlan::kHeading;
  }
  bool each = contains(c, U"each");
  if (search(MD_RE(UR"(\ball[- ]?uppercase\b)", 0), c) || contains(c, U"in all uppercase letters") ||
      contains(c, U"be provided in all uppercase letters") || contains(c, U"in capitalized form") || c == U"all uppercase") {
    p.type = EnglishPlan::kUpper;
  } else if (contains(c, U"capitalize the first letter of each word") || contains(c, U"capitalized letters for each word") ||
             contains(c, U"have each word capitalized") || contains(c, U"each word must be capitalized") ||
             contains(c, U"each word in") || (contains(c, U"a capital letter") && each) ||
             search(MD_RE(UR"(\bcapitalized\b)", 0), c) || (contains(c, U"capitalize") && each) ||
             (contains(c, U"capitalized") && each) || (contains(c, U"capital") && each)) {
    p.type = EnglishPlan::kTitle;
  } else if (contains(c, U"must be in lowercase") || contains(c, U"all lowercase") ||
             search(MD_RE(UR"(\blowercase\b)", 0), c)) {
    p.type = EnglishPlan::kLower;
  } else if (contains(c, U"written as a short blurb")) {
    p.type = EnglishPlan::kBlurb;
  }
  return p;
}

bool check_english(const EnglishPlan& p, U32View t) {
  if (py_strip(t).empty()) return false;
  if (p.type == EnglishPlan::kUnknown) return false;
  if (p.type == EnglishPlan::kBlurb) return true;
  U32 text(t);
  switch (p.format) {
    case EnglishPlan::kNone: break;
    case EnglishPlan::kMixed: {
      U32 tc = table_content(t, 0);
      if (!tc.empty()) {
        text = tc;
      } else {
        U32 h = heading_content(t);
        text = h.empty() ? U32(t) : h;
      }
      break;
    }
    case EnglishPlan::kTable: text = table_content(t, p.table_part); break;
    case EnglishPlan::kJson:
      if (p.json_part && t.find('{') != U32View::npos && t.find('}') != U32View::npos) {
        U32 got = p.json_part == 1 ? join_groups(MD_RE(UR"re("([^"]+)"\s*:)re", 0), t)
                                   : join_groups(MD_RE(UR"re(:\s*"([^"]+)")re", 0), t);
        if (!got.empty()) text = got;
      }
      break;
    case EnglishPlan::kHeading: text = heading_content(t); break;
  }
  if (p.type == EnglishPlan::kUpper) return all_upper(text);
  if (p.type == EnglishPlan::kTitle) return title_case(text);
  return all_lower(text);
}
}  // namespace

MdCheck md_language_english_plan(U32View c) {
  auto plan = plan_english(c);
  return [plan](U32View t) { return check_english(plan, t); };
}
bool md_language_english(U32View c, U32View t) { return check_english(plan_english(c), t); }

// ---- Language_Chinese (the rule; the conversion is zhconv's, called from Python)

MdChineseRule md_chinese_rule(U32View c, U32* phrase) {
  RegexMatch m;
  if (search(MD_RE(UR"re(Must include the phrase "{1,2}(.+?)"{1,2})re", kI), c, &m)) {
    *phrase = U32(group(m, c, 1));
    return MdChineseRule::kPhrase;
  }
  if (search(MD_RE(UR"(Must write the name "Shen Lim" in Simplified Chinese)", kI), c)) return MdChineseRule::kShenLim;
  if (search(MD_RE(UR"(Must (?:use|convert into|be converted into) Traditional Chinese characters)", kI), c))
    return MdChineseRule::kEntirelyTraditional;
  if (search(MD_RE(UR"(include .*?Traditional Chinese characters)", kI), c) ||
      search(MD_RE(UR"(use .*?Traditional Chinese characters)", kI), c) || search(MD_RE(UR"(使用繁體中文)", kI), c))
    return MdChineseRule::kHasTraditional;
  if (search(MD_RE(UR"((The answer must ){0,1}include some content in Simplified Chinese)", kI), c) ||
      search(MD_RE(UR"(Use Simplified Chinese characters)", kI), c) ||
      search(MD_RE(UR"((?:must be|must use|must write|must be presented|answer must be|essential|is|should be|必须|请|需要) {0,1}(?:in|provided in|written in|to use|conducted in|用|使用|提供|书写|翻译为|将文本翻译为) {0,1}(?:Simplified Chinese|简体中文))",
                   kI),
             c) ||
      search(MD_RE(UR"(用中文简体描述)", kI), c) || search(MD_RE(UR"(Names must be in Simplified Chinese)", kI), c))
    return MdChineseRule::kHasSimplified;
  if (search(MD_RE(UR"(Must translate the text into Simplified Chinese)", kI), c)) return MdChineseRule::kEntirelySimplified;
  if (search(MD_RE(UR"(Simplified)", kI), c)) return MdChineseRule::kHasSimplified;
  return MdChineseRule::kNone;
}

}  // namespace hirfast
