// emoji.is_emoji from the `emoji` package, version 2.16.0: whether a string is exactly one key
// of emoji.EMOJI_DATA. The keys ship in <assets>/emoji/emoji_2.16.0.txt (from
// tools/gen_ifbench_assets.py) and are read once, lazily and thread-safely.
#pragma once

#include "unicode.h"

namespace hirfast {

// Throws AssetError (assets.h) if the data file is missing or malformed.
bool is_emoji(U32View s);

}  // namespace hirfast
