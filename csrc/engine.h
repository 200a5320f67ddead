// The constraint engine: a registry of checkers by instruction id, kwargs validation, and the
// strict / loose evaluation of CHECKERS.md.
//
// A checker is built once per (instruction id, kwargs[, prompt]) and then asked
// `check(response)`. Building validates the kwargs and throws InputError naming the offending
// field; checking never throws InputError (an internal failure counts as "not followed", as the
// reference counts an exception inside a check).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "unicode.h"

namespace hirfast {

// A kwarg value as it arrives from JSON or Python.
struct Value {
  enum class Type { kNull, kBool, kInt, kFloat, kStr, kList, kOther };
  Type type = Type::kNull;
  bool b = false;
  int64_t i = 0;
  double f = 0.0;
  U32 s;
  std::vector<Value> list;
  std::string type_name;  // the Python type name, for error messages ("dict", "bytes", ...)
};
using Kwargs = std::vector<std::pair<std::string, Value>>;

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
  // Optional variants: return false (and leave *out alone) if absent.
  bool opt_int(const char* name, int64_t* out, int64_t min_value = INT64_MIN);
  bool opt_str(const char* name, U32* out);
  // Throws InputError for any key that no getter asked for.
  void finish() const;
  [[noreturn]] void fail(const char* name, const std::string& message) const;

 private:
  const Value* find(const char* name);
  std::string id_;
  const Kwargs& kwargs_;
  std::vector<bool> used_;
};

// Everything a factory needs to build a checker.
struct CheckerContext {
  std::string_view instruction_id;
  ArgReader* args;
  const U32* prompt;  // the row's prompt, or nullptr when none was given
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

// strict: response.strip() non-empty and check(response). loose: any of the eight candidates of
// CHECKERS.md with a non-empty strip() passes. Exceptions inside check() count as False.
bool check_strict(const Checker& checker, U32View response);
bool check_loose(const Checker& checker, U32View response);

// A borrowed buffer of code points stored with `width` bytes each (1, 2 or 4: the layouts of
// CPython's compact strings), so that widening to U32 can happen on a worker thread.
struct TextRef {
  const void* data = nullptr;
  size_t length = 0;
  int width = 4;
  U32 widen() const;
};

// One row of a batch: a response, its prompt (optional) and its constraints.
struct BatchRow {
  TextRef response;
  TextRef prompt;
  bool has_prompt = false;
  std::vector<std::string> ids;
  std::vector<Kwargs> kwargs;
};
struct BatchError {
  size_t row = 0;
  size_t constraint = 0;
  std::string instruction_id;
  std::string field;
  std::string message;
};
// Checks every row; results[r][j] is the verdict of constraint j of row r. Rows are spread over
// `num_threads` threads. Returns false and fills *error (the first bad row in row order) when a
// constraint cannot be built; then `results` is unspecified.
bool check_batch(const std::vector<BatchRow>& rows, bool loose, int num_threads,
                 std::vector<std::vector<uint8_t>>* results, BatchError* error);

// Family registration functions (one per csrc/checks_*.cpp file).
void register_ifeval_checkers(Registry& r);
void register_ifbench_checkers(Registry& r);

}  // namespace hirfast
