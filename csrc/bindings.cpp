// Python bindings of the engine (hirfast._C): marshalling only, no checking logic.
//
// Strings are passed to the engine as borrowed views of CPython's own buffers (1, 2 or 4 bytes
// per code point), kept alive by references held here, and widened on the worker threads with
// the GIL released.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <cstring>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "assets.h"
#include "emoji_table.h"
#include "checks_muldimif.h"
#include "engine.h"
#include "ifbench_util.h"
#include "langdetect.h"
#include "nltk_chars.h"
#include "pos_tagger.h"
#include "punkt.h"
#include "py_csv.h"
#include "regex.h"
#include "stopwords.h"
#include "syllables.h"
#include "treebank.h"
#include "unicode.h"

namespace py = pybind11;
using namespace hirfast;

namespace {

[[noreturn]] void row_error(size_t row, const std::string& what) {
  throw py::value_error("row " + std::to_string(row) + ": " + what);
}

U32 to_u32(PyObject* s) {
  const Py_ssize_t n = PyUnicode_GET_LENGTH(s);
  const int kind = PyUnicode_KIND(s);
  const void* data = PyUnicode_DATA(s);
  U32 out(static_cast<size_t>(n), 0);
  for (Py_ssize_t k = 0; k < n; ++k) out[k] = PyUnicode_READ(kind, data, k);
  return out;
}

// Any code points, lone surrogates included (pybind11's own caster refuses those).
py::object from_u32(U32View s) {
  PyObject* o = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, s.data(), static_cast<Py_ssize_t>(s.size()));
  if (!o) throw py::error_already_set();
  return py::reinterpret_steal<py::object>(o);
}
U32 str_arg(py::handle h) {
  if (!PyUnicode_Check(h.ptr())) throw py::type_error("expected a str");
  return to_u32(h.ptr());
}

py::list str_list(const std::vector<U32>& items) {
  py::list out;
  for (const U32& item : items) out.append(from_u32(item));
  return out;
}

// A test hook that splits one str into a list of str, the splitting done without the GIL.
template <class Split>
auto split_hook(Split split) {
  return [split](py::handle s) {
    const U32 text = str_arg(s);
    std::vector<U32> parts;
    {
      py::gil_scoped_release release;
      parts = split(text);
    }
    return str_list(parts);
  };
}

TextRef text_ref(PyObject* s) {
  TextRef t;
  t.data = PyUnicode_DATA(s);
  t.length = static_cast<size_t>(PyUnicode_GET_LENGTH(s));
  t.width = PyUnicode_KIND(s);
  return t;
}

// A str, or bytes holding valid UTF-8 (decoded into `owned`).
TextRef text_arg(py::handle obj, size_t row, const char* field, std::deque<U32>* owned) {
  PyObject* o = obj.ptr();
  if (PyUnicode_Check(o)) return text_ref(o);
  if (PyBytes_Check(o)) {
    std::string_view b(PyBytes_AS_STRING(o), static_cast<size_t>(PyBytes_GET_SIZE(o)));
    U32 decoded;
    size_t bad = 0;
    if (!decode_utf8(b, &decoded, &bad))
      row_error(row, std::string(field) + " is not valid UTF-8 (bad byte at offset " +
                         std::to_string(bad) + ")");
    owned->push_back(std::move(decoded));
    TextRef t;
    t.data = owned->back().data();
    t.length = owned->back().size();
    t.width = 4;
    return t;
  }
  row_error(row, std::string(field) + " must be a str, got " + Py_TYPE(o)->tp_name);
}

// The items of a list or tuple, borrowed (the GIL is held and no Python code runs while they are
// read, so they cannot change).
struct Items {
  PyObject* const* items;
  size_t size;
};
Items items_of(PyObject* o) {
  return {PySequence_Fast_ITEMS(o), static_cast<size_t>(PySequence_Fast_GET_SIZE(o))};
}
bool is_list_or_tuple(PyObject* o) { return PyList_Check(o) || PyTuple_Check(o); }
Items as_items(py::handle h, const char* name) {
  if (!is_list_or_tuple(h.ptr()))
    throw py::type_error(std::string(name) + " must be a list, got " + Py_TYPE(h.ptr())->tp_name);
  return items_of(h.ptr());
}

// A str's UTF-8, valid while the str lives (CPython keeps it with the object; an ASCII str is
// its own UTF-8). False, with the Python error cleared, for a str holding lone surrogates.
bool utf8_of(PyObject* s, std::string_view* out) {
  Py_ssize_t size = 0;
  const char* data = PyUnicode_AsUTF8AndSize(s, &size);
  if (!data) {
    PyErr_Clear();
    return false;
  }
  *out = std::string_view(data, static_cast<size_t>(size));
  return true;
}

