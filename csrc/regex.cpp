// The Regex API (compile, search, findall-style scans, split, sub) and the compile cache.
// Parsing is in regex_parse.cpp, compilation in regex_compile.cpp, matching in regex_exec.cpp.
#include <algorithm>
#include <list>
#include <mutex>
#include <unordered_map>

#include "regex_internal.h"

namespace hirfast {

using namespace regex_detail;

namespace {

constexpr uint32_t kAcceptedFlags =
    kFlagIgnoreCase | kFlagLocale | kFlagMultiline | kFlagDotAll | kFlagUnicode | kFlagVerbose | kFlagAscii;

}  // namespace

Regex::Regex(std::unique_ptr<const Compiled> compiled) : c_(std::move(compiled)) {}
Regex::~Regex() = default;

std::shared_ptr<const Regex> Regex::compile(std::u32string_view pattern, uint32_t flags) {
  if (flags & ~kAcceptedFlags)
    throw RegexError("unsupported flag bits " + std::to_string(flags & ~kAcceptedFlags) +
                         " (accepted: IGNORECASE, LOCALE, MULTILINE, DOTALL, UNICODE, VERBOSE, ASCII)",
                     RegexError::kNoPos);
  ParsedPattern parsed = parse_pattern(pattern, flags);
  return std::make_shared<const Regex>(compile_pattern(parsed));
}

size_t Regex::group_count() const { return c_->groups; }
bool Regex::is_literal() const { return c_->literal; }

bool Regex::search(std::u32string_view text, size_t pos, RegexMatch* m) const {
  return Matcher(*c_, text, pos, true).exec(pos, kSearch, false, m);
}
bool Regex::match(std::u32string_view text, size_t pos, RegexMatch* m) const {
  return Matcher(*c_, text, pos, true).exec(pos, kMatchAt, false, m);
}
bool Regex::fullmatch(std::u32string_view text, RegexMatch* m) const {
  return Matcher(*c_, text, 0, true).exec(0, kFullMatch, false, m);
}

// findall/finditer/split/sub's scan: left to right without overlap; after an empty match the
// next one may start at the same position only if it is not empty (sre's must_advance).
template <typename F>
void Regex::scan(std::u32string_view text, size_t limit, bool want_groups, F&& on_match) const {
  size_t pos = 0, found = 0;
  bool must_advance = false;
  RegexMatch m;
  Matcher matcher(*c_, text, 0, want_groups);
  while (pos <= text.size() && (limit == 0 || found < limit)) {
    if (!matcher.exec(pos, kSearch, must_advance, &m)) break;
    on_match(m);
    ++found;
    must_advance = m.end == m.start;
    pos = m.end;
  }
}

size_t Regex::count(std::u32string_view text) const {
  size_t n = 0;
  scan(text, 0, false, [&](const RegexMatch&) { ++n; });
  return n;
}

std::vector<RegexMatch> Regex::finditer(std::u32string_view text) const {
  std::vector<RegexMatch> out;
  scan(text, 0, true, [&](const RegexMatch& m) { out.push_back(m); });
  return out;
}

std::vector<std::optional<std::u32string>> Regex::split(std::u32string_view text, size_t maxsplit) const {
  std::vector<std::optional<std::u32string>> out;
  size_t last = 0;
  scan(text, maxsplit, c_->groups > 0, [&](const RegexMatch& m) {
    out.emplace_back(std::u32string(text.substr(last, m.start - last)));
    for (const auto& g : m.groups) {
      if (g.first < 0) {
        out.emplace_back(std::nullopt);
      } else {
        out.emplace_back(std::u32string(text.substr(g.first, g.second - g.first)));
      }
    }
    last = m.end;
  });
  out.emplace_back(std::u32string(text.substr(last)));
  return out;
}

std::u32string Regex::sub(std::u32string_view text, std::u32string_view repl, size_t count) const {
  std::vector<TemplatePart> parts;
  if (repl.find(U'\\') == std::u32string_view::npos) {
    parts.push_back(TemplatePart{std::u32string(repl), -1});
  } else {
    parts = parse_template(repl, c_->groups, c_->group_index);
  }
  bool want_groups = false;
  for (const TemplatePart& p : parts) want_groups = want_groups || p.group > 0;
  std::u32string out;
  size_t i = 0;
  scan(text, count, want_groups, [&](const RegexMatch& m) {
    out.append(text.substr(i, m.start - i));
    for (const TemplatePart& p : parts) {
      if (p.group < 0) {
        out += p.literal;
      } else if (p.group == 0) {
        out.append(text.substr(m.start, m.end - m.start));
      } else {
        const auto& g = m.groups[static_cast<size_t>(p.group) - 1];
        if (g.first >= 0) out.append(text.substr(g.first, g.second - g.first));
      }
    }
    i = m.end;
  });
  out.append(text.substr(i));
  return out;
}

namespace {

struct CacheKey {
  std::u32string pattern;
  uint32_t flags;
  bool operator==(const CacheKey& o) const { return flags == o.flags && pattern == o.pattern; }
};
struct CacheKeyHash {
  size_t operator()(const CacheKey& k) const { return std::hash<std::u32string>()(k.pattern) * 31 + k.flags; }
};

// Least-recently-used cache. 4096 entries: a training batch's distinct keywords and splitters
// fit, and a compiled keyword pattern takes a few KB at most.
class RegexCache {
 public:
  std::shared_ptr<const Regex> get(std::u32string_view pattern, uint32_t flags) {
    CacheKey key{std::u32string(pattern), flags};
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = index_.find(key);
      if (it != index_.end()) {
        order_.splice(order_.begin(), order_, it->second);
        return it->second->second;
      }
    }
    std::shared_ptr<const Regex> compiled = Regex::compile(pattern, flags);  // throws: not cached
    std::lock_guard<std::mutex> lock(mu_);
    auto it = index_.find(key);
    if (it != index_.end()) return it->second->second;
    order_.emplace_front(key, compiled);
    index_.emplace(std::move(key), order_.begin());
    if (order_.size() > kCapacity) {
      index_.erase(order_.back().first);
      order_.pop_back();
    }
    return compiled;
  }

 private:
  static constexpr size_t kCapacity = 4096;
  std::mutex mu_;
  std::list<std::pair<CacheKey, std::shared_ptr<const Regex>>> order_;
  std::unordered_map<CacheKey, std::list<std::pair<CacheKey, std::shared_ptr<const Regex>>>::iterator, CacheKeyHash>
      index_;
};

}  // namespace

std::shared_ptr<const Regex> cached_regex(std::u32string_view pattern, uint32_t flags) {
  static RegexCache cache;
  return cache.get(pattern, flags);
}

}  // namespace hirfast
