// Pattern and replacement-template parser: a port of CPython 3.11.7's re/_parser.py.
//
// The structure follows the Python source function by function (Tokenizer, _class_escape,
// _escape, _parse_sub, _parse, _parse_flags, parse, parse_template) so that every pattern gets
// the same parse tree, and every invalid one the same error message and position. The tree
// transformations of _parse_sub (common prefixes moved out of alternations, single-character
// alternations turned into sets) are kept too: they decide whether sre compiles a literal or a
// set, and under IGNORECASE the two differ for characters outside the BMP.
#include <algorithm>
#include <cstring>
#include <optional>
#include <unordered_set>

#include "regex_internal.h"

namespace hirfast {
namespace regex_detail {
namespace {

#include "regex_tables.inc"

bool in_ranges(const char32_t (*ranges)[2], size_t n, char32_t c) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (ranges[mid][1] < c) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo < n && ranges[lo][0] <= c;
}

bool py_isidentifier(U32View s) {
  if (s.empty()) return false;
  if (!in_ranges(kIdentStart, sizeof(kIdentStart) / sizeof(kIdentStart[0]), s[0])) return false;
  for (size_t i = 1; i < s.size(); ++i)
    if (!in_ranges(kIdentContinue, sizeof(kIdentContinue) / sizeof(kIdentContinue[0]), s[i])) return false;
  return true;
}

// int(s) for a str, as CPython 3.11.7 parses it: Unicode decimal digits and whitespace, one
// optional sign, single underscores between digits, at most 4300 digits. The value is kept as
// its decimal digits so error messages can print it whole.
struct PyInt {
  bool negative = false;
  std::string digits;  // no leading zeros; "0" for zero
  bool ge(uint64_t v) const {
    std::string s = std::to_string(v);
    if (negative) return digits == "0" && v == 0;
    if (digits.size() != s.size()) return digits.size() > s.size();
    return digits >= s;
  }
  bool is_zero() const { return digits == "0"; }
  uint64_t small() const { return digits.size() > 19 ? UINT64_MAX : std::stoull(digits); }
};

std::optional<PyInt> py_int(U32View s) {
  std::string a;
  a.reserve(s.size());
  // _PyUnicode_TransformDecimalAndSpaceToASCII: code points below 127 stay, other whitespace
  // becomes ' ', other decimal digits their ASCII digit, anything else makes int() fail.
  for (char32_t c : s) {
    if (c < 127) {
      a.push_back(static_cast<char>(c));
    } else if (py_isspace(c)) {
      a.push_back(' ');
    } else if (py_isdecimal(c)) {
      a.push_back(static_cast<char>('0' + py_decimal_value(c)));
    } else {
      return std::nullopt;
    }
  }
  size_t i = 0, n = a.size();
  auto is_ws = [](char ch) { return ch == ' ' || (ch >= '\t' && ch <= '\r'); };
  while (i < n && is_ws(a[i])) ++i;
  PyInt out;
  if (i < n && (a[i] == '+' || a[i] == '-')) out.negative = a[i++] == '-';
  std::string digits;
  if (i >= n || !(a[i] >= '0' && a[i] <= '9')) return std::nullopt;
  while (i < n) {
    if (a[i] >= '0' && a[i] <= '9') {
      digits.push_back(a[i++]);
    } else if (a[i] == '_' && i + 1 < n && a[i + 1] >= '0' && a[i + 1] <= '9') {
      ++i;
    } else {
      break;
    }
  }
  while (i < n && is_ws(a[i])) ++i;
  if (i != n || digits.size() > 4300) return std::nullopt;
  size_t nz = digits.find_first_not_of('0');
  out.digits = nz == std::string::npos ? "0" : digits.substr(nz);
  if (out.digits == "0") out.negative = false;
  return out;
}

std::string pyint_str(const PyInt& v) { return (v.negative ? "-" : "") + v.digits; }

[[noreturn]] void raise_at(const std::string& msg, U32View pattern, size_t pos) {
  // re.error.__init__: "msg at position N", plus "(line L, column C)" for multi-line patterns.
  std::string full = msg + " at position " + std::to_string(pos);
  if (pattern.find(U'\n') != U32View::npos) {
    size_t upto = std::min(pos, pattern.size());
    size_t line = 1 + static_cast<size_t>(std::count(pattern.begin(), pattern.begin() + upto, U'\n'));
    size_t last_nl = U32View(pattern.data(), upto).rfind(U'\n');
    size_t col = last_nl == U32View::npos ? pos + 1 : pos - last_nl;
    full += " (line " + std::to_string(line) + ", column " + std::to_string(col) + ")";
  }
  throw RegexError(full, pos);
}

[[noreturn]] void unsupported(const std::string& msg, size_t pos) {
  throw RegexUnsupported(msg + " at position " + std::to_string(pos), pos);
}

// A token of re's Tokenizer: one code point, or a backslash and the code point after it.
struct Token {
  uint8_t len = 0;  // 0: end of pattern (Python's None)
  char32_t a = 0, b = 0;
  bool none() const { return len == 0; }
  bool is(char32_t c) const { return len == 1 && a == c; }
  bool escape() const { return len == 2; }
  bool one_of(const char* chars) const {
    return len == 1 && a < 128 && a != 0 && std::strchr(chars, static_cast<int>(a));
  }
  bool isalpha() const { return len == 1 && py_isalpha(a); }
  std::u32string str() const {
    if (len == 0) return {};
    if (len == 1) return std::u32string(1, a);
    return std::u32string{a, b};
  }
};

bool is_digit(const Token& t) { return t.len == 1 && t.a >= '0' && t.a <= '9'; }
bool is_octdigit(const Token& t) { return t.len == 1 && t.a >= '0' && t.a <= '7'; }
bool is_hexdigit(const Token& t) {
  return t.len == 1 && ((t.a >= '0' && t.a <= '9') || ((t.a | 32) >= 'a' && (t.a | 32) <= 'f'));
}
bool is_ascii_letter(char32_t c) { return c < 128 && (c | 32) >= 'a' && (c | 32) <= 'z'; }

class Tokenizer {
 public:
  explicit Tokenizer(U32View s) : s_(s) { advance(); }
  Token next;

