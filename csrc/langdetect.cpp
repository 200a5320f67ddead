// Port of langdetect 1.0.9 (Nakatani Shuyo's language-detection, Python port by Michal Danilák),
// `detect()` with `DetectorFactory.seed = 0`. See langdetect.h.
//
// The Python pipeline, stage by stage, and where each lives here:
//   Detector.append       URL_RE.sub, MAIL_RE.sub, NGram.normalize_vi, the 10,000-character cap
//                         with runs of ' ' collapsed                        -> append_text()
//   Detector.cleaning_text drop 'A'..'z' when non-Latin dominates           -> clean_text()
//   Detector._extract_ngrams  NGram.add_char/normalize, capital words, the
//                         profile-membership test                           -> extract_ngrams()
//   Detector._detect_block 7 trials of random n-gram updates               -> detect_block()
//   Detector._sort_probability / detect                                    -> detect_language()
// plus Python's random.Random (MT19937, random(), gauss(), choice())      -> PyRandom.
#include "langdetect.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <stdexcept>

#include "assets.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace hirfast {
namespace {

// Detector's constants.
constexpr int kTrials = 7;                  // n_trial
constexpr int kIterationLimit = 1000;       // ITERATION_LIMIT
constexpr double kConvThreshold = 0.99999;  // CONV_THRESHOLD
constexpr double kProbThreshold = 0.1;      // PROB_THRESHOLD
constexpr double kAlphaDefault = 0.5;       // ALPHA_DEFAULT
constexpr double kAlphaWidth = 0.05;        // ALPHA_WIDTH
constexpr double kBaseFreq = 10000;         // BASE_FREQ
constexpr size_t kMaxTextLength = 10000;    // max_text_length
constexpr int kFormatVersion = 1;           // tools/convert_langdetect_profiles.py
constexpr size_t kMaxLanguages = 255;       // language indices are stored as uint8_t
constexpr size_t kDenseShare = 4;           // see Model::dense_probs

// Characters are known by their id in the profiles' alphabet (1..3160; 0 = a character no profile
// has). N-grams of ids all below 64 (' ', a-z, A-Z and the 10 commonest other letters: 12,115
// grams) are looked up in direct tables of 16-bit entries, one per length (64, 64^2, 64^3
// entries; the data file lists these grams first, so their indices fit); English text after
// normalization needs almost nothing else. Every 1-gram also has a direct entry by id; the other
// 2- and 3-grams go through a hash table keyed by n << 36 | the 12-bit ids, first to last
// ("xyz": 3 << 36 | x << 24 | y << 12 | z).
constexpr int kIdBits = 12;
constexpr uint32_t kMaxCharId = (1u << kIdBits) - 1;
constexpr int kSmallIdBits = 6;
constexpr uint32_t kSmallIdLimit = 1u << kSmallIdBits;
// Gram indices + 1 fit in 17 bits (87,598 grams); a key takes 2 + 3 x 12 = 38.
constexpr int kGramBits = 17;
constexpr uint64_t kGramMask = (uint64_t{1} << kGramBits) - 1;

// ---------------------------------------------------------------------------------------------
// Python's random.Random: MT19937 (CPython's _randommodule.c), seeded as `Random.seed(0)` seeds it.

constexpr int kMtN = 624;
constexpr int kMtM = 397;

struct MtState {
  uint32_t mt[kMtN];
  int index;
};

void mt_init_genrand(MtState* s, uint32_t seed) {
  s->mt[0] = seed;
  for (int i = 1; i < kMtN; ++i)
    s->mt[i] = 1812433253u * (s->mt[i - 1] ^ (s->mt[i - 1] >> 30)) + static_cast<uint32_t>(i);
  s->index = kMtN;
}

// init_by_array(key): `seed(0)` passes the key [0] (one 32-bit word, the absolute value of 0).
void mt_init_by_array(MtState* s, const uint32_t* key, int key_length) {
  mt_init_genrand(s, 19650218u);
  int i = 1, j = 0;
  for (int k = kMtN > key_length ? kMtN : key_length; k; --k) {
    s->mt[i] = (s->mt[i] ^ ((s->mt[i - 1] ^ (s->mt[i - 1] >> 30)) * 1664525u)) + key[j] + static_cast<uint32_t>(j);
    ++i;
    ++j;
    if (i >= kMtN) {
      s->mt[0] = s->mt[kMtN - 1];
      i = 1;
    }
    if (j >= key_length) j = 0;
  }
  for (int k = kMtN - 1; k; --k) {
    s->mt[i] = (s->mt[i] ^ ((s->mt[i - 1] ^ (s->mt[i - 1] >> 30)) * 1566083941u)) - static_cast<uint32_t>(i);
    ++i;
    if (i >= kMtN) {
      s->mt[0] = s->mt[kMtN - 1];
      i = 1;
    }
  }
  s->mt[0] = 0x80000000u;
  s->index = kMtN;
}

MtState seeded_with_zero() {
  MtState s;
  const uint32_t key[1] = {0};
  mt_init_by_array(&s, key, 1);
  return s;
}

// cos and sin as math.cos and math.sin compute them: libm's cos and sin, called separately.
// GCC turns a cos and a sin of one argument into a single sincos call; these stay out of line
// so nothing can merge them.
[[gnu::noinline]] double libm_cos(double x) { return std::cos(x); }
[[gnu::noinline]] double libm_sin(double x) { return std::sin(x); }

// MT19937's next tempered output, twisting the state when it is used up (CPython's genrand_uint32).
uint32_t mt_next(MtState* s) {
  static constexpr uint32_t kMag01[2] = {0x0u, 0x9908b0dfu};
  constexpr uint32_t kUpper = 0x80000000u, kLower = 0x7fffffffu;
  uint32_t* mt = s->mt;
  if (s->index >= kMtN) {
    int kk = 0;
    for (; kk < kMtN - kMtM; ++kk) {
      const uint32_t y = (mt[kk] & kUpper) | (mt[kk + 1] & kLower);
      mt[kk] = mt[kk + kMtM] ^ (y >> 1) ^ kMag01[y & 1u];
    }
    for (; kk < kMtN - 1; ++kk) {
      const uint32_t y = (mt[kk] & kUpper) | (mt[kk + 1] & kLower);
      mt[kk] = mt[kk + (kMtM - kMtN)] ^ (y >> 1) ^ kMag01[y & 1u];
    }
    const uint32_t y = (mt[kMtN - 1] & kUpper) | (mt[0] & kLower);
    mt[kMtN - 1] = mt[kMtM - 1] ^ (y >> 1) ^ kMag01[y & 1u];
    s->index = 0;
  }
  uint32_t y = mt[s->index++];
  y ^= (y >> 11);
  y ^= (y << 7) & 0x9d2c5680u;
  y ^= (y << 15) & 0xefc60000u;
  y ^= (y >> 18);
  return y;
}

// Every detection draws from the same stream (seed 0), so its first 2,496 outputs (10 KB) are
// computed once rather than copying the seeded state (2.5 KB), twisting and tempering afresh in
// every detection. Draws past the table go on from the state after it.
struct SeededStream {
  static constexpr int kOutputs = 4 * kMtN;
  uint32_t outputs[kOutputs];
  MtState after;  // the state once `outputs` are drawn

