// Registry, kwargs validation, strict/loose evaluation and the threaded batch driver.
#include "engine.h"

#include "assets.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>
#include <mutex>
#include <sstream>
#include <system_error>
#include <thread>

namespace hirfast {

// ---------------------------------------------------------------------------------------------
// ArgReader

ArgReader::ArgReader(std::string_view instruction_id, const Kwargs& kwargs)
    : id_(instruction_id), kwargs_(kwargs), used_rest_(kwargs.size() > 64 ? kwargs.size() - 64 : 0, false) {
  // Null values are dropped, as the reference's evaluation drops them before building.
  for (size_t k = 0; k < kwargs_.size(); ++k)
    if (kwargs_[k].second.type == Value::Type::kNull) mark_used(k);
}

const Value* ArgReader::find(const char* name) {
  for (size_t k = 0; k < kwargs_.size(); ++k) {
    if (kwargs_[k].first == name && kwargs_[k].second.type != Value::Type::kNull) {
      mark_used(k);
      return &kwargs_[k].second;
    }
  }
  return nullptr;
}

bool ArgReader::has(const char* name) const {
  for (const auto& kv : kwargs_)
    if (kv.first == name && kv.second.type != Value::Type::kNull) return true;
  return false;
}

void ArgReader::fail(const char* name, const std::string& message) const {
  throw InputError(std::string("kwargs.") + name, message);
}

namespace {
std::string describe(const Value& v) {
  switch (v.type) {
    case Value::Type::kNull: return "null";
    case Value::Type::kBool: return v.b ? "True" : "False";
    case Value::Type::kInt: return std::to_string(v.i);
    case Value::Type::kFloat: {
      std::ostringstream os;
      os << v.f;
      return os.str();
    }
    case Value::Type::kStr: {
      std::string s = encode_utf8(v.s);
      if (s.size() > 60) s = s.substr(0, 57) + "...";
      return "'" + s + "'";
    }
    case Value::Type::kList: return "a list of " + std::to_string(v.list.size());
    default: return "a value of type " + std::string(v.type_name);
  }
}

bool as_int(const Value& v, int64_t* out) {
  if (v.type == Value::Type::kInt) {
    *out = v.i;
    return true;
  }
  if (v.type == Value::Type::kFloat && std::isfinite(v.f) && v.f == std::floor(v.f) &&
      std::fabs(v.f) < 9e15) {
    *out = static_cast<int64_t>(v.f);
    return true;
  }
  return false;
}
}  // namespace

int64_t ArgReader::get_int(const char* name, int64_t min_value) {
  int64_t out = 0;
  if (!opt_int(name, &out, min_value)) fail(name, "missing (an integer is required)");
  return out;
}

bool ArgReader::opt_int(const char* name, int64_t* out, int64_t min_value) {
  const Value* v = find(name);
  if (!v) return false;
  int64_t x;
  if (!as_int(*v, &x)) fail(name, "expected an integer, got " + describe(*v));
  if (x < min_value)
    fail(name, "must be at least " + std::to_string(min_value) + ", got " + std::to_string(x));
  *out = x;
  return true;
}

double ArgReader::get_number(const char* name) {
  const Value* v = find(name);
  if (!v) fail(name, "missing (a number is required)");
  if (v->type == Value::Type::kInt) return static_cast<double>(v->i);
  if (v->type == Value::Type::kFloat) return v->f;
  fail(name, "expected a number, got " + describe(*v));
}

U32 ArgReader::get_str(const char* name) {
  U32 out;
  if (!opt_str(name, &out)) fail(name, "missing (a string is required)");
  return out;
}

bool ArgReader::opt_str(const char* name, U32* out) {
  const Value* v = find(name);
  if (!v) return false;
  if (v->type != Value::Type::kStr) fail(name, "expected a string, got " + describe(*v));
  *out = U32(v->s);
  return true;
}

std::vector<U32> ArgReader::get_str_list(const char* name) {
  const Value* v = find(name);
  if (!v) fail(name, "missing (a list of strings is required)");
  if (v->type != Value::Type::kList) fail(name, "expected a list of strings, got " + describe(*v));
  std::vector<U32> out;
  out.reserve(v->list.size());
  for (size_t k = 0; k < v->list.size(); ++k) {
    const Value& e = v->list[k];
    if (e.type != Value::Type::kStr)
      fail(name, "item " + std::to_string(k) + " should be a string, got " + describe(e));
    out.emplace_back(e.s);
  }
  return out;
}

size_t ArgReader::get_choice_index(const char* name, std::initializer_list<const char*> choices) {
  const Value* v = find(name);
  if (!v) fail(name, "missing (a string is required)");
  if (v->type != Value::Type::kStr) fail(name, "expected a string, got " + describe(*v));
  size_t index = 0;
  for (const char* c : choices) {
    const size_t n = std::char_traits<char>::length(c);
    if (v->s.size() == n && std::equal(v->s.begin(), v->s.end(), c, [](char32_t a, char b) {
          return a == static_cast<unsigned char>(b);
        }))
      return index;
    ++index;
  }
  std::string msg = "must be one of";
  index = 0;
  for (const char* c : choices) msg += std::string(index++ ? ", '" : " '") + c + "'";
  fail(name, msg + "; got '" + encode_utf8(v->s) + "'");
}

std::string ArgReader::get_choice(const char* name, const std::vector<std::string>& choices) {
  U32 s = get_str(name);
  std::string u = encode_utf8(s);
  for (const auto& c : choices)
    if (c == u) return u;
  std::string msg = "must be one of";
  for (size_t k = 0; k < choices.size(); ++k) msg += (k ? ", '" : " '") + choices[k] + "'";
  fail(name, msg + "; got '" + u + "'");
}

void ArgReader::finish() const {
  for (size_t k = 0; k < kwargs_.size(); ++k) {
    if (!used(k))
      throw InputError("kwargs." + std::string(kwargs_[k].first),
                       "unexpected kwarg '" + std::string(kwargs_[k].first) + "' for '" + std::string(id_) + "'");
  }
}

// ---------------------------------------------------------------------------------------------
// Registry

void Registry::add(std::string id, std::vector<std::string> arg_names, CheckerFactory factory) {
  specs_.push_back({std::move(id), std::move(arg_names), std::move(factory)});
  // Rebuilt on every add: specs_ may have moved, and the views point into it.
  index_.clear();
  for (size_t k = 0; k < specs_.size(); ++k) index_.emplace(specs_[k].id, k);
}

const CheckerSpec* Registry::find(std::string_view id) const {
  auto it = index_.find(id);
  return it == index_.end() ? nullptr : &specs_[it->second];
}

std::vector<std::string> Registry::ids() const {
  std::vector<std::string> out;
  for (const auto& s : specs_) out.push_back(s.id);
  return out;
}

namespace {
size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}
}  // namespace

