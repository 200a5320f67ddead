// Matching (a Pike VM that keeps sre's path priority), the Regex API and the compile cache.
//
// The VM advances all live threads one code point at a time. Threads are kept in priority
// order (the order in which sre's backtracking would try their paths); the epsilon closure is a
// depth-first walk in that order, and a state (pc + live empty-iteration flags) reached a
// second time at the same position is dropped, because the first thread to reach it has the
// same future and a higher priority. When a thread matches, the lower-priority ones are cut;
// higher-priority ones run on and may replace the match. This yields the match (and groups)
// sre returns, in O(len(text) * states) time.
#include <algorithm>
#include <list>
#include <mutex>
#include <unordered_map>

#include "regex_internal.h"

namespace hirfast {

using namespace regex_detail;

namespace {

enum Mode : int { kSearch = 0, kMatchAt = 1, kFullMatch = 2 };

struct Queue {
  std::vector<uint32_t> sparse;  // state id -> index into dense (a sparse set: no clearing)
  std::vector<uint32_t> dense;
  uint32_t visited = 0;
  std::vector<uint32_t> run_pc;  // states that wait for the next step, in priority order
  std::vector<ptrdiff_t> caps;   // run_pc.size() x nslots capture slots

  void reset(uint32_t nstates) {
    if (sparse.size() < nstates) {
      sparse.resize(nstates);
      dense.resize(nstates);
    }
    visited = 0;
    run_pc.clear();
    caps.clear();
  }
  bool insert(uint32_t sid) {
    const uint32_t i = sparse[sid];
    if (i < visited && dense[i] == sid) return false;
    sparse[sid] = visited;
    dense[visited++] = sid;
    return true;
  }
};

struct Frame {
  uint32_t pc;
  uint32_t mask;
  int32_t restore_slot;  // >= 0: not a state but "put restore_value back into this slot"
  ptrdiff_t restore_value;
};

// Per-thread buffers, reused across calls (a compiled Regex is shared between threads).
struct Scratch {
  Queue a, b;
  std::vector<Frame> stack;
  std::vector<ptrdiff_t> work, fresh, best;
};
thread_local Scratch tls_scratch;

class Vm {
 public:
  Vm(const Compiled& c, U32View text, size_t nslots, Scratch* s)
      : c_(c), prog_(c.prog.data()), base_(c.state_base.data()), text_(text), n_(text.size()), ns_(nslots), s_(*s) {}

  bool run(size_t start, Mode mode, bool must_advance, std::vector<ptrdiff_t>* out) {
    start_ = start;
    mode_ = mode;
    must_advance_ = must_advance;
    Queue* clist = &s_.a;
    Queue* nlist = &s_.b;
    clist->reset(c_.num_states);
    nlist->reset(c_.num_states);
    s_.fresh.assign(ns_, -1);
    s_.work.resize(ns_);
    bool matched = false;
    size_t p = start;
    if (mode == kSearch) {
      p = next_candidate(start);
      if (p == U32View::npos) return false;
    }
    while (true) {
      if (!matched && (mode == kSearch || p == start) && is_candidate(p)) {
        s_.fresh[0] = static_cast<ptrdiff_t>(p);
        add(clist, 0, s_.fresh.data(), p);
      }
      if (clist->run_pc.empty()) {
        if (matched || mode != kSearch || p >= n_) break;
        const size_t q = next_candidate(p + 1);
        if (q == U32View::npos) break;
        p = q;
        clist->reset(c_.num_states);
        continue;
      }
      nlist->reset(c_.num_states);
      for (size_t k = 0; k < clist->run_pc.size(); ++k) {
        const uint32_t pc = clist->run_pc[k];
        const ptrdiff_t* caps = clist->caps.data() + k * ns_;
        if (prog_[pc].op == Op::kMatch) {
          s_.best.assign(caps, caps + ns_);
          s_.best[1] = static_cast<ptrdiff_t>(p);
          matched = true;
          break;  // lower-priority threads lose to this match
        }
        add(nlist, pc + 1, caps, p + 1);
      }
      std::swap(clist, nlist);
      if (p >= n_) break;
      ++p;
    }
    if (matched) *out = s_.best;
    return matched;
  }

