#include "stopwords.h"

#include <stdexcept>
#include <unordered_set>

#include "assets.h"
#include "ifbench_util.h"

namespace hirfast {
namespace {

struct StopwordList {
  U32 text;
  std::unordered_set<U32View> words;  // views into `text`
  StopwordList() : text(read_asset_text("nltk/corpora/stopwords/english")) {
    // WordListCorpusReader.words: str.splitlines(), blank lines (rstrip() empty) dropped, the
    // remaining lines kept as they are.
    for (U32View line : py_splitlines(text))
      if (!py_rstrip(line).empty()) words.insert(line);
    if (words.empty()) throw AssetError("hirfast: empty English stopword list");
  }
};

const StopwordList& stopword_list() {
  static const StopwordList list;
  return list;
}

}  // namespace

bool is_english_stopword(U32View word) { return stopword_list().words.count(word) > 0; }

}  // namespace hirfast