  SeededStream() {
    MtState s = seeded_with_zero();
    for (uint32_t& out : outputs) out = mt_next(&s);
    after = s;
  }
};

class PyRandom {
 public:
  // Random.seed(0): a fresh MT state and gauss_next = None.
  PyRandom() : stream_(seeded_stream()), next_(stream_.outputs) {}

  uint32_t genrand_uint32() {
    if (next_ != stream_.outputs + SeededStream::kOutputs) return *next_++;
    if (!state_copied_) {
      state_ = stream_.after;
      state_copied_ = true;
    }
    return mt_next(&state_);
  }

  // random(): 53 random bits, as (a * 2^26 + b) / 2^53.
  double random() {
    const uint32_t a = genrand_uint32() >> 5, b = genrand_uint32() >> 6;
    return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0);
  }

  // gauss(0.0, 1.0): Box-Muller, one value cached in gauss_next. `mu + z * sigma` with mu = 0.0 and
  // sigma = 1.0 is z itself (also for -0.0, which only ever meets `0.5 + z * 0.05`).
  double gauss() {
    if (has_gauss_next_) {
      has_gauss_next_ = false;
      return gauss_next_;
    }
    const double two_pi = 6.283185307179586;  // math.tau
    const double x2pi = random() * two_pi;
    const double g2rad = std::sqrt(-2.0 * std::log(1.0 - random()));
    gauss_next_ = libm_sin(x2pi) * g2rad;
    has_gauss_next_ = true;
    return libm_cos(x2pi) * g2rad;
  }

  // choice(seq) draws _randbelow(n = len(seq)): getrandbits(k) with k = n.bit_length(), redrawn
  // while >= n. getrandbits(k) for k <= 32 is the top k bits of one 32-bit output.
  static int bit_length(uint32_t n) {
    int k = 0;
    while (k < 32 && (n >> k) != 0) ++k;
    return k;
  }
  uint32_t randbelow(uint32_t n, int n_bit_length) {
    const int shift = 32 - n_bit_length;
    uint32_t r = genrand_uint32() >> shift;
    while (r >= n) r = genrand_uint32() >> shift;
    return r;
  }

 private:
  static const SeededStream& seeded_stream() {
    static const SeededStream kStream;
    return kStream;
  }

  const SeededStream& stream_;
  const uint32_t* next_;  // the next output of stream_, until its end
  bool state_copied_ = false;
  MtState state_;  // past the table: stream_.after, then drawn from
  bool has_gauss_next_ = false;
  double gauss_next_ = 0.0;
};

// ---------------------------------------------------------------------------------------------
// The model: profiles and normalization tables from profiles.bin.

struct CodePointRange {
  char32_t first = 0, last = 0;
  bool contains(char32_t c) const { return c >= first && c <= last; }
};

// One BMP code point after NGram.normalize.
struct CharInfo {
  uint16_t id;       // the normalized character's id in the profiles, 0 if none has it
  bool is_space;     // normalized to ' '
  bool is_upper;     // normalized character's str.isupper()
};

struct Model {
  std::vector<std::string> languages;  // in DetectorFactory.langlist order
  std::vector<CharInfo> bmp;           // indexed by code point, 0..0xFFFF
  uint16_t space_id = 0;

  // Gram index + 1 (0: not in any profile) of the n-grams of small ids, small_grams[n - 1][ids].
  // No gram holds id 0, so a window position holding 0 (an unknown character, or none) lands on
  // an entry that stays 0: lookups need no test for it.
  std::vector<uint16_t> small_grams[3];
  // Gram index + 1 of the 1-gram of every character id (0: none), 13 KB: the 1-grams of other
  // scripts skip the hash table below.
  std::vector<uint32_t> unigrams;
  // The other 2- and 3-grams: open addressing (linear probing) on their keys, each slot holding
  // key << kGramBits | (gram index + 1), 0 when empty. A key with a 0 id (never stored) matches
  // nothing. One 8-byte slot per gram, at most 2/3 full (1 MB): with separate key and value
  // arrays twice as large, a lookup missed the cache twice, and these lookups were a third of
  // the n-gram extraction of a batch's non-English responses.
  std::vector<uint64_t> hash_slots;
  uint64_t hash_mask = 0;

  // Per gram, the languages whose profile has it and word_lang_prob_map's value there (entries
  // [entry_begin, entry_begin + entry_count) of entry_language and entry_prob); every other
  // language has 0.0. Grams that a quarter of the languages or more have (kDenseShare) also get
  // their whole row of word_lang_prob_map (zeros included), at dense_probs[dense_row *
  // languages.size()]; kSparse for the others. They are 2,266 of the 87,598 grams (1 MB of rows)
  // but most of the n-grams sampled from real text, and multiplying by a whole row beats
  // scattering the entries into a row of zeros (stores the row's vector loads then wait on).
  // Per detect of the IFEval responses, each detected once in turn: half the languages, 18.8 us
  // (English) and 17.4 (others); a quarter, 17.5 and 16.8; an eighth (1.9 MB), 16.8 and 16.7.
  // Both facts of a gram sit in one 8-byte GramInfo: a sampled gram misses the cache there
  // once, not twice.
  struct GramInfo {
    uint32_t entry_begin;
    uint16_t entry_count;
    uint16_t dense_row;
  };
  static constexpr uint16_t kSparse = UINT16_MAX;
  std::vector<GramInfo> grams;
  std::vector<uint8_t> entry_language;
  std::vector<double> entry_prob;
  std::vector<double> dense_probs;

  // NGram.normalize_vi: base letters, combining marks, and the composed letter of (mark, base)
  // at vi_composed[mark * vi_base.size() + base].
  U32 vi_base, vi_marks, vi_composed;

