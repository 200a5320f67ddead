// IFBench custom:* checkers: one fixed task each.
#include <algorithm>
#include <array>

#include "checks_ifbench.h"
#include "ifbench_util.h"
#include "py_csv.h"

namespace hirfast {
namespace {

// re.split(r"\n*(?:Question \d+[\.|\):;]?\s*)", s). A match is a run of newlines, "Question ",
// decimal digits, an optional one of .|):; and whitespace, all greedy; it starts at the first
// newline of the run before "Question " (the scan resumes at the previous match's end).
std::vector<U32View> split_questions(U32View s) {
  static const U32View kWord = U"Question ";
  std::vector<U32View> pieces;
  size_t last = 0, p = 0;
  while (p < s.size()) {
    size_t q = p;
    while (q < s.size() && s[q] == '\n') ++q;
    size_t k = q;
    bool match = s.compare(q, kWord.size(), kWord) == 0 && q + kWord.size() < s.size() &&
                 re_digit(s[q + kWord.size()]);
    if (match) {
      k = q + kWord.size();
      while (k < s.size() && re_digit(s[k])) ++k;
      if (k < s.size() && (s[k] == '.' || s[k] == '|' || s[k] == ')' || s[k] == ':' || s[k] == ';')) ++k;
      while (k < s.size() && re_space(s[k])) ++k;
      pieces.push_back(s.substr(last, p - last));
      last = p = k;
      continue;
    }
    // From any newline of this run the attempt is the same one: skip to the run's end.
    p = q > p ? q : p + 1;
  }
  pieces.push_back(s.substr(last));
  return pieces;
}

// re.match(r"^[A-Ea-e][\.|\)]\s*\w+", s)
bool is_option_line(U32View s) {
  if (s.size() < 3) return false;
  if (!((s[0] >= 'A' && s[0] <= 'E') || (s[0] >= 'a' && s[0] <= 'e'))) return false;
  if (s[1] != '.' && s[1] != '|' && s[1] != ')') return false;
  size_t k = 2;
  while (k < s.size() && re_space(s[k])) ++k;
  return k < s.size() && re_word(s[k]);
}

// re.match(r'^(A|"A")SEP(B|"B")SEP...$', header) where SEP is `sep` followed by any run of the
// `gap` characters; the alternatives are decided by the first character, so no backtracking.
bool header_matches(U32View h, const std::array<U32View, 5>& names, char32_t sep, U32View gap) {
  size_t k = 0;
  for (size_t f = 0; f < names.size(); ++f) {
    if (f > 0) {
      if (k == h.size() || h[k] != sep) return false;
      ++k;
      while (k < h.size() && gap.find(h[k]) != U32View::npos) ++k;
    }
    const bool quoted = k < h.size() && h[k] == '"';
    k += quoted;
    if (h.compare(k, names[f].size(), names[f]) != 0) return false;
    k += names[f].size();
    if (quoted) {
      if (k == h.size() || h[k] != '"') return false;
      ++k;
    }
  }
  return k == h.size();
}

// re.match(r'".*[^\d\w\s].*"', field): a leading '"', then within the first line a character
// that is neither \w nor \s followed later by a '"'.
bool is_quoted_special(U32View f) {
  if (f.empty() || f[0] != '"') return false;
  const size_t line_end = std::min(f.find(U'\n', 1), f.size());
  size_t k = 1;
  while (k < line_end && (re_word(f[k]) || re_space(f[k]))) ++k;
  return k < line_end && f.find(U'"', k + 1) < line_end;
}

U32View first_line_stripped(U32View v) { return py_strip(v.substr(0, v.find(U'\n'))); }

constexpr std::array<const char32_t*, 27> kCapitalsByLatitude = {
    U"Reykjavik", U"Helsinki",  U"Oslo",     U"Tallinn",   U"Stockholm",  U"Riga",     U"Moscow",
    U"Copenhagen", U"Vilnius",  U"Minsk",    U"Dublin",    U"Berlin",     U"Amsterdam", U"Warsaw",
    U"London",    U"Brussels",  U"Prague",   U"Luxembourg", U"Paris",     U"Vienna",   U"Bratislava",
    U"Budapest",  U"Vaduz",     U"Chisinau", U"Bern",      U"Ljubljana",  U"Zagreb"};

}  // namespace

void register_ifbench_custom(Registry& r) {
  // The decimal-digit runs are exactly 14, 21, 28, 35, 42, 49.
  r.add("custom:multiples", {}, [](CheckerContext&) {
    return make_lambda_checker([](U32View v) {
      static const std::array<U32View, 6> kWanted = {U"14", U"21", U"28", U"35", U"42", U"49"};
      size_t found = 0;
      for (size_t k = 0; k < v.size();) {
        if (!re_digit(v[k])) {
          ++k;
          continue;
        }
        size_t start = k;
        while (k < v.size() && re_digit(v[k])) ++k;
        if (found == kWanted.size() || v.substr(start, k - start) != kWanted[found]) return false;
        ++found;
      }
      return found == kWanted.size();
    });
  });

  // Starts with "Question"; four questions, each with five "A."-style option lines, and question
  // texts (lines before the first option) strictly growing in length.
  r.add("custom:mcq_count_length", {}, [](CheckerContext&) {
    return make_lambda_checker([](U32View v) {
      const size_t at = v.find(U"Question");
      // value[value.find("Question"):] != value: not found means value[-1:].
      if (at == U32View::npos ? v.size() > 1 : at != 0) return false;
      std::vector<U32View> questions;
      for (U32View q : split_questions(v)) {
        U32View s = py_strip(q);
        if (!s.empty()) questions.push_back(s);
      }
      if (questions.size() != 4) return false;
      size_t previous = 0;
      for (size_t i = 0; i < questions.size(); ++i) {
        U32 text;
        int options = 0;
        bool in_options = false;
        for (U32View line : py_split(questions[i], U"\n")) {
          U32View s = py_strip(line);
          if (is_option_line(s)) {
            ++options;
            in_options = true;
          } else if (!in_options) {
            text.push_back(' ');
            text.append(s);
          }
        }
        if (options != 5) return false;
        const size_t length = py_strip(text).size();
        if (i > 0 && length <= previous) return false;
        previous = length;
      }
      return true;
    });
  });

  // From the first line containing "Zimbabwe", at least 52 non-empty lines (stripped of
  // punctuation and spaces) in non-increasing order of their NFKD-ASCII form.
  r.add("custom:reverse_newline", {}, [](CheckerContext&) {
    return make_lambda_checker([](U32View v) {
      std::vector<U32View> lines;
      bool started = false;
      for (U32View line : py_split(v, U"\n")) {
        U32View s = strip_punct_space(line);
        if (s.empty()) continue;
        started = started || py_contains(s, U"Zimbabwe");
        if (started) lines.push_back(s);
      }
      if (!started || lines.size() < 52) return false;
      std::string previous = nfkd_ascii(lines[0]);
      for (size_t k = 1; k < lines.size(); ++k) {
        std::string current = nfkd_ascii(lines[k]);
        if (current > previous) return false;
        previous = std::move(current);
      }
      return true;
    });
  });

  // The words of value.lower().strip() without punctuation, reversed and joined, contain
  // "bald eagle" and come back whole as one of their own sentences.
  r.add("custom:word_reverse", {}, [](CheckerContext&) {
    return make_lambda_checker([](U32View v) {
      const U32 text = remove_ascii_punct(py_strip(py_lower(v)));
      std::vector<U32View> words = py_split_ws(text);
      std::reverse(words.begin(), words.end());
      const U32 joined = py_join(words, U" ");
      if (!py_contains(joined, U"bald eagle")) return false;
      const std::vector<U32> sentences = split_into_sentences(joined);
      return std::find(sentences.begin(), sentences.end(), joined) != sentences.end();
    });
  });

  r.add("custom:character_reverse", {}, [](CheckerContext&) {
    return make_lambda_checker([](U32View v) { return py_contains(py_lower(v), U"elgae dlab"); });
  });

  // 26 sentences whose first words start (lower-cased) with a, b, ..., z in turn.
  r.add("custom:sentence_alphabet", {}, [](CheckerContext&) {
    return make_lambda_checker([](U32View v) {
      const std::vector<U32> sentences = split_into_sentences(v);
      if (sentences.size() != 26) return false;
      for (size_t i = 0; i < 26; ++i) {
        const std::vector<U32View> words = py_split_ws(py_lstrip(sentences[i]));
        if (words.empty()) return false;
        const U32 lower = py_lower(words[0]);
        if (lower[0] != static_cast<char32_t>('a' + i)) return false;
      }
      return true;
    });
  });

  // The NFKD-ASCII text split at commas (blank items dropped) is exactly the 27 capitals in order.
  r.add("custom:european_capitals_sort", {}, [](CheckerContext&) {
    return make_lambda_checker([](U32View v) {
      const U32 text = from_ascii(nfkd_ascii(v));
      size_t k = 0;
      for (U32View item : py_split(text, U",")) {
        U32View name = py_strip(item);
        if (name.empty()) continue;
        if (k == kCapitalsByLatitude.size() || name != kCapitalsByLatitude[k]) return false;
        ++k;
      }
      return k == kCapitalsByLatitude.size();
    });
  });

  // csv.reader: 8 rows, the first exactly ID,Country,City,Year,Count, every row 5 fields.
  r.add("custom:csv_city", {}, [](CheckerContext&) {
    return make_lambda_checker([](U32View v) {
      static const std::vector<U32> kHeader = {U"ID", U"Country", U"City", U"Year", U"Count"};
      std::vector<std::vector<U32>> rows;
      if (py_csv_read(v, ',', 8, &rows) != CsvStatus::kOk || rows.size() != 8) return false;
      if (rows[0] != kHeader) return false;
      return std::all_of(rows.begin() + 1, rows.end(), [](const auto& row) { return row.size() == 5; });
    });
  });

  // Header line ProductID,Category,Brand,Price,Stock (each optionally quoted); with every '"'
  // tripled, csv.reader gives 15 rows; scanning the data rows, one with a quoted special
  // character comes before any row without 5 fields.
  r.add("custom:csv_special_character", {}, [](CheckerContext&) {
    return make_lambda_checker([](U32View v) {
      static const std::array<U32View, 5> kNames = {U"ProductID", U"Category", U"Brand", U"Price", U"Stock"};
      if (!header_matches(first_line_stripped(v), kNames, ',', U" \t")) return false;
      std::vector<std::vector<U32>> rows;
      const U32 tripled = py_replace(v, U"\"", U"\"\"\"");
      if (py_csv_read(tripled, ',', 15, &rows) != CsvStatus::kOk || rows.size() != 15) return false;
      for (size_t k = 1; k < rows.size(); ++k) {
        if (rows[k].size() != 5) return false;
        for (const U32& field : rows[k])
          if (is_quoted_special(field)) return true;
      }
      return false;
    });
  });

  // Header line StudentID<TAB>Subject<TAB>Grade<TAB>Semester<TAB>Score (spaces may follow each
  // tab, names optionally quoted); with every '"' tripled, a tab-delimited csv.reader gives 4
  // rows of 5 fields, each field starting and ending (after strip) with '"'.
  r.add("custom:csv_quotes", {}, [](CheckerContext&) {
    return make_lambda_checker([](U32View v) {
      static const std::array<U32View, 5> kNames = {U"StudentID", U"Subject", U"Grade", U"Semester", U"Score"};
      if (!header_matches(first_line_stripped(v), kNames, '\t', U" ")) return false;
      std::vector<std::vector<U32>> rows;
      const U32 tripled = py_replace(v, U"\"", U"\"\"\"");
      if (py_csv_read(tripled, '\t', 4, &rows) != CsvStatus::kOk || rows.size() != 4) return false;
      for (const auto& row : rows) {
        if (row.size() != 5) return false;
        for (const U32& field : row) {
          U32View s = py_strip(field);
          if (s.empty() || s.front() != '"' || s.back() != '"') return false;
        }
      }
      return true;
    });
  });

  // Comma-separated YYYY-MM-DD dates (decimal digits of any script) in 1769..1821, month <= 12,
  // day within the month's maximum (29 for February; month and day 0 pass).
  r.add("custom:date_format_list", {}, [](CheckerContext&) {
    return make_lambda_checker([](U32View v) {
      for (U32View item : py_split(py_strip(v), U",")) {
        U32View d = py_strip(item);
        if (d.size() != 10 || d[4] != '-' || d[7] != '-') return false;
        int value[3] = {0, 0, 0};
        const size_t starts[3] = {0, 5, 8}, lengths[3] = {4, 2, 2};
        for (int part = 0; part < 3; ++part) {
          for (size_t k = starts[part]; k < starts[part] + lengths[part]; ++k) {
            const int digit = py_decimal_value(d[k]);
            if (digit < 0) return false;
            value[part] = value[part] * 10 + digit;
          }
        }
        const int year = value[0], month = value[1], day = value[2];
        if (year < 1769 || year > 1821 || month > 12) return false;
        const bool long_month = month == 1 || month == 3 || month == 5 || month == 7 || month == 8 ||
                                month == 10 || month == 12;
        const bool short_month = month == 4 || month == 6 || month == 9 || month == 11;
        if ((long_month && day > 31) || (short_month && day > 30) || (month == 2 && day > 29)) return false;
      }
      return true;
    });
  });
}

}  // namespace hirfast