Value to_value(PyObject* o, KwargsArena* arena, int depth = 0) {
  Value v;
  if (o == Py_None) {
    v.type = Value::Type::kNull;
  } else if (PyBool_Check(o)) {
    v.type = Value::Type::kBool;
    v.b = o == Py_True;
  } else if (PyLong_Check(o)) {
    int overflow = 0;
    long long x = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (overflow) {
      v.type = Value::Type::kOther;
      v.type_name = "int (too large)";
    } else {
      v.type = Value::Type::kInt;
      v.i = x;
    }
  } else if (PyFloat_Check(o)) {
    v.type = Value::Type::kFloat;
    v.f = PyFloat_AS_DOUBLE(o);
  } else if (PyUnicode_Check(o)) {
    v.type = Value::Type::kStr;
    v.s = text_ref(o).widen(arena);
  } else if (is_list_or_tuple(o) && depth < 4) {
    v.type = Value::Type::kList;
    const Items items = items_of(o);
    Value* list = arena->items<Value>(items.size);
    for (size_t k = 0; k < items.size; ++k) list[k] = to_value(items.items[k], arena, depth + 1);
    v.list = {list, items.size};
  } else {
    v.type = Value::Type::kOther;
    v.type_name = arena->copy(Py_TYPE(o)->tp_name);  // only messages about other types name it
  }
  return v;
}

// One kwarg, unless its value is None: a null value is no kwarg at all to the engine (ArgReader
// drops them), and IFBench rows carry about 40.
// Appends it to out[0, *n), whose room the caller made.
void add_kwarg(Kwarg* out, size_t* n, PyObject* key, PyObject* value, size_t row, size_t j, KwargsArena* arena) {
  std::string_view name;
  if (!PyUnicode_Check(key)) row_error(row, "kwargs[" + std::to_string(j) + "] has a key that is not a str");
  if (!utf8_of(key, &name)) row_error(row, "kwargs[" + std::to_string(j) + "] has a key with a lone surrogate");
  if (value == Py_None) return;
  out[(*n)++] = Kwarg(arena->copy(name), to_value(value, arena));
}

Kwargs to_kwargs(PyObject* o, size_t row, size_t j, KwargsArena* arena) {
  if (o == Py_None) return Kwargs();
  if (!PyDict_Check(o))
    row_error(row, "kwargs[" + std::to_string(j) + "] must be a dict, got " + Py_TYPE(o)->tp_name);
  size_t room = 0;  // IFBench rows carry ~40 keys, most of them None
  Py_ssize_t pos = 0;
  PyObject *key, *value;
  while (PyDict_Next(o, &pos, &key, &value)) room += value != Py_None;
  Kwarg* out = arena->items<Kwarg>(room);
  size_t n = 0;
  pos = 0;
  while (PyDict_Next(o, &pos, &key, &value)) add_kwarg(out, &n, key, value, row, j, arena);
  return {out, n};
}

// A dict's items whose value is not None, in the dict's order (see DictDigest).
using Item = std::pair<PyObject*, PyObject*>;

// The same Kwargs as to_kwargs(dict) from those items, given that every key of the dict is an
// exact str and none of the None-valued ones holds a lone surrogate (what digest_dict checks):
// the dict is not walked again.
Kwargs to_kwargs(const Item* items, size_t n, size_t row, size_t j, KwargsArena* arena) {
  Kwarg* out = arena->items<Kwarg>(n);
  size_t m = 0;
  for (size_t k = 0; k < n; ++k) add_kwarg(out, &m, items[k].first, items[k].second, row, j, arena);
  return {out, m};
}

// Content of a kwargs value, for sharing the checker of constraints whose kwargs are equal but
// separate objects (the rows of two response files for the same prompts, or an RL batch whose
// m copies of a prompt's kwargs were built apart). Exact builtin types only (str, int, float,
// bool, None, lists and tuples of them; a dict at the top: digest_dict), compared type for type:
// 1, 1.0 and True are different kwargs to the engine. No Python code runs: hashes of str are
// cached by CPython, comparisons of these types are C. false: some value is of another type (no
// sharing).
constexpr int kMaxContentDepth = 4;

size_t mix(size_t h, size_t v) { return (h ^ v) * 0x9E3779B97F4A7C15ull + (h >> 29); }

bool content_hash(PyObject* o, int depth, size_t* out) {
  const auto type_tag = reinterpret_cast<uintptr_t>(Py_TYPE(o));
  if (o == Py_None || o == Py_True || o == Py_False) {
    *out = reinterpret_cast<uintptr_t>(o);
  } else if (PyUnicode_CheckExact(o) || PyLong_CheckExact(o)) {
    const Py_hash_t h = PyObject_Hash(o);
    if (h == -1) {
      PyErr_Clear();
      return false;
    }
    *out = mix(type_tag, static_cast<size_t>(h));
  } else if (PyFloat_CheckExact(o)) {
    const double d = PyFloat_AS_DOUBLE(o);
    uint64_t bits;
    std::memcpy(&bits, &d, sizeof bits);
    *out = mix(type_tag, bits);
  } else if ((PyList_CheckExact(o) || PyTuple_CheckExact(o)) && depth < kMaxContentDepth) {
    const Items items = items_of(o);
    size_t h = mix(type_tag, items.size);
    for (size_t k = 0; k < items.size; ++k) {
      size_t item;
      if (!content_hash(items.items[k], depth + 1, &item)) return false;
      h = mix(h, item);
    }
    *out = h;
  } else {
    return false;
  }
  return true;
}

