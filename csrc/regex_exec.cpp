// The two matching engines of the regex (see Matcher in regex_internal.h).
//
// Both explore paths in the order sre's backtracking tries them: at a split the preferred
// branch first, captures restored when a path fails. A state is (pc, flags of the live
// empty-iteration checks); the epsilon graph over states at one position is acyclic (an
// optional iteration that consumed nothing leaves its loop), so:
//  - the backtracker can mark every (state, position) it enters and never enter it again: a
//    marked state was fully explored without an acceptable match (or lies on the match being
//    returned, at or before its end). Marks at positions after a match's end therefore stay
//    valid for the next search of a findall scan, which makes the whole scan linear;
//  - the Pike VM keeps threads in priority order and drops a thread whose state an earlier
//    (higher-priority) thread already reached at the same position.
#include <algorithm>
#include <atomic>

#include "regex_internal.h"

namespace hirfast {
namespace regex_detail {

namespace {

// 256 M bits = 32 MB: a 10 MB text with a pattern of up to 25 states, a 5 KB response with
// anything the compiler accepts. Beyond it the Pike VM runs in memory independent of the text.
std::atomic<uint64_t> g_backtrack_bit_budget{uint64_t{1} << 28};
// The backtracker's explicit stack (one entry per pending alternative or capture to restore)
// (32 bytes each) may not outgrow 32 MB; past that the call is redone by the Pike VM.
constexpr size_t kMaxBacktrackFrames = size_t{1} << 20;
// Thread-local buffers beyond 16 MB are released after use.
constexpr size_t kKeepScratchBytes = size_t{16} << 20;

struct Queue {
  std::vector<uint32_t> sparse;  // state id -> index into dense (a sparse set: no clearing)
  std::vector<uint32_t> dense;
  uint32_t visited = 0;
  std::vector<uint32_t> run_pc;  // states waiting for the next step, in priority order
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

// A pending branch (pc, mask) at position `value`; a capture slot to restore (slot >= 0) to
// `value`; or (slot == kRangeFrame) the exit of a greedy one-character loop at positions
// value, value - 1, ..., lo, tried in that order (the mask applies at lo only).
constexpr int32_t kBranchFrame = -1;
constexpr int32_t kRangeFrame = -2;
struct Frame {
  uint32_t pc;
  uint32_t mask;
  int32_t slot;
  ptrdiff_t value;
  size_t lo;
};

}  // namespace

struct Scratch {
  Queue a, b;
  std::vector<Frame> stack;
  std::vector<ptrdiff_t> work, fresh, best;
  std::vector<uint64_t> visited;
  bool in_use = false;
};

namespace {

thread_local Scratch tls_scratch;

bool word_at(U32View t, size_t i, bool ascii) {
  const char32_t ch = t[i];
  return ascii ? (ch < 128 && (ch == '_' || py_isalnum(ch))) : re_word(ch);
}

bool assert_holds(U32View t, uint8_t at, size_t p) {
  const size_t n = t.size();
  switch (at) {
    case kAtBeginning:
    case kAtBeginningString: return p == 0;
    case kAtBeginningLine: return p == 0 || t[p - 1] == U'\n';
    case kAtEnd: return p == n || (p + 1 == n && t[p] == U'\n');
    case kAtEndLine: return p == n || t[p] == U'\n';
    case kAtEndString: return p == n;
    case kAtBoundary:
    case kAtNonBoundary:
    case kAtUniBoundary:
    case kAtUniNonBoundary: {
      // _sre: neither \b nor \B matches anywhere in an empty string.
      if (n == 0) return false;
      const bool ascii = at == kAtBoundary || at == kAtNonBoundary;
      const bool before = p > 0 && word_at(t, p - 1, ascii);
      const bool here = p < n && word_at(t, p, ascii);
      return (at == kAtBoundary || at == kAtUniBoundary) ? before != here : before == here;
    }
    default: return false;
  }
}

// The backtracker's stack: a vector used through an index, so pushes stay inline.
class FrameStack {
 public:
  explicit FrameStack(std::vector<Frame>* storage) : v_(*storage) {
    if (v_.size() < 64) v_.resize(64);
  }
  bool empty() const { return top_ == 0; }
  size_t size() const { return top_; }
  Frame& back() { return v_[top_ - 1]; }
  void pop() { --top_; }
  void push(const Frame& f) {
    if (top_ == v_.size()) v_.resize(2 * v_.size());
    v_[top_++] = f;
  }

