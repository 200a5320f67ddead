#include "emoji_table.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <unordered_set>
#include <vector>

#include "assets.h"
#include "ifbench_util.h"

namespace hirfast {
namespace {

constexpr const char* kTableFile = "emoji/emoji_2.16.0.txt";

struct EmojiTable {
  std::vector<char32_t> single;     // one-code-point keys, sorted (1,409 of the 5,244)
  std::unordered_set<U32> sequences;  // the rest

  EmojiTable() {
    const U32 text = read_asset_text(kTableFile);
    for (U32View line : py_splitlines(text)) {
      if (line.empty() || line[0] == '#') continue;
      U32 key;
      for (U32View hex : py_split_ws(line)) {
        uint32_t cp = 0;
        for (char32_t h : hex) {
          int d = (h >= '0' && h <= '9') ? int(h - '0') : (h >= 'A' && h <= 'F') ? int(h - 'A' + 10) : -1;
          if (d < 0 || cp > 0x10FFFF) throw AssetError(std::string("hirfast: malformed line in ") + kTableFile);
          cp = cp * 16 + static_cast<uint32_t>(d);
        }
        key.push_back(static_cast<char32_t>(cp));
      }
      if (key.size() == 1)
        single.push_back(key[0]);
      else if (!key.empty())
        sequences.insert(std::move(key));
    }
    std::sort(single.begin(), single.end());
    if (single.empty()) throw AssetError(std::string("hirfast: empty emoji table ") + kTableFile);
  }
};

const EmojiTable& table() {
  static const EmojiTable t;  // thread-safe one-time initialization
  return t;
}

}  // namespace

bool is_emoji(U32View s) {
  const EmojiTable& t = table();
  if (s.size() == 1) return std::binary_search(t.single.begin(), t.single.end(), s[0]);
  return !s.empty() && t.sequences.count(U32(s)) > 0;
}

}  // namespace hirfast