// a and b were both hashed by content_hash.
bool same_content(PyObject* a, PyObject* b) {
  if (a == b) return true;
  if (Py_TYPE(a) != Py_TYPE(b)) return false;
  if (PyUnicode_CheckExact(a)) return PyUnicode_Compare(a, b) == 0;
  if (PyLong_CheckExact(a)) return PyObject_RichCompareBool(a, b, Py_EQ) == 1;
  if (PyFloat_CheckExact(a)) {
    const double x = PyFloat_AS_DOUBLE(a), y = PyFloat_AS_DOUBLE(b);
    return std::memcmp(&x, &y, sizeof x) == 0;
  }
  if (PyList_CheckExact(a) || PyTuple_CheckExact(a)) {
    const Items x = items_of(a), y = items_of(b);
    if (x.size != y.size) return false;
    for (size_t k = 0; k < x.size; ++k)
      if (!same_content(x.items[k], y.items[k])) return false;
    return true;
  }
  return false;  // None, True, False: identity, tested above
}

// The content of a kwargs dict: its items whose value is not None (to_kwargs leaves the others
// out, so two dicts that differ only there build the same checker), kept in an array: the dict
// is walked once, to hash it, and never again to compare it or to convert it. (IFBench dicts carry
// about 40 null keys; looking each up in the other dict, then walking both, was a fifth of
// converting the IFBench batch, and the walks another fifth.)
struct DictDigest {
  size_t hash = 0;
  size_t begin = 0, size = 0;  // its items in the arena
};

// Appends `dict`'s non-None items to `arena`. false (the arena as it was): a key is not an exact
// str, a None-valued key holds a lone surrogate (to_kwargs(dict) reports it: the dict is not
// shared, so that its own row does), or a value has no content hash.
bool digest_dict(PyObject* dict, std::vector<Item>* arena, DictDigest* out) {
  out->begin = arena->size();
  size_t h = 0;  // a sum: equal dicts may list their items in different orders
  Py_ssize_t pos = 0;
  PyObject *key, *value;
  while (PyDict_Next(dict, &pos, &key, &value)) {
    size_t k, v;
    bool ok = PyUnicode_CheckExact(key);
    if (ok && value == Py_None) {
      std::string_view name;
      if (PyUnicode_IS_ASCII(key) || utf8_of(key, &name)) continue;
      ok = false;
    }
    if (!ok || !content_hash(key, 1, &k) || !content_hash(value, 1, &v)) {
      arena->resize(out->begin);
      return false;
    }
    h += mix(k, v);
    arena->emplace_back(key, value);
  }
  out->size = arena->size() - out->begin;
  out->hash = mix(reinterpret_cast<uintptr_t>(&PyDict_Type), h);
  return true;
}

bool same_items(const Item* a, const Item* b, size_t n) {
  for (size_t k = 0; k < n; ++k) {
    size_t m = 0;  // b's item with a[k]'s key (keys are distinct: at most one)
    while (m < n && !same_content(a[k].first, b[m].first)) ++m;
    if (m == n || !same_content(a[k].second, b[m].second)) return false;
  }
  return true;
}

// Constraints of a batch share one BatchConstraint (see engine.h) when they pass the same
// kwargs, id and prompt objects, or equal ones by content (above; the id and prompt as str
// equal, the prompt absent from both or equal). Every object is alive for the whole call. Open
// addressing in arrays sized for the whole batch: a node allocated per constraint
// (std::unordered_map) was a third of the conversion.
class ConstraintIndex {
 public:
  explicit ConstraintIndex(size_t constraints) {
    size_t capacity = 16;
    while (capacity < 2 * constraints) capacity *= 2;
    by_object_.resize(capacity);
    by_content_.resize(capacity);
    mask_ = capacity - 1;
  }
  // The index of the constraint these objects share, or (when there is none) `fresh`, which
  // is recorded for them. When it returns `fresh` for a kwargs dict it digested, *items (else
  // null) holds that dict's non-None items, *n_items of them, until the next call.
  uint32_t find_or_add(PyObject* kwargs, PyObject* id, PyObject* prompt, uint32_t fresh, const Item** items,
                       size_t* n_items) {
    *items = nullptr;
    const auto bits = [](PyObject* p) { return static_cast<size_t>(reinterpret_cast<uintptr_t>(p)); };
    const size_t h = mix(mix(bits(kwargs), bits(id)), bits(prompt));
    Slot* s = &by_object_[h & mask_];
    for (size_t i = h & mask_; s->kwargs; i = (i + 1) & mask_, s = &by_object_[i])
      if (s->kwargs == kwargs && s->id == id && s->prompt == prompt) return s->index;
    *s = Slot{kwargs, id, prompt, 0, {}, find_or_add_content(kwargs, id, prompt, fresh)};
    if (s->index == fresh && last_digested_) {
      *items = items_.data() + last_.begin;
      *n_items = last_.size;
    }
    return s->index;
  }

