// Shared pieces of the MulDimIF checkers: Python number and string helpers, the keyword pattern
// of Content_Keywords / Length_Words, and a json.loads that builds values (for str(value) and
// nesting depth).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "checks_muldimif.h"
#include "json_check.h"

namespace hirfast {
namespace md {

bool py_isdigit_str(U32View s) {
  if (s.empty()) return false;
  for (char32_t c : s)
    if (!py_isdigit(c)) return false;
  return true;
}

int64_t py_int(U32View s) {
  int64_t v = 0;
  for (char32_t c : s) {
    int d = py_decimal_value(c);
    if (d < 0) throw MdRaise("ValueError: invalid literal for int()");
    if (v > (INT64_MAX - 9) / 10) {
      v = INT64_MAX / 2;  // saturate: no constraint reads a count this large
      continue;
    }
    v = v * 10 + d;
  }
  return v;
}

bool in_list(U32View s, std::initializer_list<const char32_t*> words) {
  for (const char32_t* w : words)
    if (s == U32View(w)) return true;
  return false;
}

int64_t word_value(U32View s, std::initializer_list<std::pair<const char32_t*, int>> words) {
  for (const auto& w : words)
    if (s == U32View(w.first)) return w.second;
  return -1;
}

namespace {
bool equal_ci_at(U32View text, size_t pos, U32View kw) {
  for (size_t k = 0; k < kw.size(); ++k)
    if (text[pos + k] != kw[k] && re_fold_key(text[pos + k]) != re_fold_key(kw[k])) return false;
  return true;
}
}  // namespace

size_t count_bounded_keyword(U32View text, U32View kw, size_t enough) {
  // finditer's scan: a match at i resumes at its end, a failure at i + 1.
  size_t n = 0;
  if (kw.empty()) {  // (?<!\w)(?!\w): an empty match wherever no word character is on either side
    for (size_t i = 0; i <= text.size(); ++i)
      if ((i == 0 || !re_word(text[i - 1])) && (i == text.size() || !re_word(text[i])) && ++n >= enough) return n;
    return n;
  }
  if (kw.size() > text.size()) return 0;
  for (size_t i = 0; i + kw.size() <= text.size();) {
    if ((i == 0 || !re_word(text[i - 1])) && equal_ci_at(text, i, kw) &&
        (i + kw.size() == text.size() || !re_word(text[i + kw.size()]))) {
      if (++n >= enough) return n;
      i += kw.size();
    } else {
      ++i;
    }
  }
  return n;
}

size_t count_keyword(U32View text, U32View kw, size_t enough) {
  bool chinese = false;
  for (char32_t c : kw) chinese |= c >= 0x4E00 && c <= 0x9FFF;
  if (!chinese) return count_bounded_keyword(text, kw, enough);
  size_t n = 0;
  for (size_t i = text.find(kw); i != U32View::npos; i = text.find(kw, i + kw.size()))
    if (++n >= enough) break;
  return n;
}

std::vector<U32View> split_char(U32View s, char32_t c) {
  std::vector<U32View> out;
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i)
    if (s[i] == c) {
      out.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  out.push_back(s.substr(start));
  return out;
}

// ------------------------------------------------------------------------------------------
// json.loads

namespace {
struct JsonParser {
  U32View s;
  size_t i = 0;
  void ws() {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
  }
  static int hex(char32_t c) {
    if (c >= '0' && c <= '9') return static_cast<int>(c - '0');
    if (c >= 'a' && c <= 'f') return static_cast<int>(c - 'a' + 10);
    return static_cast<int>(c - 'A' + 10);
  }
  unsigned u4() {
    unsigned v = 0;
    for (int k = 0; k < 4; ++k) v = v * 16 + static_cast<unsigned>(hex(s[i++]));
    return v;
  }
  U32 string() {  // at the opening quote of a string the validator accepted
    U32 out;
    ++i;
    while (s[i] != '"') {
      if (s[i] != '\\') {
        out.push_back(s[i++]);
        continue;
      }
      char32_t e = s[i + 1];
      i += 2;
      switch (e) {
        case 'n': out.push_back('\n'); break;
        case 't': out.push_back('\t'); break;
        case 'r': out.push_back('\r'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'u': {
          unsigned c = u4();
          if (c >= 0xD800 && c <= 0xDBFF && i + 6 <= s.size() && s[i] == '\\' && s[i + 1] == 'u') {
            size_t save = i;
            i += 2;
            unsigned lo = u4();
            if (lo >= 0xDC00 && lo <= 0xDFFF) {
              c = 0x10000 + ((c - 0xD800) << 10) + (lo - 0xDC00);
            } else {
              i = save;
            }
          }
          out.push_back(static_cast<char32_t>(c));
          break;
        }
        default: out.push_back(e);  // " \ /
      }
    }
    ++i;
    return out;
  }
  JsonValue value() {
    ws();
    JsonValue v;
    char32_t c = s[i];
    if (c == '{') {
      v.kind = JsonValue::kDict;
      ++i;
      ws();
      if (s[i] == '}') {
        ++i;
        return v;
      }
      for (;;) {
        ws();
        U32 key = string();
        ws();
        ++i;  // ':'
        JsonValue item = value();
        size_t k = 0;
        while (k < v.keys.size() && v.keys[k] != key) ++k;
        if (k < v.keys.size()) {
          v.items[k] = std::move(item);
        } else {
          v.keys.push_back(std::move(key));
          v.items.push_back(std::move(item));
        }
        ws();
        if (s[i++] == '}') return v;
      }
    }
    if (c == '[') {
      v.kind = JsonValue::kList;
      ++i;
      ws();
      if (s[i] == ']') {
        ++i;
        return v;
      }
      for (;;) {
        v.items.push_back(value());
        ws();
        if (s[i++] == ']') return v;
      }
    }
    if (c == '"') {
      v.kind = JsonValue::kStr;
      v.text = string();
      return v;
    }
    auto word = [&](const char32_t* w) {
      U32View wv(w);
      if (s.substr(i, wv.size()) == wv) {
        i += wv.size();
        return true;
      }
      return false;
    };
    if (word(U"null")) return v;
    if (word(U"true") || word(U"false")) {
      v.kind = JsonValue::kBool;
      v.b = s[i - 1] == 'e' && s[i - 2] == 'u';
      return v;
    }
    if (word(U"NaN")) {
      v.kind = JsonValue::kFloat;
      v.f = std::nan("");
      return v;
    }
    if (word(U"Infinity")) {
      v.kind = JsonValue::kFloat;
      v.f = HUGE_VAL;
      return v;
    }
    if (word(U"-Infinity")) {
      v.kind = JsonValue::kFloat;
      v.f = -HUGE_VAL;
      return v;
    }
    size_t start = i;
    bool is_float = false;
    if (s[i] == '-') ++i;
    while (i < s.size() && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == 'e' || s[i] == 'E' ||
                            ((s[i] == '+' || s[i] == '-') && (s[i - 1] == 'e' || s[i - 1] == 'E')))) {
      is_float |= s[i] == '.' || s[i] == 'e' || s[i] == 'E';
      ++i;
    }
    U32View lit = s.substr(start, i - start);
    if (is_float) {
      v.kind = JsonValue::kFloat;
      std::string a(lit.begin(), lit.end());
      v.f = std::strtod(a.c_str(), nullptr);
    } else {
      v.kind = JsonValue::kInt;
      if (lit.size() > 4300 + (lit[0] == '-')) throw MdRaise("ValueError: Exceeds the limit for integer string conversion");
      v.text = lit == U"-0" ? U32(U"0") : U32(lit);
    }
    return v;
  }
};

void repr_str(U32View s, U32* out) {
  bool single = U32View(s).find('\'') != U32View::npos, dbl = U32View(s).find('"') != U32View::npos;
  char32_t q = (single && !dbl) ? '"' : '\'';
  out->push_back(q);
  char buf[16];
  for (char32_t c : s) {
    if (c == q || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (c == '\t') {
      *out += U"\\t";
    } else if (c == '\n') {
      *out += U"\\n";
    } else if (c == '\r') {
      *out += U"\\r";
    } else if (c < ' ' || c == 0x7f) {
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(c));
      *out += from_ascii(buf);
    } else if (c < 0x7f || py_isprintable(c)) {
      out->push_back(c);
    } else {
      if (c < 0x100) {
        std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(c));
      } else if (c < 0x10000) {
        std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      } else {
        std::snprintf(buf, sizeof buf, "\\U%08x", static_cast<unsigned>(c));
      }
      *out += from_ascii(buf);
    }
  }
  out->push_back(q);
}

// repr(float): the shortest digits that round-trip, fixed notation for exponents -4..15.
void repr_float(double f, U32* out) {
  if (std::isnan(f)) {
    *out += U"nan";
    return;
  }
  if (std::isinf(f)) {
    *out += f < 0 ? U"-inf" : U"inf";
    return;
  }
  char buf[64];
  int prec = 1;
  for (; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*e", prec - 1, f);
    if (std::strtod(buf, nullptr) == f) break;
  }
  // buf: [-]d.ddde[+-]xx
  std::string s(buf);
  bool neg = s[0] == '-';
  if (neg) s.erase(0, 1);
  size_t epos = s.find('e');
  int exp = std::atoi(s.c_str() + epos + 1);
  std::string digits;
  for (size_t k = 0; k < epos; ++k)
    if (s[k] != '.') digits.push_back(s[k]);
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  std::string r = neg ? "-" : "";
  if (exp >= -4 && exp < 16) {
    if (exp < 0) {
      r += "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
    } else if (static_cast<size_t>(exp) + 1 >= digits.size()) {
      r += digits + std::string(static_cast<size_t>(exp) + 1 - digits.size(), '0') + ".0";
    } else {
      r += digits.substr(0, static_cast<size_t>(exp) + 1) + "." + digits.substr(static_cast<size_t>(exp) + 1);
    }
  } else {
    r += digits.substr(0, 1);
    if (digits.size() > 1) r += "." + digits.substr(1);
    char e[16];
    std::snprintf(e, sizeof e, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    r += e;
  }
  *out += from_ascii(r);
}

void repr_value(const JsonValue& v, U32* out) {
  switch (v.kind) {
    case JsonValue::kNull: *out += U"None"; break;
    case JsonValue::kBool: *out += v.b ? U"True" : U"False"; break;
    case JsonValue::kInt: *out += v.text; break;
    case JsonValue::kFloat: repr_float(v.f, out); break;
    case JsonValue::kStr: repr_str(v.text, out); break;
    case JsonValue::kList:
      out->push_back('[');
      for (size_t k = 0; k < v.items.size(); ++k) {
        if (k) *out += U", ";
        repr_value(v.items[k], out);
      }
      out->push_back(']');
      break;
    case JsonValue::kDict:
      out->push_back('{');
      for (size_t k = 0; k < v.items.size(); ++k) {
        if (k) *out += U", ";
        repr_str(v.keys[k], out);
        *out += U": ";
        repr_value(v.items[k], out);
      }
      out->push_back('}');
      break;
  }
}
}  // namespace

std::optional<JsonValue> json_loads(U32View s) {
  if (!python_json_loads_ok(s)) return std::nullopt;
  JsonParser p{s};
  return p.value();
}

U32 py_str(const JsonValue& v) {
  if (v.kind == JsonValue::kStr) return v.text;
  U32 out;
  repr_value(v, &out);
  return out;
}

}  // namespace md
}  // namespace hirfast
