// IFBench sentence:* checkers (sentences as split_into_sentences splits them).
#include <algorithm>
#include <cmath>
#include <vector>

#include "checks_ifbench.h"
#include "ifbench_util.h"

namespace hirfast {

void register_ifbench_sentence(Registry& r) {
  // Each sentence scores its runs of words sharing a first character (2 for a pair, +1 per
  // further word; words lower-cased and lstripped of punctuation and spaces); the scores must
  // strictly increase from sentence to sentence.
  r.add("sentence:alliteration_increment", {}, [](CheckerContext&) {
    return make_lambda_checker([](U32View v) {
      int64_t previous = -1;
      std::vector<U32View> words;  // of the current sentence; one allocation for all of them
      return for_each_sentence(v, [&previous, &words](U32View sentence) {
        const U32 lower = lower_text(sentence);
        words.clear();
        for_each_word(lower, [&words](U32View w) {
          U32View clean = lstrip_punct_space(w);
          if (!clean.empty()) words.push_back(clean);
          return true;
        });
        int64_t score = 0;
        bool in_run = false;
        for (size_t k = 0; k + 1 < words.size(); ++k) {
          if (words[k][0] == words[k + 1][0]) {
            score += in_run ? 1 : 2;
            in_run = true;
          } else {
            in_run = false;
          }
        }
        if (score <= previous) return false;
        previous = score;
        return true;
      });
    });
  });

  // word.lower() in sentences[int(N - 1)].lower(), given at least N sentences.
  r.add("sentence:keyword", {"word", "N"}, [](CheckerContext& ctx) {
    ArgReader& a = *ctx.args;
    const U32 word = a.get_str("word");
    if (word.empty()) a.fail("word", "must not be empty (the reference draws a random keyword)");
    const double n = get_count(a, "N");
    const U32 keyword = py_lower(word);
    return make_lambda_checker([keyword, n](U32View v) {
      // Far more sentences than the text can hold (each needs a character of its own): False,
      // and no out-of-range float-to-int conversion below.
      if (n > 4.0 * static_cast<double>(v.size()) + 16) return false;
      // sentences[int(N - 1)] counts from the end only for N < 1 (then it is the last one).
      const int64_t index = static_cast<int64_t>(std::trunc(n - 1));
      size_t count = 0;
      U32 chosen;
      for_each_sentence(v, [&](U32View s) {
        if (index < 0 || count == static_cast<size_t>(index)) chosen = lower_text(s);
        ++count;
        return true;
      });
      if (static_cast<double>(count) < n || count == 0) return false;
      return py_contains(chosen, keyword);
    });
  });

  // Each sentence has exactly small_n more whitespace words (punctuation removed) than the one
  // before. No sentence at all: IndexError.
  r.add("sentence:increment", {"small_n"}, [](CheckerContext& ctx) {
    const double step = get_count(*ctx.args, "small_n");
    return make_lambda_checker([step](U32View v) {
      bool first = true;
      double previous = 0;
      const bool increasing = for_each_sentence(v, [&](U32View s) {
        // len(s.translate(no punctuation).split()) without building the text: removing
        // punctuation never adds or drops whitespace, so the words are the whitespace-separated
        // runs holding something besides punctuation.
        size_t count = 0;
        for_each_word(s, [&count](U32View w) {
          count += std::any_of(w.begin(), w.end(), [](char32_t c) { return !is_ascii_punct(c); });
          return true;
        });
        const double words = static_cast<double>(count);
        const bool ok = first || words == previous + step;
        first = false;
        previous = words;
        return ok;
      });
      return increasing && !first;  // no sentence at all: IndexError on sentences[0]
    });
  });
}

}  // namespace hirfast