 private:
  struct Slot {
    PyObject* kwargs = nullptr;  // never null for a used slot: None is an object too
    PyObject* id = nullptr;
    PyObject* prompt = nullptr;
    size_t hash = 0;  // by_content_ only
    DictDigest dict;  // by_content_ only, when kwargs is a dict
    uint32_t index = 0;
  };

  uint32_t find_or_add_content(PyObject* kwargs, PyObject* id, PyObject* prompt, uint32_t fresh) {
    size_t h_kwargs, h_id, h_prompt = 0;
    last_digested_ = false;
    const bool is_dict = PyDict_CheckExact(kwargs);
    if (is_dict) {
      if (!digest_dict(kwargs, &items_, &last_)) return fresh;
      last_digested_ = true;
      h_kwargs = last_.hash;
    } else if (!content_hash(kwargs, 0, &h_kwargs)) {
      return fresh;
    }
    if (!content_hash(id, 0, &h_id)) return fresh;
    if (prompt && !(PyUnicode_CheckExact(prompt) && content_hash(prompt, 0, &h_prompt))) return fresh;
    const size_t h = mix(mix(h_kwargs, h_id), h_prompt) | 1;  // never 0: 0 marks an empty slot
    size_t i = h & mask_;
    for (; by_content_[i].hash; i = (i + 1) & mask_) {
      const Slot& s = by_content_[i];
      if (s.hash != h || !same_content(s.id, id) ||
          !(s.prompt == prompt || (s.prompt && prompt && same_content(s.prompt, prompt))))
        continue;
      const bool same_kwargs = is_dict ? PyDict_CheckExact(s.kwargs) && s.dict.size == last_.size &&
                                             same_items(items_.data() + last_.begin, items_.data() + s.dict.begin, last_.size)
                                       : same_content(s.kwargs, kwargs);
      if (same_kwargs) {
        if (is_dict) items_.resize(last_.begin);  // the digest of the shared dict's is kept
        return s.index;
      }
    }
    by_content_[i] = Slot{kwargs, id, prompt, h, last_, fresh};
    return fresh;
  }

  std::vector<Slot> by_object_, by_content_;
  size_t mask_ = 0;
  std::vector<Item> items_;  // the digests' items
  DictDigest last_;          // of the last kwargs dict digested
  bool last_digested_ = false;
};

py::sequence as_sequence(py::handle h, const char* name) {
  if (!is_list_or_tuple(h.ptr()))
    throw py::type_error(std::string(name) + " must be a list, got " + Py_TYPE(h.ptr())->tp_name);
  return py::reinterpret_borrow<py::sequence>(h);
}

// One list of False per row, as long as the row: made before the verdicts are known, while the
// GIL is held anyway and the other threads already check the first rows, so that only setting
// the True verdicts is left for after the join (2 threads on the IFEval files: making the lists
// after the join was 0.05 ms of a 3.3 ms batch). Not left null until then: the GIL is released
// meanwhile, and another thread's gc.get_objects() would hand out the lists.
py::list false_verdict_lists(const std::vector<BatchRow>& rows) {
  py::list out(rows.size());
  for (size_t r = 0; r < rows.size(); ++r) {
    const size_t m = rows[r].constraints.size();
    PyObject* row = PyList_New(static_cast<Py_ssize_t>(m));
    if (!row) throw py::error_already_set();
    for (size_t j = 0; j < m; ++j) {
      Py_INCREF(Py_False);
      PyList_SET_ITEM(row, static_cast<Py_ssize_t>(j), Py_False);
    }
    PyList_SET_ITEM(out.ptr(), static_cast<Py_ssize_t>(r), row);
  }
  return out;
}

// Sets to True the items of lists made by false_verdict_lists whose verdict byte has bit `bit`.
void set_true_verdicts(const py::list& lists, const std::vector<uint8_t>& verdicts, int bit) {
  const uint8_t* verdict = verdicts.data();
  for (size_t r = 0, n = lists.size(); r < n; ++r) {
    PyObject* row = PyList_GET_ITEM(lists.ptr(), static_cast<Py_ssize_t>(r));
    for (Py_ssize_t j = 0, m = PyList_GET_SIZE(row); j < m; ++j) {
      if (!((*verdict++ >> bit) & 1)) continue;
      Py_INCREF(Py_True);
      PyList_SET_ITEM(row, j, Py_True);
      Py_DECREF(Py_False);
    }
  }
}