 private:
  bool word_at(size_t i, bool ascii) const {
    const char32_t ch = text_[i];
    return ascii ? (ch < 128 && (ch == '_' || py_isalnum(ch))) : re_word(ch);
  }

  bool assert_holds(uint8_t at, size_t p) const {
    switch (at) {
      case kAtBeginning:
      case kAtBeginningString: return p == 0;
      case kAtBeginningLine: return p == 0 || text_[p - 1] == U'\n';
      case kAtEnd: return p == n_ || (p + 1 == n_ && text_[p] == U'\n');
      case kAtEndLine: return p == n_ || text_[p] == U'\n';
      case kAtEndString: return p == n_;
      case kAtBoundary:
      case kAtNonBoundary:
      case kAtUniBoundary:
      case kAtUniNonBoundary: {
        // _sre: neither \b nor \B matches anywhere in an empty string.
        if (n_ == 0) return false;
        const bool ascii = at == kAtBoundary || at == kAtNonBoundary;
        const bool before = p > 0 && word_at(p - 1, ascii);
        const bool here = p < n_ && word_at(p, ascii);
        const bool boundary = before != here;
        return (at == kAtBoundary || at == kAtUniBoundary) ? boundary : !boundary;
      }
      default: return false;
    }
  }

  bool is_candidate(size_t p) const {
    if (c_.anchored_start) return p == 0;
    if (c_.has_prefix) {
      if (p >= n_) return false;
      const auto& first = c_.literal_searcher.first;
      return std::find(first.begin(), first.end(), text_[p]) != first.end();
    }
    if (c_.can_skip) {
      if (p >= n_) return false;
      for (const CharTest& t : c_.first_tests)
        if (t(text_[p])) return true;
      return false;
    }
    return true;
  }

  // The first position >= from where a match may start, or npos.
  size_t next_candidate(size_t from) const {
    if (from > n_) return U32View::npos;
    if (c_.anchored_start) return from == 0 ? 0 : U32View::npos;
    if (c_.has_prefix) return c_.literal_searcher.find(text_, from);
    if (c_.can_skip) {
      const auto& tests = c_.first_tests;
      for (size_t i = from; i < n_; ++i) {
        const char32_t ch = text_[i];
        for (const CharTest& t : tests)
          if (t(ch)) return i;
      }
      return U32View::npos;
    }
    return from;
  }

  // Epsilon closure of (pc0, no flags) at position p, appended to q in priority order.
  void add(Queue* q, uint32_t pc0, const ptrdiff_t* caps0, size_t p) {
    ptrdiff_t* work = s_.work.data();
    std::copy(caps0, caps0 + ns_, work);
    auto& stack = s_.stack;
    stack.clear();
    stack.push_back(Frame{pc0, 0, -1, 0});
    while (!stack.empty()) {
      const Frame f = stack.back();
      stack.pop_back();
      if (f.restore_slot >= 0) {
        work[f.restore_slot] = f.restore_value;
        continue;
      }
      uint32_t pc = f.pc;
      uint32_t mask = f.mask;
      while (true) {
        const Inst& in = prog_[pc];
        // Only the flags of the loops around pc matter; a consuming step clears them all.
        mask &= (1u << in.depth) - 1;
        if (in.op == Op::kConsume || in.op == Op::kMatch) mask = 0;
        if (!q->insert(base_[pc] + mask)) break;
        bool stop = false;
        switch (in.op) {
          case Op::kJmp: pc = in.x; break;
          case Op::kSplit:
            stack.push_back(Frame{in.y, mask, -1, 0});
            pc = in.x;
            break;
          case Op::kSave:
            if (in.x < ns_) {
              stack.push_back(Frame{0, 0, static_cast<int32_t>(in.x), work[in.x]});
              work[in.x] = static_cast<ptrdiff_t>(p);
            }
            ++pc;
            break;
          case Op::kAssert:
            if (!assert_holds(in.at, p)) {
              stop = true;
            } else {
              ++pc;
            }
            break;
          case Op::kIterStart:
            mask |= 1u << in.bit;
            ++pc;
            break;
          case Op::kCheckEmpty: pc = ((mask >> in.bit) & 1) ? in.x : pc + 1; break;
          case Op::kNotNext:
            if (p < n_ && in.test(text_[p])) {
              stop = true;
            } else {
              ++pc;
            }
            break;
          case Op::kMatch:
            // findall's rule after an empty match (sre's must_advance), and fullmatch.
            if (!((must_advance_ && p == start_) || (mode_ == kFullMatch && p != n_))) push(q, pc, work);
            stop = true;
            break;
          case Op::kConsume:
            if (p < n_ && in.test(text_[p])) push(q, pc, work);
            stop = true;
            break;
        }
        if (stop) break;
      }
    }
  }