  static uint64_t hash(uint64_t key) { return (key * 0x9E3779B97F4A7C15ull) >> 32; }
  static uint64_t key2(uint64_t b, uint64_t c) { return uint64_t{2} << 36 | b << kIdBits | c; }
  static uint64_t key3(uint64_t a, uint64_t b, uint64_t c) {
    return uint64_t{3} << 36 | a << (2 * kIdBits) | b << kIdBits | c;
  }

  uint32_t hashed(uint64_t key) const {
    for (uint64_t slot = hash(key) & hash_mask;; slot = (slot + 1) & hash_mask) {
      const uint64_t entry = hash_slots[slot];
      if (entry >> kGramBits == key) return static_cast<uint32_t>(entry & kGramMask);
      if (entry == 0) return 0;
    }
  }
  // Gram index + 1 of the n-gram with these character ids (first to last), 0 if no profile has
  // it. `(a | b) < 64` is "both below 64".
  uint32_t find1(uint32_t c) const { return unigrams[c]; }
  uint32_t find2(uint32_t b, uint32_t c) const {
    if ((b | c) < kSmallIdLimit) return small_grams[1][b << kSmallIdBits | c];
    return hashed(key2(b, c));
  }
  uint32_t find3(uint32_t a, uint32_t b, uint32_t c) const {
    if ((a | b | c) < kSmallIdLimit) return small_grams[2][(a << kSmallIdBits | b) << kSmallIdBits | c];
    return hashed(key3(a, b, c));
  }
  uint32_t find(const uint16_t* ids, int n) const {
    return n == 1 ? find1(ids[0]) : n == 2 ? find2(ids[0], ids[1]) : find3(ids[0], ids[1], ids[2]);
  }
};

class Reader {
 public:
  Reader(std::string path, std::vector<uint8_t> bytes) : path_(std::move(path)), bytes_(std::move(bytes)) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw AssetError("hirfast: corrupt langdetect data file " + path_ + " (" + what + " at byte " +
                             std::to_string(pos_) + "); regenerate it with tools/convert_langdetect_profiles.py");
  }
  void expect_magic(const char* magic) {
    const size_t n = std::strlen(magic);
    if (bytes_.size() - pos_ < n || std::memcmp(bytes_.data() + pos_, magic, n) != 0)
      fail(std::string("expected \"") + magic + "\"");
    pos_ += n;
  }
  uint64_t varint(uint64_t max_value) {
    uint64_t value = 0;
    for (int shift = 0;; shift += 7) {
      if (pos_ >= bytes_.size()) fail("unexpected end of file");
      if (shift > 56) fail("varint too long");
      const uint8_t byte = bytes_[pos_++];
      value |= static_cast<uint64_t>(byte & 0x7F) << shift;
      if (byte < 0x80) break;
    }
    if (value > max_value) fail("value " + std::to_string(value) + " above " + std::to_string(max_value));
    return value;
  }
  std::string ascii(size_t max_length) {
    const size_t n = varint(max_length);
    if (bytes_.size() - pos_ < n) fail("unexpected end of file");
    std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), n);
    pos_ += n;
    return s;
  }
  U32 code_points(size_t max_length) {
    U32 s(varint(max_length), 0);
    for (char32_t& c : s) c = static_cast<char32_t>(varint(0x10FFFF));
    return s;
  }
  bool at_end() const { return pos_ == bytes_.size(); }

 private:
  std::string path_;
  std::vector<uint8_t> bytes_;
  size_t pos_ = 0;
};

// The blocks NGram.normalize tests, in the order the converter writes them.
enum Block {
  kBasicLatin,
  kLatin1Supplement,
  kLatinExtendedB,
  kGeneralPunctuation,
  kArabic,
  kLatinExtendedAdditional,
  kHiragana,
  kKatakana,
  kBopomofo,
  kBopomofoExtended,
  kCjkUnifiedIdeographs,
  kHangulSyllables,
  kBlockCount,
};
const char* const kBlockNames[kBlockCount] = {
    "BASIC_LATIN",    "LATIN_1_SUPPLEMENT",        "LATIN_EXTENDED_B", "GENERAL_PUNCTUATION",
    "ARABIC",         "LATIN_EXTENDED_ADDITIONAL", "HIRAGANA",         "KATAKANA",
    "BOPOMOFO",       "BOPOMOFO_EXTENDED",         "CJK_UNIFIED_IDEOGRAPHS", "HANGUL_SYLLABLES",
};

// NGram.normalize for one BMP code point (the replacement letters are constants of ngram.py).
char32_t normalize_char(char32_t c, const CodePointRange* blocks, const U32& latin1_excluded,
                        const std::vector<char32_t>& cjk_map) {
  // unicode_block() answers BASIC_LATIN for every c <= 0x7F before consulting its table.
  if (c <= 0x7F || blocks[kBasicLatin].contains(c)) {
    const bool letter = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
    return letter ? c : U' ';
  }
  if (blocks[kLatin1Supplement].contains(c))
    return latin1_excluded.find(c) != U32::npos ? U' ' : c;
  if (blocks[kLatinExtendedB].contains(c)) {
    if (c == 0x0219) return 0x015F;  // s with comma below -> s with cedilla (Romanian)
    if (c == 0x021B) return 0x0163;  // t with comma below -> t with cedilla
    return c;
  }
  if (blocks[kGeneralPunctuation].contains(c)) return U' ';
  if (blocks[kArabic].contains(c)) return c == 0x06CC ? 0x064A : c;  // Farsi yeh -> Arabic yeh
  if (blocks[kLatinExtendedAdditional].contains(c)) return c >= 0x1EA0 ? 0x1EC3 : c;
  if (blocks[kHiragana].contains(c)) return 0x3042;
  if (blocks[kKatakana].contains(c)) return 0x30A2;
  if (blocks[kBopomofo].contains(c) || blocks[kBopomofoExtended].contains(c)) return 0x3105;
  if (blocks[kCjkUnifiedIdeographs].contains(c)) return cjk_map[c - blocks[kCjkUnifiedIdeographs].first];
  if (blocks[kHangulSyllables].contains(c)) return 0xAC00;
  return c;
}

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw AssetError("hirfast: cannot open langdetect data file " + path);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

