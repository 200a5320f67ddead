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
  // Views into `text`, in ifbench_util.h's open-addressing table: the lookup runs for every token
  // of ratio:stop_words, where std::unordered_set's hash and prime-modulo buckets were half of
  // the check.
  WordCounter words;
  size_t max_length = 0;
  // The stopwords of 1 to kMaxPackedLetters a-z letters by their packed key (0: a free slot),
  // tested without building the lower-cased token (a third of ratio:stop_words).
  std::vector<uint64_t> packed_slots;
  size_t packed_mask = 0;
  StopwordList() : text(read_asset_text("nltk/corpora/stopwords/english")) {
    // WordListCorpusReader.words: str.splitlines(), blank lines (rstrip() empty) dropped, the
    // remaining lines kept as they are (so no word is empty).
    std::vector<U32View> lines;
    for (U32View line : py_splitlines(text))
      if (!py_rstrip(line).empty()) lines.push_back(line);
    if (lines.empty()) throw AssetError("hirfast: empty English stopword list");
    for (U32View w : lines) {
      words.add(w);
      max_length = std::max(max_length, w.size());
    }
    size_t capacity = 16;
    while (capacity < 4 * lines.size()) capacity *= 2;
    packed_slots.assign(capacity, 0);
    packed_mask = capacity - 1;
    for (U32View w : lines) {
      uint64_t key;
      // Only words already lower-case: a token matches a stopword after lower().
      if (std::any_of(w.begin(), w.end(), [](char32_t c) { return c - 'A' < 26; }) || !pack_ascii_letters(w, &key))
        continue;
      size_t i = packed_slot(key);
      while (packed_slots[i] != 0 && packed_slots[i] != key) i = (i + 1) & packed_mask;
      packed_slots[i] = key;
    }
  }
  size_t packed_slot(uint64_t key) const { return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> 40) & packed_mask; }
  bool contains_packed(uint64_t key) const {
    for (size_t i = packed_slot(key); packed_slots[i] != 0; i = (i + 1) & packed_mask)
      if (packed_slots[i] == key) return true;
    return false;
  }
  bool contains(U32View w) const { return !w.empty() && w.size() <= max_length && words.count(w) > 0; }
};

const StopwordList& stopword_list() {
  static const StopwordList list;
  return list;
}

}  // namespace

bool is_english_stopword(U32View word) { return stopword_list().contains(word); }

size_t english_stopword_max_length() { return stopword_list().max_length; }

bool is_english_stopword_packed(uint64_t key) { return stopword_list().contains_packed(key); }

}  // namespace hirfast
