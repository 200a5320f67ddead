#include "stopwords.h"

#include <stdexcept>
#include <unordered_set>

#include "assets.h"
#include "ifbench_util.h"

namespace hirfast {
namespace {

struct StopwordList {
  std::unordered_set<U32> words;
  StopwordList() {
    // WordListCorpusReader.words: str.splitlines(), blank lines (rstrip() empty) dropped, the
    // remaining lines kept as they are.
    const U32 text = read_asset_text("nltk/corpora/stopwords/english");
    for (U32View line : py_splitlines(text))
      if (!py_rstrip(line).empty()) words.emplace(line);
    if (words.empty()) throw AssetError("hirfast: empty English stopword list");
  }
};

const StopwordList& stopword_list() {
  static const StopwordList list;
  return list;
}

}  // namespace

bool is_english_stopword(U32View word) { return stopword_list().words.count(U32(word)) > 0; }

}  // namespace hirfast