Model load_model() {
  const std::string path = asset_path("langdetect/profiles.bin");
  Reader in(path, read_file(path));
  Model m;
  in.expect_magic("HFLD");
  if (in.varint(UINT32_MAX) != kFormatVersion) in.fail("unsupported format version");

  const size_t n_languages = in.varint(kMaxLanguages);
  if (n_languages < 2) in.fail("fewer than two languages");
  std::vector<uint64_t> n_words(3 * n_languages);
  for (size_t l = 0; l < n_languages; ++l) {
    m.languages.push_back(in.ascii(64));
    for (int n = 0; n < 3; ++n) n_words[3 * l + n] = in.varint(uint64_t{1} << 53);
  }

  // Characters: id -> code point, and code point -> id over the BMP.
  const size_t n_chars = in.varint(kMaxCharId);
  std::vector<uint16_t> id_of(0x10000, 0);
  for (size_t id = 1; id <= n_chars; ++id) {
    const char32_t c = static_cast<char32_t>(in.varint(0xFFFF));
    if (id_of[c] != 0) in.fail("a character listed twice");
    id_of[c] = static_cast<uint16_t>(id);
  }
  m.space_id = id_of[U' '];
  if (m.space_id == 0) in.fail("' ' is not in the profiles");

  const size_t n_grams = in.varint(kGramMask - 1);
  for (int n = 0; n < 3; ++n) m.small_grams[n].assign(size_t{1} << ((n + 1) * kSmallIdBits), 0);
  m.unigrams.assign(n_chars + 1, 0);
  size_t capacity = 1024;
  while (2 * capacity < 3 * n_grams) capacity *= 2;  // load factor <= 2/3
  m.hash_slots.assign(capacity, 0);
  m.hash_mask = capacity - 1;
  m.grams.resize(n_grams);
  for (size_t g = 0; g < n_grams; ++g) {
    Model::GramInfo& info = m.grams[g];
    if (m.entry_language.size() > UINT32_MAX - kMaxLanguages) in.fail("too many profile entries");
    info.entry_begin = static_cast<uint32_t>(m.entry_language.size());
    info.dense_row = Model::kSparse;
    const int length = static_cast<int>(in.varint(3));
    if (length == 0) in.fail("empty n-gram");
    uint16_t ids[3] = {0, 0, 0};
    for (int k = 0; k < length; ++k) {
      ids[k] = static_cast<uint16_t>(in.varint(n_chars));
      if (ids[k] == 0) in.fail("character id 0 in an n-gram");
    }
    if (m.find(ids, length) != 0) in.fail("an n-gram listed twice");
    bool small = true;
    uint32_t small_index = 0;
    for (int k = 0; k < length; ++k) {
      small &= ids[k] < kSmallIdLimit;
      small_index = (small_index << kSmallIdBits) | (ids[k] & (kSmallIdLimit - 1));
    }
    const uint32_t value = static_cast<uint32_t>(g + 1);
    if (length == 1) m.unigrams[ids[0]] = value;
    if (small) {
      if (value > UINT16_MAX) in.fail("more than 65535 grams of ids below 64, or not listed first");
      m.small_grams[length - 1][small_index] = static_cast<uint16_t>(value);
    } else if (length > 1) {
      const uint64_t key = length == 2 ? Model::key2(ids[0], ids[1]) : Model::key3(ids[0], ids[1], ids[2]);
      uint64_t slot = Model::hash(key) & m.hash_mask;
      while (m.hash_slots[slot] != 0) slot = (slot + 1) & m.hash_mask;
      m.hash_slots[slot] = key << kGramBits | value;
    }
    const size_t n_entries = in.varint(n_languages);
    size_t previous = 0;
    for (size_t e = 0; e < n_entries; ++e) {
      const size_t language = in.varint(n_languages - 1);
      if (e > 0 && language <= previous) in.fail("languages of an n-gram out of order");
      previous = language;
      const uint64_t freq = in.varint(uint64_t{1} << 53);
      const uint64_t total = n_words[3 * language + length - 1];
      if (freq == 0 || total == 0) in.fail("zero frequency or n-gram count");
      // DetectorFactory.add_profile: 1.0 * freq / n_words[length - 1], both exact in a double.
      m.entry_language.push_back(static_cast<uint8_t>(language));
      m.entry_prob.push_back(static_cast<double>(freq) / static_cast<double>(total));
    }
    info.entry_count = static_cast<uint16_t>(n_entries);
    if (kDenseShare * n_entries >= n_languages) {
      if (m.dense_probs.size() / n_languages >= Model::kSparse) in.fail("too many dense n-gram rows");
      info.dense_row = static_cast<uint16_t>(m.dense_probs.size() / n_languages);
      const size_t row = m.dense_probs.size();
      m.dense_probs.resize(row + n_languages, 0.0);
      for (uint32_t e = info.entry_begin; e < m.entry_language.size(); ++e)
        m.dense_probs[row + m.entry_language[e]] = m.entry_prob[e];
    }
  }

  CodePointRange blocks[kBlockCount];
  if (in.varint(kBlockCount) != kBlockCount) in.fail("wrong number of Unicode blocks");
  for (int b = 0; b < kBlockCount; ++b) {
    if (in.ascii(64) != kBlockNames[b]) in.fail(std::string("expected block ") + kBlockNames[b]);
    blocks[b].first = static_cast<char32_t>(in.varint(0xFFFF));
    blocks[b].last = static_cast<char32_t>(in.varint(0xFFFF));
    if (blocks[b].last < blocks[b].first) in.fail("empty block range");
  }

  const U32 latin1_excluded = in.code_points(256);
  m.vi_base = in.code_points(256);
  m.vi_marks = in.code_points(16);
  for (char32_t mark : m.vi_marks)  // append_text screens for this range first
    if (mark < 0x0300 || mark > 0x036F) in.fail("a Vietnamese mark outside U+0300..U+036F");
  for (size_t r = 0; r < m.vi_marks.size(); ++r) {
    const U32 row = in.code_points(256);
    if (row.size() != m.vi_base.size()) in.fail("Vietnamese row length differs from the base letters");
    m.vi_composed += row;
  }

  const CodePointRange cjk = blocks[kCjkUnifiedIdeographs];
  std::vector<char32_t> cjk_map(cjk.last - cjk.first + 1);
  for (size_t k = 0; k < cjk_map.size(); ++k) cjk_map[k] = cjk.first + static_cast<char32_t>(k);
  const size_t n_cjk = in.varint(cjk_map.size());
  for (size_t k = 0; k < n_cjk; ++k) {
    const char32_t from = static_cast<char32_t>(in.varint(0xFFFF));
    const char32_t to = static_cast<char32_t>(in.varint(0xFFFF));
    if (!cjk.contains(from)) in.fail("CJK map entry outside the CJK block");
    cjk_map[from - cjk.first] = to;
  }
  in.expect_magic("END!");
  if (!in.at_end()) in.fail("trailing bytes");

  m.bmp.resize(0x10000);
  for (char32_t c = 0; c < 0x10000; ++c) {
    const char32_t normalized = normalize_char(c, blocks, latin1_excluded, cjk_map);
    m.bmp[c] = CharInfo{normalized < 0x10000 ? id_of[normalized] : uint16_t{0}, normalized == U' ',
                        py_isupper_char(normalized)};
  }
  return m;
}