std::vector<std::string> Registry::suggest(std::string_view id, size_t n) const {
  std::vector<std::pair<size_t, std::string>> scored;
  std::string_view id_tail = id.substr(id.find(':') == std::string_view::npos ? 0 : id.find(':') + 1);
  for (const auto& s : specs_) {
    std::string_view tail(s.id);
    tail = tail.substr(tail.find(':') == std::string_view::npos ? 0 : tail.find(':') + 1);
    size_t d = std::min(edit_distance(id, s.id), edit_distance(id_tail, tail) + 1);
    scored.emplace_back(d, s.id);
  }
  std::stable_sort(scored.begin(), scored.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::string> out;
  size_t limit = std::max<size_t>(3, id.size() / 3);
  for (const auto& p : scored) {
    if (out.size() >= n || p.first > limit) break;
    out.push_back(p.second);
  }
  return out;
}

const Registry& Registry::get() {
  static const Registry* registry = [] {
    auto* r = new Registry();
    register_ifeval_checkers(*r);
    register_ifbench_checkers(*r);
    register_muldimif_checkers(*r);
    return r;
  }();
  return *registry;
}

void unknown_instruction_id(std::string_view instruction_id) {
  std::string msg = "unknown instruction id '" + std::string(instruction_id) + "'";
  auto close = Registry::get().suggest(instruction_id);
  if (!close.empty()) {
    msg += "; did you mean ";
    for (size_t k = 0; k < close.size(); ++k) msg += (k ? ", '" : "'") + close[k] + "'";
    msg += "?";
  }
  throw InputError("instruction_id", msg);
}

namespace {
std::unique_ptr<Checker> build_with(const CheckerSpec& spec, CheckerContext& ctx) {
  std::unique_ptr<Checker> checker = spec.factory(ctx);
  ctx.args->finish();
  return checker;
}
}  // namespace

std::unique_ptr<Checker> make_checker(std::string_view instruction_id, const Kwargs& kwargs,
                                      const U32* prompt) {
  const CheckerSpec* spec = Registry::get().find(instruction_id);
  if (!spec) unknown_instruction_id(instruction_id);
  ArgReader args(spec->id, kwargs);
  CheckerContext ctx{spec->id, &args, PromptRef(prompt)};
  return build_with(*spec, ctx);
}

std::unique_ptr<Checker> make_checker(const CheckerSpec& spec, const Kwargs& kwargs, const TextRef* prompt) {
  ArgReader args(spec.id, kwargs);
  CheckerContext ctx{spec.id, &args, PromptRef(prompt)};
  return build_with(spec, ctx);
}

// ---------------------------------------------------------------------------------------------
// strict / loose

namespace {
bool safe_check(const Checker& c, U32View text) {
  try {
    return c.check(text);
  } catch (const AssetError&) {
    throw;  // a broken installation must not pass for "not followed"
  } catch (const std::exception&) {
    return false;  // the reference counts an exception inside a check as not followed
  }
}
bool nonblank(U32View s) { return !py_strip(s).empty(); }
// s.replace("*", ""), written into *buffer (grown as needed, reused by the candidates of a pair):
// a fresh string filled by push_back per candidate was 7% of the IFBench loose batch.
U32View without_stars(U32View s, U32* buffer) {
  if (buffer->size() < s.size()) buffer->resize(s.size());
  char32_t* out = buffer->data();
  size_t n = 0;
  for (char32_t c : s) {
    out[n] = c;
    n += c != '*';
  }
  return U32View(out, n);
}
}  // namespace

bool check_strict(const Checker& checker, U32View response) {
  if (!checker.ifeval_semantics()) return safe_check(checker, response);
  return nonblank(response) && safe_check(checker, response);
}

namespace {
// The seven loose candidates after the response itself.
bool loose_candidates_after_first(const Checker& checker, U32View response) {
  // lines = response.split("\n"); the candidates drop the first line, the last, or both.
  size_t first_nl = find_any(response, 0, '\n');
  size_t last_nl = response.rfind('\n');
  U32View rest = first_nl == U32View::npos ? U32View() : response.substr(first_nl + 1);
  U32View head = last_nl == U32View::npos ? U32View() : response.substr(0, last_nl);
  U32View middle = (first_nl == U32View::npos || first_nl == last_nl)
                       ? U32View()
                       : response.substr(first_nl + 1, last_nl - first_nl - 1);
  U32View cut[3] = {py_strip(rest), py_strip(head), py_strip(middle)};
  bool has_star = find_any(response, 0, '*') != U32View::npos;

  auto try_one = [&](U32View s) { return nonblank(s) && safe_check(checker, s); };
  U32 buffer;
  if (has_star && try_one(without_stars(response, &buffer))) return true;
  for (U32View c : cut)
    if (try_one(c)) return true;
  if (has_star) {
    for (U32View c : cut)
      if (c.find('*') != U32View::npos && try_one(without_stars(c, &buffer))) return true;
  }
  return false;
}
}  // namespace

bool check_loose(const Checker& checker, U32View response) {
  return check_loose_after_strict(checker, response, check_strict(checker, response));
}

bool check_loose_after_strict(const Checker& checker, U32View response, bool strict) {
  return strict || (checker.ifeval_semantics() && loose_candidates_after_first(checker, response));
}

// ---------------------------------------------------------------------------------------------
// Batch driver

namespace {

// Copies `length` code points stored with `width` bytes each into `out`.
void widen_into(const TextRef& t, char32_t* out) {
  if (t.width == 1) {
    const auto* p = static_cast<const uint8_t*>(t.data);
    std::copy(p, p + t.length, out);
  } else if (t.width == 2) {
    const auto* p = static_cast<const uint16_t*>(t.data);
    std::copy(p, p + t.length, out);
  } else {
    const auto* p = static_cast<const char32_t*>(t.data);
    std::copy(p, p + t.length, out);
  }
}

}  // namespace

namespace batch_detail {

// A worker's view of each response as code points: the caller's buffer itself when it holds 4
// bytes per code point, else a copy widened into one buffer reused from row to row. A fresh
// std::u32string per row cost an allocation, a zero-fill and a free: 7% of a batch of the IFEval
// response files.
class WideText {
 public:
  U32View view(const TextRef& t) {
    if (t.width == 4) return U32View(static_cast<const char32_t*>(t.data), t.length);
    if (capacity_ < t.length) {
      buffer_.reset(new char32_t[t.length]);
      capacity_ = t.length;
    }
    widen_into(t, buffer_.get());
    return U32View(buffer_.get(), t.length);
  }

 private:
  std::unique_ptr<char32_t[]> buffer_;
  size_t capacity_ = 0;
};

// The checker of one BatchConstraint, or why it could not be built.
//
// Built by the first thread that needs it. Not with std::call_once: glibc's pthread_once makes
// a futex wake system call after every initialization, waiters or not, and the 834 of a batch
// of the IFEval files cost ~0.1 ms of its 5.6. Here the thread that wins `state` builds, and a
// thread that finds it being built yields until it is done (rare: the threads work through
// different ids).
struct BuiltConstraint {
  static constexpr uint8_t kUnbuilt = 0, kBuilding = 1, kBuilt = 2;
  std::atomic<uint8_t> state{kUnbuilt};
  // With several threads: the pairs published and not yet checked, plus 1 until the caller is
  // done publishing; the thread that takes it to 0 frees the checker (see run_pair).
  std::atomic<uint32_t> pairs_left{1};
  std::unique_ptr<Checker> checker;
  bool failed = false;  // building failed: field and message say why
  std::string field;  // "engine" for an internal failure
  std::string message;

  void ensure_built(const BatchConstraint& c, const CheckerSpec* spec) {
    if (state.load(std::memory_order_acquire) == kBuilt) return;
    uint8_t expected = kUnbuilt;
    if (state.compare_exchange_strong(expected, kBuilding, std::memory_order_acquire)) {
      build(c, spec);
      state.store(kBuilt, std::memory_order_release);
      return;
    }
    while (state.load(std::memory_order_acquire) != kBuilt) std::this_thread::yield();
  }

  // Never throws: every failure is recorded in field and message.
  void build(const BatchConstraint& c, const CheckerSpec* spec) {
    try {
      if (!spec) unknown_instruction_id(c.id);
      checker = make_checker(*spec, c.kwargs, c.has_prompt ? &c.prompt : nullptr);
    } catch (const InputError& e) {
      failed = true;
      field = e.field();
      message = e.what();
    } catch (const std::exception& e) {
      failed = true;
      field = "engine";
      message = std::string("internal error: ") + e.what();
    } catch (...) {
      failed = true;
      field = "engine";
      message = "internal error: unknown exception";
    }
  }
};

// Pairs [front, back) of one thread's range, both in one atomic word so that the owner taking
// from the front and another thread taking from the back never take the same pair. One cache
// line each: the ranges of two threads in one line made every take a transfer of the line.
class alignas(64) PairRange {
 public:
  void reset(size_t front, size_t back) { span_.store(pack(front, back)); }
  size_t left() const {
    const uint64_t v = span_.load(std::memory_order_relaxed);
    return static_cast<size_t>(back_of(v) - front_of(v));
  }
  bool take_front(size_t* k) {
    uint64_t v = span_.load(std::memory_order_relaxed);
    while (front_of(v) < back_of(v)) {
      if (span_.compare_exchange_weak(v, pack(front_of(v) + 1, back_of(v)))) {
        *k = front_of(v);
        return true;
      }
    }
    return false;
  }
  bool take_back(size_t* k) {
    uint64_t v = span_.load(std::memory_order_relaxed);
    while (front_of(v) < back_of(v)) {
      if (span_.compare_exchange_weak(v, pack(front_of(v), back_of(v) - 1))) {
        *k = back_of(v) - 1;
        return true;
      }
    }
    return false;
  }

 private:
  static uint64_t pack(size_t front, size_t back) { return static_cast<uint64_t>(front) << 32 | back; }
  static uint32_t front_of(uint64_t v) { return static_cast<uint32_t>(v >> 32); }
  static uint32_t back_of(uint64_t v) { return static_cast<uint32_t>(v); }
  std::atomic<uint64_t> span_{0};
};

}  // namespace batch_detail

using batch_detail::BuiltConstraint;
using batch_detail::PairRange;
using batch_detail::WideText;

U32 TextRef::widen() const {
  U32 out(length, 0);
  widen_into(*this, &out[0]);
  return out;
}

U32View TextRef::widen(KwargsArena* arena) const {
  if (length == 0) return U32View();
  char32_t* out = arena->code_points(length);
  widen_into(*this, out);
  return U32View(out, length);
}

// ---------------------------------------------------------------------------------------------
// KwargsArena

namespace {
constexpr size_t kArenaBlockWords = 2048;  // 16 KB
constexpr size_t kArenaStockBlocks = 64;   // kept per thread between batches: 1 MB
// Blocks of finished arenas, for the next batch on the same thread: freeing and allocating the
// ~25 blocks of a batch of the IFEval files cost ~15 us.
std::vector<std::unique_ptr<uint64_t[]>>& arena_stock() {
  thread_local std::vector<std::unique_ptr<uint64_t[]>> stock;
  return stock;
}
}  // namespace

KwargsArena::~KwargsArena() {
  auto& stock = arena_stock();
  for (auto& block : blocks_)
    if (stock.size() < kArenaStockBlocks) stock.push_back(std::move(block));
}

void* KwargsArena::allocate(size_t bytes) {
  bytes = (bytes + 7) & ~size_t{7};
  if (bytes > left_) {
    if (bytes > kArenaBlockWords * 8) {  // larger than a block (a long string): on its own
      large_.emplace_back(new uint64_t[bytes / 8]);
      return large_.back().get();
    }
    auto& stock = arena_stock();
    if (stock.empty()) {
      blocks_.emplace_back(new uint64_t[kArenaBlockWords]);
    } else {
      blocks_.push_back(std::move(stock.back()));
      stock.pop_back();
    }
    next_ = reinterpret_cast<char*>(blocks_.back().get());
    left_ = kArenaBlockWords * 8;
  }
  char* out = next_;
  next_ += bytes;
  left_ -= bytes;
  return out;
}

U32View KwargsArena::copy(U32View s) {
  if (s.empty()) return U32View();
  char32_t* out = code_points(s.size());
  std::copy(s.begin(), s.end(), out);
  return U32View(out, s.size());
}

std::string_view KwargsArena::copy(std::string_view s) {
  if (s.empty()) return std::string_view();
  char* out = static_cast<char*>(allocate(s.size()));
  std::memcpy(out, s.data(), s.size());
  return std::string_view(out, s.size());
}

// ---------------------------------------------------------------------------------------------
// BatchRun
//
// Each published chunk of rows becomes a list of its (row, constraint) pairs grouped by
// instruction id, rows in order within a group, rather than row by row: consecutive checks then
// use the same tables (language profiles, Punkt parameters, compiled patterns) and code, which
// stay in cache (on the IFEval response files, 1 thread: 8.22 -> 7.95 ms per batch). Each thread
// owns a contiguous range of every chunk's pairs and works through it from the front, so each
// core keeps the tables of its own ids in cache; a thread whose range is done takes pairs one at
// a time from the back of the range with the most left (2 threads: 3.95 ms handing out one pair
// at a time from a shared counter, 3.63 with shrinking chunks from it, 3.50 with ranges).

namespace {
// How long a thread without pairs spins before it sleeps: x86's pause takes ~40 ns on recent
// cores, so 5,000 of them ~0.2 ms.
constexpr int kSpinsBeforeSleep = 5000;
inline void spin_pause() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}
}  // namespace

