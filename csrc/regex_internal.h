// Internals of the regex engine (csrc/regex*.cpp): the parse tree, the compiled program and the
// helpers the parser, compiler and matcher share. Not part of the public API (see regex.h).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "regex.h"
#include "unicode.h"

namespace hirfast {
namespace regex_detail {

// sre's flag bits (re.I == 2, ...), the same numbers Regex::Flag uses.
enum : uint32_t {
  kFlagTemplate = 1,
  kFlagIgnoreCase = 2,
  kFlagLocale = 4,
  kFlagMultiline = 8,
  kFlagDotAll = 16,
  kFlagUnicode = 32,
  kFlagVerbose = 64,
  kFlagDebug = 128,
  kFlagAscii = 256,
};
constexpr uint64_t kMaxRepeat = 4294967295u;  // _sre.MAXREPEAT: "{m,}" stores this as max
constexpr uint64_t kMaxGroups = 1073741823u;  // _sre.MAXGROUPS

// ---------------------------------------------------------------------------------------------
// Parse tree: the (op, av) lists re/_parser.py builds, one Node per (op, av).

enum class NodeOp : uint8_t {
  kLiteral,
  kNotLiteral,
  kAny,
  kIn,
  kBranch,
  kSubpattern,
  kMaxRepeat,
  kMinRepeat,
  kPossessiveRepeat,
  kAt,
  kAtomicGroup,
  kGroupRef,
  kAssert,
  kAssertNot,
  kGroupRefExists,
};

enum class SetOp : uint8_t { kNegate, kLiteral, kRange, kCategory };
enum Category : uint8_t { kCatDigit, kCatNotDigit, kCatSpace, kCatNotSpace, kCatWord, kCatNotWord };

struct SetItem {
  SetOp op;
  char32_t lo = 0, hi = 0;  // kLiteral: lo; kRange: lo..hi; kCategory: lo is a Category
  bool operator==(const SetItem& o) const { return op == o.op && lo == o.lo && hi == o.hi; }
};

// AT codes as the parser emits them; the compiler maps them by flags (MULTILINE, ASCII).
enum AtCode : uint8_t {
  kAtBeginning,
  kAtBeginningLine,
  kAtBeginningString,
  kAtBoundary,
  kAtNonBoundary,
  kAtEnd,
  kAtEndLine,
  kAtEndString,
  kAtUniBoundary,
  kAtUniNonBoundary,
};

struct Node;
using Seq = std::vector<Node>;

struct Node {
  NodeOp op = NodeOp::kLiteral;
  char32_t c = 0;             // kLiteral/kNotLiteral: the code point; kAt: AtCode
  uint64_t group = 0;         // kSubpattern (0: no group), kGroupRef, kGroupRefExists
  std::vector<SetItem> set;   // kIn
  uint64_t min = 0, max = 0;  // repeats
  uint32_t add_flags = 0, del_flags = 0;  // kSubpattern
  int dir = 0;                // kAssert/kAssertNot: 1 lookahead, -1 lookbehind
  // kBranch: the alternatives; kSubpattern, repeats, kAtomicGroup, asserts: subs[0];
  // kGroupRefExists: subs[0] = yes, subs[1] = no when has_no.
  std::vector<Seq> subs;
  bool has_no = false;
};

// Python's equality of (op, av) tuples, as _parse_sub's common-prefix test sees it: sub-patterns
// compare by identity there, so only atoms can be equal.
bool same_atom(const Node& a, const Node& b);

// Width (min, max) of a sub-pattern as SubPattern.getwidth() computes it (saturated at 2**64).
struct Width {
  unsigned __int128 lo = 0, hi = 0;
};
struct ParsedPattern {
  Seq seq;
  uint32_t flags = 0;  // global flags after inline (?aiLmsux) and fix_flags
  size_t groups = 0;   // capturing groups (not counting group 0)
  std::map<std::u32string, size_t> group_index;
  std::vector<Width> group_widths;  // [g] = width of group g (SubPattern.getwidth())
};

// re/_parser.py's parse(): throws RegexError exactly where Python raises (same message and
// position), and RegexUnsupported for a well-formed \N{...} (no name table is shipped) or
// nesting beyond what the recursive parser allows.
ParsedPattern parse_pattern(U32View pattern, uint32_t flags);

// Replacement template of sub(): literal pieces and group references, re/_parser.py's
// parse_template(). Throws RegexError for an invalid template.
struct TemplatePart {
  std::u32string literal;
  ptrdiff_t group = -1;  // >= 0: a group reference (0 = whole match)
};
std::vector<TemplatePart> parse_template(U32View repl, size_t groups,
                                         const std::map<std::u32string, size_t>& group_index);

// Python's repr() of a str, UTF-8 encoded (error messages quote names with %r).
std::string py_repr(U32View s);
std::string utf8(U32View s);

Width seq_width(const Seq& seq, const std::vector<Width>& group_widths);

// ---------------------------------------------------------------------------------------------
// Character tests.

// _sre's case helpers for str patterns.
inline char32_t ascii_lower(char32_t c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }
inline bool ascii_iscased(char32_t c) { return c < 128 && ((c | 32) >= 'a' && (c | 32) <= 'z'); }
char32_t sre_upper(char32_t c);  // _PyUnicode_ToUppercase: first code point of str.upper()
bool sre_iscased(char32_t c);    // _sre.unicode_iscased

// A character class compiled as _compiler._optimize_charset leaves it: when `lower_first`
// (IGNORECASE and a cased member), the text character is lowered before the members are tested,
// exactly as IN_UNI_IGNORE / IN_IGNORE do, which is what makes `(?i)[\U00010400x]` miss U+10400.
struct CharClass {
  bool negate = false;
  bool lower_first = false;
  bool ascii_lowering = false;   // lower with ascii_lower (re.A) instead of sre_lower
  bool ascii_categories = false; // \w \d \s and \b as ASCII (re.A)
  std::vector<std::pair<char32_t, char32_t>> ranges;  // sorted, disjoint members
  uint8_t categories = 0;                             // bit per Category
  std::vector<char32_t> exact_tail;                   // non-BMP LITERALs kept unlowered
  std::vector<std::pair<char32_t, char32_t>> uni_ignore_ranges;  // RANGE_UNI_IGNORE
  uint64_t low_bits[4] = {0, 0, 0, 0};  // the final answer for code points < 256

