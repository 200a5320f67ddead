// IFBench ratio:* checkers.
#include <algorithm>
#include <memory>

#include "checks_ifbench.h"
#include "ifbench_util.h"
#include "nltk_chars.h"
#include "stopwords.h"

namespace hirfast {
namespace {

bool ends_with(U32View s, char32_t c) { return !s.empty() && s.back() == c; }

// A character trigram packed exactly into 63 bits (code points fit in 21).
uint64_t trigram_at(U32View s, size_t k) {
  return (static_cast<uint64_t>(s[k]) << 42) | (static_cast<uint64_t>(s[k + 1]) << 21) | s[k + 2];
}

// Open addressing over packed trigrams: `slots` holds 2^(64 - shift) keys, kEmpty marking a
// free one. Returns the slot holding `key`, or the free slot where it would go (never full).
constexpr uint64_t kEmpty = ~0ull;  // not a packed trigram: those stay below 2^63
size_t trigram_slot(const uint64_t* slots, size_t mask, int shift, uint64_t key) {
  // Fibonacci hashing: the top bits of the product depend on every bit of the key.
  size_t i = static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> shift);
  while (slots[i] != kEmpty && slots[i] != key) i = (i + 1) & mask;
  return i;
}
// The table size (a power of two, at least twice the keys) and its shift for n keys.
void trigram_table_size(size_t n, size_t* capacity, int* shift) {
  *capacity = 16;
  *shift = 60;
  while (*capacity < 2 * n) {
    *capacity *= 2;
    --*shift;
  }
}

// The distinct character trigrams of the reference text (set(nltk.ngrams(s, 3))), built once
// per checker (with std::unordered_set of the same keys, ratio:overlap over the IFBench pairs,
// strict + loose, took 20 ms of CPU instead of 4.4).
class TrigramSet {
 public:
  explicit TrigramSet(U32View s) {
    const size_t n = s.size() >= 3 ? s.size() - 2 : 0;
    size_t capacity;
    trigram_table_size(n, &capacity, &shift_);
    slots_.assign(capacity, kEmpty);
    for (size_t k = 0; k < n; ++k) {
      const uint64_t key = trigram_at(s, k);
      const size_t slot = trigram_slot(slots_.data(), capacity - 1, shift_, key);
      if (slots_[slot] == kEmpty) slots_[slot] = key;
    }
  }
  bool contains(uint64_t key) const {
    return slots_[trigram_slot(slots_.data(), slots_.size() - 1, shift_, key)] == key;
  }

 private:
  std::vector<uint64_t> slots_;
  int shift_;  // 64 - log2(slots)
};

// How many distinct trigrams `s` has, and how many of those `ref` holds. The sets of the
// response's trigrams are kept per thread and emptied through the list of what was set: a table
// allocated and filled per check was a quarter of ratio:overlap's time. A trigram of three ASCII
// characters (most of them) is 21 bits, the index of a bit in a 256 KiB map, tested and set
// without hashing or probing (ratio:overlap pairs, loose: 2.86 -> 2.48 ms); the others go to an
// open-addressing table.
void count_trigrams(U32View s, const TrigramSet& ref, size_t* distinct, size_t* shared) {
  thread_local std::vector<uint64_t> seen_ascii(size_t{1} << 15), table;
  thread_local std::vector<uint32_t> used_bits, used_slots;
  const size_t n = s.size() >= 3 ? s.size() - 2 : 0;
  size_t capacity;
  int shift;
  trigram_table_size(n, &capacity, &shift);
  if (table.size() < capacity) table.assign(capacity, kEmpty);
  if (used_slots.size() < n) {
    used_slots.resize(n);
    used_bits.resize(n);
  }
  uint64_t* seen = seen_ascii.data();
  uint64_t* slots = table.data();
  uint32_t* bits_set = used_bits.data();
  uint32_t* slots_set = used_slots.data();
  size_t n_bits = 0, n_slots = 0, n_shared = 0;
  for (size_t k = 0; k < n; ++k) {
    const uint64_t key = trigram_at(s, k);
    if ((s[k] | s[k + 1] | s[k + 2]) < 0x80) {
      // Without a branch on whether it is new (about half are, at random: ratio:overlap pairs,
      // strict 0.56 -> 0.375 ms); the new ones are looked up in `ref` after the scan.
      const uint32_t index = static_cast<uint32_t>(s[k] << 14 | s[k + 1] << 7 | s[k + 2]);
      const uint64_t bit = uint64_t{1} << (index & 63);
      const uint64_t word = seen[index >> 6];
      seen[index >> 6] = word | bit;
      bits_set[n_bits] = index;
      n_bits += (word & bit) == 0;
      continue;
    }
    const size_t slot = trigram_slot(slots, capacity - 1, shift, key);
    if (slots[slot] != kEmpty) continue;
    slots[slot] = key;
    slots_set[n_slots++] = static_cast<uint32_t>(slot);
    n_shared += ref.contains(key);
  }
  for (size_t k = 0; k < n_bits; ++k) {
    const uint32_t index = bits_set[k];
    n_shared += ref.contains(static_cast<uint64_t>(index >> 14) << 42 | static_cast<uint64_t>((index >> 7) & 127) << 21 |
                             (index & 127));
    seen[index >> 6] = 0;
  }
  for (size_t k = 0; k < n_slots; ++k) slots[slots_set[k]] = kEmpty;
  *distinct = n_bits + n_slots;
  *shared = n_shared;
}

}  // namespace