  void advance() {
    size_t index = index_;
    if (index >= s_.size()) {
      next = Token();
      return;
    }
    char32_t c = s_[index];
    if (c == U'\\') {
      ++index;
      if (index >= s_.size()) raise_at("bad escape (end of pattern)", s_, s_.size() - 1);
      next = Token{2, c, s_[index]};
    } else {
      next = Token{1, c, 0};
    }
    index_ = index + 1;
  }
  bool match(char32_t c) {
    if (next.is(c)) {
      advance();
      return true;
    }
    return false;
  }
  Token get() {
    Token t = next;
    advance();
    return t;
  }
  template <typename Pred>
  std::u32string getwhile(size_t n, Pred in_charset) {
    std::u32string result;
    for (size_t k = 0; k < n; ++k) {
      if (!in_charset(next)) break;
      result += next.str();
      advance();
    }
    return result;
  }
  std::u32string getuntil(char32_t terminator, const std::string& name) {
    std::u32string result;
    while (true) {
      Token c = next;
      advance();
      if (c.none()) {
        if (result.empty()) error("missing " + name);
        error("missing " + utf8(std::u32string(1, terminator)) + ", unterminated name", result.size());
      }
      if (c.is(terminator)) {
        if (result.empty()) error("missing " + name, 1);
        break;
      }
      result += c.str();
    }
    return result;
  }
  size_t tell() const { return index_ - next.len; }
  void seek(size_t index) {
    index_ = index;
    advance();
  }
  [[noreturn]] void error(const std::string& msg, size_t offset = 0) const { raise_at(msg, s_, tell() - offset); }
  void checkgroupname(U32View name, size_t offset) const {
    if (!py_isidentifier(name)) error("bad character in group name " + py_repr(name), name.size() + offset);
  }
  U32View string() const { return s_; }

 private:
  U32View s_;
  size_t index_ = 0;
};

Node literal_node(char32_t c) {
  Node n;
  n.op = NodeOp::kLiteral;
  n.c = c;
  return n;
}
Node category_node(Category cat) {
  Node n;
  n.op = NodeOp::kIn;
  n.set.push_back(SetItem{SetOp::kCategory, static_cast<char32_t>(cat), 0});
  return n;
}
Node at_node(AtCode code) {
  Node n;
  n.op = NodeOp::kAt;
  n.c = code;
  return n;
}

// CATEGORIES of _parser.py (\A \b \B \d \D \s \S \w \W \Z).
std::optional<Node> category_escape(const Token& t) {
  switch (t.b) {
    case U'A': return at_node(kAtBeginningString);
    case U'b': return at_node(kAtBoundary);
    case U'B': return at_node(kAtNonBoundary);
    case U'd': return category_node(kCatDigit);
    case U'D': return category_node(kCatNotDigit);
    case U's': return category_node(kCatSpace);
    case U'S': return category_node(kCatNotSpace);
    case U'w': return category_node(kCatWord);
    case U'W': return category_node(kCatNotWord);
    case U'Z': return at_node(kAtEndString);
    default: return std::nullopt;
  }
}

// ESCAPES of _parser.py (\a \b \f \n \r \t \v \\).
std::optional<char32_t> simple_escape(char32_t c) {
  switch (c) {
    case U'a': return 7;
    case U'b': return 8;
    case U'f': return 12;
    case U'n': return 10;
    case U'r': return 13;
    case U't': return 9;
    case U'v': return 11;
    case U'\\': return U'\\';
    default: return std::nullopt;
  }
}

uint64_t parse_hex(U32View s) {
  uint64_t v = 0;
  for (char32_t c : s) v = v * 16 + (c <= '9' ? c - '0' : (c | 32) - 'a' + 10);
  return v;
}
uint64_t parse_oct(U32View s) {
  uint64_t v = 0;
  for (char32_t c : s) v = v * 8 + (c - '0');
  return v;
}

struct ParseState {
  uint32_t flags = 0;
  std::map<std::u32string, size_t> groupdict;
  std::vector<std::optional<Width>> groupwidths{std::optional<Width>()};  // [0] is group 0
  std::optional<size_t> lookbehindgroups;
  std::map<uint64_t, size_t> grouprefpos;
  size_t groups() const { return groupwidths.size(); }
  bool checkgroup(size_t gid) const { return gid < groups() && groupwidths[gid].has_value(); }
};

// The recursive parser needs a C++ stack frame per level; Python itself gives up (RecursionError)
// near 450 nested groups. 200 levels are refused here, well inside an 8 MB thread stack.
constexpr int kMaxNested = 400;

class Parser {
 public:
  Parser(U32View pattern, ParseState* state) : source_(pattern), state_(state) {}

