// NLTK 3.10.4's word tokenizer (nltk.tokenize.destructive.NLTKWordTokenizer and
// nltk.word_tokenize), ported exactly, on any Unicode input.
//
// NLTKWordTokenizer applies an ordered list of regex substitutions (quotes, punctuation,
// brackets, dashes, clitics, MacIntyre's contractions) and splits the result on whitespace. Most
// of its patterns are compiled with the PyPI `regex` module (nltk_chars.h classes), the
// contractions with CPython's `re` (unicode.h classes); the scanners here follow each one.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hirfast {

// nltk.word_tokenize(text) with language="english", preserve_line=False: Punkt sentences
// (punkt.h), then NLTKWordTokenizer on each sentence.
std::vector<std::u32string> nltk_word_tokenize(std::u32string_view text);
// NLTKWordTokenizer().tokenize(text) alone (no sentence splitting).
std::vector<std::u32string> treebank_tokenize(std::u32string_view text);
// The tokens of nltk_word_tokenize(text), each passed to fn as a view that is valid during the
// call only: for callers that inspect tokens without keeping them (no allocation per token).
void for_each_nltk_word_token(std::u32string_view text, const std::function<void(std::u32string_view)>& fn);
// Bounds (at least, at most) on how many tokens of nltk_word_tokenize(text) satisfy
// str.isupper(), found in one pass without tokenizing (see the reasons in treebank.cpp). The
// pass may stop once the lower bound reaches `enough`; the upper bound is then text.size().
std::pair<size_t, size_t> nltk_upper_token_bounds(std::u32string_view text, size_t enough = SIZE_MAX);

}  // namespace hirfast