namespace {
// Worker threads kept between batches: a batch on n threads takes n - 1 idle ones (starting one
// where none is idle) and hands each its job. Against a thread started per batch: the caller's
// wake-up of a sleeping worker costs less than a thread start (on this VM ~15 against ~50 us of
// its time when the other core is idle), and a worker's thread-local buffers, stack pages and
// allocator caches stay warm. At most kMaxIdle wait between batches; a batch that needs more
// starts threads that end with it. Workers are never joined: the pool is never destroyed (a
// worker waiting at exit holds nothing), and a forked child starts with an empty pool.
class WorkerPool {
 public:
  // Runs job() on a worker; false if no thread could be started.
  static bool run(std::function<void()> job) { return instance().start(std::move(job)); }
  static bool enabled;  // false: every batch starts its own threads (test hook, bindings)

 private:
  static constexpr size_t kMaxIdle = 8;
  struct Worker {
    std::mutex mu;
    std::condition_variable cv;
    std::function<void()> job;
  };

  static WorkerPool& instance() {
    static const int registered = pthread_atfork(nullptr, nullptr, [] { current_ = nullptr; });
    (void)registered;
    // A fork's child has none of the parent's threads: it leaks the parent's pool and makes its
    // own (the parent's mutexes may be held by threads that do not exist there).
    WorkerPool* pool = current_.load(std::memory_order_acquire);
    if (!pool) {
      WorkerPool* fresh = new WorkerPool;
      if (current_.compare_exchange_strong(pool, fresh)) return *fresh;
      delete fresh;
    }
    return *pool;
  }

