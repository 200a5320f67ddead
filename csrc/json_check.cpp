// A validating scanner that follows Modules/_json.c (scan_once_unicode and friends) in CPython 3.11.
#include "json_check.h"

namespace hirfast {
namespace {

// CPython's default int max_str_digits (sys.int_info.default_max_str_digits).
constexpr size_t kMaxIntDigits = 4300;
// sys.getrecursionlimit() is 1000 and the caller's own frames use some of it; the reference's
// harness sits about ten frames deep when it calls json.loads.
constexpr int kMaxDepth = 990;

class Scanner {
 public:
  explicit Scanner(U32View s) : s_(s) {}

  bool document() {
    if (!s_.empty() && s_[0] == 0xFEFF) return false;  // "Unexpected UTF-8 BOM"
    size_t i = skip_ws(0);
    if (!value(&i, 0)) return false;
    return skip_ws(i) == s_.size();  // otherwise "Extra data"
  }

 private:
  static bool is_ws(char32_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
  static bool is_digit(char32_t c) { return c >= '0' && c <= '9'; }
  static bool is_hex(char32_t c) {
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  }

  size_t skip_ws(size_t i) const {
    while (i < s_.size() && is_ws(s_[i])) ++i;
    return i;
  }

  bool literal(size_t* i, const char* word) const {
    size_t k = *i;
    for (const char* p = word; *p; ++p, ++k)
      if (k >= s_.size() || s_[k] != static_cast<char32_t>(*p)) return false;
    *i = k;
    return true;
  }

  // After the opening quote; leaves *i after the closing quote.
  bool string(size_t* i) const {
    size_t k = *i;
    while (true) {
      if (k >= s_.size()) return false;  // "Unterminated string"
      char32_t c = s_[k];
      if (c == '"') {
        *i = k + 1;
        return true;
      }
      if (c < 0x20) return false;  // "Invalid control character" (strict=True)
      if (c == '\\') {
        if (k + 1 >= s_.size()) return false;
        char32_t e = s_[k + 1];
        if (e == 'u') {
          if (k + 6 > s_.size()) return false;
          for (size_t h = k + 2; h < k + 6; ++h)
            if (!is_hex(s_[h])) return false;  // "Invalid \uXXXX escape"
          k += 6;
          continue;
        }
        if (e != '"' && e != '\\' && e != '/' && e != 'b' && e != 'f' && e != 'n' && e != 'r' &&
            e != 't')
          return false;  // "Invalid \escape"
        k += 2;
        continue;
      }
      ++k;
    }
  }

  // _match_number_unicode: the exact index rules of the C scanner, `end` = last index.
  bool number(size_t* i) const {
    const size_t n = s_.size();
    size_t k = *i;
    if (s_[k] == '-') {
      ++k;
      if (k >= n) return false;
    }
    size_t int_start = k;
    if (s_[k] >= '1' && s_[k] <= '9') {
      ++k;
      while (k < n && is_digit(s_[k])) ++k;
    } else if (s_[k] == '0') {
      ++k;
    } else {
      return false;
    }
    size_t int_digits = k - int_start;
    bool is_float = false;
    if (k + 1 < n && s_[k] == '.' && is_digit(s_[k + 1])) {
      is_float = true;
      k += 2;
      while (k < n && is_digit(s_[k])) ++k;
    }
    if (k + 1 < n && (s_[k] == 'e' || s_[k] == 'E')) {
      size_t e_start = k;
      ++k;
      if (k + 1 < n && (s_[k] == '-' || s_[k] == '+')) ++k;
      size_t digits_start = k;
      while (k < n && is_digit(s_[k])) ++k;
      if (k > digits_start)
        is_float = true;
      else
        k = e_start;
    }
    if (!is_float && int_digits > kMaxIntDigits) return false;  // int() refuses > 4300 digits
    *i = k;
    return true;
  }

  bool value(size_t* i, int depth) const {
    if (*i >= s_.size()) return false;  // "Expecting value"
    switch (s_[*i]) {
      case '"':
        ++*i;
        return string(i);
      case '{':
        return object(i, depth + 1);
      case '[':
        return array(i, depth + 1);
      case 'n':
        return literal(i, "null");
      case 't':
        return literal(i, "true");
      case 'f':
        return literal(i, "false");
      case 'N':
        return literal(i, "NaN");
      case 'I':
        return literal(i, "Infinity");
      case '-':
        if (*i + 1 < s_.size() && s_[*i + 1] == 'I') return literal(i, "-Infinity");
        return number(i);
      default:
        return number(i);
    }
  }

  bool object(size_t* i, int depth) const {
    if (depth > kMaxDepth) return false;
    size_t k = skip_ws(*i + 1);
    if (k < s_.size() && s_[k] == '}') {
      *i = k + 1;
      return true;
    }
    while (true) {
      if (k >= s_.size() || s_[k] != '"') return false;  // "Expecting property name"
      ++k;
      if (!string(&k)) return false;
      k = skip_ws(k);
      if (k >= s_.size() || s_[k] != ':') return false;
      k = skip_ws(k + 1);
      if (!value(&k, depth)) return false;
      k = skip_ws(k);
      if (k < s_.size() && s_[k] == '}') {
        *i = k + 1;
        return true;
      }
      if (k >= s_.size() || s_[k] != ',') return false;
      k = skip_ws(k + 1);
    }
  }

  bool array(size_t* i, int depth) const {
    if (depth > kMaxDepth) return false;
    size_t k = skip_ws(*i + 1);
    if (k < s_.size() && s_[k] == ']') {
      *i = k + 1;
      return true;
    }
    while (true) {
      if (!value(&k, depth)) return false;
      k = skip_ws(k);
      if (k < s_.size() && s_[k] == ']') {
        *i = k + 1;
        return true;
      }
      if (k >= s_.size() || s_[k] != ',') return false;
      k = skip_ws(k + 1);
    }
  }

  U32View s_;
};

}  // namespace

bool python_json_loads_ok(U32View s) { return Scanner(s).document(); }

}  // namespace hirfast