  bool slow_test(char32_t c) const;  // the full rule (fills low_bits at compile time)
  bool test(char32_t c) const {
    if (c < 256) return (low_bits[c >> 6] >> (c & 63)) & 1;
    return slow_test(c);
  }
};

bool category_test(uint8_t cat, bool ascii, char32_t c);

struct CharTest {
  enum Kind : uint8_t { kExact, kFold, kAsciiFold, kAnyButNewline, kAnyAll, kClass } kind = kExact;
  bool negate = false;
  char32_t c = 0;         // kExact: the code point; kFold: re_fold_key; kAsciiFold: ascii_lower
  const CharClass* cls = nullptr;
  bool operator()(char32_t ch) const {
    bool r;
    switch (kind) {
      case kExact: r = ch == c; break;
      case kFold: r = re_fold_key(ch) == c; break;
      case kAsciiFold: r = ascii_lower(ch) == c; break;
      case kAnyButNewline: r = ch != U'\n'; break;
      case kAnyAll: r = true; break;
      default: r = cls->test(ch); break;
    }
    return r != negate;
  }
};

// ---------------------------------------------------------------------------------------------
// Program for the Pike VM.

enum class Op : uint8_t {
  kConsume,     // test the character at the position; on success go to pc + 1 one further on
  kMatch,
  kJmp,         // x
  kSplit,       // x preferred, then y
  kSave,        // slot x := position
  kAssert,      // at: an AtCode that must hold here
  kIterStart,   // bit := 1 (an optional iteration of a loop whose body can match empty starts)
  kCheckEmpty,  // bit set (iteration matched nothing): go to x, else pc + 1
  kNotNext,     // the next character must not pass `test` (possessive exit); end of text passes
  // x* on one character, greedy: Split(B, x); B: Consume(test); Jmp back, as one instruction so
  // the backtracker can run it as a tight loop (sre's REPEAT_ONE) and keep one stack entry.
  kRepeatGreedy,
};

struct Inst {
  Op op;
  uint8_t at = 0;
  uint8_t bit = 0;
  uint8_t depth = 0;  // nullable loops whose iteration flag is live here
  uint32_t x = 0, y = 0;
  CharTest test;
};

// How the literal scanner compares code points.
enum class FoldMode : uint8_t { kNone, kUnicode, kAscii };

// Linear-time search for a fixed string (KMP over fold keys), used for literal patterns and
// for the literal prefix of other patterns.
struct LiteralSearcher {
  FoldMode mode = FoldMode::kNone;
  std::u32string keys;            // pattern as keys
  std::vector<uint32_t> fail;     // KMP failure function
  std::vector<char32_t> first;    // code points whose key equals keys[0] (the scan loop)
  std::vector<char32_t> second;   // those whose key equals keys[1], if there are two keys
  char32_t ascii_keys[128] = {};  // key() of ASCII code points, looked up without a call
  void init(const std::u32string& literal, FoldMode mode);
  char32_t key(char32_t c) const {
    if (c < 128) return ascii_keys[c];
    return mode == FoldMode::kUnicode ? re_fold_key(c) : c;
  }
  // First occurrence starting at or after `from`, or npos.
  size_t find(U32View text, size_t from) const;
  // First position at or after `from` holding a code point of `first` followed by one of
  // `second` (both at most four), or npos.
  size_t find_first_two(U32View text, size_t from) const;
  // Whether an occurrence starts at `at`.
  bool matches_at(U32View text, size_t at) const;
};

struct Compiled {
  std::vector<Inst> prog;
  std::vector<std::unique_ptr<CharClass>> classes;
  std::vector<uint32_t> state_base;  // state id of (pc, mask) = state_base[pc] + mask
  uint32_t num_states = 0;
  size_t groups = 0;
  std::map<std::u32string, size_t> group_index;
  uint32_t flags = 0;