  ParsedPattern run(uint32_t flags) {
    state_->flags = flags;
    Seq p = parse_sub(flags & kFlagVerbose, 0);
    state_->flags = fix_flags(state_->flags);
    if (!source_.next.none()) source_.error("unbalanced parenthesis");
    for (const auto& [g, pos] : state_->grouprefpos) {
      if (g >= state_->groups()) raise_at("invalid group reference " + std::to_string(g), source_.string(), pos);
    }
    ParsedPattern out;
    out.seq = std::move(p);
    out.flags = state_->flags;
    out.groups = state_->groups() - 1;
    out.group_index = state_->groupdict;
    out.group_widths = widths();
    return out;
  }

 private:
  static uint32_t fix_flags(uint32_t flags) {
    if (flags & kFlagLocale) throw RegexError("cannot use LOCALE flag with a str pattern", RegexError::kNoPos);
    if (!(flags & kFlagAscii)) {
      flags |= kFlagUnicode;
    } else if (flags & kFlagUnicode) {
      throw RegexError("ASCII and UNICODE flags are incompatible", RegexError::kNoPos);
    }
    return flags;
  }

  void check_lookbehind_group(size_t gid) {
    if (state_->lookbehindgroups) {
      if (!state_->checkgroup(gid)) source_.error("cannot refer to an open group");
      if (gid >= *state_->lookbehindgroups)
        source_.error("cannot refer to group defined in the same lookbehind subpattern");
    }
  }

  size_t opengroup(const std::optional<std::u32string>& name) {
    size_t gid = state_->groups();
    state_->groupwidths.emplace_back();
    if (state_->groups() > kMaxGroups) source_.error("too many groups", name ? name->size() + 1 : 0);
    if (name) {
      auto it = state_->groupdict.find(*name);
      if (it != state_->groupdict.end()) {
        source_.error("redefinition of group name " + py_repr(*name) + " as group " + std::to_string(gid) +
                          "; was group " + std::to_string(it->second),
                      name->size() + 1);
      }
      state_->groupdict[*name] = gid;
    }
    return gid;
  }

  void closegroup(size_t gid, const Seq& p) { state_->groupwidths[gid] = seq_width(p, widths()); }

  std::vector<Width> widths() const {
    std::vector<Width> w;
    for (const auto& g : state_->groupwidths) w.push_back(g.value_or(Width()));
    return w;
  }

  // Escapes that may take more code points: \x.. \u.... \U........ \N{...} and octal.
  // Returns false when the escape is none of these (the caller decides what it is).
  bool numeric_escape(std::u32string* escape, bool in_class, char32_t* out) {
    char32_t c = (*escape)[1];
    auto fail_incomplete = [&](size_t want) {
      if (escape->size() != want) source_.error("incomplete escape " + utf8(*escape), escape->size());
    };
    if (c == U'x') {
      *escape += source_.getwhile(2, is_hexdigit);
      fail_incomplete(4);
      *out = static_cast<char32_t>(parse_hex(U32View(*escape).substr(2)));
      return true;
    }
    if (c == U'u') {
      *escape += source_.getwhile(4, is_hexdigit);
      fail_incomplete(6);
      *out = static_cast<char32_t>(parse_hex(U32View(*escape).substr(2)));
      return true;
    }
    if (c == U'U') {
      *escape += source_.getwhile(8, is_hexdigit);
      fail_incomplete(10);
      uint64_t v = parse_hex(U32View(*escape).substr(2));
      if (v > 0x10FFFF) source_.error("bad escape " + utf8(*escape), escape->size());  // chr() raises
      *out = static_cast<char32_t>(v);
      return true;
    }
    if (c == U'N') {
      if (!source_.match(U'{')) source_.error("missing {");
      std::u32string name = source_.getuntil(U'}', "character name");
      // Resolving names needs the Unicode name table (about 1 MB), which is not shipped.
      unsupported("\\N{" + utf8(name) + "}: named Unicode escapes are not supported (write the character or \\uXXXX)",
                  source_.tell() - name.size() - 4);
    }
    if (in_class && c >= U'0' && c <= U'7') {
      *escape += source_.getwhile(2, is_octdigit);
      uint64_t v = parse_oct(U32View(*escape).substr(1));
      if (v > 0377)
        source_.error("octal escape value " + utf8(*escape) + " outside of range 0-0o377", escape->size());
      *out = static_cast<char32_t>(v);
      return true;
    }
    return false;
  }

  // _class_escape: an escape inside [...]; a category comes back as an kIn node.
  Node class_escape(const Token& tok) {
    if (auto e = simple_escape(tok.b)) return literal_node(*e);
    if (auto cat = category_escape(tok); cat && cat->op == NodeOp::kIn) return *cat;
    std::u32string escape = tok.str();
    char32_t value;
    if (numeric_escape(&escape, true, &value)) return literal_node(value);
    char32_t c = tok.b;
    if (!(c >= U'0' && c <= U'9') && escape.size() == 2) {
      if (is_ascii_letter(c)) source_.error("bad escape " + utf8(escape), escape.size());
      return literal_node(c);
    }
    source_.error("bad escape " + utf8(escape), escape.size());
  }

