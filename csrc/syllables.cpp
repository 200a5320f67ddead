#include "syllables.h"

#include <stdexcept>
#include <string>
#include <unordered_map>

#include "assets.h"
#include "ifbench_util.h"

namespace hirfast {
namespace {

constexpr const char* kDictFile = "syllapy/data.csv";

struct SyllableDictionary {
  std::unordered_map<U32, int> counts;
  SyllableDictionary() {
    // syllapy reads it with csv.reader(text.splitlines()) into {row[0]: int(row[1])}. Every row
    // is a plain `word,count` (no quoting), which is all this reader accepts; the tests compare
    // it with syllapy.WORD_DICT entry by entry.
    const U32 text = read_asset_text(kDictFile);
    for (U32View line : py_splitlines(text)) {
      const size_t comma = line.find(U',');
      U32View word = line.substr(0, comma == U32View::npos ? 0 : comma);
      U32View number = comma == U32View::npos ? U32View() : line.substr(comma + 1);
      bool ok = comma != U32View::npos && !number.empty() && number.size() < 4 &&
                line.find(U'"') == U32View::npos && number.find(U',') == U32View::npos;
      int value = 0;
      for (char32_t c : number) {
        ok = ok && c >= '0' && c <= '9';
        value = value * 10 + static_cast<int>(c - '0');
      }
      if (!ok) throw AssetError(std::string("hirfast: unexpected line in ") + kDictFile);
      counts[U32(word)] = value;  // a later duplicate wins, as in the dict comprehension
    }
  }
};

const SyllableDictionary& dictionary() {
  static const SyllableDictionary dict;
  return dict;
}

bool is_vowel(char32_t c) {
  return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u' || c == 'y';
}

// syllapy._syllables: vowel groups, a silent final "e", a syllabic final "le".
int vowel_groups(U32View w) {
  int n = is_vowel(w[0]) ? 1 : 0;
  for (size_t k = 1; k < w.size(); ++k)
    if (is_vowel(w[k]) && !is_vowel(w[k - 1])) ++n;
  const size_t len = w.size();
  if (w[len - 1] == 'e') --n;
  if (len > 2 && w[len - 2] == 'l' && w[len - 1] == 'e' && !is_vowel(w[len - 3])) ++n;
  if (n == 0) ++n;
  return n;
}

}  // namespace

int syllapy_count(U32View word) {
  // count(w): w.strip().lower().strip(punctuation); 0 if empty or holding a digit; the
  // dictionary; else re.match("([^-]+)-(.+)", w) splits a compound at its first hyphen and
  // returns count(left) + count(right), or 0 if either is 0; else the vowel-group rule. Only the
  // right part can hold another hyphen, so the recursion is a loop here. (syllapy recurses and
  // would raise RecursionError on a word of about a thousand hyphenated parts.)
  const auto& counts = dictionary().counts;
  int total = 0;
  U32 current(word);
  while (true) {
    U32 lowered = py_lower(py_strip(current));
    U32View w = py_strip_chars(lowered, U"!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~");
    if (w.empty()) return 0;
    for (char32_t c : w)
      if (re_digit(c)) return 0;
    auto it = counts.find(U32(w));
    if (it != counts.end()) return it->second == 0 ? 0 : total + it->second;

    const size_t hyphen = w.find(U'-');
    const bool compound = hyphen != U32View::npos && hyphen > 0 && hyphen + 1 < w.size() && w[hyphen + 1] != '\n';
    if (!compound) return total + vowel_groups(w);
    // group(2) is `.+`: up to the first newline after the hyphen.
    const size_t newline = w.find(U'\n', hyphen + 1);
    U32View left = w.substr(0, hyphen);
    U32View right = w.substr(hyphen + 1, newline == U32View::npos ? U32View::npos : newline - hyphen - 1);
    const int left_count = syllapy_count(left);  // no hyphen in `left`: no further recursion
    if (left_count == 0) return 0;
    total += left_count;
    current = U32(right);
  }
}

}  // namespace hirfast