  bool literal = false;          // whole pattern is `literal_searcher`'s string
  bool anchored_start = false;   // begins with ^ (no MULTILINE) or \A: only position 0 can match
  bool has_prefix = false;       // every match starts with literal_searcher's string
  LiteralSearcher literal_searcher;
  // Otherwise, when every match holds required_searcher's string after a head of between
  // required_min and required_max characters, only positions that far before an occurrence can
  // start a match: next_candidate finds them by searching for the string. (\s?SECTION\s?\d+\s?
  // started the program at every whitespace of a response, 250K instructions for a 2 KB text.)
  bool has_required = false;
  LiteralSearcher required_searcher;
  size_t required_min = 0, required_max = 0;
  // Otherwise, when the first character of every match passes one of these tests (and no match
  // is empty), positions are skipped until one does.
  std::vector<CharTest> first_tests;
  bool can_skip = false;
  uint64_t first_low[4] = {0, 0, 0, 0};  // code points < 256 passing one of first_tests
  bool line_start = false;  // begins with ^ under MULTILINE: matches start at 0 or after \n
  // search() only: a match must start at a character passing this test (an sre quirk, see
  // Compiler::start_filter).
  bool has_start_filter = false;
  CharTest start_filter;
};

std::unique_ptr<const Compiled> compile_pattern(const ParsedPattern& parsed);

// ---------------------------------------------------------------------------------------------
// Matching.

enum Mode : int { kSearch = 0, kMatchAt = 1, kFullMatch = 2 };

struct Scratch;

// Runs the searches of one call (search/match/fullmatch) or of one scan (the successive
// searches of findall/finditer/split/sub over the same text). Two engines give identical
// results: a memoized backtracker (each (state, position) explored at most once per scan, so a
// whole scan is linear) while states x text length bits fit the budget, and the Pike VM
// (memory independent of the text length) beyond it.
class Matcher {
 public:
  Matcher(const Compiled& c, U32View text, size_t first_start, bool want_groups);
  ~Matcher();
  Matcher(const Matcher&) = delete;
  Matcher& operator=(const Matcher&) = delete;
  // The leftmost-first match at or after `start` (kSearch) or at `start`. must_advance: an
  // empty match at `start` does not count (findall's rule right after an empty match).
  bool exec(size_t start, Mode mode, bool must_advance, RegexMatch* m);

 private:
  enum class Result { kFound, kNotFound, kAborted };
  bool literal_exec(size_t start, Mode mode, RegexMatch* m) const;
  Result backtrack_exec(size_t start, Mode mode, bool must_advance);
  Result backtrack_from(size_t p0, Mode mode, size_t start, bool must_advance);
  bool pike_exec(size_t start, Mode mode, bool must_advance);
  bool visit(size_t q, uint32_t sid) {
    const size_t r = q - base_;
    if (r >= cleared_positions_) clear_positions_upto(r);
    const size_t bit = r * c_.num_states + sid;
    uint64_t& w = visited_[bit >> 6];
    const uint64_t b = uint64_t{1} << (bit & 63);
    if (w & b) return false;
    w |= b;
    return true;
  }
  void clear_positions_upto(size_t r);
  bool first_char_ok(char32_t ch) const;
  size_t next_candidate(size_t from, Mode mode) const;
  size_t next_required_candidate(size_t from) const;
  bool required_near(size_t p) const;
  bool is_candidate(size_t p, Mode mode) const;
  void fill(RegexMatch* m) const;

  const Compiled& c_;
  U32View text_;
  size_t n_;
  size_t ns_;      // capture slots: 2 (span) or 2 + 2 x groups
  size_t base_;    // the backtracker's visited bits start at this position
  bool use_backtracker_;
  size_t cleared_positions_ = 0;  // visited bits are valid (zeroed) for this many positions
  uint64_t* visited_ = nullptr;   // s_->visited's data
  Scratch* s_;
  bool owns_scratch_;
};


}  // namespace regex_detail
}  // namespace hirfast