  // _escape: an escape outside [...].
  Node escape(const Token& tok) {
    if (auto cat = category_escape(tok)) return *cat;
    if (auto e = simple_escape(tok.b)) return literal_node(*e);
    std::u32string escape = tok.str();
    char32_t value;
    char32_t c = tok.b;
    if (c != U'0' && numeric_escape(&escape, false, &value)) return literal_node(value);
    if (c == U'0') {
      escape += source_.getwhile(2, is_octdigit);
      return literal_node(static_cast<char32_t>(parse_oct(U32View(escape).substr(1))));
    }
    if (c >= U'1' && c <= U'9') {
      // octal escape *or* decimal group reference (sigh)
      if (is_digit(source_.next)) {
        escape += source_.get().str();
        if (escape[1] <= U'7' && escape[2] <= U'7' && is_octdigit(source_.next)) {
          escape += source_.get().str();
          uint64_t v = parse_oct(U32View(escape).substr(1));
          if (v > 0377)
            source_.error("octal escape value " + utf8(escape) + " outside of range 0-0o377", escape.size());
          return literal_node(static_cast<char32_t>(v));
        }
      }
      size_t group = std::stoul(utf8(U32View(escape).substr(1)));
      if (group < state_->groups()) {
        if (!state_->checkgroup(group)) source_.error("cannot refer to an open group", escape.size());
        check_lookbehind_group(group);
        Node n;
        n.op = NodeOp::kGroupRef;
        n.group = group;
        return n;
      }
      source_.error("invalid group reference " + std::to_string(group), escape.size() - 1);
    }
    if (escape.size() == 2) {
      if (is_ascii_letter(c)) source_.error("bad escape " + utf8(escape), escape.size());
      return literal_node(c);
    }
    source_.error("bad escape " + utf8(escape), escape.size());
  }

  // _uniq: drop repeated items, keeping the first of each (in linear time: sets may be long).
  static void uniq(std::vector<SetItem>* items) {
    std::unordered_set<uint64_t> seen;
    std::vector<SetItem> out;
    for (const SetItem& it : *items) {
      const uint64_t key = (uint64_t{static_cast<uint8_t>(it.op)} << 48) | (uint64_t{it.lo} << 24) | it.hi;
      if (seen.insert(key).second) out.push_back(it);
    }
    *items = std::move(out);
  }

  Seq parse_sub(bool verbose, int nested) {
    if (nested > kMaxNested) unsupported("groups nested more than 200 levels deep are not supported", source_.tell());
    std::vector<Seq> items;
    while (true) {
      items.push_back(parse(verbose, nested + 1, nested == 0 && items.empty()));
      if (!source_.match(U'|')) break;
      if (nested == 0) verbose = state_->flags & kFlagVerbose;
    }
    if (items.size() == 1) return std::move(items[0]);

    Seq subpattern;
    // check if all items share a common prefix (moved out of the branch all at once: Python
    // deletes one element at a time, which is quadratic in the prefix length)
    size_t common = 0;
    while (true) {
      bool all = true;
      for (const Seq& item : items) {
        if (item.size() <= common || !same_atom(item[common], items[0][common])) {
          all = false;
          break;
        }
      }
      if (!all) break;
      ++common;
    }
    if (common > 0) {
      subpattern.assign(std::make_move_iterator(items[0].begin()),
                        std::make_move_iterator(items[0].begin() + static_cast<ptrdiff_t>(common)));
      for (Seq& item : items) item.erase(item.begin(), item.begin() + static_cast<ptrdiff_t>(common));
    }
    // check if the branch can be replaced by a character set
    std::vector<SetItem> set;
    bool all_sets = true;
    for (const Seq& item : items) {
      if (item.size() != 1) {
        all_sets = false;
        break;
      }
      const Node& n = item[0];
      if (n.op == NodeOp::kLiteral) {
        set.push_back(SetItem{SetOp::kLiteral, n.c, 0});
      } else if (n.op == NodeOp::kIn && n.set[0].op != SetOp::kNegate) {
        set.insert(set.end(), n.set.begin(), n.set.end());
      } else {
        all_sets = false;
        break;
      }
    }
    if (all_sets) {
      uniq(&set);
      Node in;
      in.op = NodeOp::kIn;
      in.set = std::move(set);
      subpattern.push_back(std::move(in));
      return subpattern;
    }
    Node branch;
    branch.op = NodeOp::kBranch;
    branch.subs = std::move(items);
    subpattern.push_back(std::move(branch));
    return subpattern;
  }