  void push(Queue* q, uint32_t pc, const ptrdiff_t* caps) {
    q->run_pc.push_back(pc);
    q->caps.insert(q->caps.end(), caps, caps + ns_);
  }

  const Compiled& c_;
  const Inst* prog_;
  const uint32_t* base_;
  U32View text_;
  size_t n_;
  size_t ns_;
  Scratch& s_;
  size_t start_ = 0;
  Mode mode_ = kSearch;
  bool must_advance_ = false;
};

void fill_match(const std::vector<ptrdiff_t>& caps, size_t groups, bool want_groups, RegexMatch* m) {
  m->start = static_cast<size_t>(caps[0]);
  m->end = static_cast<size_t>(caps[1]);
  m->groups.clear();
  if (!want_groups) return;
  m->groups.reserve(groups);
  for (size_t g = 1; g <= groups; ++g) {
    const ptrdiff_t a = caps[2 * g], b = caps[2 * g + 1];
    if (a >= 0 && b >= 0) {
      m->groups.emplace_back(a, b);
    } else {
      m->groups.emplace_back(-1, -1);
    }
  }
}

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

bool Regex::exec(std::u32string_view text, size_t pos, int mode, bool must_advance, bool want_groups,
                 RegexMatch* m) const {
  pos = std::min(pos, text.size());
  if (c_->literal && mode == kSearch) {
    // Non-empty literal: must_advance never applies.
    const size_t q = c_->literal_searcher.find(text, pos);
    if (q == U32View::npos) return false;
    m->start = q;
    m->end = q + c_->literal_searcher.keys.size();
    m->groups.clear();
    return true;
  }
  const size_t nslots = want_groups ? 2 * c_->groups + 2 : 2;
  std::vector<ptrdiff_t> caps;
  Vm vm(*c_, text, nslots, &tls_scratch);
  if (!vm.run(pos, static_cast<Mode>(mode), must_advance, &caps)) return false;
  fill_match(caps, c_->groups, want_groups, m);
  return true;
}

bool Regex::search(std::u32string_view text, size_t pos, RegexMatch* m) const {
  return exec(text, pos, kSearch, false, true, m);
}
bool Regex::match(std::u32string_view text, size_t pos, RegexMatch* m) const {
  return exec(text, pos, kMatchAt, false, true, m);
}
bool Regex::fullmatch(std::u32string_view text, RegexMatch* m) const {
  return exec(text, 0, kFullMatch, false, true, m);
}

// findall/finditer/split/sub's scan: left to right without overlap; after an empty match the
// next one may start at the same position only if it is not empty (sre's must_advance).
template <typename F>
void Regex::scan(std::u32string_view text, size_t limit, bool want_groups, F&& on_match) const {
  size_t pos = 0, found = 0;
  bool must_advance = false;
  RegexMatch m;
  while (pos <= text.size() && (limit == 0 || found < limit)) {
    if (!exec(text, pos, kSearch, must_advance, want_groups, &m)) break;
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
