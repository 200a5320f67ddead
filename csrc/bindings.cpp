// Python bindings of the engine (hirfast._C): marshalling only, no checking logic.
//
// Strings are passed to the engine as borrowed views of CPython's own buffers (1, 2 or 4 bytes
// per code point), kept alive by references held here, and widened on the worker threads with
// the GIL released.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "assets.h"
#include "emoji_table.h"
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

TextRef text_ref(PyObject* s) {
  TextRef t;
  t.data = PyUnicode_DATA(s);
  t.length = static_cast<size_t>(PyUnicode_GET_LENGTH(s));
  t.width = PyUnicode_KIND(s);
  return t;
}

// A str, or bytes holding valid UTF-8 (decoded into `owned`).
TextRef text_arg(py::handle obj, size_t row, const char* field, std::vector<U32>* owned) {
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

Value to_value(py::handle h, int depth = 0) {
  Value v;
  PyObject* o = h.ptr();
  v.type_name = Py_TYPE(o)->tp_name;
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
    v.s = to_u32(o);
  } else if ((PyList_Check(o) || PyTuple_Check(o)) && depth < 4) {
    v.type = Value::Type::kList;
    for (py::handle item : py::reinterpret_borrow<py::sequence>(h)) v.list.push_back(to_value(item, depth + 1));
  } else {
    v.type = Value::Type::kOther;
  }
  return v;
}

Kwargs to_kwargs(py::handle h, size_t row, size_t j) {
  Kwargs out;
  if (h.is_none()) return out;
  if (!PyDict_Check(h.ptr()))
    row_error(row, "kwargs[" + std::to_string(j) + "] must be a dict, got " + Py_TYPE(h.ptr())->tp_name);
  for (auto item : py::reinterpret_borrow<py::dict>(h)) {
    if (!PyUnicode_Check(item.first.ptr()))
      row_error(row, "kwargs[" + std::to_string(j) + "] has a key that is not a str");
    out.emplace_back(item.first.cast<std::string>(), to_value(item.second));
  }
  return out;
}

py::sequence as_sequence(py::handle h, const char* name) {
  if (!PyList_Check(h.ptr()) && !PyTuple_Check(h.ptr()))
    throw py::type_error(std::string(name) + " must be a list, got " + Py_TYPE(h.ptr())->tp_name);
  return py::reinterpret_borrow<py::sequence>(h);
}