  void parse_set(Seq* subpattern) {
    size_t here = source_.tell() - 1;
    std::vector<SetItem> set;
    bool negate = source_.match(U'^');
    auto item_of = [](const Node& code) {
      // code1 = code1[1][0] for a category; a literal stays a literal
      if (code.op == NodeOp::kIn) return code.set[0];
      return SetItem{SetOp::kLiteral, code.c, 0};
    };
    while (true) {
      Token this_ = source_.get();
      if (this_.none()) source_.error("unterminated character set", source_.tell() - here);
      if (this_.is(U']') && !set.empty()) break;
      Node code1 = this_.escape() ? class_escape(this_) : literal_node(this_.a);
      if (source_.match(U'-')) {
        Token that = source_.get();
        if (that.none()) source_.error("unterminated character set", source_.tell() - here);
        if (that.is(U']')) {
          set.push_back(item_of(code1));
          set.push_back(SetItem{SetOp::kLiteral, U'-', 0});
          break;
        }
        Node code2 = that.escape() ? class_escape(that) : literal_node(that.a);
        std::string msg = "bad character range " + utf8(this_.str()) + "-" + utf8(that.str());
        if (code1.op != NodeOp::kLiteral || code2.op != NodeOp::kLiteral)
          source_.error(msg, this_.len + 1 + that.len);
        if (code2.c < code1.c) source_.error(msg, this_.len + 1 + that.len);
        set.push_back(SetItem{SetOp::kRange, code1.c, code2.c});
      } else {
        set.push_back(item_of(code1));
      }
    }
    uniq(&set);
    if (set.size() == 1 && set[0].op == SetOp::kLiteral) {
      Node n = literal_node(set[0].lo);
      if (negate) n.op = NodeOp::kNotLiteral;
      subpattern->push_back(std::move(n));
    } else {
      if (negate) set.insert(set.begin(), SetItem{SetOp::kNegate, 0, 0});
      Node n;
      n.op = NodeOp::kIn;
      n.set = std::move(set);
      subpattern->push_back(std::move(n));
    }
  }

  // Returns false when "{" turned out to be a literal (the caller continues).
  bool parse_repeat(const Token& this_, Seq* subpattern) {
    size_t here = source_.tell();
    uint64_t min = 0, max = kMaxRepeat;
    if (this_.is(U'?')) {
      max = 1;
    } else if (this_.is(U'+')) {
      min = 1;
    } else if (this_.is(U'{')) {
      if (source_.next.is(U'}')) {
        subpattern->push_back(literal_node(U'{'));
        return false;
      }
      std::u32string lo, hi;
      while (is_digit(source_.next)) lo += source_.get().str();
      if (source_.match(U',')) {
        while (is_digit(source_.next)) hi += source_.get().str();
      } else {
        hi = lo;
      }
      if (!source_.match(U'}')) {
        subpattern->push_back(literal_node(U'{'));
        source_.seek(here);
        return false;
      }
      auto to_int = [&](const std::u32string& digits) -> uint64_t {
        std::optional<PyInt> v = py_int(digits);
        if (!v)
          throw RegexError("Exceeds the limit (4300 digits) for integer string conversion: value has " +
                               std::to_string(digits.size()) +
                               " digits; use sys.set_int_max_str_digits() to increase the limit",
                           RegexError::kNoPos);
        if (v->ge(kMaxRepeat)) throw RegexError("the repetition number is too large", RegexError::kNoPos);
        return v->small();
      };
      if (!lo.empty()) min = to_int(lo);
      if (!hi.empty()) {
        max = to_int(hi);
        if (max < min) source_.error("min repeat greater than max repeat", source_.tell() - here);
      }
    }
    // figure out which item to repeat
    if (subpattern->empty() || subpattern->back().op == NodeOp::kAt)
      source_.error("nothing to repeat", source_.tell() - here + this_.len);
    NodeOp last = subpattern->back().op;
    if (last == NodeOp::kMaxRepeat || last == NodeOp::kMinRepeat || last == NodeOp::kPossessiveRepeat)
      source_.error("multiple repeat", source_.tell() - here + this_.len);
    Seq item;
    Node& back = subpattern->back();
    if (back.op == NodeOp::kSubpattern && back.group == 0 && back.add_flags == 0 && back.del_flags == 0) {
      item = std::move(back.subs[0]);
    } else {
      item.push_back(std::move(back));
    }
    Node rep;
    if (source_.match(U'?')) {
      rep.op = NodeOp::kMinRepeat;
    } else if (source_.match(U'+')) {
      rep.op = NodeOp::kPossessiveRepeat;
    } else {
      rep.op = NodeOp::kMaxRepeat;
    }
    rep.min = min;
    rep.max = max;
    rep.subs.push_back(std::move(item));
    back = std::move(rep);
    return true;
  }

  std::u32string group_name_until(char32_t terminator) { return source_.getuntil(terminator, "group name"); }

  // (?(condition)yes|no)
  void parse_conditional(bool verbose, int nested, size_t start, Seq* subpattern) {
    std::u32string condname = group_name_until(U')');
    size_t condgroup;
    if (py_isidentifier(condname)) {
      auto it = state_->groupdict.find(condname);
      if (it == state_->groupdict.end())
        source_.error("unknown group name " + py_repr(condname), condname.size() + 1);
      condgroup = it->second;
    } else {
      std::optional<PyInt> v = py_int(condname);
      if (!v || v->negative)
        source_.error("bad character in group name " + py_repr(condname), condname.size() + 1);
      if (v->is_zero()) source_.error("bad group number", condname.size() + 1);
      if (v->ge(kMaxGroups)) source_.error("invalid group reference " + pyint_str(*v), condname.size() + 1);
      condgroup = static_cast<size_t>(v->small());
      if (!state_->grouprefpos.count(condgroup))
        state_->grouprefpos[condgroup] = source_.tell() - condname.size() - 1;
    }
    check_lookbehind_group(condgroup);
    Node n;
    n.op = NodeOp::kGroupRefExists;
    n.group = condgroup;
    n.subs.push_back(parse(verbose, nested + 1, false));
    if (source_.match(U'|')) {
      n.subs.push_back(parse(verbose, nested + 1, false));
      n.has_no = true;
      if (source_.next.is(U'|')) source_.error("conditional backref with more than two branches");
    }
    if (!source_.match(U')')) source_.error("missing ), unterminated subpattern", source_.tell() - start);
    subpattern->push_back(std::move(n));
  }

