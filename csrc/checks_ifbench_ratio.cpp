// IFBench ratio:* checkers.
#include <algorithm>
#include <unordered_set>

#include "checks_ifbench.h"
#include "ifbench_util.h"
#include "stopwords.h"

namespace hirfast {
namespace {

bool ends_with(U32View s, char32_t c) { return !s.empty() && s.back() == c; }

// A character trigram (nltk.ngrams over the string), packed for hashing.
struct Trigram {
  char32_t a, b, c;
  bool operator==(const Trigram& o) const { return a == o.a && b == o.b && c == o.c; }
};
struct TrigramHash {
  size_t operator()(const Trigram& t) const {
    uint64_t h = (static_cast<uint64_t>(t.a) * 0x9E3779B97F4A7C15ull) ^ (static_cast<uint64_t>(t.b) << 21) ^ t.c;
    return static_cast<size_t>(h ^ (h >> 29));
  }
};
std::unordered_set<Trigram, TrigramHash> trigrams(U32View s) {
  std::unordered_set<Trigram, TrigramHash> out;
  for (size_t k = 0; k + 3 <= s.size(); ++k) out.insert({s[k], s[k + 1], s[k + 2]});
  return out;
}

}  // namespace

void register_ifbench_ratio(Registry& r) {
  // (stopword tokens / RegexpTokenizer(r"\w+") tokens) * 100 <= percentage; no token:
  // ZeroDivisionError.
  r.add("ratio:stop_words", {"percentage"}, [](CheckerContext& ctx) {
    const double pct = get_count(*ctx.args, "percentage");
    return make_lambda_checker([pct](U32View v) {
      const std::vector<U32View> tokens = nltk_word_runs(v);
      if (tokens.empty()) return false;
      size_t stop = 0;
      for (U32View t : tokens) stop += is_english_stopword(py_lower(t)) ? 1 : 0;
      const double ratio = static_cast<double>(stop) / static_cast<double>(tokens.size());
      return ratio * 100 <= pct;
    });
  });

  // Sentences ending in "." == 2 x sentences ending in "?".
  r.add("ratio:sentence_type", {}, [](CheckerContext&) {
    return make_lambda_checker([](U32View v) {
      size_t dot = 0, question = 0;
      for (const U32& s : split_into_sentences(v)) {
        dot += ends_with(s, '.');
        question += ends_with(s, '?');
      }
      return dot == 2 * question;
    });
  });

  // As many sentences end in "." as in "?" and as in "!".
  r.add("ratio:sentence_balance", {}, [](CheckerContext&) {
    return make_lambda_checker([](U32View v) {
      size_t dot = 0, question = 0, bang = 0;
      for (const U32& s : split_into_sentences(v)) {
        dot += ends_with(s, '.');
        question += ends_with(s, '?');
        bang += ends_with(s, '!');
      }
      return dot == question && question == bang;
    });
  });

  // |trigrams(value) & trigrams(reference)| / |trigrams(value)| * 100 within percentage +- 2
  // (character trigrams; a response under 3 characters: ZeroDivisionError).
  r.add("ratio:overlap", {"reference_text", "percentage"}, [](CheckerContext& ctx) {
    const U32 reference = ctx.args->get_str("reference_text");
    const double pct = get_count(*ctx.args, "percentage");
    auto ref = std::make_shared<const std::unordered_set<Trigram, TrigramHash>>(trigrams(reference));
    return make_lambda_checker([ref, pct](U32View v) {
      const auto mine = trigrams(v);
      if (mine.empty()) return false;
      size_t shared = 0;
      for (const Trigram& t : mine) shared += ref->count(t);
      const double overlap = static_cast<double>(shared) / static_cast<double>(mine.size());
      return pct - 2 <= overlap * 100 && overlap * 100 <= pct + 2;
    });
  });

  // Exactly three sentences whose strip() have the same length.
  r.add("ratio:sentence_words", {}, [](CheckerContext&) {
    return make_lambda_checker([](U32View v) {
      const std::vector<U32> sentences = split_into_sentences(v);
      if (sentences.size() != 3) return false;
      const size_t len = py_strip(sentences[0]).size();
      return std::all_of(sentences.begin(), sentences.end(),
                         [len](const U32& s) { return py_strip(s).size() == len; });
    });
  });
}

}  // namespace hirfast
