#include "nltk_chars.h"

namespace hirfast {
namespace {
#include "nltk_chars_data.inc"
}  // namespace

uint8_t nltk_char_flags(char32_t c) {
  if (c >= 0x110000) return 0;
  return kNltkChars_data[static_cast<size_t>(kNltkChars_index[c >> 8]) * 256 + (c & 255)];
}

const char* nltk_chars_regex_version() { return kRegexVersion; }

namespace {
// A table for ASCII: nre_word's range tests were ~25 instructions a character, and word counts
// run over whole responses.
struct AsciiWordTable {
  bool word[128] = {};
  constexpr AsciiWordTable() {
    for (char32_t c = 0; c < 128; ++c)
      word[c] = c == '_' || (c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'z');
  }
};
constexpr AsciiWordTable kAsciiWord;

inline bool is_word(char32_t c) { return c < 128 ? kAsciiWord.word[c] : nre_word(c); }
}  // namespace

std::vector<U32View> nltk_word_runs(U32View s) {
  // The positions where the class changes (word / not word), found without a branch on the
  // class (a branch at every word boundary mispredicted: ratio:stop_words pairs, strict,
  // 0.31 -> 0.175 ms); runs are then the pairs of changes.
  std::vector<size_t> changes(s.size() + 1);
  size_t n = 0;
  bool in_word = false;
  for (size_t k = 0; k < s.size(); ++k) {
    const bool w = is_word(s[k]);
    changes[n] = k;
    n += w != in_word;
    in_word = w;
  }
  if (in_word) changes[n++] = s.size();
  std::vector<U32View> out(n / 2);
  for (size_t r = 0; r < n / 2; ++r) out[r] = s.substr(changes[2 * r], changes[2 * r + 1] - changes[2 * r]);
  return out;
}

size_t count_nltk_word_runs(U32View s) {
  size_t n = 0;
  bool in_word = false;
  for (char32_t c : s) {
    const bool w = is_word(c);
    n += w && !in_word;
    in_word = w;
  }
  return n;
}

}  // namespace hirfast