const Model& model() {
  // C++11 static initialization: thread-safe, and retried on the next call if loading throws.
  static const Model m = load_model();
  return m;
}

// ---------------------------------------------------------------------------------------------
// Detector.append

// URL_RE = https?://[-_.?&~;+=/#0-9A-Za-z]{1,2076}
bool is_url_char(char32_t c) {
  if (c >= 128) return false;
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '-' || c == '_' ||
         c == '.' || c == '?' || c == '&' || c == '~' || c == ';' || c == '+' || c == '=' || c == '/' || c == '#';
}
// MAIL_RE = [-_.0-9A-Za-z]{1,64}@[-_0-9A-Za-z]{1,255}[-_.0-9A-Za-z]{1,255}
bool is_mail_domain_char(char32_t c) {  // [-_0-9A-Za-z]
  return c < 128 && ((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '-' ||
                     c == '_');
}
bool is_mail_char(char32_t c) { return c == '.' || is_mail_domain_char(c); }  // [-_.0-9A-Za-z]

bool starts_with(U32View s, size_t at, const char* ascii) {
  for (size_t k = 0; ascii[k]; ++k)
    if (at + k >= s.size() || s[at + k] != static_cast<char32_t>(ascii[k])) return false;
  return true;
}

// URL_RE.sub(' ', text). Returns false (and leaves *out alone) when nothing matches.
// At a given start the pattern can only match as "http://" or "https://" followed by the longest
// run (at most 2076) of URL characters, at least one; re.sub takes the leftmost match and resumes
// after it.
bool replace_urls(U32View text, U32* out) {
  size_t copied = 0;
  bool any = false;
  for (size_t i = find_any(text, 0, 'h'); i != U32View::npos && i + 7 < text.size(); i = find_any(text, i, 'h')) {
    if (!starts_with(text, i, "http")) {
      ++i;
      continue;
    }
    size_t body = 0;
    if (starts_with(text, i + 4, "s://"))
      body = i + 8;
    else if (starts_with(text, i + 4, "://"))
      body = i + 7;
    size_t end = body;
    if (body != 0)
      while (end < text.size() && end - body < 2076 && is_url_char(text[end])) ++end;
    if (end == body) {
      ++i;
      continue;
    }
    if (!any) out->clear();
    any = true;
    out->append(text.substr(copied, i - copied));
    out->push_back(U' ');
    copied = i = end;
  }
  if (any) out->append(text.substr(copied));
  return any;
}

// MAIL_RE.sub(' ', text). Returns false (and leaves *out alone) when nothing matches.
// Every match holds exactly one '@' (no class admits it), so each '@' is tried in turn:
// - local part: `[-_.0-9A-Za-z]{1,64}` must end right at the '@', so the leftmost start is the
//   first of the (at most 64) mail characters before it, not before the resume point;
// - domain: `[-_0-9A-Za-z]{1,255}` greedy, then `[-_.0-9A-Za-z]{1,255}` greedy. If the second
//   finds nothing after the greedy first part, backtracking gives the first part's last character
//   to the second (possible when the first part has 2+ characters), which then matches exactly it.
bool replace_mails(U32View text, U32* out) {
  size_t copied = 0;
  bool any = false;
  const size_t n = text.size();
  for (size_t at = find_any(text, 0, '@'); at != U32View::npos; at = find_any(text, at + 1, '@')) {
    size_t start = at;
    while (start > copied && at - start < 64 && is_mail_char(text[start - 1])) --start;
    if (start == at) continue;
    const size_t domain = at + 1;
    size_t first_end = domain;
    while (first_end < n && first_end - domain < 255 && is_mail_domain_char(text[first_end])) ++first_end;
    const size_t first_length = first_end - domain;
    if (first_length == 0) continue;
    size_t end = first_end;
    while (end < n && end - first_end < 255 && is_mail_char(text[end])) ++end;
    if (end == first_end) {
      if (first_length < 2) continue;
      end = first_end;  // the second part takes the first part's last character
    }
    if (!any) out->clear();
    any = true;
    out->append(text.substr(copied, start - copied));
    out->push_back(U' ');
    copied = end;
    at = end - 1;
  }
  if (any) out->append(text.substr(copied));
  return any;
}

struct Workspace {
  U32 urls_replaced, mails_replaced, text;
  // Of `text`: the characters 'A'..'z' and those from U+0300 up, for Detector.cleaning_text.
  size_t latin = 0, non_latin = 0;
  // Gram index + 1 of each n-gram, in text order (random.choice indexes this): ngrams[0,
  // n_ngrams). Not a std::vector: resizing one for the up to 3 grams per character zero-filled
  // ~15 KB per detect that extraction then overwrites.
  std::unique_ptr<uint32_t[]> ngrams;
  size_t ngrams_capacity = 0, n_ngrams = 0;
};

// The substitution buffers are as long as the input; without this, one 10 MB response would
// leave 80 MB of them behind in every worker thread.
void release_if_large(U32* buffer) {
  if (buffer->capacity() > (size_t{1} << 16)) U32().swap(*buffer);
}

// Detector.append(text) on a fresh detector: leaves the detector's text in ws->text.
void append_text(const Model& m, U32View input, Workspace* ws) {
  U32View text = input;
  if (replace_urls(text, &ws->urls_replaced)) text = ws->urls_replaced;
  if (replace_mails(text, &ws->mails_replaced)) text = ws->mails_replaced;
  // One pass for the rest:
  // - NGram.normalize_vi: each (base letter, combining mark) pair, left to right without
  //   overlap, becomes the composed letter;
  // - of that, the first 10,000 characters, each ' ' dropped when the character before it (kept
  //   or not) is ' '.
  U32& out = ws->text;
  out.resize(std::min(text.size(), kMaxTextLength));
  char32_t* kept = out.data();
  char32_t previous = 0;
  const size_t n = text.size();
  // The counts for clean_text are taken here too (a dropped ' ' counts as neither), branch-free:
  // branches mispredicted on spaces and punctuation.
  size_t latin = 0, non_latin = 0;
#if defined(__SSE2__)
  __m128i minus_latin4 = _mm_setzero_si128(), minus_non_latin4 = _mm_setzero_si128();  // -1 per character
#endif
  for (size_t i = 0, composed = 0; i < n && composed < kMaxTextLength; ++i, ++composed) {
#if defined(__SSE2__)
    // Four characters at once where none of them composes with the next (no combining mark in
    // text[i + 1, i + 5)) and none is a second ' ': they are kept as they are. English text is
    // almost all such blocks (13.7 -> 12.9 us per detect of the IFEval responses detected as English).
    if (i + 4 < n && composed + 4 <= kMaxTextLength) {
      const __m128i block = _mm_loadu_si128(reinterpret_cast<const __m128i*>(text.data() + i));
      const __m128i next = _mm_loadu_si128(reinterpret_cast<const __m128i*>(text.data() + i + 1));
      // The characters before each: `previous`, then the block's first three.
      const __m128i before = _mm_or_si128(_mm_slli_si128(block, 4), _mm_cvtsi32_si128(static_cast<int>(previous)));
      const __m128i space = _mm_set1_epi32(' ');
      const __m128i double_space = _mm_and_si128(_mm_cmpeq_epi32(block, space), _mm_cmpeq_epi32(before, space));
      // c - 0x300 < 0x70 unsigned, as signed compares of values offset by 2^31.
      const __m128i offset = _mm_sub_epi32(next, _mm_set1_epi32(static_cast<int>(0x0300u + 0x80000000u)));
      const __m128i mark = _mm_cmplt_epi32(offset, _mm_set1_epi32(static_cast<int>(0x80000070u)));
      if (_mm_movemask_epi8(_mm_or_si128(double_space, mark)) == 0) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(kept), block);
        // c - 'A' <= 'z' - 'A' unsigned, offset by 2^31 for a signed compare; code points are
        // below 2^31, so c > 0x2FF compares as is.
        const __m128i from_a = _mm_sub_epi32(block, _mm_set1_epi32(static_cast<int>(U'A' + 0x80000000u)));
        minus_latin4 = _mm_add_epi32(
            minus_latin4, _mm_cmplt_epi32(from_a, _mm_set1_epi32(static_cast<int>(U'z' - U'A' + 1 + 0x80000000u))));
        minus_non_latin4 = _mm_add_epi32(minus_non_latin4, _mm_cmpgt_epi32(block, _mm_set1_epi32(0x02FF)));
        kept += 4;
        previous = text[i + 3];
        i += 3;
        composed += 3;
        continue;
      }
    }
#endif
    char32_t c = text[i];
    if (i + 1 < n && text[i + 1] >= 0x0300 && text[i + 1] <= 0x036F) {
      const size_t base = m.vi_base.find(c);
      const size_t mark = m.vi_marks.find(text[i + 1]);
      if (base != U32::npos && mark != U32::npos) {
        c = m.vi_composed[mark * m.vi_base.size() + base];
        ++i;
      }
    }
    // Written always, kept unless a second ' ': a branch here mispredicted at spaces and cost
    // ~3 us per detect on 2 KB English texts.
    *kept = c;
    kept += c != U' ' || previous != U' ';
    previous = c;
    latin += static_cast<uint32_t>(c - U'A') <= U'z' - U'A';
    non_latin += c >= 0x0300;
  }
  out.resize(static_cast<size_t>(kept - out.data()));