 private:
  std::vector<Frame>& v_;
  size_t top_ = 0;
};

inline uint32_t live_mask(const Inst& in, uint32_t mask) {
  // Only the flags of the loops around pc matter, and a consuming step clears them all.
  if (in.op == Op::kConsume || in.op == Op::kMatch) return 0;
  return mask & ((1u << in.depth) - 1);
}

}  // namespace

Matcher::Matcher(const Compiled& c, U32View text, size_t first_start, bool want_groups)
    : c_(c), text_(text), n_(text.size()), ns_(want_groups ? 2 * c.groups + 2 : 2) {
  base_ = std::min(first_start, n_);
  const uint64_t bits = uint64_t{c.num_states} * (n_ - base_ + 1);
  use_backtracker_ = bits <= g_backtrack_bit_budget.load(std::memory_order_relaxed);
  // A nested use on the same thread (none today) gets its own buffers.
  owns_scratch_ = tls_scratch.in_use;
  s_ = owns_scratch_ ? new Scratch() : &tls_scratch;
  s_->in_use = true;
}

Matcher::~Matcher() {
  if (owns_scratch_) {
    delete s_;
    return;
  }
  s_->in_use = false;
  if (s_->visited.capacity() * sizeof(uint64_t) > kKeepScratchBytes) std::vector<uint64_t>().swap(s_->visited);
  if (s_->stack.capacity() * sizeof(Frame) > kKeepScratchBytes) std::vector<Frame>().swap(s_->stack);
}

bool Matcher::exec(size_t start, Mode mode, bool must_advance, RegexMatch* m) {
  start = std::min(start, n_);
  if (c_.literal) return literal_exec(start, mode, m);
  if (use_backtracker_) {
    Result r = backtrack_exec(start, mode, must_advance);
    if (r != Result::kAborted) {
      if (r == Result::kFound) fill(m);
      return r == Result::kFound;
    }
    use_backtracker_ = false;  // its marks are now unreliable for the rest of the scan
  }
  if (!pike_exec(start, mode, must_advance)) return false;
  fill(m);
  return true;
}

void Matcher::fill(RegexMatch* m) const {
  const auto& caps = s_->best;
  m->start = static_cast<size_t>(caps[0]);
  m->end = static_cast<size_t>(caps[1]);
  m->groups.clear();
  if (ns_ == 2) return;
  m->groups.reserve(c_.groups);
  for (size_t g = 1; g <= c_.groups; ++g) {
    const ptrdiff_t a = caps[2 * g], b = caps[2 * g + 1];
    if (a >= 0 && b >= 0) {
      m->groups.emplace_back(a, b);
    } else {
      m->groups.emplace_back(-1, -1);
    }
  }
}

bool Matcher::literal_exec(size_t start, Mode mode, RegexMatch* m) const {
  const LiteralSearcher& ls = c_.literal_searcher;
  const size_t len = ls.keys.size();
  size_t at = start;
  if (mode == kSearch) {
    at = ls.find(text_, start);
    if (at == U32View::npos) return false;
  } else {
    if (n_ - start < len || (mode == kFullMatch && n_ - start != len)) return false;
    for (size_t k = 0; k < len; ++k)
      if (ls.key(text_[start + k]) != ls.keys[k]) return false;
  }
  m->start = at;
  m->end = at + len;
  m->groups.assign(c_.groups, {-1, -1});
  return true;
}

bool Matcher::is_candidate(size_t p, Mode mode) const {
  if (c_.anchored_start) return p == 0;
  if (mode == kSearch && c_.has_start_filter && !(p < n_ && c_.start_filter(text_[p]))) return false;
  if (c_.line_start && !(p == 0 || text_[p - 1] == U'\n')) return false;
  if (c_.has_prefix) {
    if (p >= n_) return false;
    const auto& first = c_.literal_searcher.first;
    return std::find(first.begin(), first.end(), text_[p]) != first.end();
  }
  if (c_.can_skip) return p < n_ && first_char_ok(text_[p]);
  return true;
}

bool Matcher::first_char_ok(char32_t ch) const {
  if (ch < 256) return (c_.first_low[ch >> 6] >> (ch & 63)) & 1;
  for (const CharTest& t : c_.first_tests)
    if (t(ch)) return true;
  return false;
}

size_t Matcher::next_candidate(size_t from, Mode mode) const {
  if (from > n_) return U32View::npos;
  if (c_.anchored_start) return from == 0 ? 0 : U32View::npos;
  if (c_.line_start) {
    const char32_t* data = text_.data();
    size_t i = from;
    while (i <= n_) {
      if (i > 0 && data[i - 1] != U'\n') {
        const char32_t* nl = std::find(data + i, data + n_, U'\n');
        if (nl == data + n_) return U32View::npos;
        i = static_cast<size_t>(nl - data) + 1;
        continue;
      }
      if (is_candidate(i, mode)) return i;
      ++i;
    }
    return U32View::npos;
  }
  if (mode == kSearch && c_.has_start_filter) {
    for (size_t i = from; i <= n_; ++i)
      if (is_candidate(i, mode)) return i;
    return U32View::npos;
  }
  if (c_.has_prefix) return c_.literal_searcher.find(text_, from);
  if (c_.can_skip) {
    for (size_t i = from; i < n_; ++i)
      if (first_char_ok(text_[i])) return i;
    return U32View::npos;
  }
  return from;
}

// ---------------------------------------------------------------------------------------------
// Backtracker with a visited bit per (state, position).

void Matcher::clear_positions_upto(size_t r) {
  // Zero the bits of positions as the search first reaches them (a search that stops early
  // on a long text touches little memory).
  const size_t upto = std::min(n_ - base_ + 1, r + 256);
  const size_t from_bit = cleared_positions_ * c_.num_states;
  const size_t to_word = (upto * c_.num_states + 63) / 64;
  auto& v = s_->visited;
  if (v.size() < to_word) v.resize(std::max(to_word, 2 * v.size()));
  size_t w = from_bit / 64;
  if (from_bit % 64) v[w++] &= (uint64_t{1} << (from_bit % 64)) - 1;
  std::fill(v.begin() + static_cast<ptrdiff_t>(w), v.begin() + static_cast<ptrdiff_t>(to_word), 0);
  cleared_positions_ = upto;
  visited_ = v.data();
}

Matcher::Result Matcher::backtrack_exec(size_t start, Mode mode, bool must_advance) {
  // Marks at `start` may lie on the previous match's path: forget them. Later positions only
  // hold states that were explored without an acceptable match.
  const size_t r = start - base_;
  if (r < cleared_positions_) {
    auto& v = s_->visited;
    for (size_t bit = r * c_.num_states, end = bit + c_.num_states; bit < end; ++bit)
      v[bit >> 6] &= ~(uint64_t{1} << (bit & 63));
  }
  size_t p = mode == kSearch ? next_candidate(start, mode) : start;
  while (p != U32View::npos) {
    Result res = backtrack_from(p, mode, start, must_advance);
    if (res != Result::kNotFound) return res;
    if (mode != kSearch) break;
    p = next_candidate(p + 1, mode);
  }
  return Result::kNotFound;
}

Matcher::Result Matcher::backtrack_from(size_t p0, Mode mode, size_t start, bool must_advance) {
  const Inst* prog = c_.prog.data();
  const uint32_t* base = c_.state_base.data();
  const char32_t* text = text_.data();
  FrameStack stack(&s_->stack);
  auto& caps = s_->work;
  caps.assign(ns_, -1);
  caps[0] = static_cast<ptrdiff_t>(p0);
  stack.push(Frame{0, 0, kBranchFrame, static_cast<ptrdiff_t>(p0), p0});
  while (!stack.empty()) {
    Frame& top = stack.back();
    uint32_t pc = top.pc;
    uint32_t mask = top.mask;
    size_t q = static_cast<size_t>(top.value);
    if (top.slot >= 0) {
      caps[top.slot] = top.value;
      stack.pop();
      continue;
    }
    if (top.slot == kRangeFrame && q > top.lo) {
      --top.value;  // the next (shorter) try stays on the stack
      mask = 0;
    } else {
      stack.pop();
    }
    while (true) {
      const Inst& in = prog[pc];
      mask = live_mask(in, mask);
      if (!visit(q, base[pc] + mask)) break;
      if (in.op == Op::kConsume) {
        if (q < n_ && in.test(text[q])) {
          ++q;
          ++pc;
          continue;
        }
        break;
      }
      bool fail = false;
      switch (in.op) {
        case Op::kRepeatGreedy: {
          // Take as many as possible; the exit is tried from the longest run down to none.
          const size_t lo = q;
          const uint32_t mask_lo = mask;
          while (q < n_ && in.test(text[q]) && visit(q + 1, base[pc])) ++q;
          if (stack.size() >= kMaxBacktrackFrames) return Result::kAborted;
          if (q > lo) stack.push(Frame{in.x, mask_lo, kRangeFrame, static_cast<ptrdiff_t>(q - 1), lo});
          pc = in.x;
          mask = q > lo ? 0 : mask_lo;
          break;
        }
        case Op::kMatch:
          if ((must_advance && q == start) || (mode == kFullMatch && q != n_)) {
            fail = true;
            break;
          }
          s_->best.assign(caps.begin(), caps.end());
          s_->best[1] = static_cast<ptrdiff_t>(q);
          return Result::kFound;
        case Op::kJmp: pc = in.x; break;
        case Op::kSplit:
          if (stack.size() >= kMaxBacktrackFrames) return Result::kAborted;
          stack.push(Frame{in.y, mask, kBranchFrame, static_cast<ptrdiff_t>(q), q});
          pc = in.x;
          break;
        case Op::kSave:
          if (in.x < ns_) {
            if (stack.size() >= kMaxBacktrackFrames) return Result::kAborted;
            stack.push(Frame{0, 0, static_cast<int32_t>(in.x), caps[in.x], 0});
            caps[in.x] = static_cast<ptrdiff_t>(q);
          }
          ++pc;
          break;
        case Op::kAssert:
          if (assert_holds(text_, in.at, q)) {
            ++pc;
          } else {
            fail = true;
          }
          break;
        case Op::kIterStart:
          mask |= 1u << in.bit;
          ++pc;
          break;
        case Op::kCheckEmpty: pc = ((mask >> in.bit) & 1) ? in.x : pc + 1; break;
        case Op::kNotNext:
          if (q < n_ && in.test(text[q])) {
            fail = true;
          } else {
            ++pc;
          }
          break;
        case Op::kConsume: break;
      }
      if (fail) break;
    }
  }
  return Result::kNotFound;
}

// ---------------------------------------------------------------------------------------------
// Pike VM.

namespace {

class PikeVm {
 public:
  PikeVm(const Compiled& c, U32View text, size_t nslots, Scratch* s, size_t start, Mode mode, bool must_advance)
      : prog_(c.prog.data()), base_(c.state_base.data()), text_(text), n_(text.size()), ns_(nslots), s_(*s),
        start_(start), mode_(mode), must_advance_(must_advance) {}

