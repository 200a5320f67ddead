// The constraint engine: a registry of checkers by instruction id, kwargs validation, and the
// strict / loose evaluation of CHECKERS.md.
//
// A checker is built once per (instruction id, kwargs[, prompt]) and then asked
// `check(response)`. Building validates the kwargs and throws InputError naming the offending
// field; checking never throws InputError (an internal failure counts as "not followed", as the
// reference counts an exception inside a check).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "unicode.h"

namespace hirfast {

// `n` items stored elsewhere, for as long as the view is used.
template <typename T>
struct Span {
  const T* items = nullptr;
  size_t n = 0;
  size_t size() const { return n; }
  bool empty() const { return n == 0; }
  const T& operator[](size_t k) const { return items[k]; }
  const T* begin() const { return items; }
  const T* end() const { return items + n; }
};

// A kwarg value as it arrives from JSON or Python. Its strings and list items are views of
// storage that outlives it (a batch's KwargsArena): nothing to free per value.
struct Value {
  enum class Type { kNull, kBool, kInt, kFloat, kStr, kList, kOther };
  Type type = Type::kNull;
  bool b = false;
  int64_t i = 0;
  double f = 0.0;
  U32View s;
  Span<Value> list;
  std::string_view type_name;  // the Python type name, for error messages ("dict", "bytes", ...)
};
using Kwarg = std::pair<std::string_view, Value>;
using Kwargs = Span<Kwarg>;

// Storage for a batch's kwargs (their arrays, keys and strings), handed out in order and freed
// all at once. Converted into containers and strings of their own, the 834 constraints of the
// IFEval files made ~3,000 allocations, and freeing them came after checking, serial: 40-55 us of
// a 2.5 ms batch on 2 threads. Blocks go back to a small per-thread stock for the next batch.
class KwargsArena {
 public:
  KwargsArena() = default;
  KwargsArena(const KwargsArena&) = delete;
  KwargsArena& operator=(const KwargsArena&) = delete;
  ~KwargsArena();
  std::string_view copy(std::string_view s);
  U32View copy(U32View s);
  char32_t* code_points(size_t n) { return static_cast<char32_t*>(allocate(n * sizeof(char32_t))); }
  // n value-initialized items of a trivially destructible type.
  template <typename T>
  T* items(size_t n) {
    static_assert(std::is_trivially_destructible<T>::value, "the arena never destroys what it holds");
    T* out = static_cast<T*>(allocate(n * sizeof(T)));
    for (size_t k = 0; k < n; ++k) new (out + k) T();
    return out;
  }

 private:
  void* allocate(size_t bytes);  // aligned for any of the above
  std::vector<std::unique_ptr<uint64_t[]>> blocks_;  // of the standard size
  std::vector<std::unique_ptr<uint64_t[]>> large_;   // one piece each
  char* next_ = nullptr;
  size_t left_ = 0;  // bytes
};

// Bad input: an unknown instruction id, a missing or ill-typed kwarg, an invalid pattern.
// `field` names what was wrong: "instruction_id", "kwargs.<name>", "prompt".
class InputError : public std::runtime_error {
 public:
  InputError(std::string field, const std::string& message)
      : std::runtime_error(message), field_(std::move(field)) {}
  const std::string& field() const { return field_; }

 private:
  std::string field_;
};

class Checker {
 public:
  virtual ~Checker() = default;
  // Whether `response` follows the instruction (the reference's check_following). May throw
  // any std::exception for inputs the reference would raise on; callers count that as False.
  virtual bool check(U32View response) const = 0;
  // False for checkers whose reference has no strict/loose rule (MulDimIF): strict is check()
  // alone, even on a blank response, and loose is strict.
  virtual bool ifeval_semantics() const { return true; }
};

// Reads and validates the kwargs of one constraint, the way the reference's
// build_description(**kwargs) takes them: null values are dropped first (IFBench rows carry every
// key, most of them null), numbers may be floats with an integral value (5.0), and an unexpected
// key is an error.
class ArgReader {
 public:
  ArgReader(std::string_view instruction_id, const Kwargs& kwargs);
  bool has(const char* name) const;
  int64_t get_int(const char* name, int64_t min_value = INT64_MIN);
  double get_number(const char* name);
  U32 get_str(const char* name);
  std::vector<U32> get_str_list(const char* name);
  // A string from a fixed set of choices.
  std::string get_choice(const char* name, const std::vector<std::string>& choices);
  // The same, as the position of the choice (no allocation: every constraint with a relation
  // reads one).
  size_t get_choice_index(const char* name, std::initializer_list<const char*> choices);
  // Optional variants: return false (and leave *out alone) if absent.
  bool opt_int(const char* name, int64_t* out, int64_t min_value = INT64_MIN);
  bool opt_str(const char* name, U32* out);
  // Throws InputError for any key that no getter asked for.
  void finish() const;
  [[noreturn]] void fail(const char* name, const std::string& message) const;

