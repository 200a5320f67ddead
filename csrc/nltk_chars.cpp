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

}  // namespace hirfast