  bool start(std::function<void()> job) {
    Worker* w = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!idle_.empty()) {
        w = idle_.back();
        idle_.pop_back();
      }
    }
    if (!w) {
      w = new Worker;
      try {
        std::thread([this, w] { loop(w); }).detach();
      } catch (const std::system_error&) {
        delete w;
        return false;
      }
    }
    {
      std::lock_guard<std::mutex> lock(w->mu);
      w->job = std::move(job);
    }
    w->cv.notify_one();
    return true;
  }

  void loop(Worker* w) {
    while (true) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(w->mu);
        w->cv.wait(lock, [w] { return static_cast<bool>(w->job); });
        job = std::move(w->job);
        w->job = nullptr;
      }
      job();
      job = nullptr;
      std::lock_guard<std::mutex> lock(mu_);
      if (idle_.size() >= kMaxIdle) break;
      idle_.push_back(w);
    }
    delete w;
  }

  static std::atomic<WorkerPool*> current_;
  std::mutex mu_;
  std::vector<Worker*> idle_;
};
std::atomic<WorkerPool*> WorkerPool::current_{nullptr};
bool WorkerPool::enabled = true;
}  // namespace

bool worker_pool_enabled() { return WorkerPool::enabled; }
void set_worker_pool_enabled(bool on) { WorkerPool::enabled = on; }

