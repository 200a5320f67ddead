// Registry, kwargs validation, strict/loose evaluation and the threaded batch driver.
#include "engine.h"

#include "assets.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <mutex>
#include <sstream>
#include <thread>

namespace hirfast {

// ---------------------------------------------------------------------------------------------
// ArgReader

ArgReader::ArgReader(std::string_view instruction_id, const Kwargs& kwargs)
    : id_(instruction_id), kwargs_(kwargs), used_(kwargs.size(), false) {
  // Null values are dropped, as the reference's evaluation drops them before building.
  for (size_t k = 0; k < kwargs_.size(); ++k)
    if (kwargs_[k].second.type == Value::Type::kNull) used_[k] = true;
}

const Value* ArgReader::find(const char* name) {
  for (size_t k = 0; k < kwargs_.size(); ++k) {
    if (kwargs_[k].first == name && kwargs_[k].second.type != Value::Type::kNull) {
      used_[k] = true;
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
    default: return "a value of type " + v.type_name;
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
  *out = v->s;
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
    out.push_back(e.s);
  }
  return out;
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
    if (!used_[k])
      throw InputError("kwargs." + kwargs_[k].first,
                       "unexpected kwarg '" + kwargs_[k].first + "' for '" + id_ + "'");
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
    return r;
  }();
  return *registry;
}

std::unique_ptr<Checker> make_checker(std::string_view instruction_id, const Kwargs& kwargs,
                                      const U32* prompt) {
  const Registry& reg = Registry::get();
  const CheckerSpec* spec = reg.find(instruction_id);
  if (!spec) {
    std::string msg = "unknown instruction id '" + std::string(instruction_id) + "'";
    auto close = reg.suggest(instruction_id);
    if (!close.empty()) {
      msg += "; did you mean ";
      for (size_t k = 0; k < close.size(); ++k) msg += (k ? ", '" : "'") + close[k] + "'";
      msg += "?";
    }
    throw InputError("instruction_id", msg);
  }
  ArgReader args(instruction_id, kwargs);
  CheckerContext ctx{spec->id, &args, prompt};
  std::unique_ptr<Checker> checker = spec->factory(ctx);
  args.finish();
  return checker;
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
U32 without_stars(U32View s) {
  U32 out;
  out.reserve(s.size());
  for (char32_t c : s)
    if (c != '*') out.push_back(c);
  return out;
}
}  // namespace

bool check_strict(const Checker& checker, U32View response) {
  return nonblank(response) && safe_check(checker, response);
}

bool check_loose(const Checker& checker, U32View response) {
  // lines = response.split("\n"); the candidates drop the first line, the last, or both.
  size_t first_nl = response.find('\n');
  size_t last_nl = response.rfind('\n');
  U32View rest = first_nl == U32View::npos ? U32View() : response.substr(first_nl + 1);
  U32View head = last_nl == U32View::npos ? U32View() : response.substr(0, last_nl);
  U32View middle = (first_nl == U32View::npos || first_nl == last_nl)
                       ? U32View()
                       : response.substr(first_nl + 1, last_nl - first_nl - 1);
  U32View cut[3] = {py_strip(rest), py_strip(head), py_strip(middle)};
  bool has_star = response.find('*') != U32View::npos;

  auto try_one = [&](U32View s) { return nonblank(s) && safe_check(checker, s); };
  if (try_one(response)) return true;
  if (has_star && try_one(without_stars(response))) return true;
  for (U32View c : cut)
    if (try_one(c)) return true;
  if (has_star) {
    for (U32View c : cut)
      if (c.find('*') != U32View::npos && try_one(without_stars(c))) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Batch driver

U32 TextRef::widen() const {
  U32 out;
  out.resize(length);
  if (width == 1) {
    const auto* p = static_cast<const uint8_t*>(data);
    for (size_t k = 0; k < length; ++k) out[k] = p[k];
  } else if (width == 2) {
    const auto* p = static_cast<const uint16_t*>(data);
    for (size_t k = 0; k < length; ++k) out[k] = p[k];
  } else {
    const auto* p = static_cast<const char32_t*>(data);
    std::copy(p, p + length, out.begin());
  }
  return out;
}

bool check_batch(const std::vector<BatchRow>& rows, bool loose, int num_threads,
                 std::vector<std::vector<uint8_t>>* results, BatchError* error) {
  const size_t n = rows.size();
  results->assign(n, {});
  std::vector<BatchError> errors(n);
  std::vector<uint8_t> failed(n, 0);

  auto run_row = [&](size_t r) {
    const BatchRow& row = rows[r];
    U32 prompt;
    if (row.has_prompt) prompt = row.prompt.widen();
    U32 response = row.response.widen();
    std::vector<uint8_t>& out = (*results)[r];
    out.assign(row.ids.size(), 0);
    for (size_t j = 0; j < row.ids.size(); ++j) {
      // Nothing may escape a worker thread: bad input and engine failures (a missing data file,
      // memory) are recorded against the row and reported after the join.
      try {
        std::unique_ptr<Checker> checker =
            make_checker(row.ids[j], row.kwargs[j], row.has_prompt ? &prompt : nullptr);
        out[j] = loose ? check_loose(*checker, response) : check_strict(*checker, response);
      } catch (const InputError& e) {
        failed[r] = 1;
        errors[r] = {r, j, row.ids[j], e.field(), e.what()};
        return;
      } catch (const std::exception& e) {
        failed[r] = 1;
        errors[r] = {r, j, row.ids[j], "engine", std::string("internal error: ") + e.what()};
        return;
      }
    }
  };

  int threads = std::max(1, std::min<int>(num_threads, static_cast<int>(n)));
  if (threads == 1) {
    for (size_t r = 0; r < n; ++r) run_row(r);
  } else {
    // Rows are handed out in small chunks from a shared counter so that long responses do not
    // leave one thread working alone at the end.
    std::atomic<size_t> next{0};
    const size_t chunk = std::max<size_t>(1, std::min<size_t>(16, n / (8 * threads) + 1));
    auto worker = [&] {
      while (true) {
        size_t start = next.fetch_add(chunk);
        if (start >= n) break;
        size_t end = std::min(n, start + chunk);
        for (size_t r = start; r < end; ++r) run_row(r);
      }
    };
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; ++t) pool.emplace_back(worker);
    worker();
    for (auto& t : pool) t.join();
  }
  for (size_t r = 0; r < n; ++r) {
    if (failed[r]) {
      *error = errors[r];
      return false;
    }
  }
  return true;
}

}  // namespace hirfast