// Returns (verdicts, None) or (None, error dict).
py::tuple check_batch_py(py::handle responses, py::handle instruction_ids, py::handle kwargs,
                         py::handle prompts, bool loose, int num_threads) {
  py::sequence resp = as_sequence(responses, "responses");
  py::sequence ids = as_sequence(instruction_ids, "instruction_ids");
  py::sequence kws = as_sequence(kwargs, "kwargs");
  const size_t n = py::len(resp);
  if (py::len(ids) != n || py::len(kws) != n)
    throw py::value_error("responses, instruction_ids and kwargs must have the same length; got " +
                          std::to_string(n) + ", " + std::to_string(py::len(ids)) + ", " +
                          std::to_string(py::len(kws)));
  const bool has_prompts = !prompts.is_none();
  py::sequence prm;
  if (has_prompts) {
    prm = as_sequence(prompts, "prompts");
    if (py::len(prm) != n)
      throw py::value_error("prompts must have one entry per response; got " +
                            std::to_string(py::len(prm)) + " for " + std::to_string(n) + " responses");
  }

  std::vector<BatchRow> rows(n);
  std::vector<py::object> keep;  // keeps every borrowed string alive while the GIL is released
  keep.reserve(2 * n);
  std::vector<U32> owned;
  owned.reserve(2 * n);
  for (size_t r = 0; r < n; ++r) {
    BatchRow& row = rows[r];
    py::object rs = resp[r];
    row.response = text_arg(rs, r, "response", &owned);
    keep.push_back(std::move(rs));
    if (has_prompts) {
      py::object ps = prm[r];
      if (!ps.is_none()) {
        row.prompt = text_arg(ps, r, "prompt", &owned);
        row.has_prompt = true;
      }
      keep.push_back(std::move(ps));
    }
    py::object id_list = ids[r];
    py::object kw_list = kws[r];
    if (!PyList_Check(id_list.ptr()) && !PyTuple_Check(id_list.ptr()))
      row_error(r, std::string("instruction_ids must be a list of str, got ") + Py_TYPE(id_list.ptr())->tp_name);
    if (!PyList_Check(kw_list.ptr()) && !PyTuple_Check(kw_list.ptr()))
      row_error(r, std::string("kwargs must be a list of dicts, got ") + Py_TYPE(kw_list.ptr())->tp_name);
    py::sequence id_seq = py::reinterpret_borrow<py::sequence>(id_list);
    py::sequence kw_seq = py::reinterpret_borrow<py::sequence>(kw_list);
    const size_t m = py::len(id_seq);
    if (py::len(kw_seq) != m)
      row_error(r, "has " + std::to_string(m) + " instruction ids but " + std::to_string(py::len(kw_seq)) +
                       " kwargs dicts (one per id is required)");
    row.ids.reserve(m);
    row.kwargs.reserve(m);
    for (size_t j = 0; j < m; ++j) {
      py::object id = id_seq[j];
      if (!PyUnicode_Check(id.ptr()))
        row_error(r, "instruction_ids[" + std::to_string(j) + "] must be a str, got " + Py_TYPE(id.ptr())->tp_name);
      row.ids.push_back(id.cast<std::string>());
      row.kwargs.push_back(to_kwargs(kw_seq[j], r, j));
    }
  }

  std::vector<std::vector<uint8_t>> results;
  BatchError err;
  bool ok;
  {
    py::gil_scoped_release release;
    ok = check_batch(rows, loose, num_threads, &results, &err);
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
  py::list out(n);
  for (size_t r = 0; r < n; ++r) {
    py::list row(results[r].size());
    for (size_t j = 0; j < results[r].size(); ++j) row[j] = py::bool_(results[r][j] != 0);
    out[r] = row;
  }
  return py::make_tuple(out, py::none());
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "hirfast's C++ constraint engine (see hirfast.verify for the public API)";
  m.def("set_assets_dir", &set_assets_dir, py::arg("path"));
  m.def("unicode_version", &unicode_version);
  m.def("instruction_ids", [] { return Registry::get().ids(); });
  m.def("check_batch", &check_batch_py, py::arg("responses"), py::arg("instruction_ids"),
        py::arg("kwargs"), py::arg("prompts"), py::arg("loose"), py::arg("num_threads"));

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
  m.def("_punkt_sentences", [](py::handle s) {
    U32 text = str_arg(s);
    std::vector<U32> sentences;
    {
      py::gil_scoped_release release;
      sentences = punkt_sentences(text);
    }
    py::list out;
    for (const U32& sentence : sentences) out.append(from_u32(sentence));
    return out;
  });
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
  m.def("_nltk_word_tokenize", [](py::handle s) {
    U32 text = str_arg(s);
    std::vector<U32> tokens;
    {
      py::gil_scoped_release release;
      tokens = nltk_word_tokenize(text);
    }
    py::list out;
    for (const U32& token : tokens) out.append(from_u32(token));
    return out;
  });
  m.def("_treebank_tokenize", [](py::handle s) {
    U32 text = str_arg(s);
    std::vector<U32> tokens;
    {
      py::gil_scoped_release release;
      tokens = treebank_tokenize(text);
    }
    py::list out;
    for (const U32& token : tokens) out.append(from_u32(token));
    return out;
  });
  m.def("_nltk_chars_regex_version", &nltk_chars_regex_version);

  // --- ifbench (IFBench text primitives and data-backed components) ---
  auto str_list = [](const std::vector<U32>& items) {
    py::list out;
    for (const U32& item : items) out.append(from_u32(item));
    return out;
  };
  m.def("_ifbench_split_into_sentences",
        [str_list](py::handle s) { return str_list(split_into_sentences(str_arg(s))); });
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
  m.def("_ifbench_decimal_value", [](uint32_t c) { return decimal_value(static_cast<char32_t>(c)); });
  // csv.reader(io.StringIO(text), delimiter=delimiter) rows; ValueError where csv.Error is raised.
  m.def("_ifbench_csv_rows", [str_list](py::handle s, py::handle delimiter) {
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