struct BatchRun::Chunk {
  std::vector<size_t> pairs;       // indices into verdicts, in checking order
  // Of each pair: its constraint and its row's response, copied here so that checking reads them
  // in order (looking them up through the row missed the cache: rows come out of order).
  std::vector<uint32_t> pair_constraint;
  std::vector<TextRef> pair_response;
  // The verdict of each pair, in checking order: a thread writes within its own range, where
  // writing verdicts in row order had both threads writing to the same cache lines.
  std::vector<uint8_t> verdict;
  std::unique_ptr<PairRange[]> ranges;
};

BatchRun::BatchRun(const std::vector<BatchRow>& rows, const std::vector<BatchConstraint>& constraints, size_t n_pairs,
                   CheckMode mode, int num_threads)
    : rows_(rows),
      constraints_(constraints),
      mode_(mode),
      threads_(static_cast<size_t>(std::max(1, num_threads))),
      offset_(rows.size() + 1, 0),
      built_(new BuiltConstraint[constraints.capacity()]),
      spec_of_(constraints.capacity(), nullptr),
      group_of_(constraints.capacity(), 0),
      chunks_(new std::unique_ptr<Chunk>[rows.size() + 1]),
      verdicts_(n_pairs, 0),
      pair_failed_(n_pairs, 0) {
  // The other threads get their jobs now, while the caller converts the first rows: started at
  // the first publish, they began checking ~45 us after it. A thread that cannot be started is
  // done without: the others take its range's pairs too.
  for (size_t t = 1; t < threads_; ++t) {
    auto job = [this, t] {
      work(t);
      workers_done_.fetch_add(1, std::memory_order_release);  // the last use of `this`
    };
    if (WorkerPool::enabled) {
      if (!WorkerPool::run(job)) break;
      ++workers_;
      continue;
    }
    try {
      pool_.emplace_back(job);
      ++workers_;
    } catch (const std::system_error&) {
      break;
    }
  }
}

