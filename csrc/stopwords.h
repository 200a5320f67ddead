// NLTK's English stopword list (nltk.corpus.stopwords.words("english")), read once, lazily and
// thread-safely, from <assets>/nltk/corpora/stopwords/english.
#pragma once

#include "unicode.h"

namespace hirfast {

// `word in stopwords.words("english")`. Throws AssetError (assets.h) if the list cannot be read.
bool is_english_stopword(U32View word);

}  // namespace hirfast