 private:
  const Value* find(const char* name);
  void mark_used(size_t k) {
    if (k < 64) {
      used_first_ |= uint64_t{1} << k;
    } else {
      used_rest_[k - 64] = true;
    }
  }
  bool used(size_t k) const { return k < 64 ? (used_first_ >> k) & 1 : used_rest_[k - 64]; }
  std::string_view id_;  // outlives the reader
  Kwargs kwargs_;
  // Which kwargs a getter asked for: a word for the first 64 (no allocation per constraint built).
  uint64_t used_first_ = 0;
  std::vector<bool> used_rest_;
};

// A borrowed buffer of code points stored with `width` bytes each (1, 2 or 4: the layouts of
// CPython's compact strings), read on the worker threads.
struct TextRef {
  const void* data = nullptr;
  size_t length = 0;
  int width = 4;
  U32 widen() const;
  U32View widen(KwargsArena* arena) const;  // the code points, stored in `arena`
};

// The row's prompt as a factory sees it: false when the row has none, `*prompt` its code points.
// A prompt given as a TextRef is widened on first use only: most checkers never read it, and
// widening every row's prompt was an allocation and a copy for each constraint built.
class PromptRef {
 public:
  explicit PromptRef(const U32* text) : text_(text), present_(text != nullptr) {}
  explicit PromptRef(const TextRef* ref) : ref_(ref), present_(ref != nullptr) {}
  PromptRef(const PromptRef&) = delete;
  PromptRef& operator=(const PromptRef&) = delete;
  explicit operator bool() const { return present_; }
  const U32& operator*() const {
    if (!text_) {
      widened_ = ref_->widen();
      text_ = &widened_;
    }
    return *text_;
  }
  const U32* operator->() const { return &**this; }

 private:
  const TextRef* ref_ = nullptr;
  mutable const U32* text_ = nullptr;
  mutable U32 widened_;
  bool present_ = false;
};

// Everything a factory needs to build a checker.
struct CheckerContext {
  std::string_view instruction_id;
  ArgReader* args;
  PromptRef prompt;  // the row's prompt (tests false when none was given)
};

using CheckerFactory = std::function<std::unique_ptr<Checker>(CheckerContext&)>;

struct CheckerSpec {
  std::string id;
  std::vector<std::string> arg_names;  // for messages and docs
  CheckerFactory factory;
};

// The registry. Families register themselves from register_all_checkers (engine.cpp).
class Registry {
 public:
  static const Registry& get();
  void add(std::string id, std::vector<std::string> arg_names, CheckerFactory factory);
  const CheckerSpec* find(std::string_view id) const;
  size_t size() const { return specs_.size(); }
  // Position of a spec of this registry in ids().
  size_t index_of(const CheckerSpec& spec) const { return static_cast<size_t>(&spec - specs_.data()); }
  std::vector<std::string> ids() const;
  // Up to `n` known ids close to `id` (edit distance), best first, for "did you mean".
  std::vector<std::string> suggest(std::string_view id, size_t n = 3) const;