BatchRun::~BatchRun() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : pool_) t.join();
  // Pooled workers are not joined: wait until each has made its last use of `this`.
  while (workers_done_.load(std::memory_order_acquire) < workers_) std::this_thread::yield();
}

void BatchRun::publish(size_t rows_ready) {
  const Registry& registry = Registry::get();
  for (size_t c = constraints_seen_; c < constraints_.size(); ++c) {
    spec_of_[c] = registry.find(constraints_[c].id);
    group_of_[c] = static_cast<uint32_t>(spec_of_[c] ? registry.index_of(*spec_of_[c]) : registry.size());
  }
  constraints_seen_ = constraints_.size();
  const size_t first = rows_published_;
  for (size_t r = first; r < rows_ready; ++r) offset_[r + 1] = offset_[r] + rows_[r].constraints.size();
  rows_published_ = rows_ready;
  const size_t begin = offset_[first], n_pairs = offset_[rows_ready] - begin;
  if (n_pairs > UINT32_MAX || offset_[rows_ready] > verdicts_.size())
    throw std::length_error("check_batch: more pairs than announced or than a chunk can hold");

  // Made here, not with the run: a run sized for a publish per row made 1,083 empty chunks (138 KB)
  // for the 3 the IFEval batch publishes.
  std::unique_ptr<Chunk>& made = chunks_[n_chunks_.load(std::memory_order_relaxed)];
  made.reset(new Chunk);
  Chunk& chunk = *made;
  const size_t n_groups = registry.size() + 1;  // the last: unknown ids (they fail to build)
  std::vector<size_t> group_start(n_groups + 1, 0);
  for (size_t r = first; r < rows_ready; ++r)
    for (uint32_t c : rows_[r].constraints) ++group_start[group_of_[c] + 1];
  for (size_t g = 0; g < n_groups; ++g) group_start[g + 1] += group_start[g];
  chunk.pairs.resize(n_pairs);
  chunk.pair_constraint.resize(n_pairs);
  chunk.pair_response.resize(n_pairs);
  chunk.verdict.assign(n_pairs, 0);
  for (size_t r = first; r < rows_ready; ++r) {
    for (size_t j = 0; j < rows_[r].constraints.size(); ++j) {
      if (threads_ > 1) built_[rows_[r].constraints[j]].pairs_left.fetch_add(1, std::memory_order_relaxed);
      const size_t slot = group_start[group_of_[rows_[r].constraints[j]]]++;
      chunk.pairs[slot] = offset_[r] + j;
      chunk.pair_constraint[slot] = rows_[r].constraints[j];
      chunk.pair_response[slot] = rows_[r].response;
    }
  }
  chunk.ranges.reset(new PairRange[threads_]);
  for (size_t t = 0; t < threads_; ++t) chunk.ranges[t].reset(n_pairs * t / threads_, n_pairs * (t + 1) / threads_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    n_chunks_.fetch_add(1, std::memory_order_release);
  }
  cv_.notify_all();
}