  static uint32_t flag_of(const Token& t) {
    if (t.len != 1) return 0;
    switch (t.a) {
      case U'i': return kFlagIgnoreCase;
      case U'L': return kFlagLocale;
      case U'm': return kFlagMultiline;
      case U's': return kFlagDotAll;
      case U'x': return kFlagVerbose;
      case U'a': return kFlagAscii;
      case U't': return kFlagTemplate;
      case U'u': return kFlagUnicode;
      default: return 0;
    }
  }

  // _parse_flags: returns false for global flags "(?i)", true for "(?i:" / "(?-i:".
  bool parse_flags(Token c, uint32_t* add_out, uint32_t* del_out) {
    constexpr uint32_t kTypeFlags = kFlagAscii | kFlagLocale | kFlagUnicode;
    constexpr uint32_t kGlobalFlags = kFlagDebug | kFlagTemplate;
    uint32_t add = 0, del = 0;
    if (!c.is(U'-')) {
      while (true) {
        uint32_t flag = flag_of(c);
        if (c.is(U'L')) source_.error("bad inline flags: cannot use 'L' flag with a str pattern");
        add |= flag;
        if ((flag & kTypeFlags) && (add & kTypeFlags) != flag)
          source_.error("bad inline flags: flags 'a', 'u' and 'L' are incompatible");
        c = source_.get();
        if (c.none()) source_.error("missing -, : or )");
        if (c.one_of(")-:")) break;
        if (!flag_of(c)) source_.error(c.isalpha() ? "unknown flag" : "missing -, : or )", c.len);
      }
    }
    if (c.is(U')')) {
      state_->flags |= add;
      return false;
    }
    if (add & kGlobalFlags) source_.error("bad inline flags: cannot turn on global flag", 1);
    if (c.is(U'-')) {
      c = source_.get();
      if (c.none()) source_.error("missing flag");
      if (!flag_of(c)) source_.error(c.isalpha() ? "unknown flag" : "missing flag", c.len);
      while (true) {
        uint32_t flag = flag_of(c);
        if (flag & kTypeFlags) source_.error("bad inline flags: cannot turn off flags 'a', 'u' and 'L'");
        del |= flag;
        c = source_.get();
        if (c.none()) source_.error("missing :");
        if (c.is(U':')) break;
        if (!flag_of(c)) source_.error(c.isalpha() ? "unknown flag" : "missing :", c.len);
      }
    }
    if (del & kGlobalFlags) source_.error("bad inline flags: cannot turn off global flag", 1);
    if (add & del) source_.error("bad inline flags: flag turned on and off", 1);
    *add_out = add;
    *del_out = del;
    return true;
  }

  // "(" has been read: a group, or one of the "(?...)" extensions.
  void parse_group(bool* verbose, int nested, bool first, Seq* subpattern) {
    size_t start = source_.tell() - 1;
    bool capture = true, atomic = false;
    std::optional<std::u32string> name;
    uint32_t add_flags = 0, del_flags = 0;
    if (source_.match(U'?')) {
      Token c = source_.get();
      if (c.none()) source_.error("unexpected end of pattern");
      if (c.is(U'P')) {
        if (source_.match(U'<')) {
          name = group_name_until(U'>');
          source_.checkgroupname(*name, 1);
        } else if (source_.match(U'=')) {
          std::u32string ref = group_name_until(U')');
          source_.checkgroupname(ref, 1);
          auto it = state_->groupdict.find(ref);
          if (it == state_->groupdict.end()) source_.error("unknown group name " + py_repr(ref), ref.size() + 1);
          if (!state_->checkgroup(it->second)) source_.error("cannot refer to an open group", ref.size() + 1);
          check_lookbehind_group(it->second);
          Node n;
          n.op = NodeOp::kGroupRef;
          n.group = it->second;
          subpattern->push_back(std::move(n));
          return;
        } else {
          Token d = source_.get();
          if (d.none()) source_.error("unexpected end of pattern");
          source_.error("unknown extension ?P" + utf8(d.str()), d.len + 2);
        }
      } else if (c.is(U':')) {
        capture = false;
      } else if (c.is(U'#')) {
        while (true) {
          if (source_.next.none()) source_.error("missing ), unterminated comment", source_.tell() - start);
          if (source_.get().is(U')')) break;
        }
        return;
      } else if (c.one_of("=!<")) {
        int dir = 1;
        std::optional<size_t> saved_lookbehind;
        if (c.is(U'<')) {
          c = source_.get();
          if (c.none()) source_.error("unexpected end of pattern");
          if (!c.one_of("=!")) source_.error("unknown extension ?<" + utf8(c.str()), c.len + 2);
          dir = -1;
          saved_lookbehind = state_->lookbehindgroups;
          if (!saved_lookbehind) state_->lookbehindgroups = state_->groups();
        }
        Seq p = parse_sub(*verbose, nested + 1);
        if (dir < 0 && !saved_lookbehind) state_->lookbehindgroups.reset();
        if (!source_.match(U')')) source_.error("missing ), unterminated subpattern", source_.tell() - start);
        Node n;
        n.op = c.is(U'=') ? NodeOp::kAssert : NodeOp::kAssertNot;
        n.dir = dir;
        n.subs.push_back(std::move(p));
        subpattern->push_back(std::move(n));
        return;
      } else if (c.is(U'(')) {
        parse_conditional(*verbose, nested, start, subpattern);
        return;
      } else if (c.is(U'>')) {
        capture = false;
        atomic = true;
      } else if (flag_of(c) || c.is(U'-')) {
        if (!parse_flags(c, &add_flags, &del_flags)) {
          if (!first || !subpattern->empty())
            source_.error("global flags not at the start of the expression", source_.tell() - start);
          *verbose = state_->flags & kFlagVerbose;
          return;
        }
        capture = false;
      } else {
        source_.error("unknown extension ?" + utf8(c.str()), c.len + 1);
      }
    }
    size_t group = 0;
    if (capture) group = opengroup(name);
    bool sub_verbose = (*verbose || (add_flags & kFlagVerbose)) && !(del_flags & kFlagVerbose);
    Seq p = parse_sub(sub_verbose, nested + 1);
    if (!source_.match(U')')) source_.error("missing ), unterminated subpattern", source_.tell() - start);
    if (group) closegroup(group, p);
    Node n;
    if (atomic) {
      n.op = NodeOp::kAtomicGroup;
    } else {
      n.op = NodeOp::kSubpattern;
      n.group = group;
      n.add_flags = add_flags;
      n.del_flags = del_flags;
    }
    n.subs.push_back(std::move(p));
    subpattern->push_back(std::move(n));
  }

