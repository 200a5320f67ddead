// IFBench count:* checkers.
#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "checks_ifbench.h"
#include "ifbench_util.h"
#include "nltk_chars.h"

namespace hirfast {
namespace {

// count:conjunctions and count:pronouns compare against these lists.
bool is_coordinating_conjunction(U32View w) {
  static const std::array<U32View, 7> kWords = {U"and", U"but", U"for", U"nor", U"or", U"so", U"yet"};
  return std::find(kWords.begin(), kWords.end(), w) != kWords.end();
}

bool is_pronoun(U32View w) {
  static const WordCounter kPronouns = [] {
    WordCounter pronouns;
    for (const char32_t* p : {U"i",    U"me",     U"my",      U"mine",   U"myself",     U"we",    U"us",
                              U"our",  U"ours",   U"ourselves", U"you",  U"your",       U"yours", U"yourself",
                              U"yourselves", U"he", U"him",    U"his",    U"himself",    U"she",   U"her",
                              U"hers", U"herself", U"it",      U"its",    U"itself",     U"they",  U"them",
                              U"their", U"theirs", U"themselves"})
      pronouns.add(p);
    return pronouns;
  }();
  return kPronouns.count(w) > 0;
}

constexpr std::array<const char32_t*, 50> kPersonNames = {
    U"Emma",     U"Liam",    U"Sophia",    U"Jackson",     U"Olivia",   U"Noah",    U"Ava",
    U"Lucas",    U"Isabella", U"Mason",    U"Mia",         U"Ethan",    U"Charlotte", U"Alexander",
    U"Amelia",   U"Benjamin", U"Harper",   U"Leo",         U"Zoe",      U"Daniel",  U"Chloe",
    U"Samuel",   U"Lily",    U"Matthew",   U"Grace",       U"Owen",     U"Abigail", U"Gabriel",
    U"Ella",     U"Jacob",   U"Scarlett",  U"Nathan",      U"Victoria", U"Elijah",  U"Layla",
    U"Nicholas", U"Audrey",  U"David",     U"Hannah",      U"Christopher", U"Penelope", U"Thomas",
    U"Nora",     U"Andrew",  U"Aria",      U"Joseph",      U"Claire",   U"Ryan",    U"Stella",
    U"Jonathan"};

}  // namespace

void register_ifbench_count(Registry& r) {
  // min_words <= len(RegexpTokenizer(r"\w+").tokenize(value)) <= max_words (see nltk_word_runs)
  r.add("count:word_count_range", {"min_words", "max_words"}, [](CheckerContext& ctx) {
    const double lo = get_count(*ctx.args, "min_words"), hi = get_count(*ctx.args, "max_words");
    return make_lambda_checker([lo, hi](U32View v) {
      const double n = static_cast<double>(count_nltk_word_runs(v));
      return lo <= n && n <= hi;
    });
  });

  // len({w.strip(punctuation + ' ') for w in value.lower().split()}) >= N
  r.add("count:unique_word_count", {"N"}, [](CheckerContext& ctx) {
    const double n = get_count(*ctx.args, "N");
    return make_lambda_checker([n](U32View v) {
      const U32 lower = lower_text(v);
      WordCounter unique(v.size() / 8);  // English: about 6 characters a word, most repeated
      for_each_word(lower, [&unique](U32View w) {
        unique.add(strip_punct_space(w));
        return true;
      });
      return static_cast<double>(unique.size()) >= n;
    });
  });

  // The distinct *raw* words (so "and" and "And," count twice) whose stripped lower form is a
  // coordinating conjunction.
  r.add("count:conjunctions", {"small_n"}, [](CheckerContext& ctx) {
    const double n = get_count(*ctx.args, "small_n");
    return make_lambda_checker([n](U32View v) {
      WordCounter found;
      for_each_word(v, [&found](U32View w) {
        U32View core = strip_punct_space(w);
        // Every conjunction is at most 3 characters, and lower() never shortens a string.
        if (core.size() > 3) return true;
        char32_t ascii_lower[3];
        bool ascii = true;
        for (size_t k = 0; k < core.size(); ++k) {
          ascii = ascii && core[k] < 0x80;
          ascii_lower[k] = core[k] - 'A' < 26 ? core[k] + 32 : core[k];
        }
        // ASCII (nearly every short word) lowered in place; py_lower's call and string for each
        // were most of the check.
        if (ascii ? is_coordinating_conjunction(U32View(ascii_lower, core.size()))
                  : is_coordinating_conjunction(py_lower(core)))
          found.add(w);
        return true;
      });
      return static_cast<double>(found.size()) >= n;
    });
  });

  // How many of the 50 names occur as substrings. One scan: every name starts with an ASCII
  // capital, so only those positions are tried, against the names with that initial.
  r.add("count:person_names", {"N"}, [](CheckerContext& ctx) {
    const double n = get_count(*ctx.args, "N");
    return make_lambda_checker([n](U32View v) {
      // The names by initial (A-Z), so that a capital is tried only against its own names (all
      // 50 a capital, one comparison each, were most of the check).
      static const std::array<std::vector<uint8_t>, 26> kByInitial = [] {
        std::array<std::vector<uint8_t>, 26> by_initial;
        for (size_t k = 0; k < kPersonNames.size(); ++k)
          by_initial[kPersonNames[k][0] - 'A'].push_back(static_cast<uint8_t>(k));
        return by_initial;
      }();
      std::array<bool, kPersonNames.size()> seen{};
      size_t found = 0;
      for (size_t p = 0; p < v.size(); ++p) {
        if (v[p] - 'A' >= 26) continue;
        for (uint8_t k : kByInitial[v[p] - 'A']) {
          const U32View name(kPersonNames[k]);
          if (!seen[k] && v.compare(p, name.size(), name) == 0) {
            seen[k] = true;
            ++found;
          }
        }
      }
      return static_cast<double>(found) >= n;
    });
  });

  // len(re.findall(r"\d+", value with ASCII punctuation removed)) == N: digit runs separated only
  // by punctuation ("1,000", "3.14") merge into one.
  r.add("count:numbers", {"N"}, [](CheckerContext& ctx) {
    const double n = get_count(*ctx.args, "N");
    return make_lambda_checker([n](U32View v) {
      size_t runs = 0;
      bool in_digits = false;
      for (char32_t c : v) {
        if (is_ascii_punct(c)) continue;
        bool d = re_digit(c);
        if (d && !in_digits) ++runs;
        in_digits = d;
      }
      return static_cast<double>(runs) == n;
    });
  });

  // An interrobang ("?!", "!?" or U+203D) and, in the text without the first "?!" (or else the
  // first "!?"), each of . , ! ? ; :
  r.add("count:punctuation", {}, [](CheckerContext&) {
    return make_lambda_checker([](U32View v) {
      // The first "?!" and the first "!?", and whether there is a U+203D, in one scan (by
      // find_any: most responses hold none of the three, and three find()s were most of the check).
      size_t qe = U32View::npos, eq = U32View::npos;
      bool interrobang = false;
      for (size_t k = find_any(v, 0, '?', '!', 0x203D); k != U32View::npos && qe == U32View::npos;
           k = find_any(v, k + 1, '?', '!', 0x203D)) {
        const char32_t next = k + 1 < v.size() ? v[k + 1] : 0;
        if (v[k] == '?' && next == '!') qe = k;
        if (v[k] == '!' && next == '?' && eq == U32View::npos) eq = k;
        interrobang = interrobang || v[k] == 0x203D;
      }
      if (qe == U32View::npos && eq == U32View::npos && !interrobang) return false;
      size_t cut = qe != U32View::npos ? qe : eq;  // npos: nothing removed
      // The six marks are below 64: the characters below 64 seen, as bits, with a stop as soon
      // as all six are there (six comparisons a character, to the end, were the whole check).
      constexpr uint64_t kMarks = uint64_t{1} << '.' | uint64_t{1} << ',' | uint64_t{1} << '!' |
                                  uint64_t{1} << '?' | uint64_t{1} << ';' | uint64_t{1} << ':';
      uint64_t seen = 0;
      auto scan = [&seen](U32View part) {
        for (size_t k = 0; k < part.size(); k += 64) {
          const size_t end = std::min(part.size(), k + 64);
          for (size_t i = k; i < end; ++i) seen |= part[i] < 64 ? uint64_t{1} << part[i] : 0;
          if ((seen & kMarks) == kMarks) return;
        }
      };
      if (cut == U32View::npos) {
        scan(v);
      } else {
        scan(v.substr(0, cut));
        scan(v.substr(std::min(v.size(), cut + 2)));
      }
      return (seen & kMarks) == kMarks;
    });
  });

  // Every N-th whitespace word, stripped of punctuation, non-empty and not all digits, holds a
  // character in U+3040-30FF or U+4E00-9FFF. N=0: a ZeroDivisionError at the first word.
  r.add("count:words_japanese", {"N"}, [](CheckerContext& ctx) {
    const double n = get_count(*ctx.args, "N");
    return make_lambda_checker([n](U32View v) {
      const std::vector<U32View> words = py_split_ws(v);
      if (n == 0) return words.empty();
      for (size_t i = 0; i < words.size(); ++i) {
        if (std::fmod(static_cast<double>(i + 1), n) != 0) continue;
        U32View w = strip_punct_space(words[i]);
        if (w.empty()) continue;
        bool all_digits = true;  // str.isdigit(): Unicode Digit, non-empty
        for (char32_t c : w) all_digits = all_digits && py_isdigit(c);
        if (all_digits) continue;
        bool japanese = false;
        for (char32_t c : w)
          japanese = japanese || (c >= 0x3040 && c <= 0x30FF) || (c >= 0x4E00 && c <= 0x9FFF);
        if (!japanese) return false;
      }
      return true;
    });
  });

  // Whitespace words of value.replace("/", " ").lower() without ASCII punctuation that are
  // pronouns: at least N.
  r.add("count:pronouns", {"N"}, [](CheckerContext& ctx) {
    const double n = get_count(*ctx.args, "N");
    return make_lambda_checker([n](U32View v) {
      U32 cleaned;
      char32_t any = 0;
      for (char32_t c : v) any |= c;
      if (any < 0x80) {
        // ASCII (most responses): the three steps in one pass ('/' is punctuation, but becomes a
        // space first).
        cleaned.resize(v.size());
        size_t n = 0;
        for (char32_t c : v) {
          const char32_t mapped = c == '/' ? U' ' : (c >= 'A' && c <= 'Z') ? c + 32 : c;
          cleaned[n] = mapped;
          n += !is_ascii_punct(mapped);
        }
        cleaned.resize(n);
      } else {
        U32 text(v);
        std::replace(text.begin(), text.end(), U'/', U' ');
        cleaned = remove_ascii_punct(lower_text(text));
      }
      size_t count = 0;
      for_each_word(cleaned, [&count](U32View w) {
        count += is_pronoun(w);
        return true;
      });
      return static_cast<double>(count) >= n;
    });
  });

  // value.lower().count(keyword_k.lower()) == 1, 2, 3, 5, 7 for keyword1..keyword5 (stripped).
  r.add("count:keywords_multiple", {"keyword1", "keyword2", "keyword3", "keyword4", "keyword5"},
        [](CheckerContext& ctx) {
          std::array<U32, 5> keywords;
          const char* names[5] = {"keyword1", "keyword2", "keyword3", "keyword4", "keyword5"};
          for (int k = 0; k < 5; ++k) keywords[k] = py_lower(py_strip(ctx.args->get_str(names[k])));
          return make_lambda_checker([keywords](U32View v) {
            const U32 lower = lower_text(v);
            const size_t wanted[5] = {1, 2, 3, 5, 7};
            for (int k = 0; k < 5; ++k) {
              // str.count("") is len + 1
              size_t found = keywords[k].empty() ? lower.size() + 1 : py_count(lower, keywords[k]);
              if (found != wanted[k]) return false;
            }
            return true;
          });
        });
}

}  // namespace hirfast