#if defined(__SSE2__)
  alignas(16) int32_t lanes[2][4];
  _mm_store_si128(reinterpret_cast<__m128i*>(lanes[0]), minus_latin4);
  _mm_store_si128(reinterpret_cast<__m128i*>(lanes[1]), minus_non_latin4);
  for (int k = 0; k < 4; ++k) {
    latin -= static_cast<size_t>(static_cast<int64_t>(lanes[0][k]));
    non_latin -= static_cast<size_t>(static_cast<int64_t>(lanes[1][k]));
  }
#endif
  ws->latin = latin;
  ws->non_latin = non_latin;
  release_if_large(&ws->urls_replaced);
  release_if_large(&ws->mails_replaced);
}

// Detector.cleaning_text. Its test `unicode_block(ch) != 'Latin Extended Additional'` compares
// an int with a str and is always true, so every character from U+0300 up counts as non-Latin.
// `latin` and `non_latin` count the characters 'A'..'z' and those from U+0300 up (append_text).
void clean_text(U32* text, size_t latin, size_t non_latin) {
  if (latin * 2 >= non_latin) return;
  size_t kept = 0;
  for (char32_t c : *text)
    if (c < 'A' || c > 'z') (*text)[kept++] = c;
  text->resize(kept);
}

// Detector._extract_ngrams with NGram.add_char. NGram keeps the last (up to) three normalized
// characters; here `before_last` and `last` are the ids of the two before the new one (0 where
// the window is shorter, which keeps such n-grams out, as does a character no profile has).
// After a ' ' the window restarts as " ", so a second ' ' adds nothing.
struct ExtractState {
  uint32_t before_last, last;
  bool last_space, last_upper;
  uint32_t* out;  // the next gram goes here
};

