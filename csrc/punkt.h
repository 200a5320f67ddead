// NLTK 3.10.4's English Punkt sentence splitter, ported exactly.
//
// `punkt_sentences(text)` returns what `nltk.sent_tokenize(text)` (that is,
// `PunktTokenizer("english").tokenize(text)`) returns, on any Unicode input, with the `punkt_tab`
// English parameters shipped in hirfast/assets/nltk (read once, on first use, thread-safely).
// NLTK matches its patterns with the PyPI `regex` module, whose \w, \d and \s differ from `re`'s;
// the scanners here use those classes (nltk_chars.h), and Python's str methods (unicode.h) where
// NLTK calls str methods (lower, isupper, strip, rstrip).
//
// Throws std::runtime_error if the parameter files cannot be read.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hirfast {

// nltk.tokenize.sent_tokenize(text, language="english"): the sentences, as
// PunktTokenizer("english").tokenize(text) returns them.
std::vector<std::u32string> punkt_sentences(std::u32string_view text);
// The same as (start, end) code-point spans (PunktTokenizer.span_tokenize).
std::vector<std::pair<size_t, size_t>> punkt_sentence_spans(std::u32string_view text);
// The same spans in order, to `f(start, end)` until it returns false: the text after the last
// span a caller needs is not split (checks that read the first tokens only).
void for_each_punkt_sentence_span(std::u32string_view text, const std::function<bool(size_t, size_t)>& f);
// len(punkt_sentences(text)), without building the strings.
size_t punkt_count_sentences(std::u32string_view text);
// An upper bound on punkt_count_sentences(text) without splitting it: one more than its
// sentence-end characters ('.', '?', '!'), counted only until the bound reaches `enough`.
size_t punkt_sentences_at_most(std::u32string_view text, size_t enough);

}  // namespace hirfast
