// IFBench words:* checkers.
#include <algorithm>

#include "checks_ifbench.h"
#include "ifbench_util.h"
#include "pos_tagger.h"
#include "syllables.h"

namespace hirfast {
namespace {

bool is_ascii_consonant(char32_t c) {
  return c >= 'b' && c <= 'z' && c != 'e' && c != 'i' && c != 'o' && c != 'u';
}

bool is_prime_up_to_97(size_t n) {
  static const size_t kPrimes[] = {2,  3,  5,  7,  11, 13, 17, 19, 23, 29, 31, 37, 41,
                                   43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97};
  return std::find(std::begin(kPrimes), std::end(kPrimes), n) != std::end(kPrimes);
}

// First code point of s.lower(): the first code point of chr(s[0]).lower() (a full case mapping
// may give more than one; the final-sigma rule never applies at position 0).
char32_t first_of_lower(U32View s) {
  U32 low;
  append_lower(s[0], &low);
  return low[0];
}

}  // namespace

void register_ifbench_words(Registry& r) {
  // After removing ASCII punctuation, word k (k >= 1) starts with the letter after the one word
  // k-1 should start with, from words[0][0].lower() (which must be a-z) and wrapping at z.
  r.add("words:alphabet", {}, [](CheckerContext&) {
    return make_lambda_checker([](U32View v) {
      const U32 text = remove_ascii_punct(v);
      const std::vector<U32View> words = py_split_ws(strip_punct_space(text));
      if (words.empty()) return false;
      U32 first;
      append_lower(words[0][0], &first);
      if (first.size() != 1 || first[0] < 'a' || first[0] > 'z') return false;
      char32_t expected = first[0];
      for (size_t k = 1; k < words.size(); ++k) {
        expected = expected == 'z' ? 'a' : expected + 1;
        if (first_of_lower(words[k]) != expected) return false;
      }
      return true;
    });
  });

  // One line (after strip) using at most three of a, e, i, o, u (after lower()).
  r.add("words:vowel", {}, [](CheckerContext&) {
    return make_lambda_checker([](U32View v) {
      U32View text = py_strip(v);
      if (text.find(U'\n') != U32View::npos) return false;
      const U32 lower = py_lower(text);
      int used = 0;
      for (char32_t vowel : U32View(U"aeiou")) used += lower.find(vowel) != U32::npos;
      return used <= 3;
    });
  });

  // Every whitespace word of value.lower() has two adjacent ASCII consonants (y included).
  r.add("words:consonants", {}, [](CheckerContext&) {
    return make_lambda_checker([](U32View v) {
      const U32 lower = lower_text(v);
      return for_each_word(lower, [](U32View w) {
        for (size_t k = 0; k + 1 < w.size(); ++k)
          if (is_ascii_consonant(w[k]) && is_ascii_consonant(w[k + 1])) return true;
        return false;
      });
    });
  });

  // At least 10 words (punctuation removed, lower-cased) of 5+ characters that read the same
  // reversed.
  r.add("words:palindrome", {}, [](CheckerContext&) {
    return make_lambda_checker([](U32View v) {
      const U32 lower = lower_text(remove_ascii_punct(v));
      size_t found = 0;
      for_each_word(lower, [&found](U32View w) {
        found += w.size() >= 5 && std::equal(w.begin(), w.begin() + w.size() / 2, w.rbegin());
        return found < 10;
      });
      return found >= 10;
    });
  });

  // Every whitespace word (punctuation removed) has a prime length (primes up to 97 only).
  r.add("words:prime_lengths", {}, [](CheckerContext&) {
    return make_lambda_checker([](U32View v) {
      const U32 text = remove_ascii_punct(v);
      return for_each_word(text, [](U32View w) { return is_prime_up_to_97(w.size()); });
    });
  });

  // nltk.pos_tag(nltk.word_tokenize(value))[0][1] contains "VB".
  r.add("words:start_verb", {}, [](CheckerContext&) {
    return make_lambda_checker([](U32View v) {
      // Only the first tag is needed, and it reads only the first three tokens: the sentences
      // after those are neither split nor tokenized.
      std::vector<U32> tokens;
      for_each_word_tokenize_span(v, [&](std::pair<size_t, size_t> span) {
        for (U32& t : word_tokenize_span(v, span)) tokens.push_back(std::move(t));
        return tokens.size() < 3;
      });
      if (tokens.empty()) return false;
      const std::vector<U32View> views(tokens.begin(), tokens.end());
      const auto tags = PerceptronTagger::english().tag(views, 1);
      return tags[0].find("VB") != std::string_view::npos;
    });
  });

  // No whitespace word of value.lower() without punctuation occurs more than small_n times.
  r.add("words:repeats", {"small_n"}, [](CheckerContext& ctx) {
    const double limit = get_count(*ctx.args, "small_n");
    return make_lambda_checker([limit](U32View v) {
      const U32 text = remove_ascii_punct(lower_text(v));
      WordCounter counts;
      return for_each_word(text, [&counts, limit](U32View w) { return static_cast<double>(counts.add(w)) <= limit; });
    });
  });

  // syllapy.count(w) % 2 alternates over the words (punctuation removed, lower-cased).
  r.add("words:odd_even_syllables", {}, [](CheckerContext&) {
    return make_lambda_checker([](U32View v) {
      const U32 lower = lower_text(remove_ascii_punct(v));
      int prev = -1;
      return for_each_word(lower, [&prev](U32View w) {
        const int parity = syllapy_count(w) % 2;
        const bool alternates = parity != prev;
        prev = parity;
        return alternates;
      });
    });
  });

  // For consecutive sentences, the last whitespace word of the first (rstrip punctuation and
  // spaces) equals, lower-cased, the first word of the next (lstrip). An empty side: IndexError.
  r.add("words:last_first", {}, [](CheckerContext&) {
    return make_lambda_checker([](U32View v) {
      bool first = true;
      U32 last_word;  // lower-cased; empty: the previous sentence had no word left
      return for_each_sentence(v, [&](U32View s) {
        U32View head;
        for_each_word(lstrip_punct_space(s), [&head](U32View w) {
          head = w;
          return false;
        });
        if (!first && (last_word.empty() || head.empty() || py_lower(head) != last_word)) return false;
        first = false;
        const U32View body = rstrip_punct_space(s);
        size_t e = body.size();
        while (e > 0 && py_isspace(body[e - 1])) --e;
        size_t b = e;
        while (b > 0 && !py_isspace(body[b - 1])) --b;
        last_word = py_lower(body.substr(b, e - b));
        return true;
      });
    });
  });

  // Each non-blank line: first and last whitespace word equal after strip().lower() and
  // strip(punctuation + ' '). A line of punctuation only: IndexError (the 2025-07 version has no
  // guard there).
  r.add("words:paragraph_last_first", {}, [](CheckerContext&) {
    return make_lambda_checker([](U32View v) {
      for (U32View line : py_split(v, U"\n")) {
        const U32 paragraph = py_lower(py_strip(line));
        if (paragraph.empty()) continue;
        const std::vector<U32View> words = py_split_ws(strip_punct_space(paragraph));
        if (words.empty() || words.front() != words.back()) return false;
      }
      return true;
    });
  });

  // No two consecutive words (lower-cased, punctuation removed) share their first character.
  r.add("words:no_consecutive", {}, [](CheckerContext&) {
    return make_lambda_checker([](U32View v) {
      const U32 text = remove_ascii_punct(lower_text(v));
      char32_t previous = 0;
      bool first = true;
      return for_each_word(text, [&](U32View w) {
        const bool differs = first || w[0] != previous;
        first = false;
        previous = w[0];
        return differs;
      });
    });
  });

  // nltk.word_tokenize(sentences[n - 1])[m - 1] == keyword (Python indexing: negative n or m
  // count from the end).
  r.add("words:keywords_specific_position", {"keyword", "n", "m"}, [](CheckerContext& ctx) {
    ArgReader& a = *ctx.args;
    const U32 raw_keyword = a.get_str("keyword");
    if (raw_keyword.empty()) a.fail("keyword", "must not be empty (the reference draws a random keyword)");
    const U32 keyword(py_strip(raw_keyword));
    const int64_t n = a.get_int("n"), m = a.get_int("m");
    if (n == 0) a.fail("n", "must not be 0 (the reference draws a random sentence number)");
    if (m == 0) a.fail("m", "must not be 0 (the reference draws a random word number)");
    return make_lambda_checker([keyword, n, m](U32View v) {
      const std::vector<U32> sentences = split_into_sentences(v);
      size_t si = 0, wi = 0;
      // Past the bounds tests, n - 1 and m - 1 cannot overflow.
      if (static_cast<int64_t>(sentences.size()) < n || n < -static_cast<int64_t>(sentences.size()) ||
          !py_index(n - 1, sentences.size(), &si))
        return false;
      const std::vector<U32> words = word_tokenize(sentences[si]);
      if (static_cast<int64_t>(words.size()) < m || m < -static_cast<int64_t>(words.size()) ||
          !py_index(m - 1, words.size(), &wi))
        return false;
      return words[wi] == keyword;
    });
  });

  // nltk.word_tokenize(value): words[1] == words[-2] == keyword.
  r.add("words:words_position", {"keyword"}, [](CheckerContext& ctx) {
    const U32 keyword(py_strip(ctx.args->get_str("keyword")));
    return make_lambda_checker([keyword](U32View v) {
      // Only the second and second-to-last tokens matter: tokenize sentences from the front and
      // from the back until two tokens are in hand on each side, or everything if they meet.
      const auto spans = word_tokenize_spans(v);
      std::vector<U32> head, tail;
      size_t front = 0, back = spans.size();
      while (head.size() < 2 && front < back)
        for (U32& t : word_tokenize_span(v, spans[front++])) head.push_back(std::move(t));
      while (tail.size() < 2 && front < back) {
        std::vector<U32> more = word_tokenize_span(v, spans[--back]);
        for (U32& t : tail) more.push_back(std::move(t));
        tail = std::move(more);
      }
      // `head` then `tail` are the first and last tokens of word_tokenize(v); when the scans met,
      // they are all of them.
      for (U32& t : tail) head.push_back(std::move(t));
      if (head.size() < 2) return false;
      return head[1] == keyword && head[head.size() - 2] == keyword;
    });
  });
}

}  // namespace hirfast