  Seq parse(bool verbose, int nested, bool first) {
    Seq subpattern;
    while (true) {
      const Token& peek = source_.next;
      if (peek.none() || peek.is(U'|') || peek.is(U')')) break;
      Token this_ = source_.get();
      if (verbose) {
        if (this_.one_of(" \t\n\r\v\f")) continue;
        if (this_.is(U'#')) {
          while (true) {
            Token t = source_.get();
            if (t.none() || t.is(U'\n')) break;
          }
          continue;
        }
      }
      if (this_.escape()) {
        subpattern.push_back(escape(this_));
      } else if (!this_.one_of(".\\[{()*+?^$|")) {
        subpattern.push_back(literal_node(this_.a));
      } else if (this_.is(U'[')) {
        parse_set(&subpattern);
      } else if (this_.one_of("*+?{")) {
        parse_repeat(this_, &subpattern);
      } else if (this_.is(U'.')) {
        Node n;
        n.op = NodeOp::kAny;
        subpattern.push_back(n);
      } else if (this_.is(U'(')) {
        parse_group(&verbose, nested, first, &subpattern);
      } else if (this_.is(U'^')) {
        subpattern.push_back(at_node(kAtBeginning));
      } else if (this_.is(U'$')) {
        subpattern.push_back(at_node(kAtEnd));
      }
    }
    // unpack non-capturing groups
    Seq out;
    out.reserve(subpattern.size());
    for (Node& n : subpattern) {
      if (n.op == NodeOp::kSubpattern && n.group == 0 && n.add_flags == 0 && n.del_flags == 0) {
        for (Node& inner : n.subs[0]) out.push_back(std::move(inner));
      } else {
        out.push_back(std::move(n));
      }
    }
    return out;
  }