// The characters text[i, n) in turn from `st`; returns where it stopped: n, or with kSmallOnly
// (the loop for text whose characters all have ids below 64, nearly every English text) the
// first character with a larger id or outside the BMP. Without the hash-table path the compiler
// keeps `out` and the tables in registers: with it, `out` lived on the stack, and its store and
// reload were a chain through every character (14.7 -> 13.8 us per detect of the IFEval
// responses detected as English).
template <bool kSmallOnly>
size_t extract_from(const Model& m, const char32_t* text, size_t i, size_t n, ExtractState* st) {
  uint32_t before_last = st->before_last, last = st->last;
  bool last_space = st->last_space, last_upper = st->last_upper;
  uint32_t* out = st->out;
  // Locals: the compiler reloaded these from the model on every character.
  const CharInfo* const bmp = m.bmp.data();
  const uint32_t* const unigrams = m.unigrams.data();
  const uint16_t* const bigrams = m.small_grams[1].data();
  const uint16_t* const trigrams = m.small_grams[2].data();
  for (; i < n; ++i) {
    const char32_t c = text[i];
    if (kSmallOnly && c >= 0x10000) break;
    const CharInfo info = c < 0x10000 ? bmp[c] : CharInfo{0, false, py_isupper_char(c)};
    if (kSmallOnly && info.id >= kSmallIdLimit) break;
    if (last_space && info.is_space) continue;  // the window stays " "
    if (last_space) before_last = 0;
    // capitalword is set when this and the previous character are upper case and cleared when
    // this one is not; it never outlives the pair that set it.
    const bool keep = !(info.is_upper && last_upper);
    last_space = info.is_space;
    last_upper = info.is_upper;
    // Each gram is written and the output moves on only if it is in a profile: whether a gram
    // is known varies from character to character, and branching on it mispredicted (20.2 ->
    // 19.7 us per detect of an English response, each detected once in turn; branching on
    // `keep` too was slower, 20.5). n = 1 skips only the n-gram " ".
    if (keep) {
      const uint32_t id = info.id;
      uint32_t g1, g2, g3;
      if (kSmallOnly || (before_last | last | id) < kSmallIdLimit) {  // all three in the direct tables
        g1 = unigrams[id];
        g2 = bigrams[last << kSmallIdBits | id];
        g3 = trigrams[(before_last << kSmallIdBits | last) << kSmallIdBits | id];
      } else {
        g1 = m.find1(id);
        g2 = m.find2(last, id);
        g3 = m.find3(before_last, last, id);
      }
      *out = g1;
      out += !info.is_space & (g1 != 0);
      *out = g2;
      out += g2 != 0;
      *out = g3;
      out += g3 != 0;
    }
    before_last = last;
    last = info.id;
  }
  *st = ExtractState{before_last, last, last_space, last_upper, out};
  return i;
}

void extract_ngrams(const Model& m, U32View text, Workspace* ws) {
  if (ws->ngrams_capacity < 3 * text.size()) {
    ws->ngrams.reset(new uint32_t[3 * text.size()]);
    ws->ngrams_capacity = 3 * text.size();
  }
  ExtractState st{0, m.space_id, true, false, ws->ngrams.get()};
  // The small loop wherever the window holds small ids only, the general one for 64 characters
  // from each large id (by then the window has usually forgotten it).
  for (size_t i = 0; i < text.size();) {
    if ((st.before_last | st.last) < kSmallIdLimit) i = extract_from<true>(m, text.data(), i, text.size(), &st);
    if (i < text.size()) i = extract_from<false>(m, text.data(), i, std::min(text.size(), i + 64), &st);
  }
  ws->n_ngrams = static_cast<size_t>(st.out - ws->ngrams.get());
}

// alpha = ALPHA_DEFAULT + gauss(0, 1) * ALPHA_WIDTH: Python rounds the product before the sum.
// Out of line so that no build (say -march=native with -ffp-contract=fast) fuses the two into
// one multiply-add, which would round once.
[[gnu::noinline]] double alpha_offset(PyRandom* rng) { return rng->gauss() * kAlphaWidth; }

// Each trial ends on a normalized probability vector (the loop only breaks right after
// a normalization), so it adds at most 1/7 to any language's average. Once the leader is ahead of
// every other language by more than what the remaining trials can add, no later trial can change
// detect()'s answer, and the remaining trials (3 of 7 on a clear English text) are skipped. The
// answer is the same; only the discarded averages differ. The 1e-9 margin covers rounding.
bool winner_is_settled(const std::vector<double>& language_prob, int remaining_trials) {
  if (remaining_trials <= 0) return false;
  double first = -1.0, second = -1.0;
  for (double p : language_prob) {
    if (p > first) {
      second = first;
      first = p;
    } else if (p > second) {
      second = p;
    }
  }
  return first - second > static_cast<double>(remaining_trials) / kTrials + 1e-9;
}

// The n-gram updates between two normalizations: _detect_block normalizes after update 0 and
// then after every fifth one (i % 5 == 0), and only there can a trial end.
constexpr int kUpdatesPerNormalization = 5;

// Row of word_lang_prob_map for a gram: its dense row, or `scratch` (all zeros) with the gram's
// sparse entries written in (clear_scratch puts the zeros back).
const double* probability_row(const Model& m, const Model::GramInfo& g, double* scratch) {
  if (g.dense_row != Model::kSparse) return &m.dense_probs[size_t{g.dense_row} * m.languages.size()];
  for (uint32_t e = g.entry_begin, end = e + g.entry_count; e < end; ++e)
    scratch[m.entry_language[e]] = m.entry_prob[e];
  return scratch;
}
void clear_scratch(const Model& m, const Model::GramInfo& g, double* scratch) {
  if (g.dense_row != Model::kSparse) return;
  for (uint32_t e = g.entry_begin, end = e + g.entry_count; e < end; ++e) scratch[m.entry_language[e]] = 0.0;
}

// update_prob is built for AVX2 too, and the loader picks that version where the CPU has it (the
// wheel still runs on any x86-64): its divisions, sums and products are elementwise, exact in any
// vector width. 17.1 -> 16.4 us per English detect; an AVX-512 version (18.4) and AVX2 for all of
// detect_block (24.0) were slower. Those ISAs have fused multiply-adds, and GCC contracts
// a * b + c into one by default in C++: fp-contract=off keeps every operation rounded as Python
// rounds it.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define HIRFAST_AVX2_CLONE __attribute__((target_clones("avx2", "default"), optimize("fp-contract=off")))
#else
#define HIRFAST_AVX2_CLONE
#endif

// Four doubles; unaligned loads and stores go through memcpy.
typedef double Double4 __attribute__((vector_size(32)));

