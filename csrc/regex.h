// A linear-time regular expression engine with CPython 3.11 `re` semantics for str patterns.
//
// The constraint checkers splice untrusted strings into patterns exactly as the Python reference
// does (`re.search(keyword, text, re.I)`, `re.split(r"\s?" + splitter + r"\s?\d+\s?", text)`,
// ...). This engine gives the same answers as CPython 3.11.7's `re` on every pattern it accepts:
// the parser is a port of re/_parser.py (same errors, same messages and positions), character
// matching follows re/_compiler.py and _sre (case folding quirks included), and both matching
// engines explore paths in the order sre's backtracking does, so the leftmost-first match, its
// groups and the empty-match rules of findall/split/sub are Python's.
//
// Time is O(len(text) * program size) for every accepted pattern: a memoized backtracker that
// enters each (state, position) at most once per findall/split/sub scan (so a whole scan is
// linear), or, when states x text length exceeds its 32 MB bit budget, a Pike VM (each search
// linear; a scan of many matches can then cost O(n) per match for patterns like `a.*z|a`).
// Plain strings are searched with KMP over case-fold keys. Features that cannot be matched in
// linear time are refused with RegexUnsupported (a RegexError): backreferences, lookarounds,
// conditionals, possessive quantifiers and atomic groups around anything but a single-character
// item, \N{NAME} escapes (no name table is shipped), groups nested over 200 deep, and programs
// beyond 20,000 instructions (huge {m,n} counts are expanded).
//
// A compiled Regex is immutable; all matching state lives in the call, so one Regex may be used
// from several threads at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hirfast {

namespace regex_detail {
struct Compiled;
}

// An invalid pattern or replacement template: Python would raise re.error (or, for a few
// patterns, OverflowError/ValueError/IndexError from inside `re`). what() is str() of Python's
// exception ("nothing to repeat at position 0"); pos() is the position in the pattern (or the
// template), or kNoPos where Python reports none.
class RegexError : public std::runtime_error {
 public:
  static constexpr size_t kNoPos = static_cast<size_t>(-1);
  RegexError(const std::string& msg, size_t pos) : std::runtime_error(msg), pos_(pos) {}
  size_t pos() const { return pos_; }

 private:
  size_t pos_;
};

// A pattern Python accepts but this engine refuses because it cannot be matched in linear time
// (or needs data the engine does not ship); the message says which feature.
class RegexUnsupported : public RegexError {
 public:
  using RegexError::RegexError;
};

struct RegexMatch {
  size_t start = 0, end = 0;
  // groups[0] is group 1; (-1, -1) where the group did not participate.
  std::vector<std::pair<ptrdiff_t, ptrdiff_t>> groups;
};

class Regex {
 public:
  enum Flag : uint32_t { kIgnoreCase = 2, kMultiline = 8, kDotAll = 16, kVerbose = 64, kAscii = 256 };
  // re.UNICODE (32) is accepted and is the default; re.LOCALE (4) is an error for str patterns.

  static std::shared_ptr<const Regex> compile(std::u32string_view pattern, uint32_t flags = 0);
  ~Regex();

  size_t group_count() const;
  // pattern.search(text, pos) / pattern.match(text, pos) / pattern.fullmatch(text).
  bool search(std::u32string_view text, size_t pos, RegexMatch* m) const;
  bool match(std::u32string_view text, size_t pos, RegexMatch* m) const;
  bool fullmatch(std::u32string_view text, RegexMatch* m) const;
  // len(pattern.findall(text))
  size_t count(std::u32string_view text) const;
  std::vector<RegexMatch> finditer(std::u32string_view text) const;
  // pattern.split(text, maxsplit): pieces and, after each separator, its groups (nullopt = None).
  std::vector<std::optional<std::u32string>> split(std::u32string_view text, size_t maxsplit = 0) const;
  // pattern.sub(repl, text, count) with a template repl (\1, \g<1>, \g<name>, \n, ...); an invalid
  // template throws RegexError, as Python does before matching anything.
  std::u32string sub(std::u32string_view text, std::u32string_view repl, size_t count = 0) const;
  // True when the pattern is a plain string (escaped metacharacters allowed, no groups): a
  // linear literal scan (KMP over case-fold keys under IGNORECASE) replaces the VM.
  bool is_literal() const;

  explicit Regex(std::unique_ptr<const regex_detail::Compiled> compiled);

 private:
  template <typename F>
  void scan(std::u32string_view text, size_t limit, bool want_groups, F&& on_match) const;

  std::unique_ptr<const regex_detail::Compiled> c_;
};

// Thread-safe bounded cache keyed by (pattern, flags); compile errors are not cached.
std::shared_ptr<const Regex> cached_regex(std::u32string_view pattern, uint32_t flags);

// Matching runs a memoized backtracker while states x (text length + 1) is at most this many
// bits (default 2**28) and the Pike VM beyond; both give the same results. Tests set 0 to run
// the Pike VM everywhere. Returns the previous value.
uint64_t regex_set_backtrack_budget(uint64_t bits);

}  // namespace hirfast