  Tokenizer source_;
  ParseState* state_;
};

}  // namespace

std::string utf8(U32View s) { return encode_utf8(s); }

std::string py_repr(U32View s) {
  bool has_single = s.find(U'\'') != U32View::npos;
  bool has_double = s.find(U'"') != U32View::npos;
  char32_t quote = (has_single && !has_double) ? U'"' : U'\'';
  std::u32string out(1, quote);
  static const char* hex = "0123456789abcdef";
  auto push_hex = [&](char32_t prefix, char32_t c, int digits) {
    out += U'\\';
    out += prefix;
    for (int k = digits - 1; k >= 0; --k) out += static_cast<char32_t>(hex[(c >> (4 * k)) & 15]);
  };
  for (char32_t c : s) {
    if (c == quote || c == U'\\') {
      out += U'\\';
      out += c;
    } else if (c == U'\t') {
      out += U"\\t";
    } else if (c == U'\n') {
      out += U"\\n";
    } else if (c == U'\r') {
      out += U"\\r";
    } else if (c < U' ' || c == 0x7f) {
      push_hex(U'x', c, 2);
    } else if (c < 0x7f || py_isprintable(c)) {
      out += c;
    } else if (c <= 0xff) {
      push_hex(U'x', c, 2);
    } else if (c <= 0xffff) {
      push_hex(U'u', c, 4);
    } else {
      push_hex(U'U', c, 8);
    }
  }
  out += quote;
  return encode_utf8(out);
}

bool same_atom(const Node& a, const Node& b) {
  if (a.op != b.op) return false;
  switch (a.op) {
    case NodeOp::kLiteral:
    case NodeOp::kNotLiteral:
    case NodeOp::kAt: return a.c == b.c;
    case NodeOp::kGroupRef: return a.group == b.group;
    case NodeOp::kAny: return true;
    case NodeOp::kIn: return a.set == b.set;
    default: return false;  // the argument holds a SubPattern: Python compares it by identity
  }
}

Width seq_width(const Seq& seq, const std::vector<Width>& group_widths) {
  using u128 = unsigned __int128;
  const u128 kMaxWidth = static_cast<u128>(1) << 64;
  u128 lo = 0, hi = 0;
  for (const Node& n : seq) {
    switch (n.op) {
      case NodeOp::kBranch: {
        u128 i = kMaxWidth, j = 0;
        for (const Seq& alt : n.subs) {
          Width w = seq_width(alt, group_widths);
          i = std::min(i, w.lo);
          j = std::max(j, w.hi);
        }
        lo += i;
        hi += j;
        break;
      }
      case NodeOp::kAtomicGroup:
      case NodeOp::kSubpattern: {
        Width w = seq_width(n.subs[0], group_widths);
        lo += w.lo;
        hi += w.hi;
        break;
      }
      case NodeOp::kMaxRepeat:
      case NodeOp::kMinRepeat:
      case NodeOp::kPossessiveRepeat: {
        Width w = seq_width(n.subs[0], group_widths);
        lo += w.lo * n.min;
        if (n.max == kMaxRepeat && w.hi) {
          hi = kMaxWidth;
        } else {
          hi += w.hi * n.max;
        }
        break;
      }
      case NodeOp::kAny:
      case NodeOp::kIn:
      case NodeOp::kLiteral:
      case NodeOp::kNotLiteral:
        lo += 1;
        hi += 1;
        break;
      case NodeOp::kGroupRef: {
        const Width& w = group_widths[n.group];
        lo += w.lo;
        hi += w.hi;
        break;
      }
      case NodeOp::kGroupRefExists: {
        Width w = seq_width(n.subs[0], group_widths);
        u128 i = w.lo, j = w.hi;
        if (n.has_no) {
          Width v = seq_width(n.subs[1], group_widths);
          i = std::min(i, v.lo);
          j = std::max(j, v.hi);
        } else {
          i = 0;
        }
        lo += i;
        hi += j;
        break;
      }
      default: break;
    }
    // Saturate early so long sequences of huge widths cannot wrap 128 bits.
    lo = std::min(lo, kMaxWidth << 32);
    hi = std::min(hi, kMaxWidth << 32);
  }
  return Width{std::min(lo, kMaxWidth), std::min(hi, kMaxWidth)};
}

ParsedPattern parse_pattern(U32View pattern, uint32_t flags) {
  ParseState state;
  Parser parser(pattern, &state);
  return parser.run(flags);
}

std::vector<TemplatePart> parse_template(U32View repl, size_t groups,
                                         const std::map<std::u32string, size_t>& group_index) {
  Tokenizer s(repl);
  std::vector<TemplatePart> parts;
  std::u32string literal;
  auto addgroup = [&](uint64_t index, size_t pos) {
    if (index > groups) s.error("invalid group reference " + std::to_string(index), pos);
    if (!literal.empty()) {
      parts.push_back(TemplatePart{std::move(literal), -1});
      literal.clear();
    }
    parts.push_back(TemplatePart{{}, static_cast<ptrdiff_t>(index)});
  };
  while (true) {
    Token this_ = s.get();
    if (this_.none()) break;
    if (!this_.escape()) {
      literal += this_.a;
      continue;
    }
    char32_t c = this_.b;
    if (c == U'g') {
      if (!s.match(U'<')) s.error("missing <");
      std::u32string name = s.getuntil(U'>', "group name");
      uint64_t index;
      if (py_isidentifier(name)) {
        auto it = group_index.find(name);
        if (it == group_index.end()) throw RegexError("unknown group name " + py_repr(name), RegexError::kNoPos);
        index = it->second;
      } else {
        std::optional<PyInt> v = py_int(name);
        if (!v || v->negative) s.error("bad character in group name " + py_repr(name), name.size() + 1);
        if (v->ge(kMaxGroups)) s.error("invalid group reference " + pyint_str(*v), name.size() + 1);
        index = v->small();
      }
      addgroup(index, name.size() + 1);
    } else if (c == U'0') {
      std::u32string digits = this_.str();
      if (is_octdigit(s.next)) {
        digits += s.get().str();
        if (is_octdigit(s.next)) digits += s.get().str();
      }
      literal += static_cast<char32_t>(parse_oct(U32View(digits).substr(1)) & 0xff);
    } else if (c >= U'1' && c <= U'9') {
      std::u32string this_s = this_.str();
      bool isoctal = false;
      if (is_digit(s.next)) {
        this_s += s.get().str();
        if (c <= U'7' && this_s[2] <= U'7' && is_octdigit(s.next)) {
          this_s += s.get().str();
          isoctal = true;
          uint64_t v = parse_oct(U32View(this_s).substr(1));
          if (v > 0377) s.error("octal escape value " + utf8(this_s) + " outside of range 0-0o377", this_s.size());
          literal += static_cast<char32_t>(v);
        }
      }
      if (!isoctal) addgroup(std::stoull(utf8(U32View(this_s).substr(1))), this_s.size() - 1);
    } else if (auto e = simple_escape(c)) {
      literal += *e;
    } else {
      if (is_ascii_letter(c)) s.error("bad escape " + utf8(this_.str()), 2);
      literal += this_.str();
    }
  }
  if (!literal.empty()) parts.push_back(TemplatePart{std::move(literal), -1});
  return parts;
}

}  // namespace regex_detail
}  // namespace hirfast
