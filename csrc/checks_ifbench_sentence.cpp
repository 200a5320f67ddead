// IFBench sentence:* checkers (sentences as split_into_sentences splits them).
#include <cmath>

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
      for (const U32& sentence : split_into_sentences(v)) {
        const U32 lower = lower_text(sentence);
        std::vector<U32View> words;
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
      }
      return true;
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
      const std::vector<U32> sentences = split_into_sentences(v);
      if (static_cast<double>(sentences.size()) < n) return false;
      size_t k = 0;
      if (!py_index(static_cast<int64_t>(std::trunc(n - 1)), sentences.size(), &k)) return false;
      return py_contains(lower_text(sentences[k]), keyword);
    });
  });

  // Each sentence has exactly small_n more whitespace words (punctuation removed) than the one
  // before. No sentence at all: IndexError.
  r.add("sentence:increment", {"small_n"}, [](CheckerContext& ctx) {
    const double step = get_count(*ctx.args, "small_n");
    return make_lambda_checker([step](U32View v) {
      const std::vector<U32> sentences = split_into_sentences(v);
      if (sentences.empty()) return false;
      auto count = [](const U32& s) { return count_words(remove_ascii_punct(s)); };
      double previous = static_cast<double>(count(sentences[0]));
      for (size_t k = 1; k < sentences.size(); ++k) {
        const double words = static_cast<double>(count(sentences[k]));
        if (words != previous + step) return false;
        previous = words;
      }
      return true;
    });
  });
}

}  // namespace hirfast
