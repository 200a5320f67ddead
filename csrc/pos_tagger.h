// nltk.pos_tag for English: NLTK's greedy averaged-perceptron tagger (nltk 3.10.4 with the
// `averaged_perceptron_tagger_eng` model), ported to C++.
//
// The model is read once, lazily and thread-safely, from
// <assets>/tagger/averaged_perceptron_tagger_eng.bin (written by tools/gen_ifbench_assets.py from
// NLTK's JSON files). Tags come out exactly as nltk.pos_tag gives them: the same word
// normalization (!HYPHEN, !YEAR, !DIGITS, lower case), the same 14 features, weights summed in
// the same order in double precision, ties broken by the larger tag name as Python's
// max(classes, key=lambda c: (score, c)) does.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "unicode.h"

namespace hirfast {

class PerceptronTagger {
 public:
  // The English model, loaded on first use. Throws AssetError (assets.h) when the data file is
  // missing or malformed (every later call throws again).
  static const PerceptronTagger& english();

  // Tags of tokens[0 .. min(count, tokens.size())). The tag of token k depends only on tokens
  // 0 .. k+2, so asking for a prefix gives the same tags as tagging everything.
  std::vector<std::string_view> tag(const std::vector<U32View>& tokens,
                                    size_t count = static_cast<size_t>(-1)) const;

  // PerceptronTagger.normalize(word), as UTF-8.
  static std::string normalize(U32View word);

 private:
  struct FeatureWeights {
    uint32_t first = 0;  // index into weights_
    uint32_t count = 0;
  };
  struct ClassWeight {
    uint8_t cls;
    double weight;
  };
  explicit PerceptronTagger(const std::string& path);
  size_t predict(const std::vector<std::string>& features) const;

  std::string blob_;  // the file's bytes; the string_views below point into it
  std::vector<std::string_view> classes_;
  std::unordered_map<std::string_view, uint8_t> tagdict_;
  std::unordered_map<std::string_view, FeatureWeights> features_;
  std::vector<ClassWeight> weights_;
};

}  // namespace hirfast
