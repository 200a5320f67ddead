#include "pos_tagger.h"

#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "assets.h"

namespace hirfast {
namespace {

constexpr const char* kModelFile = "tagger/averaged_perceptron_tagger_eng.bin";
constexpr const char* kMagic = "HFAPTAG1";

// A bounds-checked little-endian reader over the model file.
class Reader {
 public:
  Reader(std::string_view data, const std::string& path) : data_(data), path_(path) {}
  uint32_t u8() { return static_cast<uint8_t>(take(1)[0]); }
  uint32_t u16() {
    std::string_view b = take(2);
    return static_cast<uint8_t>(b[0]) | (static_cast<uint32_t>(static_cast<uint8_t>(b[1])) << 8);
  }
  uint32_t u32() {
    std::string_view b = take(4);
    uint32_t v = 0;
    for (int k = 3; k >= 0; --k) v = (v << 8) | static_cast<uint8_t>(b[k]);
    return v;
  }
  std::string_view take(size_t n) {
    if (n > data_.size() - pos_) throw AssetError("hirfast: truncated POS tagger model " + path_);
    std::string_view out = data_.substr(pos_, n);
    pos_ += n;
    return out;
  }
  bool done() const { return pos_ == data_.size(); }

 private:
  std::string_view data_;
  std::string path_;
  size_t pos_ = 0;
};

// Python's s[-3:] over code points, as UTF-8.
std::string last3(U32View s) { return encode_utf8(s.substr(s.size() > 3 ? s.size() - 3 : 0)); }
std::string last3_utf8(const std::string& utf8) {
  // Context words are stored as UTF-8: step back over three code points (continuation bytes
  // are 10xxxxxx).
  size_t pos = utf8.size();
  for (int k = 0; k < 3 && pos > 0; ++k) {
    --pos;
    while (pos > 0 && (static_cast<uint8_t>(utf8[pos]) & 0xC0) == 0x80) --pos;
  }
  return utf8.substr(pos);
}

}  // namespace

PerceptronTagger::PerceptronTagger(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw AssetError("hirfast: cannot read POS tagger model " + path);
  std::ostringstream buf;
  buf << in.rdbuf();
  blob_ = buf.str();

  Reader r(blob_, path);
  if (r.take(8) != kMagic) throw AssetError("hirfast: not a POS tagger model: " + path);
  const uint32_t n_classes = r.u32();
  for (uint32_t k = 0; k < n_classes; ++k) classes_.push_back(r.take(r.u8()));
  const uint32_t n_tagdict = r.u32();
  tagdict_.reserve(n_tagdict);
  for (uint32_t k = 0; k < n_tagdict; ++k) {
    std::string_view word = r.take(r.u16());
    uint32_t cls = r.u8();
    if (cls >= n_classes) throw AssetError("hirfast: bad class index in " + path);
    tagdict_.emplace(word, static_cast<uint8_t>(cls));
  }
  const uint32_t n_features = r.u32();
  features_.reserve(n_features);
  for (uint32_t k = 0; k < n_features; ++k) {
    std::string_view name = r.take(r.u16());
    FeatureWeights fw{static_cast<uint32_t>(weights_.size()), r.u8()};
    for (uint32_t j = 0; j < fw.count; ++j) {
      uint32_t cls = r.u8();
      int32_t milli = static_cast<int32_t>(r.u32());
      if (cls >= n_classes) throw AssetError("hirfast: bad class index in " + path);
      // Correctly rounded division: the same double as parsing the JSON decimal (see the tool).
      weights_.push_back({static_cast<uint8_t>(cls), milli / 1000.0});
    }
    features_.emplace(name, fw);
  }
  if (!r.done()) throw AssetError("hirfast: trailing bytes in POS tagger model " + path);
}

const PerceptronTagger& PerceptronTagger::english() {
  // A function-local static is initialized once even under concurrent first calls; if loading
  // throws, the next call tries again.
  static const PerceptronTagger tagger(asset_path(kModelFile));
  return tagger;
}

std::string PerceptronTagger::normalize(U32View word) {
  if (word.find(U'-') != U32View::npos && word[0] != U'-') return "!HYPHEN";
  bool all_digits = !word.empty();
  for (char32_t c : word) all_digits = all_digits && py_isdigit(c);
  if (all_digits && word.size() == 4) return "!YEAR";
  if (!word.empty() && py_isdigit(word[0])) return "!DIGITS";
  return encode_utf8(py_lower(word));
}

size_t PerceptronTagger::predict(const std::vector<std::string>& features) const {
  // scores[label] += value * weight, feature by feature in insertion order (value is always 1:
  // the 14 feature names differ in their first two words, so no two features collide).
  std::vector<double> scores(classes_.size(), 0.0);
  for (const std::string& f : features) {
    auto it = features_.find(f);
    if (it == features_.end()) continue;
    for (uint32_t j = 0; j < it->second.count; ++j) {
      const ClassWeight& cw = weights_[it->second.first + j];
      scores[cw.cls] += cw.weight;
    }
  }
  size_t best = 0;
  for (size_t c = 1; c < classes_.size(); ++c) {
    if (scores[c] > scores[best] || (scores[c] == scores[best] && classes_[c] > classes_[best])) best = c;
  }
  return best;
}

std::vector<std::string_view> PerceptronTagger::tag(const std::vector<U32View>& tokens, size_t count) const {
  const size_t n = std::min(count, tokens.size());
  std::vector<std::string_view> out;
  out.reserve(n);
  if (n == 0) return out;
  // context = START + [normalize(w) for w in tokens] + END; only what the first n tags read.
  std::vector<std::string> context = {"-START-", "-START2-"};
  const size_t needed = std::min(tokens.size(), n + 2);
  for (size_t k = 0; k < needed; ++k) context.push_back(normalize(tokens[k]));
  if (needed == tokens.size()) {
    context.push_back("-END-");
    context.push_back("-END2-");
  }

  std::string_view prev = "-START-", prev2 = "-START2-";
  std::vector<std::string> features;
  features.reserve(14);
  for (size_t i = 0; i < n; ++i) {
    const U32View word = tokens[i];
    std::string_view tag_name;
    auto dict = tagdict_.find(encode_utf8(word));
    if (dict != tagdict_.end()) {
      tag_name = classes_[dict->second];
    } else {
      const size_t c = i + 2;  // position of the word in `context`
      const std::string p(prev), p2(prev2);
      features.clear();
      features.push_back("bias");
      features.push_back("i suffix " + last3(word));
      features.push_back("i pref1 " + (word.empty() ? std::string() : encode_utf8(word.substr(0, 1))));
      features.push_back("i-1 tag " + p);
      features.push_back("i-2 tag " + p2);
      features.push_back("i tag+i-2 tag " + p + " " + p2);
      features.push_back("i word " + context[c]);
      features.push_back("i-1 tag+i word " + p + " " + context[c]);
      features.push_back("i-1 word " + context[c - 1]);
      features.push_back("i-1 suffix " + last3_utf8(context[c - 1]));
      features.push_back("i-2 word " + context[c - 2]);
      features.push_back("i+1 word " + context[c + 1]);
      features.push_back("i+1 suffix " + last3_utf8(context[c + 1]));
      features.push_back("i+2 word " + context[c + 2]);
      tag_name = classes_[predict(features)];
    }
    out.push_back(tag_name);
    prev2 = prev;
    prev = tag_name;
  }
  return out;
}

}  // namespace hirfast