void BatchRun::run_pair(Chunk& chunk, size_t k, WideText& wide) {
  const size_t pair = chunk.pairs[k];
  const uint32_t c = chunk.pair_constraint[k];
  BuiltConstraint& b = built_[c];
  b.ensure_built(constraints_[c], spec_of_[c]);
  // With several threads, a checker is freed as soon as its last pair is checked rather than all
  // of them after the join, where freeing them was serial (0.05 ms of a 3.3 ms batch of the
  // IFEval files). One thread frees them at the end anyway.
  struct ReleaseAfterPair {
    BatchRun* run;
    BuiltConstraint* b;
    ~ReleaseAfterPair() {
      if (run->threads_ > 1) run->release_pair(*b);
    }
  } release{this, &b};
  // Nothing may escape a worker thread: bad input and engine failures (a missing data file,
  // memory) are recorded against the pair and reported after the join, for the first bad row.
  if (!b.checker) {
    pair_failed_[pair] = 1;
    return;
  }
  const U32View response = wide.view(chunk.pair_response[k]);
  try {
    const bool strict = check_strict(*b.checker, response);
    if (mode_ == CheckMode::kStrict) {
      chunk.verdict[k] = strict;
    } else {
      const bool loose = check_loose_after_strict(*b.checker, response, strict);
      chunk.verdict[k] = mode_ == CheckMode::kLoose ? loose : static_cast<uint8_t>(strict | (loose << 1));
    }
  } catch (const std::exception& e) {
    pair_failed_[pair] = 1;
    std::lock_guard<std::mutex> lock(engine_errors_mu_);
    engine_errors_.emplace_back(pair, std::string("internal error: ") + e.what());
  }
}

void BatchRun::release_pair(BuiltConstraint& b) {
  if (b.pairs_left.fetch_sub(1, std::memory_order_acq_rel) == 1) b.checker.reset();
}

