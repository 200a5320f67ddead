#include "stopwords.h"

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "assets.h"
#include "ifbench_util.h"

namespace hirfast {
namespace {

struct StopwordList {
  U32 text;
  // Open addressing over views into `text` (empty: a free slot): the lookup runs for every token
  // of ratio:stop_words, where std::unordered_set's hash and prime-modulo buckets were half of
  // the check.
  std::vector<U32View> slots;
  size_t mask = 0;
  size_t max_length = 0;
  StopwordList() : text(read_asset_text("nltk/corpora/stopwords/english")) {
    // WordListCorpusReader.words: str.splitlines(), blank lines (rstrip() empty) dropped, the
    // remaining lines kept as they are (so no word is empty).
    std::vector<U32View> words;
    for (U32View line : py_splitlines(text))
      if (!py_rstrip(line).empty()) words.push_back(line);
    if (words.empty()) throw AssetError("hirfast: empty English stopword list");
    size_t capacity = 16;
    while (capacity < 4 * words.size()) capacity *= 2;
    slots.assign(capacity, U32View());
    mask = capacity - 1;
    for (U32View w : words) {
      max_length = std::max(max_length, w.size());
      size_t i = hash_code_points(w) & mask;
      while (!slots[i].empty() && slots[i] != w) i = (i + 1) & mask;
      slots[i] = w;
    }
  }
  bool contains(U32View w) const {
    if (w.empty() || w.size() > max_length) return false;
    for (size_t i = hash_code_points(w) & mask; !slots[i].empty(); i = (i + 1) & mask)
      if (slots[i] == w) return true;
    return false;
  }
};

const StopwordList& stopword_list() {
  static const StopwordList list;
  return list;
}

}  // namespace

bool is_english_stopword(U32View word) { return stopword_list().contains(word); }

size_t english_stopword_max_length() { return stopword_list().max_length; }

}  // namespace hirfast