// One round of _detect_block between two normalizations, with the division of the normalization
// before it folded in. On entry the probabilities are prob[l] / divisor (Detector._normalize_prob's
// division, not yet done; divisor 1.0 at a trial's start, where x / 1.0 == x). For each language:
// p = prob[l] / divisor, then p *= weight + row_k[l] for k = 0, 1, ... in turn (_update_lang_prob
// for the grams of `rows`, each product rounded; weight + 0.0 is weight exactly, so a scratch
// row's zeros give Python's `weight` for languages without the gram); prob[l] = p. Returns
// sum(prob) as Python's sum() adds it (3.11: left to right in langlist order, from 0.0) and sets
// *max_p to the largest p: the normalized maximum _normalize_prob returns is *max_p / sum, since
// a correctly rounded division by a positive number keeps the order (and with a NaN, both never
// exceed the threshold). Done this way the in-order sum, a chain of 55 dependent additions, runs
// alongside the products and divisions instead of after them, and the normalized values are not
// stored, reloaded and scanned for the maximum.
template <int kRows>
HIRFAST_AVX2_CLONE double update_prob(double* prob, size_t n, const double* const* rows, double weight,
                                      double divisor, double* max_p) {
  const Double4 weight4 = {weight, weight, weight, weight};
  const Double4 divisor4 = {divisor, divisor, divisor, divisor};
  Double4 max4 = {0.0, 0.0, 0.0, 0.0};
  double sum = 0.0;
  size_t l = 0;
  for (; l + 4 <= n; l += 4) {
    Double4 p;
    __builtin_memcpy(&p, prob + l, sizeof p);
    p /= divisor4;
    for (int k = 0; k < kRows; ++k) {
      Double4 row;
      __builtin_memcpy(&row, rows[k] + l, sizeof row);
      p *= weight4 + row;
    }
    __builtin_memcpy(prob + l, &p, sizeof p);
    max4 = p > max4 ? p : max4;
    sum += p[0];
    sum += p[1];
    sum += p[2];
    sum += p[3];
  }
  double max_all = std::max(std::max(max4[0], max4[1]), std::max(max4[2], max4[3]));
  for (; l < n; ++l) {
    double p = prob[l] / divisor;
    for (int k = 0; k < kRows; ++k) p *= weight + rows[k][l];
    prob[l] = p;
    max_all = std::max(max_all, p);
    sum += p;
  }
  *max_p = max_all;
  return sum;
}

// Detector._detect_block after the n-grams are known: the averaged probabilities of 7 trials
// (fewer when the answer is settled early, see winner_is_settled).
//
// The five updates between two normalizations are applied together, each language's
// probability kept in a register through its five products (the same products, in the same
// order): with one pass per update, loading and storing the 55 probabilities five times cost as
// much as the products. Their five grams are drawn first, as Python draws them, since no trial
// ends between normalizations. 16.3 -> 14.2 us per detect on the English responses.
void detect_block(const Model& m, const uint32_t* ngrams, size_t n_grams, std::vector<double>* language_prob) {
  const size_t n_languages = m.languages.size();
  language_prob->assign(n_languages, 0.0);
  std::vector<double> prob(n_languages);
  std::vector<double> scratch(kUpdatesPerNormalization * n_languages, 0.0);
  PyRandom rng;
  const uint32_t n_ngrams = static_cast<uint32_t>(n_grams);
  const int n_ngrams_bit_length = PyRandom::bit_length(n_ngrams);
  uint32_t grams[kUpdatesPerNormalization];
  Model::GramInfo infos[kUpdatesPerNormalization];
  const double* rows[kUpdatesPerNormalization];
  for (int trial = 0; trial < kTrials; ++trial) {
    for (double& p : prob) p = 1.0 / static_cast<double>(n_languages);
    double divisor = 1.0;  // see update_prob
    const double alpha = kAlphaDefault + alpha_offset(&rng);
    const double weight = alpha / kBaseFreq;
    // Updates 0, then 1..5, 6..10, ...: `last` is the index of the last update applied.
    for (int last = 0, count = 1;; last += kUpdatesPerNormalization, count = kUpdatesPerNormalization) {
      // Draws first, then the grams' facts, then their rows: the facts of all five grams are
      // fetched at once (mostly cache misses), before any branch depends on one.
      for (int k = 0; k < count; ++k) grams[k] = ngrams[rng.randbelow(n_ngrams, n_ngrams_bit_length)] - 1;
      for (int k = 0; k < count; ++k) infos[k] = m.grams[grams[k]];
      for (int k = 0; k < count; ++k) rows[k] = probability_row(m, infos[k], &scratch[k * n_languages]);
      double max_p;
      divisor = count == 1 ? update_prob<1>(prob.data(), n_languages, rows, weight, divisor, &max_p)
                           : update_prob<kUpdatesPerNormalization>(prob.data(), n_languages, rows, weight,
                                                                   divisor, &max_p);
      for (int k = 0; k < count; ++k) clear_scratch(m, infos[k], &scratch[k * n_languages]);
      if (max_p / divisor > kConvThreshold || last >= kIterationLimit) break;
    }
    for (size_t l = 0; l < n_languages; ++l) (*language_prob)[l] += prob[l] / divisor / kTrials;
    if (winner_is_settled(*language_prob, kTrials - 1 - trial)) break;
  }
}

// Out of line: each access to a thread_local in a shared library is a __tls_get_addr call, and
// inlined into detect_language they were 7% of its time.
[[gnu::noinline]] Workspace& workspace() {
  thread_local Workspace ws;
  return ws;
}

}  // namespace

void langdetect_load() { model(); }

bool detect_language(U32View text, std::string* lang) {
  const Model& m = model();
  Workspace& ws = workspace();
  append_text(m, text, &ws);
  clean_text(&ws.text, ws.latin, ws.non_latin);
  extract_ngrams(m, ws.text, &ws);
  if (ws.n_ngrams == 0) return false;  // LangDetectException: "No features in text."
  std::vector<double> language_prob;
  detect_block(m, ws.ngrams.get(), ws.n_ngrams, &language_prob);
  // _sort_probability keeps p > 0.1 and sorts stably by falling p; detect() takes the first:
  // the highest p, the earliest language on a tie.
  int best = -1;
  for (size_t l = 0; l < language_prob.size(); ++l)
    if (language_prob[l] > kProbThreshold && (best < 0 || language_prob[l] > language_prob[best]))
      best = static_cast<int>(l);
  *lang = best < 0 ? "unknown" : m.languages[best];
  return true;
}

U32 langdetect_appended_text(U32View text) {
  Workspace ws;
  append_text(model(), text, &ws);
  return ws.text;
}

std::vector<double> langdetect_random_trace(const std::vector<int64_t>& ops) {
  PyRandom rng;
  std::vector<double> out;
  out.reserve(ops.size());
  for (int64_t op : ops) {
    if (op > INT64_C(0xFFFFFFFF)) throw std::invalid_argument("choice over more than 2**32 - 1 items");
    const uint32_t n = static_cast<uint32_t>(op);
    out.push_back(op <= 0 ? rng.gauss() : static_cast<double>(rng.randbelow(n, PyRandom::bit_length(n))));
  }
  return out;
}

}  // namespace hirfast