  // Epsilon closure of pc0 (no flags) at position p, appended to q in priority order; a
  // consuming state is kept only if the character at p passes its test.
  void add(Queue* q, uint32_t pc0, const ptrdiff_t* caps0, size_t p) {
    ptrdiff_t* work = s_.work.data();
    std::copy(caps0, caps0 + ns_, work);
    auto& stack = s_.stack;
    stack.clear();
    stack.push_back(Frame{pc0, 0, kBranchFrame, 0, 0});
    while (!stack.empty()) {
      const Frame f = stack.back();
      stack.pop_back();
      if (f.slot >= 0) {
        work[f.slot] = f.value;
        continue;
      }
      uint32_t pc = f.pc;
      uint32_t mask = f.mask;
      bool stop = false;
      while (!stop) {
        const Inst& in = prog_[pc];
        mask = live_mask(in, mask);
        if (!q->insert(base_[pc] + mask)) break;
        switch (in.op) {
          case Op::kJmp: pc = in.x; break;
          case Op::kSplit:
            stack.push_back(Frame{in.y, mask, kBranchFrame, 0, 0});
            pc = in.x;
            break;
          case Op::kSave:
            if (in.x < ns_) {
              stack.push_back(Frame{0, 0, static_cast<int32_t>(in.x), work[in.x], 0});
              work[in.x] = static_cast<ptrdiff_t>(p);
            }
            ++pc;
            break;
          case Op::kAssert:
            if (assert_holds(text_, in.at, p)) {
              ++pc;
            } else {
              stop = true;
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
            if (!((must_advance_ && p == start_) || (mode_ == kFullMatch && p != n_))) push(q, pc, work);
            stop = true;
            break;
          case Op::kConsume:
            if (p < n_ && in.test(text_[p])) push(q, pc, work);
            stop = true;
            break;
          case Op::kRepeatGreedy:
            // one more character (preferred), then the exit
            if (p < n_ && in.test(text_[p])) push(q, pc, work);
            pc = in.x;
            break;
        }
      }
    }
  }

 private:
  void push(Queue* q, uint32_t pc, const ptrdiff_t* caps) {
    q->run_pc.push_back(pc);
    q->caps.insert(q->caps.end(), caps, caps + ns_);
  }

  const Inst* prog_;
  const uint32_t* base_;
  U32View text_;
  size_t n_;
  size_t ns_;
  Scratch& s_;
  size_t start_;
  Mode mode_;
  bool must_advance_;
};

}  // namespace

bool Matcher::pike_exec(size_t start, Mode mode, bool must_advance) {
  PikeVm vm(c_, text_, ns_, s_, start, mode, must_advance);
  Queue* clist = &s_->a;
  Queue* nlist = &s_->b;
  clist->reset(c_.num_states);
  nlist->reset(c_.num_states);
  s_->fresh.assign(ns_, -1);
  s_->work.resize(ns_);
  bool matched = false;
  size_t p = start;
  if (mode == kSearch) {
    p = next_candidate(start, mode);
    if (p == U32View::npos) return false;
  }
  while (true) {
    if (!matched && (mode == kSearch || p == start) && is_candidate(p, mode)) {
      s_->fresh[0] = static_cast<ptrdiff_t>(p);
      vm.add(clist, 0, s_->fresh.data(), p);
    }
    if (clist->run_pc.empty()) {
      if (matched || mode != kSearch || p >= n_) break;
      const size_t next = next_candidate(p + 1, mode);
      if (next == U32View::npos) break;
      p = next;
      clist->reset(c_.num_states);
      continue;
    }
    nlist->reset(c_.num_states);
    for (size_t k = 0; k < clist->run_pc.size(); ++k) {
      const uint32_t pc = clist->run_pc[k];
      const ptrdiff_t* caps = clist->caps.data() + k * ns_;
      if (c_.prog[pc].op == Op::kMatch) {
        s_->best.assign(caps, caps + ns_);
        s_->best[1] = static_cast<ptrdiff_t>(p);
        matched = true;
        break;  // lower-priority threads lose to this match
      }
      // a greedy one-character loop stays on its instruction after consuming
      vm.add(nlist, c_.prog[pc].op == Op::kRepeatGreedy ? pc : pc + 1, caps, p + 1);
    }
    std::swap(clist, nlist);
    if (p >= n_) break;
    ++p;
  }
  return matched;
}

}  // namespace regex_detail

uint64_t regex_set_backtrack_budget(uint64_t bits) { return regex_detail::g_backtrack_bit_budget.exchange(bits); }

}  // namespace hirfast