void register_ifbench_ratio(Registry& r) {
  // (stopword tokens / RegexpTokenizer(r"\w+") tokens) * 100 <= percentage; no token:
  // ZeroDivisionError.
  r.add("ratio:stop_words", {"percentage"}, [](CheckerContext& ctx) {
    const double pct = get_count(*ctx.args, "percentage");
    return make_lambda_checker([pct](U32View v) {
      const std::vector<U32View> tokens = nltk_word_runs(v);
      if (tokens.empty()) return false;
      const size_t longest = english_stopword_max_length();
      size_t stop = 0;
      U32 lower;
      for (U32View t : tokens) {
        if (t.size() > longest) continue;
        uint64_t key;
        if (pack_ascii_letters(t, &key)) {
          stop += is_english_stopword_packed(key) ? 1 : 0;
          continue;
        }
        // t.lower() char by char: the final-sigma rule only picks between two non-ASCII sigmas,
        // and no stopword holds either.
        lower.clear();
        for (char32_t c : t) {
          if (c < 128) {
            lower.push_back(c >= 'A' && c <= 'Z' ? c + 32 : c);
          } else {
            append_lower(c, &lower);
          }
        }
        stop += is_english_stopword(lower) ? 1 : 0;
      }
      const double ratio = static_cast<double>(stop) / static_cast<double>(tokens.size());
      return ratio * 100 <= pct;
    });
  });

  // Sentences ending in "." == 2 x sentences ending in "?".
  r.add("ratio:sentence_type", {}, [](CheckerContext&) {
    return make_lambda_checker([](U32View v) {
      size_t dot = 0, question = 0;
      for_each_sentence(v, [&](U32View s) {
        dot += ends_with(s, '.');
        question += ends_with(s, '?');
        return true;
      });
      return dot == 2 * question;
    });
  });

  // As many sentences end in "." as in "?" and as in "!".
  r.add("ratio:sentence_balance", {}, [](CheckerContext&) {
    return make_lambda_checker([](U32View v) {
      size_t dot = 0, question = 0, bang = 0;
      for_each_sentence(v, [&](U32View s) {
        dot += ends_with(s, '.');
        question += ends_with(s, '?');
        bang += ends_with(s, '!');
        return true;
      });
      return dot == question && question == bang;
    });
  });

  // |trigrams(value) & trigrams(reference)| / |trigrams(value)| * 100 within percentage +- 2
  // (character trigrams; a response under 3 characters: ZeroDivisionError).
  r.add("ratio:overlap", {"reference_text", "percentage"}, [](CheckerContext& ctx) {
    const U32 reference = ctx.args->get_str("reference_text");
    const double pct = get_count(*ctx.args, "percentage");
    auto ref = std::make_shared<const TrigramSet>(reference);
    return make_lambda_checker([ref, pct](U32View v) {
      size_t distinct, shared;
      count_trigrams(v, *ref, &distinct, &shared);
      if (distinct == 0) return false;
      const double overlap = static_cast<double>(shared) / static_cast<double>(distinct);
      return pct - 2 <= overlap * 100 && overlap * 100 <= pct + 2;
    });
  });

  // Exactly three sentences whose strip() have the same length.
  r.add("ratio:sentence_words", {}, [](CheckerContext&) {
    return make_lambda_checker([](U32View v) {
      // Sentences are already stripped.
      size_t count = 0, length = 0;
      bool same = true;
      const bool all_seen = for_each_sentence(v, [&](U32View s) {
        if (count == 0) length = s.size();
        same = same && s.size() == length;
        return ++count <= 3;
      });
      return all_seen && count == 3 && same;
    });
  });
}

}  // namespace hirfast
