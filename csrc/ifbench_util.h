// Text primitives the IFBench checkers share, each named after the Python expression it
// reproduces (allenai/IFBench 2025-07 leans on `string.punctuation`, `\w+` runs and NLTK).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "unicode.h"

namespace hirfast {

// c in string.punctuation (the 32 ASCII punctuation characters), from a 128-entry table indexed
// by the low 7 bits, without a branch: four range tests were most of the loops that drop
// punctuation from whole responses (words:prime_lengths, strict: 0.053 -> 0.037 ms).
struct AsciiPunctTable {
  uint8_t punct[128] = {};
  constexpr AsciiPunctTable() {
    for (char32_t c = 0; c < 128; ++c)
      punct[c] = (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
                 (c >= 0x7B && c <= 0x7E);
  }
};
inline constexpr AsciiPunctTable kAsciiPunct;
constexpr bool is_ascii_punct(char32_t c) { return kAsciiPunct.punct[c & 127] & (c < 128); }
inline bool is_punct_or_space(char32_t c) { return c == ' ' || is_ascii_punct(c); }

// s.translate(str.maketrans('', '', string.punctuation))
U32 remove_ascii_punct(U32View s);

// s.lower(): py_lower, with a fast path for ASCII-only text (most responses; a third of the time
// of the checks that lower a whole response).
U32 lower_text(U32View s);

// The words of s.split(), one at a time, without building the list: `f(word)` returning false
// stops the walk, and for_each_word then returns false.
template <class F>
bool for_each_word(U32View s, F f) {
  size_t i = 0;
  const size_t n = s.size();
  while (true) {
    while (i < n && py_isspace(s[i])) ++i;
    if (i == n) return true;
    size_t j = i;
    while (j < n && !py_isspace(s[j])) ++j;
    if (!f(s.substr(i, j - i))) return false;
    i = j;
  }
}
// len(s.split())
size_t count_words(U32View s);

// A hash of a word's code points, for tables of words.
inline size_t hash_code_points(U32View w) {
  // Two code points a step: the multiplications are a chain, one per step.
  uint64_t h = 0xcbf29ce484222325ull ^ w.size();
  size_t i = 0;
  for (; i + 2 <= w.size(); i += 2) h = (h ^ (w[i] | static_cast<uint64_t>(w[i + 1]) << 32)) * 0x9E3779B97F4A7C15ull;
  if (i < w.size()) h = (h ^ w[i]) * 0x9E3779B97F4A7C15ull;
  return static_cast<size_t>(h ^ (h >> 29));
}

// How many times each word was added (the texts the views point into outlive the table), in one
// open-addressing array: std::unordered_set / map allocated a node per distinct word and hashed
// through std::_Hash_bytes, most of the checks that count distinct words.
class WordCounter {
 public:
  WordCounter() : slots_(256), mask_(255) {}
  // Sized for about `expected` distinct words from the start (no regrowth on the way there).
  explicit WordCounter(size_t expected) {
    size_t capacity = 256;
    while (capacity < 2 * expected) capacity *= 2;
    slots_.resize(capacity);
    mask_ = capacity - 1;
  }
  // The word's count after this addition.
  size_t add(U32View w) {
    if ((size_ + 1) * 2 > slots_.size()) grow();
    Slot& slot = slots_[find(w)];
    if (!slot.word.data()) {
      slot.word = w.data() ? w : U32View(kEmptyWord, 0);  // a null data() marks a free slot
      ++size_;
    }
    return ++slot.count;
  }
  size_t size() const { return size_; }  // distinct words
  size_t count(U32View w) const { return slots_[find(w)].count; }

 private:
  struct Slot {
    U32View word;
    size_t count = 0;
  };
  static constexpr char32_t kEmptyWord[1] = {0};
  // The slot holding w, or the free one where it would go.
  size_t find(U32View w) const {
    size_t i = hash_code_points(w) & mask_;
    while (slots_[i].word.data() && slots_[i].word != w) i = (i + 1) & mask_;
    return i;
  }
  void grow() {
    std::vector<Slot> old(slots_.size() * 2);
    old.swap(slots_);
    mask_ = slots_.size() - 1;
    for (const Slot& s : old)
      if (s.word.data()) slots_[find(s.word)] = s;
  }
  std::vector<Slot> slots_;
  size_t mask_;
  size_t size_ = 0;
};
// s.strip / lstrip / rstrip(string.punctuation + ' ')
U32View strip_punct_space(U32View s);
U32View lstrip_punct_space(U32View s);
U32View rstrip_punct_space(U32View s);

// Python's seq[index] bounds rule: a negative index counts from the end. Returns false where
// Python raises IndexError.
inline bool py_index(int64_t index, size_t size, size_t* out) {
  if (index < 0) index += static_cast<int64_t>(size);
  if (index < 0 || static_cast<uint64_t>(index) >= size) return false;
  *out = static_cast<size_t>(index);
  return true;
}

// unicodedata.normalize("NFKD", s).encode("ASCII", "ignore").decode("ASCII")
std::string nfkd_ascii(U32View s);

// The text of a data file under the assets directory, decoded as UTF-8 (AssetError
// naming the file if it is missing or not UTF-8).
U32 read_asset_text(const std::string& relative);

// IFBench 2025-07's instructions_util.split_into_sentences: not NLTK, but the rule-based
// splitter Google's IFEval utilities carry (abbreviation, acronym, website and decimal rules as
// regex substitutions that mark periods with "<prd>" and sentence ends with "<stop>", then a
// split at "<stop>"). Text that itself contains "<prd>" or "<stop>" goes through the same
// substitutions, so it splits exactly as in Python. (IFBench's upstream HEAD switched to
// nltk.sent_tokenize; the verdict files were made with this one.)
std::vector<U32> split_into_sentences(U32View text);
// The same sentences one at a time, without building the list: `f(sentence)` gets a view that is
// valid during the call; returning false stops the walk (for_each_sentence then returns false).
bool for_each_sentence(U32View text, const std::function<bool(U32View)>& f);

// nltk.word_tokenize(text): Punkt sentences, then the Treebank word tokenizer (treebank.h).
std::vector<U32> word_tokenize(U32View text);

// The Punkt sentence spans of `text` (start, end), and nltk.word_tokenize's tokens of one of
// them: word_tokenize(text) is the concatenation over the spans in order. Checks that read a few
// tokens at either end tokenize only the sentences they need.
std::vector<std::pair<size_t, size_t>> word_tokenize_spans(U32View text);
// The same spans one at a time: `f(span)` returning false stops before the rest of the text is
// split into sentences.
void for_each_word_tokenize_span(U32View text, const std::function<bool(std::pair<size_t, size_t>)>& f);
std::vector<U32> word_tokenize_span(U32View text, std::pair<size_t, size_t> span);

}  // namespace hirfast
