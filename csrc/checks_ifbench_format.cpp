// IFBench format:* checkers.
#include <algorithm>
#include <deque>
#include <unordered_map>

#include "checks_ifbench.h"
#include "emoji_table.h"
#include "ifbench_util.h"

namespace hirfast {
namespace {

// re.match(r"\W*[aA]\W*[bB]\W*[cC]\W*", s): \W* cannot eat a letter, so no backtracking.
bool looks_like_abc_options(U32View s) {
  size_t k = 0;
  for (char32_t letter : U32View(U"abc")) {
    while (k < s.size() && !re_word(s[k])) ++k;
    if (k == s.size() || (s[k] != letter && s[k] != letter - 32)) return false;
    ++k;
  }
  return true;
}

// format:line_indent's
//     for line in lines:
//         if not line.strip(): lines.remove(line)
// mutates the list it iterates: remove() deletes the *first* element equal to the blank line
// (possibly an earlier survivor, leaving the current one), and the element after the current
// one then slides under the iterator and is never examined. Replayed in one pass: a blank line
// that is examined removes the oldest surviving line equal to it and makes the next line skip
// examination.
std::vector<U32View> lines_after_blank_removal(const std::vector<U32View>& lines) {
  std::vector<bool> removed(lines.size(), false);
  std::unordered_map<U32View, std::deque<size_t>> surviving_blanks;
  bool skip = false;
  for (size_t k = 0; k < lines.size(); ++k) {
    const bool blank = py_strip(lines[k]).empty();
    if (blank) surviving_blanks[lines[k]].push_back(k);
    if (skip) {
      skip = false;
      continue;
    }
    if (!blank) continue;
    std::deque<size_t>& same = surviving_blanks[lines[k]];
    removed[same.front()] = true;
    same.pop_front();
    skip = true;
  }
  std::vector<U32View> out;
  for (size_t k = 0; k < lines.size(); ++k)
    if (!removed[k]) out.push_back(lines[k]);
  return out;
}

size_t leading_spaces(U32View s) {
  size_t k = 0;
  while (k < s.size() && s[k] == ' ') ++k;
  return k;
}

}  // namespace

void register_ifbench_format(Registry& r) {
  // A bracket group closed (correctly nested) after reaching depth 5; a mismatched closer
  // resets the stack.
  r.add("format:parentheses", {}, [](CheckerContext&) {
    return make_lambda_checker([](U32View v) {
      std::vector<char32_t> open;
      size_t max_depth = 0;
      for (char32_t c : v) {
        if (c == '(' || c == '[' || c == '{') {
          open.push_back(c);
          max_depth = std::max(max_depth, open.size());
        } else if (c == ')' || c == ']' || c == '}') {
          const char32_t want = c == ')' ? '(' : c == ']' ? '[' : '{';
          if (!open.empty() && open.back() == want) {
            open.pop_back();
            if (max_depth >= 5 && open.size() < max_depth) return true;
          } else {
            open.clear();
            max_depth = 0;
          }
        }
      }
      return false;
    });
  });

  // Quotes ' and " as a stack (a character equal to the top closes it); true once a close
  // leaves the depth 3 below the deepest reached.
  r.add("format:quotes", {}, [](CheckerContext&) {
    return make_lambda_checker([](U32View v) {
      std::vector<char32_t> open;
      size_t reached = 0;
      // Only quotes change the stack (it holds nothing else): find_any steps from one to the next.
      for (size_t k = find_any(v, 0, '"', '\''); k != U32View::npos; k = find_any(v, k + 1, '"', '\'')) {
        const char32_t c = v[k];
        if (!open.empty() && c == open.back()) {
          open.pop_back();
          if (reached - open.size() >= 3) return true;
        } else if (c == '"' || c == '\'') {
          open.push_back(c);
          reached = std::max(reached, open.size());
        }
      }
      return false;
    });
  });

  // Options split on "/", else "or", else ","; "a) b) c)"-like options need an exact match,
  // others compare stripped of punctuation and spaces, lower-cased.
  r.add("format:options", {"options"}, [](CheckerContext& ctx) {
    const U32 options = ctx.args->get_str("options");
    const bool exact = looks_like_abc_options(options);
    const U32View sep = py_contains(options, U"/") ? U"/" : py_contains(options, U"or") ? U"or" : U",";
    std::vector<U32> choices;
    for (U32View o : py_split(options, sep)) {
      U32View s = py_strip(o);
      choices.push_back(exact ? U32(s) : py_lower(strip_punct_space(s)));
    }
    return make_lambda_checker([exact, choices](U32View v) {
      if (exact) return std::find(choices.begin(), choices.end(), v) != choices.end();
      const U32 answer = py_lower(strip_punct_space(v));
      return std::find(choices.begin(), choices.end(), answer) != choices.end();
    });
  });

  // Without punctuation: the non-empty lines of value.strip() are as many as its words.
  r.add("format:newline", {}, [](CheckerContext&) {
    return make_lambda_checker([](U32View v) {
      const U32 text = remove_ascii_punct(v);
      const U32View body = py_strip(text);
      size_t lines = 0;
      for (U32View line : py_split(body, U"\n")) lines += !line.empty();
      return lines == count_words(body);
    });
  });

  // Each sentence (punctuation removed, stripped) ends with an emoji in its last or second
  // last character, or else the next sentence starts with one. An empty sentence: IndexError.
  r.add("format:emoji", {}, [](CheckerContext&) {
    return make_lambda_checker([](U32View v) {
      const std::vector<U32> sentences = split_into_sentences(v);
      for (size_t i = 0; i < sentences.size(); ++i) {
        const U32 cleaned = remove_ascii_punct(sentences[i]);
        const U32View s = py_strip(cleaned);
        if (s.empty()) return false;
        const U32View last = s.substr(s.size() - 1);
        const U32View second_last = s.size() > 1 ? s.substr(s.size() - 2, 1) : last;
        if (is_emoji(last) || is_emoji(second_last)) continue;
        if (i + 1 == sentences.size()) return false;
        const U32 next_cleaned = remove_ascii_punct(sentences[i + 1]);
        const U32View next = py_strip(next_cleaned);
        if (next.empty() || !is_emoji(next.substr(0, 1))) return false;
      }
      return true;
    });
  });

  // After the blank-line removal above, each line is indented by strictly more leading spaces
  // than the one before.
  r.add("format:line_indent", {}, [](CheckerContext&) {
    return make_lambda_checker([](U32View v) {
      const std::vector<U32View> lines = lines_after_blank_removal(py_split(v, U"\n"));
      for (size_t k = 0; k + 1 < lines.size(); ++k)
        if (leading_spaces(lines[k + 1]) <= leading_spaces(lines[k])) return false;
      return true;
    });
  });

  // Curly double quotes made straight, the 3-character '"' removed, all whitespace removed:
  // no '""', and the text stripped of digits and punctuation other than '"' does not end in '"'.
  r.add("format:quote_unquote", {}, [](CheckerContext&) {
    return make_lambda_checker([](U32View v) {
      U32 text = py_replace(py_replace(v, U"\u201C", U"\""), U"\u201D", U"\"");
      text = py_replace(text, U"'\"'", U"");
      U32 packed;
      for (char32_t c : text)
        if (!py_isspace(c)) packed.push_back(c);
      if (py_contains(packed, U"\"\"")) return false;
      size_t e = packed.size(), b = 0;
      auto strippable = [](char32_t c) { return (c >= '0' && c <= '9') || (c != '"' && is_ascii_punct(c)); };
      while (b < e && strippable(packed[b])) ++b;
      while (e > b && strippable(packed[e - 1])) --e;
      if (b == e) return false;  // IndexError on an empty string
      return packed[e - 1] != '"';
    });
  });

  // len(re.findall(re.escape(sep), value)) >= 2 (an empty sep matches at every position).
  r.add("format:list", {"sep"}, [](CheckerContext& ctx) {
    const U32 sep = ctx.args->get_str("sep");
    return make_lambda_checker([sep](U32View v) {
      const size_t found = sep.empty() ? v.size() + 1 : py_count(v, sep);
      return found >= 2;
    });
  });

  // From the first "<i>" (else "<em>"): the text between offset 3 and the first "</i>" (else
  // "</em>") is not blank, and something non-blank follows 4 characters after that closer.
  r.add("format:thesis", {}, [](CheckerContext&) {
    return make_lambda_checker([](U32View v) {
      size_t start = v.find(U"<i>");
      if (start == U32View::npos) start = v.find(U"<em>");
      if (start == U32View::npos) return false;
      const U32View rest = v.substr(start);
      size_t end = rest.find(U"</i>");
      if (end == U32View::npos) end = rest.find(U"</em>");
      if (end == U32View::npos) return false;
      const U32View thesis = end > 3 ? rest.substr(3, end - 3) : U32View();
      if (py_strip(thesis).empty()) return false;
      const U32View after = end + 4 < rest.size() ? rest.substr(end + 4) : U32View();
      return !py_strip(after).empty();
    });
  });

  // Every piece after a "*" (value.split("*")[1:]) contains a "-".
  r.add("format:sub-bullets", {}, [](CheckerContext&) {
    return make_lambda_checker([](U32View v) {
      const std::vector<U32View> pieces = py_split(v, U"*");
      for (size_t k = 1; k < pieces.size(); ++k)
        if (pieces[k].find(U'-') == U32View::npos) return false;
      return true;
    });
  });

  // Lines before the first "*" line add up their sentence counts (at least 2 by the first
  // bullet); after it every line must be a "*" line; at least two bullets. Quirk kept: the
  // flag that says "still in the sentences part" is the last line's sentence list, so a blank
  // line there (no sentences) makes the next non-bullet line fail.
  r.add("format:no_bullets_bullets", {}, [](CheckerContext&) {
    return make_lambda_checker([](U32View v) {
      bool in_sentences = true;
      size_t sentences = 0, bullets = 0;
      for (U32View line : py_split(v, U"\n")) {
        const U32View stripped = py_strip(line);
        if (!stripped.empty() && stripped[0] == '*') {
          in_sentences = false;
          if (sentences < 2) return false;
          ++bullets;
        } else if (in_sentences) {
          const size_t found = split_into_sentences(stripped).size();
          sentences += found;
          in_sentences = found > 0;
        } else {
          return false;
        }
      }
      return bullets >= 2;
    });
  });

  // No nltk.word_tokenize token is lower-case first with a lower- or upper-case rest (word[1:]
  // .islower() / .isupper(), which need a cased character). An empty token: IndexError.
  r.add("format:title_case", {}, [](CheckerContext&) {
    return make_lambda_checker([](U32View v) {
      // Sentence by sentence, stopping at the first offending token, before the sentences after
      // it are split (format:title_case pairs, strict: 0.385 -> 0.325 ms).
      bool follows = true;
      for_each_word_tokenize_span(v, [&](std::pair<size_t, size_t> span) {
        for (const U32& word : word_tokenize_span(v, span)) {
          if (word.empty()) return follows = false;
          const U32View head = U32View(word).substr(0, 1), tail = U32View(word).substr(1);
          if (py_isupper(head) && py_islower(tail)) continue;
          if (py_islower(head) && (py_isupper(tail) || py_islower(tail))) return follows = false;
        }
        return true;
      });
      return follows;
    });
  });

  r.add("format:output_template", {}, [](CheckerContext&) {
    return make_lambda_checker([](U32View v) {
      return py_contains(v, U"My Answer:") && py_contains(v, U"My Conclusion:") &&
             py_contains(v, U"Future Outlook:");
    });
  });

  r.add("format:no_whitespace", {}, [](CheckerContext&) {
    return make_lambda_checker([](U32View v) { return std::none_of(v.begin(), v.end(), py_isspace); });
  });
}

}  // namespace hirfast