// mode "strict" or "loose": returns (verdicts, None); "both": ((strict, loose), None); on bad
// input (None, error dict).
py::tuple check_batch_py(py::handle responses, py::handle instruction_ids, py::handle kwargs,
                         py::handle prompts, const std::string& mode_name, int num_threads) {
  CheckMode mode;
  if (mode_name == "strict") {
    mode = CheckMode::kStrict;
  } else if (mode_name == "loose") {
    mode = CheckMode::kLoose;
  } else if (mode_name == "both") {
    mode = CheckMode::kBoth;
  } else {
    throw py::value_error("mode must be 'strict', 'loose' or 'both', got '" + mode_name + "'");
  }
  const Items resp = as_items(responses, "responses");
  const Items ids = as_items(instruction_ids, "instruction_ids");
  const Items kws = as_items(kwargs, "kwargs");
  const size_t n = resp.size;
  if (ids.size != n || kws.size != n)
    throw py::value_error("responses, instruction_ids and kwargs must have the same length; got " +
                          std::to_string(n) + ", " + std::to_string(ids.size) + ", " + std::to_string(kws.size));
  const bool has_prompts = !prompts.is_none();
  Items prm{nullptr, 0};
  if (has_prompts) {
    prm = as_items(prompts, "prompts");
    if (prm.size != n)
      throw py::value_error("prompts must have one entry per response; got " + std::to_string(prm.size) + " for " +
                            std::to_string(n) + " responses");
  }

  size_t n_constraints = 0;  // at most; a malformed row is reported in the loop below
  for (size_t r = 0; r < n; ++r)
    if (is_list_or_tuple(ids.items[r])) n_constraints += static_cast<size_t>(PySequence_Fast_GET_SIZE(ids.items[r]));
  std::vector<BatchRow> rows(n);
  std::vector<uint32_t> row_constraints;  // every row's constraint indices, row after row
  row_constraints.reserve(n_constraints);
  KwargsArena kwargs_arena;  // the constraints' kwargs strings: outlives them and the run
  std::vector<BatchConstraint> constraints;
  constraints.reserve(n_constraints);
  // Only the conversion uses it: freed before checking, where the other threads already check
  // the first rows.
  std::optional<ConstraintIndex> constraint_index(std::in_place, n_constraints);
  // Another Python thread may drop the lists' items while the GIL is released: every string the
  // engine borrows is held here until the end of the call.
  std::vector<py::object> keep;
  keep.reserve(2 * n + n_constraints);
  // Responses and prompts given as UTF-8 bytes, decoded. A deque: the engine keeps pointers into
  // its strings, which it never moves, and it allocates nothing for a batch of str (reserving
  // room for every row was 69 KB per call of the IFEval files).
  std::deque<U32> owned;
  // With several threads, the first eighth of the rows is handed to the engine as soon as it is
  // converted, and the other threads (started with the run, spinning until then) check it while
  // this one converts the rest (handed over by finish): conversion holds the GIL and is serial
  // (0.4 ms of a 2.7 ms batch of the IFEval files on 2 threads), and checking an eighth of the
  // rows takes longer than converting the other seven. Each chunk is grouped by id on its own,
  // so few and large ones: with a third publish at half the rows, as before, a batch took 2.69
  // ms against 2.64 (interleaved runs), the pairs of each id being checked in three runs instead
  // of two. Declared after the storage it reads, so that it stops before that storage goes.
  BatchRun run(rows, constraints, n_constraints, mode, num_threads);
  const size_t first_publish = num_threads > 1 ? std::max<size_t>(16, n / 8) : n + 1;
  for (size_t r = 0; r < n; ++r) {
    if (r == first_publish) run.publish(r);
    BatchRow& row = rows[r];
    PyObject* rs = resp.items[r];
    row.response = text_arg(rs, r, "response", &owned);
    keep.push_back(py::reinterpret_borrow<py::object>(rs));
    TextRef prompt;
    PyObject* prompt_key = nullptr;
    if (has_prompts && prm.items[r] != Py_None) {
      PyObject* ps = prm.items[r];
      prompt = text_arg(ps, r, "prompt", &owned);
      prompt_key = ps;
      keep.push_back(py::reinterpret_borrow<py::object>(ps));
    }
    PyObject* id_list = ids.items[r];
    PyObject* kw_list = kws.items[r];
    if (!is_list_or_tuple(id_list))
      row_error(r, std::string("instruction_ids must be a list of str, got ") + Py_TYPE(id_list)->tp_name);
    if (!is_list_or_tuple(kw_list))
      row_error(r, std::string("kwargs must be a list of dicts, got ") + Py_TYPE(kw_list)->tp_name);
    const Items id_items = items_of(id_list);
    const Items kw_items = items_of(kw_list);
    const size_t m = id_items.size;
    if (kw_items.size != m)
      row_error(r, "has " + std::to_string(m) + " instruction ids but " + std::to_string(kw_items.size) +
                       " kwargs dicts (one per id is required)");
    if (m > row_constraints.capacity() - row_constraints.size())  // (rows view the array: it must not move)
      row_error(r, "instruction_ids changed while the batch was read");
    row.constraints = {row_constraints.data() + row_constraints.size(), m};
    for (size_t j = 0; j < m; ++j) {
      PyObject* id = id_items.items[j];
      std::string_view id_utf8;
      if (!PyUnicode_Check(id))
        row_error(r, "instruction_ids[" + std::to_string(j) + "] must be a str, got " + Py_TYPE(id)->tp_name);
      if (!utf8_of(id, &id_utf8)) row_error(r, "instruction_ids[" + std::to_string(j) + "] holds a lone surrogate");
      const auto fresh = static_cast<uint32_t>(constraints.size());
      const Item* digested = nullptr;
      size_t n_digested = 0;
      const uint32_t index =
          constraint_index->find_or_add(kw_items.items[j], id, prompt_key, fresh, &digested, &n_digested);
      row_constraints.push_back(index);
      if (index != fresh) continue;
      BatchConstraint& c = constraints.emplace_back();
      c.id = id_utf8;
      keep.push_back(py::reinterpret_borrow<py::object>(id));
      c.kwargs = digested ? to_kwargs(digested, n_digested, r, j, &kwargs_arena)
                          : to_kwargs(kw_items.items[j], r, j, &kwargs_arena);
      c.prompt = prompt;
      c.has_prompt = prompt_key != nullptr;
    }
  }

  constraint_index.reset();
  const py::list strict_or_only = false_verdict_lists(rows);
  const py::list loose = mode == CheckMode::kBoth ? false_verdict_lists(rows) : py::list(0);
  std::vector<uint8_t> verdicts;
  BatchError err;
  bool ok;
  {
    py::gil_scoped_release release;
    ok = run.finish(&verdicts, &err);
  }
  if (!ok) {
    py::dict e;
    e["row"] = err.row;
    e["constraint"] = err.constraint;
    e["instruction_id"] = err.instruction_id;
    e["field"] = err.field;
    e["message"] = err.message;
    return py::make_tuple(py::none(), e);
  }
  set_true_verdicts(strict_or_only, verdicts, 0);
  if (mode == CheckMode::kBoth) {
    set_true_verdicts(loose, verdicts, 1);
    return py::make_tuple(py::make_tuple(strict_or_only, loose), py::none());
  }
  return py::make_tuple(strict_or_only, py::none());
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "hirfast's C++ constraint engine (see hirfast.verify for the public API)";
  m.def("set_assets_dir", &set_assets_dir, py::arg("path"));
  m.def("unicode_version", &unicode_version);
  // Test hook: batches take pooled workers (true) or start their own; returns the old state.
  m.def("_set_worker_pool", [](bool on) {
    const bool old = worker_pool_enabled();
    set_worker_pool_enabled(on);
    return old;
  });
#if defined(HIRFAST_AVX2_SCAN)
  // Test hook: turn the AVX2 loops off (or back on where the CPU has them); returns the old state.
  m.def("_set_avx2", [](bool on) {
    const bool old = cpu_has_avx2;
    cpu_has_avx2 = on && cpu_supports_avx2();
    return old;
  });
#endif
  m.def("instruction_ids", [] { return Registry::get().ids(); });
  // MulDimIF Language_Chinese: hirfast.verify hands over its zhconv-backed verdict function,
  // called (with the GIL) for the rules that convert between scripts.
  m.def("set_muldimif_zhconv", [](py::object fn) {
    static py::object* held = nullptr;  // kept for the life of the process
    if (!held) held = new py::object();
    *held = std::move(fn);
    set_md_zhconv_hook([](MdChineseRule rule, U32View text) -> bool {
      py::gil_scoped_acquire gil;
      try {
        return (*held)(static_cast<int>(rule), from_u32(U32(text))).cast<bool>();
      } catch (py::error_already_set& e) {
        throw AssetError(std::string("MulDimIF Language_Chinese: ") + e.what());
      }
    });
  });
  // MulDimIF Language_Chinese: (rule number, phrase) for a constraint text (checks_muldimif.h).
  m.def("muldimif_chinese_rule", [](py::handle text) {
    U32 phrase;
    int rule = static_cast<int>(md_chinese_rule(str_arg(text), &phrase));
    return py::make_tuple(rule, from_u32(phrase));
  });
  m.def("check_batch", &check_batch_py, py::arg("responses"), py::arg("instruction_ids"),
        py::arg("kwargs"), py::arg("prompts"), py::arg("mode"), py::arg("num_threads"));

  // --- Test hooks: internal components exposed for differential tests against Python. ---
  m.def("_py_lower", [](py::handle s) { return from_u32(py_lower(str_arg(s))); });
  m.def("_py_upper", [](py::handle s) { return from_u32(py_upper(str_arg(s))); });
  m.def("_py_isupper", [](py::handle s) { return py_isupper(str_arg(s)); });
  m.def("_py_islower", [](py::handle s) { return py_islower(str_arg(s)); });
  m.def("_py_split_ws", [](py::handle s) {
    U32 text = str_arg(s);
    py::list out;
    for (U32View v : py_split_ws(text)) out.append(from_u32(v));
    return out;
  });
  m.def("_py_strip", [](py::handle s) { U32 t = str_arg(s); return from_u32(py_strip(t)); });
  m.def("_py_splitlines", [](py::handle s) {
    U32 text = str_arg(s);
    py::list out;
    for (U32View v : py_splitlines(text)) out.append(from_u32(v));
    return out;
  });
  m.def("_re_fold_key", [](uint32_t c) { return static_cast<uint32_t>(re_fold_key(c)); });
  // (component sections below: regex, punkt, treebank, langdetect)

  // --- regex ---
  // Test hooks for tests/test_regex.py: the C++ re engine called like Python's re
  // (pattern, flags, ...). Errors raise _C.RegexError(message, pos) / _C.RegexUnsupported.
  {
    static PyObject* regex_error =
        PyErr_NewException("hirfast._C.RegexError", PyExc_ValueError, nullptr);
    static PyObject* regex_unsupported =
        PyErr_NewException("hirfast._C.RegexUnsupported", regex_error, nullptr);
    m.attr("RegexError") = py::handle(regex_error);
    m.attr("RegexUnsupported") = py::handle(regex_unsupported);
    py::register_exception_translator([](std::exception_ptr p) {
      auto raise = [](PyObject* type, const RegexError& e) {
        const std::string what = e.what();
        py::object msg = py::reinterpret_steal<py::object>(
            PyUnicode_DecodeUTF8(what.data(), static_cast<Py_ssize_t>(what.size()), "surrogatepass"));
        py::object pos = e.pos() == RegexError::kNoPos ? py::none() : py::object(py::int_(e.pos()));
        PyErr_SetObject(type, py::make_tuple(msg, pos).ptr());
      };
      try {
        if (p) std::rethrow_exception(p);
      } catch (const RegexUnsupported& e) {
        raise(regex_unsupported, e);
      } catch (const RegexError& e) {
        raise(regex_error, e);
      }
    });
  }
  auto re_compiled = [](py::handle pattern, uint32_t flags) { return cached_regex(str_arg(pattern), flags); };
  auto re_match_tuple = [](const RegexMatch& mt) {
    py::list groups;
    for (const auto& g : mt.groups) groups.append(py::make_tuple(g.first, g.second));
    return py::make_tuple(mt.start, mt.end, groups);
  };
  m.def("_re_search", [=](py::handle pattern, uint32_t flags, py::handle text, size_t pos) -> py::object {
    U32 t = str_arg(text);
    RegexMatch mt;
    if (!re_compiled(pattern, flags)->search(t, pos, &mt)) return py::none();
    return re_match_tuple(mt);
  }, py::arg("pattern"), py::arg("flags"), py::arg("text"), py::arg("pos") = 0);
  m.def("_re_match", [=](py::handle pattern, uint32_t flags, py::handle text, size_t pos) -> py::object {
    U32 t = str_arg(text);
    RegexMatch mt;
    if (!re_compiled(pattern, flags)->match(t, pos, &mt)) return py::none();
    return re_match_tuple(mt);
  }, py::arg("pattern"), py::arg("flags"), py::arg("text"), py::arg("pos") = 0);
  m.def("_re_fullmatch", [=](py::handle pattern, uint32_t flags, py::handle text) -> py::object {
    U32 t = str_arg(text);
    RegexMatch mt;
    if (!re_compiled(pattern, flags)->fullmatch(t, &mt)) return py::none();
    return re_match_tuple(mt);
  });
  m.def("_re_finditer", [=](py::handle pattern, uint32_t flags, py::handle text) {
    U32 t = str_arg(text);
    py::list out;
    for (const RegexMatch& mt : re_compiled(pattern, flags)->finditer(t)) out.append(re_match_tuple(mt));
    return out;
  });
  m.def("_re_count", [=](py::handle pattern, uint32_t flags, py::handle text) {
    U32 t = str_arg(text);
    std::shared_ptr<const Regex> re = re_compiled(pattern, flags);
    py::gil_scoped_release release;
    return re->count(t);
  });
  m.def("_re_split", [=](py::handle pattern, uint32_t flags, py::handle text, size_t maxsplit) {
    U32 t = str_arg(text);
    py::list out;
    for (const auto& piece : re_compiled(pattern, flags)->split(t, maxsplit)) {
      if (piece) {
        out.append(from_u32(*piece));
      } else {
        out.append(py::none());
      }
    }
    return out;
  }, py::arg("pattern"), py::arg("flags"), py::arg("text"), py::arg("maxsplit") = 0);
  m.def("_re_sub", [=](py::handle pattern, uint32_t flags, py::handle repl, py::handle text, size_t count) {
    U32 t = str_arg(text);
    U32 r = str_arg(repl);
    return from_u32(re_compiled(pattern, flags)->sub(t, r, count));
  }, py::arg("pattern"), py::arg("flags"), py::arg("repl"), py::arg("text"), py::arg("count") = 0);
  m.def("_re_set_backtrack_budget", &regex_set_backtrack_budget, py::arg("bits"));
  m.def("_re_info", [=](py::handle pattern, uint32_t flags) {
    std::shared_ptr<const Regex> re = re_compiled(pattern, flags);
    py::dict d;
    d["groups"] = re->group_count();
    d["literal"] = re->is_literal();
    return d;
  });
  // --- langdetect ---
  m.def("_langdetect_detect", [](py::handle s) -> py::object {
    U32 text = str_arg(s);
    std::string lang;
    bool ok;
    {
      py::gil_scoped_release release;
      ok = detect_language(text, &lang);
    }
    if (!ok) return py::none();
    return py::str(lang);
  });
  m.def("_langdetect_appended_text", [](py::handle s) { return from_u32(langdetect_appended_text(str_arg(s))); });
  m.def("_langdetect_random_trace", &langdetect_random_trace, py::arg("ops"));

  // --- punkt / treebank (NLTK sentence splitter and word tokenizer) ---
  m.def("_punkt_sentences", split_hook([](const U32& text) { return punkt_sentences(text); }));
  m.def("_punkt_sentence_spans", [](py::handle s) {
    U32 text = str_arg(s);
    py::gil_scoped_release release;
    return punkt_sentence_spans(text);
  });
  m.def("_punkt_count_sentences", [](py::handle s) {
    U32 text = str_arg(s);
    py::gil_scoped_release release;
    return punkt_count_sentences(text);
  });
  m.def("_punkt_sentences_at_most", [](py::handle s, size_t enough) { return punkt_sentences_at_most(str_arg(s), enough); });
  m.def("_nltk_word_tokenize", split_hook([](const U32& text) { return nltk_word_tokenize(text); }));
  m.def("_treebank_tokenize", split_hook([](const U32& text) { return treebank_tokenize(text); }));
  m.def("_nltk_chars_regex_version", &nltk_chars_regex_version);

  // --- checker speed (partial lowercasing, scanning, bounds) ---
  m.def("_find_any", [](py::handle s, size_t from, py::handle chars) {
    const U32 text = str_arg(s), set = str_arg(chars);
    if (set.empty() || set.size() > 4) throw py::value_error("need 1 to 4 characters");
    const size_t found = find_any(text, from, set[0], set[std::min<size_t>(1, set.size() - 1)],
                                  set[std::min<size_t>(2, set.size() - 1)], set.back());
    return found == U32View::npos ? py::object(py::none()) : py::object(py::int_(found));
  });
  m.def("_nltk_upper_token_bounds", [](py::handle s) { return nltk_upper_token_bounds(str_arg(s)); });
  m.def("_py_lower_range", [](py::handle s, size_t begin, size_t end) {
    const U32 text = str_arg(s);
    if (begin > end || end > text.size()) throw py::value_error("need 0 <= begin <= end <= len(s)");
    return from_u32(py_lower_range(text, begin, end));
  });

  // --- ifbench (IFBench text primitives and data-backed components) ---
  m.def("_ifbench_split_into_sentences", [](py::handle s) { return str_list(split_into_sentences(str_arg(s))); });
  m.def("_ifbench_pos_tag", [](py::handle tokens) {
    std::vector<U32> words;
    for (py::handle t : as_sequence(tokens, "tokens")) words.push_back(str_arg(t));
    std::vector<U32View> views(words.begin(), words.end());
    py::list out;
    for (std::string_view tag : PerceptronTagger::english().tag(views)) out.append(py::str(tag.data(), tag.size()));
    return out;
  });
  m.def("_ifbench_is_emoji", [](py::handle s) { return is_emoji(str_arg(s)); });
  m.def("_ifbench_syllapy_count", [](py::handle s) { return syllapy_count(str_arg(s)); });
  m.def("_ifbench_is_stopword", [](py::handle s) { return is_english_stopword(str_arg(s)); });
  m.def("_ifbench_nfkd_ascii", [](py::handle s) { return nfkd_ascii(str_arg(s)); });
  m.def("_py_decimal_value", [](uint32_t c) { return py_decimal_value(static_cast<char32_t>(c)); });
  // csv.reader(io.StringIO(text), delimiter=delimiter) rows; ValueError where csv.Error is raised.
  m.def("_ifbench_csv_rows", [](py::handle s, py::handle delimiter) {
    const U32 d = str_arg(delimiter);
    if (d.size() != 1) throw py::value_error("delimiter must be one character");
    std::vector<std::vector<U32>> rows;
    std::string error;
    if (py_csv_read(str_arg(s), d[0], static_cast<size_t>(-1) - 1, &rows, &error) == CsvStatus::kError)
      throw py::value_error(error);
    py::list out;
    for (const auto& row : rows) out.append(str_list(row));
    return out;
  });
}