 private:
  std::vector<CheckerSpec> specs_;
  // id -> index into specs_: every pair of a batch looks its id up.
  std::unordered_map<std::string_view, size_t> index_;
};

// Builds a checker; throws InputError for an unknown id or bad kwargs.
std::unique_ptr<Checker> make_checker(std::string_view instruction_id, const Kwargs& kwargs,
                                      const U32* prompt);
// The same for a known spec, with a prompt that is widened only if the factory reads it.
std::unique_ptr<Checker> make_checker(const CheckerSpec& spec, const Kwargs& kwargs, const TextRef* prompt);
// The InputError for an id the registry does not know, with close matches suggested.
[[noreturn]] void unknown_instruction_id(std::string_view instruction_id);

// strict: response.strip() non-empty and check(response). loose: any of the eight candidates of
// CHECKERS.md with a non-empty strip() passes. Exceptions inside check() count as False.
bool check_strict(const Checker& checker, U32View response);
bool check_loose(const Checker& checker, U32View response);
// loose given the strict verdict: the strict check is loose's first candidate, so asking for both
// costs what loose alone costs.
bool check_loose_after_strict(const Checker& checker, U32View response, bool strict);

// What a batch computes per pair. kBoth stores strict in bit 0 of each verdict, loose in bit 1.
enum class CheckMode : uint8_t { kStrict, kLoose, kBoth };

// One constraint of a batch. Rows may share one: the bindings give the same index to the
// constraints of rows that pass the same (or equal) kwargs, id and prompt, as an RL batch does
// for the m responses of one prompt. Its checker is built once per batch, by the first thread
// that needs it, and then used by every row that shares it (check() is const and may run on
// several threads at once).
struct BatchConstraint {
  std::string_view id;  // the caller keeps its characters alive
  Kwargs kwargs;
  TextRef prompt;
  bool has_prompt = false;
};

// One row of a batch: a response and its constraints, indices into the batch's constraints.
struct BatchRow {
  TextRef response;
  Span<uint32_t> constraints;  // (the caller's one array for all rows: no allocation per row)
};
struct BatchError {
  size_t row = 0;
  size_t constraint = 0;
  std::string instruction_id;
  std::string field;
  std::string message;
};
namespace batch_detail {
class WideText;
struct BuiltConstraint;
class PairRange;
}  // namespace batch_detail

// Checks a batch on `num_threads` threads while the caller is still filling it in: the caller
// sizes `rows` for the whole batch, reserves `constraints` for all of its constraints (the vector
// must not move), fills rows in order and calls publish(r) once rows [0, r) and the constraints
// they name are complete; the pairs of published rows are checked at once on the other threads
// (converting a batch from Python is serial: this overlaps it with checking). finish() publishes
// what is left, checks on the calling thread too and joins. Destroying a run that was not
// finished (the caller failed) stops its threads and joins them.
class BatchRun {
 public:
  BatchRun(const std::vector<BatchRow>& rows, const std::vector<BatchConstraint>& constraints, size_t n_pairs,
           CheckMode mode, int num_threads);
  ~BatchRun();
  BatchRun(const BatchRun&) = delete;
  BatchRun& operator=(const BatchRun&) = delete;
  void publish(size_t rows_ready);
  // The verdict of constraint j of row r is (*verdicts)[offset + j], where offset is the number
  // of constraints of the rows before r. Returns false and fills *error (the first bad row in
  // row order) when a constraint cannot be built; then `verdicts` is unspecified.
  bool finish(std::vector<uint8_t>* verdicts, BatchError* error);

 private:
  struct Chunk;
  void run_pair(Chunk& chunk, size_t k, batch_detail::WideText& wide);
  void release_pair(batch_detail::BuiltConstraint& b);
  void work(size_t own);

  const std::vector<BatchRow>& rows_;
  const std::vector<BatchConstraint>& constraints_;
  const CheckMode mode_;
  const size_t threads_;
  std::vector<size_t> offset_;  // offset_[r]: the verdict index of row r's first constraint
  std::unique_ptr<batch_detail::BuiltConstraint[]> built_;
  std::vector<const CheckerSpec*> spec_of_;
  std::vector<uint32_t> group_of_;  // registry position of each constraint's id
  std::unique_ptr<std::unique_ptr<Chunk>[]> chunks_;  // one per publish at most
  std::atomic<size_t> n_chunks_{0};
  size_t rows_published_ = 0, constraints_seen_ = 0;
  std::vector<uint8_t> verdicts_;
  std::vector<uint8_t> pair_failed_;
  std::mutex engine_errors_mu_;
  std::vector<std::pair<size_t, std::string>> engine_errors_;  // (pair, message) of failed checks
  std::mutex mu_;
  std::condition_variable cv_;
  // Set under mu_ (for cv_); atomic so that a spinning thread can read them without it.
  std::atomic<bool> done_publishing_{false}, stop_{false};
  std::vector<std::thread> pool_;  // threads started for this batch (WorkerPool::enabled off)
  size_t workers_ = 0;             // threads working on this batch besides the caller
  std::atomic<size_t> workers_done_{0};  // of the workers_, those done with this run
};

// Whether batches on several threads take their workers from the pool kept between batches (on
// by default) or start threads of their own. Tests switch it while no batch runs.
bool worker_pool_enabled();
void set_worker_pool_enabled(bool on);

// The whole batch at once (a BatchRun finished right away).
bool check_batch(const std::vector<BatchRow>& rows, const std::vector<BatchConstraint>& constraints, CheckMode mode,
                 int num_threads, std::vector<uint8_t>* verdicts, BatchError* error);

// Family registration functions (one per csrc/checks_*.cpp file).
void register_ifeval_checkers(Registry& r);
void register_ifbench_checkers(Registry& r);
void register_muldimif_checkers(Registry& r);

}  // namespace hirfast
