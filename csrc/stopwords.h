// NLTK's English stopword list (nltk.corpus.stopwords.words("english")), read once, lazily and
// thread-safely, from <assets>/nltk/corpora/stopwords/english.
#pragma once

#include <cstddef>

#include "unicode.h"

namespace hirfast {

// `word in stopwords.words("english")`. Throws AssetError (assets.h) if the list cannot be read.
bool is_english_stopword(U32View word);
// The length of the longest stopword (lower() never shortens a string: a longer token's lower
// form is no stopword either).
size_t english_stopword_max_length();

}  // namespace hirfast
