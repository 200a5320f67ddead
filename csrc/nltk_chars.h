// Character classes of the PyPI `regex` module, which NLTK 3.10.4 compiles every tokenizer
// pattern with (nltk.redos), as opposed to CPython's `re` (see unicode.h for those).
//
// `regex` has its own Unicode database and builds \w from Unicode properties, so about 30,000
// code points differ from `re`: combining marks are \w here but not in `re`, '²' is the other way
// round, and \x1c-\x1f are not \s here. The tables come from tools/gen_nltk_chars.py, which
// reads them off the installed `regex` module.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "unicode.h"

namespace hirfast {

namespace nltk_char_flag {
enum : uint8_t {
  kWord = 1 << 0,
  kDigit = 1 << 1,
  kSpace = 1 << 2,
};
}  // namespace nltk_char_flag

uint8_t nltk_char_flags(char32_t c);

// regex.match(r"\w", chr(c)), with NLTK's flags (Unicode, version 0).
inline bool nre_word(char32_t c) {
  if (c < 128) return c == '_' || (c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'z');
  return nltk_char_flags(c) & nltk_char_flag::kWord;
}
// regex.match(r"\d", chr(c))
inline bool nre_digit(char32_t c) {
  if (c < 128) return c >= '0' && c <= '9';
  return nltk_char_flags(c) & nltk_char_flag::kDigit;
}
// regex.match(r"\s", chr(c)): Python's str.isspace() without \x1c-\x1f.
inline bool nre_space(char32_t c) {
  if (c < 128) return c == ' ' || (c >= 9 && c <= 13);
  return nltk_char_flags(c) & nltk_char_flag::kSpace;
}

// nltk.tokenize.RegexpTokenizer(r"\w+").tokenize(s): the maximal runs of nre_word characters
// (IFEval's count_words, IFBench's word counts and stopword tokens).
std::vector<U32View> nltk_word_runs(U32View s);
size_t count_nltk_word_runs(U32View s);

// The `regex` version the tables were generated from.
const char* nltk_chars_regex_version();

}  // namespace hirfast