void BatchRun::work(size_t own) {
  WideText wide;
  size_t first_open = 0;  // chunks before it have no pairs left
  while (true) {
    const size_t published = n_chunks_.load(std::memory_order_acquire);
    bool ran = false;
    for (size_t i = first_open; i < published && !ran; ++i) {
      Chunk& chunk = *chunks_[i];
      size_t k;
      if (chunk.ranges[own].take_front(&k)) {
        run_pair(chunk, k, wide);
        ran = true;
        break;
      }
      while (!ran) {
        size_t victim = 0, most = 0;
        for (size_t t = 0; t < threads_; ++t) {
          const size_t left = chunk.ranges[t].left();
          if (left > most) {
            most = left;
            victim = t;
          }
        }
        if (most == 0) break;
        if (chunk.ranges[victim].take_back(&k)) {
          run_pair(chunk, k, wide);
          ran = true;
        }
      }
      if (!ran && i == first_open) ++first_open;
    }
    if (ran) continue;
    // Spin a while before sleeping: waking a sleeping thread took ~85 us here (a VM), more than
    // converting a chunk of rows takes. The spin is bounded (~0.2 ms), so a caller that stops
    // publishing for long costs at most that of a core.
    bool more = false;
    for (int spin = 0; spin < kSpinsBeforeSleep && !more; ++spin) {
      spin_pause();
      more = n_chunks_.load(std::memory_order_acquire) != published ||
             done_publishing_.load(std::memory_order_acquire) || stop_.load(std::memory_order_acquire);
    }
    if (n_chunks_.load(std::memory_order_acquire) != published) continue;
    std::unique_lock<std::mutex> lock(mu_);
    if (stop_ || (done_publishing_ && n_chunks_.load(std::memory_order_relaxed) == published)) return;
    cv_.wait(lock, [&] { return stop_ || done_publishing_ || n_chunks_.load(std::memory_order_relaxed) != published; });
  }
}

bool BatchRun::finish(std::vector<uint8_t>* verdicts, BatchError* error) {
  if (rows_published_ < rows_.size()) publish(rows_.size());
  {
    std::lock_guard<std::mutex> lock(mu_);
    done_publishing_ = true;
  }
  cv_.notify_all();
  if (threads_ > 1)
    for (size_t c = 0; c < constraints_seen_; ++c) release_pair(built_[c]);
  work(0);
  // Waits for the other threads' last pairs, not for the threads to end: joining took 60-100 us
  // more on this VM, now spent while the caller makes its results (the destructor joins them, or
  // waits for pooled workers' last use of the run).
  for (int spin = 0; workers_done_.load(std::memory_order_acquire) < workers_; ++spin) {
    if (spin < kSpinsBeforeSleep) {
      spin_pause();
    } else {
      std::this_thread::yield();
    }
  }
  for (size_t r = 0; r < rows_.size(); ++r) {
    for (size_t j = 0; j < rows_[r].constraints.size(); ++j) {
      const size_t pair = offset_[r] + j;
      if (!pair_failed_[pair]) continue;
      const uint32_t c = rows_[r].constraints[j];
      const BuiltConstraint& b = built_[c];
      if (b.failed) {
        *error = {r, j, std::string(constraints_[c].id), b.field, b.message};
      } else {
        std::string message;
        for (const auto& [p, m] : engine_errors_)
          if (p == pair) message = m;
        *error = {r, j, std::string(constraints_[c].id), "engine", message};
      }
      return false;
    }
  }
  for (size_t i = 0; i < n_chunks_.load(std::memory_order_relaxed); ++i) {
    const Chunk& chunk = *chunks_[i];
    for (size_t k = 0; k < chunk.pairs.size(); ++k) verdicts_[chunk.pairs[k]] = chunk.verdict[k];
  }
  verdicts->swap(verdicts_);
  return true;
}

bool check_batch(const std::vector<BatchRow>& rows, const std::vector<BatchConstraint>& constraints, CheckMode mode,
                 int num_threads, std::vector<uint8_t>* verdicts, BatchError* error) {
  size_t n_pairs = 0;
  for (const BatchRow& row : rows) n_pairs += row.constraints.size();
  BatchRun run(rows, constraints, n_pairs, mode, num_threads);
  return run.finish(verdicts, error);
}

}  // namespace hirfast
