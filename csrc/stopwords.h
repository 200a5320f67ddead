// NLTK's English stopword list (nltk.corpus.stopwords.words("english")), read once, lazily and
// thread-safely, from <assets>/nltk/corpora/stopwords/english.
#pragma once

#include <cstddef>
#include <cstdint>

#include "unicode.h"

namespace hirfast {

// `word in stopwords.words("english")`. Throws AssetError (assets.h) if the list cannot be read.
bool is_english_stopword(U32View word);
// The length of the longest stopword (lower() never shortens a string: a longer token's lower
// form is no stopword either).
size_t english_stopword_max_length();

// A word of 1 to kMaxPackedLetters ASCII letters, lower-cased, as one number: letter i (a = 1 ...
// z = 26) in bits 5i to 5i + 4. False (key unspecified) for any other word.
constexpr size_t kMaxPackedLetters = 12;
inline bool pack_ascii_letters(U32View word, uint64_t* key) {
  if (word.empty() || word.size() > kMaxPackedLetters) return false;
  uint64_t packed = 0;
  for (size_t i = 0; i < word.size(); ++i) {
    const char32_t c = word[i];
    const char32_t lower = c - 'A' < 26 ? c + 32 : c;
    if (lower - 'a' >= 26) return false;
    packed |= static_cast<uint64_t>(lower - 'a' + 1) << (5 * i);
  }
  *key = packed;
  return true;
}
// is_english_stopword(word.lower()) for the word packed into `key` by pack_ascii_letters.
bool is_english_stopword_packed(uint64_t key);

}  // namespace hirfast
