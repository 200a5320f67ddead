// syllapy.count(word) from syllapy 0.8.0: a pronunciation dictionary (shipped as
// <assets>/syllapy/data.csv, read once, lazily and thread-safely) with a vowel-group rule for
// words it does not know and a split at the first hyphen for compounds.
#pragma once

#include "unicode.h"

namespace hirfast {

// Throws AssetError (assets.h) if the dictionary cannot be read.
int syllapy_count(U32View word);

}  // namespace hirfast
