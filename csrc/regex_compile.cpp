// Parse tree -> Pike VM program, following re/_compiler.py for what each node matches.
//
// Repeats. sre runs a repeat of a sub-pattern through REPEAT/MAX_UNTIL (MIN_UNTIL when lazy):
// the first `min` iterations are mandatory; each later one is tried only while the previous
// *optional* iteration consumed something ("zero-width match protection": an optional iteration
// that matched the empty string ends the loop, and the tail is tried with its captures). The
// program unrolls the counts and reproduces that rule with a per-thread flag: kIterStart sets
// the flag of the loop when an optional iteration starts, consuming a character clears all
// flags, and kCheckEmpty after the body leaves the loop when the flag is still set. Flags are
// part of the VM state (state = pc + flags of the enclosing loops whose body can match empty),
// so threads are merged only when their futures are the same and the first-match priority of
// backtracking is preserved.
#include <algorithm>

#if defined(__SSE2__)
#include <emmintrin.h>
#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#endif
#endif

#include "regex_internal.h"

namespace hirfast {
namespace regex_detail {
namespace {

// Program size cap: {m,n} counts are unrolled, and matching time and memory grow with the
// program. 20,000 instructions (under 1 MB) leave room for any realistic keyword or splitter
// pattern; plain strings of any length need no program.
constexpr size_t kMaxProgram = 20000;
// Nested loops whose bodies can match empty multiply the states by 2 per level.
constexpr int kMaxNullableDepth = 10;
constexpr uint32_t kMaxStates = 100000;
constexpr uint64_t kMaxCaptureCells = uint64_t{1} << 22;  // slots x states held by one VM queue

uint32_t combine_flags(uint32_t flags, uint32_t add, uint32_t del) {
  constexpr uint32_t kTypeFlags = kFlagAscii | kFlagLocale | kFlagUnicode;
  if (add & kTypeFlags) flags &= ~kTypeFlags;
  return (flags | add) & ~del;
}

// Lowercase code points that sre treats as equal under IGNORECASE (_casefix._EXTRA_CASES):
// the groups of code points with sre_lower(c) == c sharing a fold key, groups of two or more.
const std::vector<std::vector<char32_t>>& extra_case_groups() {
  static const std::vector<std::vector<char32_t>> groups = [] {
    std::vector<std::vector<char32_t>> out;
    std::vector<char32_t> orbit;
    for (char32_t c = 0; c < 0x10000; ++c) {
      if (re_fold_key(c) != c) continue;  // visit each orbit once, from its key
      re_fold_orbit(c, &orbit);
      std::vector<char32_t> lowers;
      for (char32_t x : orbit)
        if (sre_lower(x) == x) lowers.push_back(x);
      if (lowers.size() >= 2) out.push_back(lowers);
    }
    return out;
  }();
  return groups;
}

[[noreturn]] void unsupported(const std::string& msg) { throw RegexUnsupported(msg, RegexError::kNoPos); }

const char* repeat_name(NodeOp op) {
  switch (op) {
    case NodeOp::kMinRepeat: return "MIN_REPEAT";
    case NodeOp::kPossessiveRepeat: return "POSSESSIVE_REPEAT";
    default: return "MAX_REPEAT";
  }
}

// The errors re/_compiler.py raises, in its traversal order (before this engine refuses
// anything, so a pattern Python rejects is rejected with Python's message).
void python_compile_errors(const Seq& seq, uint32_t flags, const std::vector<Width>& widths) {
  for (const Node& n : seq) {
    switch (n.op) {
      case NodeOp::kMaxRepeat:
      case NodeOp::kMinRepeat:
      case NodeOp::kPossessiveRepeat:
        if (flags & kFlagTemplate)
          throw RegexError(std::string("internal: unsupported template operator ") + repeat_name(n.op),
                           RegexError::kNoPos);
        python_compile_errors(n.subs[0], flags, widths);
        break;
      case NodeOp::kSubpattern:
        python_compile_errors(n.subs[0], combine_flags(flags, n.add_flags, n.del_flags), widths);
        break;
      case NodeOp::kAtomicGroup: python_compile_errors(n.subs[0], flags, widths); break;
      case NodeOp::kAssert:
      case NodeOp::kAssertNot:
        if (n.dir < 0) {
          Width w = seq_width(n.subs[0], widths);
          if (w.lo > 0xFFFFFFFFu) throw RegexError("looks too much behind", RegexError::kNoPos);
          if (w.lo != w.hi) throw RegexError("look-behind requires fixed-width pattern", RegexError::kNoPos);
        }
        python_compile_errors(n.subs[0], flags, widths);
        break;
      case NodeOp::kBranch:
        for (const Seq& alt : n.subs) python_compile_errors(alt, flags, widths);
        break;
      case NodeOp::kGroupRefExists:
        for (const Seq& s : n.subs) python_compile_errors(s, flags, widths);
        break;
      default: break;
    }
  }
}

class Compiler {
 public:
  Compiler(const ParsedPattern& parsed, const std::vector<Width>& widths, Compiled* out)
      : parsed_(parsed), widths_(widths), out_(out) {}

  void run() {
    compile_seq(parsed_.seq, parsed_.flags);
    emit(Inst{Op::kMatch});
    start_filter();
  }

 private:
  size_t pc() const { return out_->prog.size(); }

  [[noreturn]] static void too_large() {
    unsupported("pattern too large: its program would exceed " + std::to_string(kMaxProgram) +
                " instructions (repeat counts {m,n} are expanded)");
  }
  void check_size(uint64_t extra) {
    if (pc() + extra > kMaxProgram) too_large();
  }

  size_t emit(Inst inst) {
    check_size(1);
    inst.depth = static_cast<uint8_t>(depth_);
    out_->prog.push_back(inst);
    return pc() - 1;
  }

  size_t emit_consume(const CharTest& t) {
    Inst i{Op::kConsume};
    i.test = t;
    return emit(i);
  }

  // Copies prog[s, e) to the end, relocating jumps inside the block.
  void replicate(size_t s, size_t e) {
    check_size(e - s);
    const size_t shift = pc() - s;
    for (size_t k = s; k < e; ++k) {
      Inst i = out_->prog[k];
      if (i.op == Op::kJmp || i.op == Op::kSplit || i.op == Op::kCheckEmpty || i.op == Op::kRepeatGreedy) {
        i.x += static_cast<uint32_t>(shift);
        if (i.op == Op::kSplit) i.y += static_cast<uint32_t>(shift);
      }
      out_->prog.push_back(i);
    }
  }

  CharTest literal_test(char32_t c, bool negate, uint32_t flags) {
    CharTest t;
    t.negate = negate;
    const bool unicode = flags & kFlagUnicode;
    if (!(flags & kFlagIgnoreCase) || !(unicode ? sre_iscased(c) : ascii_iscased(c))) {
      t.kind = CharTest::kExact;
      t.c = c;
    } else if (unicode) {
      // LITERAL_UNI_IGNORE / IN_UNI_IGNORE with _EXTRA_CASES: equal fold keys.
      t.kind = CharTest::kFold;
      t.c = re_fold_key(c);
    } else {
      t.kind = CharTest::kAsciiFold;
      t.c = ascii_lower(c);
    }
    return t;
  }

  // _optimize_charset + IN / IN_IGNORE / IN_UNI_IGNORE.
  CharTest class_test(const std::vector<SetItem>& items, uint32_t flags) {
    auto cls = std::make_unique<CharClass>();
    const bool ignore = flags & kFlagIgnoreCase;
    const bool unicode = flags & kFlagUnicode;
    cls->ascii_categories = !unicode;
    cls->ascii_lowering = !unicode;
    auto fixup = [&](char32_t c) { return unicode ? sre_lower(c) : ascii_lower(c); };
    auto iscased = [&](char32_t c) { return unicode ? sre_iscased(c) : ascii_iscased(c); };
    bool hascased = false;
    std::vector<uint64_t> bmp;   // members below 0x10000 after fixup (IGNORECASE only)
    std::vector<uint64_t> done;  // range members below 0x10000 already added (IGNORECASE only)
    if (ignore) {
      bmp.assign(0x10000 / 64, 0);
      done.assign(0x10000 / 64, 0);
    }
    auto set_bit = [&](char32_t c) { bmp[c >> 6] |= uint64_t{1} << (c & 63); };
    std::vector<std::pair<char32_t, char32_t>> ranges;
    for (const SetItem& it : items) {
      switch (it.op) {
        case SetOp::kNegate: cls->negate = true; break;
        case SetOp::kCategory: cls->categories |= static_cast<uint8_t>(1u << it.lo); break;
        case SetOp::kLiteral:
          if (!ignore) {
            ranges.emplace_back(it.lo, it.lo);
          } else if (fixup(it.lo) >= 0x10000) {
            // charmap index error: kept as a LITERAL compared with the lowered character
            hascased = true;
            ranges.emplace_back(it.lo, it.lo);
          } else {
            set_bit(fixup(it.lo));
            if (iscased(it.lo)) hascased = true;
          }
          break;
        case SetOp::kRange:
          if (!ignore) {
            ranges.emplace_back(it.lo, it.hi);
            break;
          }
          for (char32_t c = it.lo; c <= std::min<char32_t>(it.hi, 0xFFFF); ++c) {
            // each code point once per set, so overlapping ranges cost at most 65,536 steps
            uint64_t& w = done[c >> 6];
            const uint64_t b = uint64_t{1} << (c & 63);
            if (w & b) continue;
            w |= b;
            set_bit(fixup(c));
            if (!hascased && iscased(c)) hascased = true;
          }
          if (it.hi >= 0x10000) {
            hascased = true;
            cls->uni_ignore_ranges.emplace_back(it.lo, it.hi);
          }
          break;
      }
    }
    if (ignore) {
      if (unicode) {
        for (const auto& group : extra_case_groups()) {
          bool any = false;
          for (char32_t c : group) any = any || ((bmp[c >> 6] >> (c & 63)) & 1);
          if (any)
            for (char32_t c : group) set_bit(c);
        }
      }
      for (size_t w = 0; w < bmp.size(); ++w) {
        if (!bmp[w]) continue;
        for (int b = 0; b < 64; ++b) {
          if (!((bmp[w] >> b) & 1)) continue;
          const char32_t c = static_cast<char32_t>(w * 64 + b);
          if (!ranges.empty() && ranges.back().second + 1 == c) {
            ranges.back().second = c;
          } else {
            ranges.emplace_back(c, c);
          }
        }
      }
      cls->lower_first = hascased;
    }
    std::sort(ranges.begin(), ranges.end());
    for (const auto& r : ranges) {
      if (!cls->ranges.empty() && r.first <= cls->ranges.back().second + 1) {
        cls->ranges.back().second = std::max(cls->ranges.back().second, r.second);
      } else {
        cls->ranges.push_back(r);
      }
    }
    for (char32_t c = 0; c < 256; ++c)
      if (cls->slow_test(c)) cls->low_bits[c >> 6] |= uint64_t{1} << (c & 63);
    CharTest t;
    t.kind = CharTest::kClass;
    t.cls = cls.get();
    out_->classes.push_back(std::move(cls));
    return t;
  }

  CharTest unit_test(const Node& n, uint32_t flags) {
    switch (n.op) {
      case NodeOp::kLiteral: return literal_test(n.c, false, flags);
      case NodeOp::kNotLiteral: return literal_test(n.c, true, flags);
      case NodeOp::kAny: {
        CharTest t;
        t.kind = (flags & kFlagDotAll) ? CharTest::kAnyAll : CharTest::kAnyButNewline;
        return t;
      }
      default: return class_test(n.set, flags);
    }
  }

  // _compiler._simple: one character-wide item, possibly inside (?flags:...) without a group.
  static bool is_simple(const Seq& item) {
    if (item.size() != 1) return false;
    const Node& n = item[0];
    if (n.op == NodeOp::kSubpattern) return n.group == 0 && is_simple(n.subs[0]);
    return n.op == NodeOp::kLiteral || n.op == NodeOp::kNotLiteral || n.op == NodeOp::kAny || n.op == NodeOp::kIn;
  }

  // The test of a simple item (is_simple) under its flags.
  CharTest simple_test(const Seq& item, uint32_t flags) {
    const Node& n = item[0];
    if (n.op == NodeOp::kSubpattern) return simple_test(n.subs[0], combine_flags(flags, n.add_flags, n.del_flags));
    return unit_test(n, flags);
  }

  void emit_repeat_greedy(const CharTest& t) {
    Inst r{Op::kRepeatGreedy};
    r.test = t;
    r.x = static_cast<uint32_t>(pc() + 1);
    emit(r);
  }

  // x{min,max}+ on one character: as many as possible, never giving any back. The greedy loop
  // whose exit requires the next character to fail the test (or the count to reach max) has
  // exactly that single path.
  void emit_possessive(const CharTest& t, uint64_t min, uint64_t max) {
    check_size(min + (max == kMaxRepeat ? 3 : 2 * (max - min) + 2));
    for (uint64_t k = 0; k < min; ++k) emit_consume(t);
    if (max == min) return;
    std::vector<size_t> to_guard;
    size_t end_jump = SIZE_MAX;
    if (max == kMaxRepeat) {
      emit_repeat_greedy(t);
    } else {
      for (uint64_t k = min; k < max; ++k) {
        size_t split = emit(Inst{Op::kSplit});
        out_->prog[split].x = static_cast<uint32_t>(pc());
        emit_consume(t);
        to_guard.push_back(split);
      }
      end_jump = emit(Inst{Op::kJmp});
    }
    Inst guard{Op::kNotNext};
    guard.test = t;
    size_t g = emit(guard);
    for (size_t s : to_guard) out_->prog[s].y = static_cast<uint32_t>(g);
    if (end_jump != SIZE_MAX) out_->prog[end_jump].x = static_cast<uint32_t>(pc());
  }

  void compile_repeat(const Node& n, uint32_t flags) {
    const Seq& item = n.subs[0];
    if (n.op == NodeOp::kPossessiveRepeat) {
      if (!is_simple(item))
        unsupported("possessive quantifiers (*+ ++ ?+ {m,n}+) are supported only on a single character or "
                    "character set; on a longer sub-pattern they cannot be matched in linear time here");
      emit_possessive(simple_test(item, flags), n.min, n.max);
      return;
    }
    const bool greedy = n.op == NodeOp::kMaxRepeat;
    // An iteration that consumes nothing is possible only when the body's minimum width is 0.
    const bool nullable = seq_width(item, widths_).lo == 0;
    const uint64_t optional = n.max == kMaxRepeat ? 1 : n.max - n.min;
    const uint64_t copies = n.min + optional;
    if (copies == 0) return;
    check_size(copies);

    // Mandatory iterations: the body, copied.
    size_t body_start = pc();
    if (n.min > 0) {
      compile_seq(item, flags);
      const size_t body_end = pc();
      const uint64_t body_size = std::max<size_t>(body_end - body_start, 1);
      check_size(body_size * (copies - 1) + 3 * optional);
      for (uint64_t k = 1; k < n.min; ++k) replicate(body_start, body_end);
    }
    if (optional == 0 || n.max == n.min) return;
    if (greedy && n.max == kMaxRepeat && is_simple(item)) {
      emit_repeat_greedy(simple_test(item, flags));
      return;
    }

    if (nullable && depth_ >= kMaxNullableDepth)
      unsupported("repeats of sub-patterns that can match the empty string are nested more than " +
                  std::to_string(kMaxNullableDepth) + " deep");
    const uint8_t bit = static_cast<uint8_t>(depth_);
    std::vector<size_t> to_exit_split, to_exit_check;
    // One optional iteration: Split, [IterStart], body, [CheckEmpty].
    auto optional_iteration = [&]() {
      size_t split = emit(Inst{Op::kSplit});
      if (nullable) {
        Inst s{Op::kIterStart};
        s.bit = bit;
        emit(s);
        ++depth_;
      }
      compile_seq(item, flags);
      if (nullable) {
        Inst c{Op::kCheckEmpty};
        c.bit = bit;
        to_exit_check.push_back(emit(c));
        --depth_;
      }
      return split;
    };
    size_t first_split = optional_iteration();
    const size_t block_end = pc();
    if (n.max == kMaxRepeat) {
      Inst back{Op::kJmp};
      back.x = static_cast<uint32_t>(first_split);
      emit(back);
      to_exit_split.push_back(first_split);
    } else {
      to_exit_split.push_back(first_split);
      check_size(uint64_t{block_end - first_split} * (optional - 1));
      for (uint64_t k = 1; k < optional; ++k) {
        size_t start = pc();
        replicate(first_split, block_end);
        to_exit_split.push_back(start);
        if (nullable) to_exit_check.push_back(pc() - 1);
      }
    }
    const uint32_t exit = static_cast<uint32_t>(pc());
    for (size_t s : to_exit_split) {
      Inst& i = out_->prog[s];
      const uint32_t body = static_cast<uint32_t>(s + 1);
      i.x = greedy ? body : exit;
      i.y = greedy ? exit : body;
    }
    for (size_t c : to_exit_check) out_->prog[c].x = exit;
  }

  // A node with a single way to match (no choice to backtrack into).
  static bool deterministic(const Node& n) {
    switch (n.op) {
      case NodeOp::kLiteral:
      case NodeOp::kNotLiteral:
      case NodeOp::kAny:
      case NodeOp::kIn:
      case NodeOp::kAt: return true;
      case NodeOp::kSubpattern:
        for (const Node& c : n.subs[0])
          if (!deterministic(c)) return false;
        return true;
      case NodeOp::kPossessiveRepeat: return is_simple(n.subs[0]);
      case NodeOp::kMaxRepeat:
      case NodeOp::kMinRepeat: return n.min == n.max && is_simple(n.subs[0]);
      case NodeOp::kAtomicGroup: return atomic_supported(n.subs[0]);
      default: return false;
    }
  }

  static bool atomic_supported(const Seq& seq) {
    for (size_t i = 0; i < seq.size(); ++i) {
      if (deterministic(seq[i])) continue;
      const Node& n = seq[i];
      const bool simple_repeat = (n.op == NodeOp::kMaxRepeat || n.op == NodeOp::kMinRepeat) && is_simple(n.subs[0]);
      if (i + 1 == seq.size() && simple_repeat) continue;
      return false;
    }
    return true;
  }

  // (?>...): the first way its content matches, committed. Supported when the content has a
  // single way to match, except that its last item may be a greedy repeat of one character (it
  // then takes as many as it can: a possessive repeat) or a lazy one (it takes `min`).
  void compile_atomic(const Seq& seq, uint32_t flags) {
    if (!atomic_supported(seq))
      unsupported("atomic groups (?>...) are supported only around sub-patterns that match in one way "
                  "(ending at most in a repeat of one character); this one cannot be matched in linear time here");
    for (size_t i = 0; i < seq.size(); ++i) {
      const Node& n = seq[i];
      if (i + 1 == seq.size() && !deterministic(n)) {
        const CharTest t = simple_test(n.subs[0], flags);
        if (n.op == NodeOp::kMaxRepeat) {
          emit_possessive(t, n.min, n.max);
        } else {
          emit_possessive(t, n.min, n.min);
        }
      } else {
        compile_node(n, flags);
      }
    }
  }

  void compile_seq(const Seq& seq, uint32_t flags) {
    for (const Node& n : seq) compile_node(n, flags);
  }

  void compile_node(const Node& n, uint32_t flags) {
    switch (n.op) {
      case NodeOp::kLiteral:
      case NodeOp::kNotLiteral:
      case NodeOp::kAny:
      case NodeOp::kIn: emit_consume(unit_test(n, flags)); break;
      case NodeOp::kBranch: {
        std::vector<size_t> to_end;
        for (size_t k = 0; k < n.subs.size(); ++k) {
          const bool last = k + 1 == n.subs.size();
          size_t split = 0;
          if (!last) {
            split = emit(Inst{Op::kSplit});
            out_->prog[split].x = static_cast<uint32_t>(pc());
          }
          compile_seq(n.subs[k], flags);
          if (!last) {
            to_end.push_back(emit(Inst{Op::kJmp}));
            out_->prog[split].y = static_cast<uint32_t>(pc());
          }
        }
        for (size_t j : to_end) out_->prog[j].x = static_cast<uint32_t>(pc());
        break;
      }
      case NodeOp::kSubpattern: {
        const uint32_t f = combine_flags(flags, n.add_flags, n.del_flags);
        if (n.group) {
          Inst s{Op::kSave};
          s.x = static_cast<uint32_t>(2 * n.group);
          emit(s);
        }
        compile_seq(n.subs[0], f);
        if (n.group) {
          Inst s{Op::kSave};
          s.x = static_cast<uint32_t>(2 * n.group + 1);
          emit(s);
        }
        break;
      }
      case NodeOp::kMaxRepeat:
      case NodeOp::kMinRepeat:
      case NodeOp::kPossessiveRepeat: compile_repeat(n, flags); break;
      case NodeOp::kAt: {
        uint8_t code = static_cast<uint8_t>(n.c);
        if (flags & kFlagMultiline) {
          if (code == kAtBeginning) code = kAtBeginningLine;
          if (code == kAtEnd) code = kAtEndLine;
        }
        if (flags & kFlagUnicode) {
          if (code == kAtBoundary) code = kAtUniBoundary;
          if (code == kAtNonBoundary) code = kAtUniNonBoundary;
        }
        Inst a{Op::kAssert};
        a.at = code;
        emit(a);
        break;
      }
      case NodeOp::kAtomicGroup: compile_atomic(n.subs[0], flags); break;
      case NodeOp::kGroupRef: unsupported("backreferences cannot be matched in linear time"); break;
      case NodeOp::kAssert:
      case NodeOp::kAssertNot:
        unsupported(std::string(n.dir > 0 ? "lookahead" : "lookbehind") +
                    " assertions cannot be matched in linear time by this engine");
        break;
      case NodeOp::kGroupRefExists:
        unsupported("conditional groups (?(id)yes|no) depend on a backreference and cannot be matched in linear time");
        break;
    }
  }

  // sre's search skips start positions whose character is not in the "charset prefix" of the
  // pattern's INFO block (_compiler._compile_info). That set is compiled with the pattern's
  // global flags even when it comes from inside a leading (?a:...) or (?u:...), so a leading
  // scoped ASCII/UNICODE switch around \w \d \s gives search() a different first-character
  // filter than match(): re.search(r"(?a:\W)", "\u00b5") is None though re.match finds it.
  // The filter is kept only in that case; everywhere else it is implied by the pattern. (When
  // the leading chain of groups ends in a set, sre finds no literal prefix, which would have
  // replaced the charset.)
  void start_filter() {
    const uint32_t outer = parsed_.flags;
    if (seq_width(parsed_.seq, widths_).lo == 0) return;
    const Seq* seq = &parsed_.seq;
    uint32_t f = outer;
    while (!seq->empty() && (*seq)[0].op == NodeOp::kSubpattern) {
      f = combine_flags(f, (*seq)[0].add_flags, (*seq)[0].del_flags);
      seq = &(*seq)[0].subs[0];
    }
    if (seq->empty() || (*seq)[0].op != NodeOp::kIn) return;
    if ((f & kFlagUnicode) == (outer & kFlagUnicode)) return;
    const std::vector<SetItem>& items = (*seq)[0].set;
    bool has_category = false;
    for (const SetItem& it : items) {
      has_category = has_category || it.op == SetOp::kCategory;
      if ((f & kFlagIgnoreCase) && it.op == SetOp::kLiteral &&
          ((f & kFlagUnicode) ? sre_iscased(it.lo) : ascii_iscased(it.lo)))
        return;
      if ((f & kFlagIgnoreCase) && it.op == SetOp::kRange) {
        if (it.hi > 0xFFFF) return;
        for (char32_t c = it.lo; c <= it.hi; ++c)
          if ((f & kFlagUnicode) ? sre_iscased(c) : ascii_iscased(c)) return;
      }
    }
    if (!has_category) return;
    out_->start_filter = class_test(items, outer & ~kFlagIgnoreCase);
    out_->has_start_filter = true;
  }

  const ParsedPattern& parsed_;
  const std::vector<Width>& widths_;
  Compiled* out_;
  int depth_ = 0;
};

// Literal prefix of every match: leading zero-width assertions skipped, then plain literals.
std::u32string literal_prefix(const Seq& seq, bool* pure) {
  std::u32string prefix;
  size_t i = 0;
  while (i < seq.size() && seq[i].op == NodeOp::kAt) ++i;
  const size_t first_literal = i;
  while (i < seq.size() && seq[i].op == NodeOp::kLiteral) prefix += seq[i++].c;
  *pure = first_literal == 0 && i == seq.size() && !prefix.empty();
  return prefix;
}

// The first run of top-level literals whose head (the items before it) matches a bounded number
// of characters, at most kMaxRequiredHead: every match holds the run at that distance from its
// start. Returns false if there is none.
constexpr unsigned kMaxRequiredHead = 64;
bool required_literal(const ParsedPattern& parsed, std::u32string* literal, size_t* head_min, size_t* head_max) {
  const Seq& seq = parsed.seq;
  for (size_t i = 1; i < seq.size(); ++i) {
    if (seq[i].op != NodeOp::kLiteral) continue;
    const Width head = seq_width(Seq(seq.begin(), seq.begin() + static_cast<ptrdiff_t>(i)), parsed.group_widths);
    if (head.hi > kMaxRequiredHead) return false;  // only grows further on
    for (size_t k = i; k < seq.size() && seq[k].op == NodeOp::kLiteral; ++k) *literal += seq[k].c;
    *head_min = static_cast<size_t>(head.lo);
    *head_max = static_cast<size_t>(head.hi);
    return true;
  }
  return false;
}

// Consuming tests reachable from the start without consuming (assertions passed through);
// false when a match can be empty or the set is not worth scanning for.
bool first_tests(const Compiled& c, std::vector<CharTest>* out) {
  std::vector<uint8_t> seen(c.prog.size(), 0);
  std::vector<uint32_t> stack{0};
  while (!stack.empty()) {
    uint32_t pc = stack.back();
    stack.pop_back();
    if (seen[pc]) continue;
    seen[pc] = 1;
    const Inst& i = c.prog[pc];
    switch (i.op) {
      case Op::kMatch: return false;
      case Op::kConsume:
        if (i.test.kind == CharTest::kAnyAll || i.test.kind == CharTest::kAnyButNewline) return false;
        if (out->size() >= 8) return false;
        out->push_back(i.test);
        break;
      case Op::kJmp: stack.push_back(i.x); break;
      case Op::kSplit:
        stack.push_back(i.y);
        stack.push_back(i.x);
        break;
      case Op::kCheckEmpty:
        stack.push_back(i.x);
        stack.push_back(pc + 1);
        break;
      case Op::kRepeatGreedy:
        if (i.test.kind == CharTest::kAnyAll || i.test.kind == CharTest::kAnyButNewline) return false;
        if (out->size() >= 8) return false;
        out->push_back(i.test);
        stack.push_back(i.x);
        break;
      default: stack.push_back(pc + 1); break;
    }
  }
  return !out->empty();
}

}  // namespace

char32_t sre_upper(char32_t c) {
  std::u32string up;
  append_upper(c, &up);
  return up.empty() ? c : up[0];
}

bool sre_iscased(char32_t c) { return sre_lower(c) != c || sre_upper(c) != c; }

bool category_test(uint8_t cat, bool ascii, char32_t c) {
  switch (cat) {
    case kCatDigit: return ascii ? (c >= '0' && c <= '9') : re_digit(c);
    case kCatNotDigit: return !category_test(kCatDigit, ascii, c);
    case kCatSpace: return ascii ? (c == ' ' || (c >= 9 && c <= 13)) : re_space(c);
    case kCatNotSpace: return !category_test(kCatSpace, ascii, c);
    case kCatWord: return ascii ? (c < 128 && (c == '_' || py_isalnum(c))) : re_word(c);
    default: return !category_test(kCatWord, ascii, c);
  }
}

bool CharClass::slow_test(char32_t ch) const {
  char32_t x = ch;
  if (lower_first) x = ascii_lowering ? ascii_lower(ch) : sre_lower(ch);
  bool r = false;
  auto it = std::upper_bound(ranges.begin(), ranges.end(), std::make_pair(x, static_cast<char32_t>(0x7FFFFFFF)));
  if (it != ranges.begin() && std::prev(it)->second >= x) r = true;
  for (uint8_t cat = 0; !r && cat < 6; ++cat)
    if ((categories >> cat) & 1) r = category_test(cat, ascii_categories, x);
  for (size_t k = 0; !r && k < uni_ignore_ranges.size(); ++k) {
    // RANGE_UNI_IGNORE: the lowered character, or its uppercase, in the range
    const auto& rg = uni_ignore_ranges[k];
    if (rg.first <= x && x <= rg.second) r = true;
    char32_t up = sre_upper(x);
    if (rg.first <= up && up <= rg.second) r = true;
  }
  return r != negate;
}

void LiteralSearcher::init(const std::u32string& literal, FoldMode m) {
  mode = m;
  for (char32_t c = 0; c < 128; ++c) {
    switch (mode) {
      case FoldMode::kUnicode: ascii_keys[c] = re_fold_key(c); break;
      case FoldMode::kAscii: ascii_keys[c] = ascii_lower(c); break;
      default: ascii_keys[c] = c; break;
    }
  }
  keys.clear();
  for (char32_t c : literal) keys.push_back(key(c));
  fail.assign(keys.size(), 0);
  for (size_t i = 1, k = 0; i < keys.size(); ++i) {
    while (k > 0 && keys[i] != keys[k]) k = fail[k - 1];
    if (keys[i] == keys[k]) ++k;
    fail[i] = static_cast<uint32_t>(k);
  }
  first.clear();
  second.clear();
  if (keys.empty()) return;
  const auto orbit = [&](size_t k, std::vector<char32_t>* out) {
    switch (mode) {
      case FoldMode::kUnicode: re_fold_orbit(literal[k], out); break;
      case FoldMode::kAscii:
        out->push_back(keys[k]);
        if (keys[k] >= 'a' && keys[k] <= 'z') out->push_back(keys[k] - 32);
        break;
      default: out->push_back(keys[k]); break;
    }
  };
  orbit(0, &first);
  if (keys.size() >= 2) orbit(1, &second);
}

namespace {
// find_first_two one position at a time, from i: f and s hold the four candidates of each.
inline size_t first_two_scalar(const char32_t* data, size_t n, size_t i, const char32_t* f, const char32_t* s) {
  for (; i + 1 < n; ++i) {
    const char32_t x = data[i], y = data[i + 1];
    if ((x == f[0] || x == f[1] || x == f[2] || x == f[3]) && (y == s[0] || y == s[1] || y == s[2] || y == s[3]))
      return i;
  }
  return U32View::npos;
}

#if defined(HIRFAST_AVX2_SCAN)
// find_first_two eight positions a compare, on CPUs with AVX2 (the module is built for any
// x86-64; cpu_has_avx2 picks this at run time): a batch of the IFEval files spent 4% of its time
// in the SSE2 loop (four a compare), and its keyword checks take 0.32 ms instead of 0.39 this
// way. (A wider find_any was slower, 0.26 -> 0.29 ms for its scanners: they stop at frequent
// characters, and the call per stop cost more than the wider compares saved.)
// No lambdas: they would not inherit the target attribute.
__attribute__((target("avx2"))) size_t first_two_avx2(const char32_t* data, size_t n, size_t i, const char32_t* f,
                                                      const char32_t* s) {
  const __m256i vf0 = _mm256_set1_epi32(static_cast<int>(f[0])), vf1 = _mm256_set1_epi32(static_cast<int>(f[1]));
  const __m256i vf2 = _mm256_set1_epi32(static_cast<int>(f[2])), vf3 = _mm256_set1_epi32(static_cast<int>(f[3]));
  const __m256i vs0 = _mm256_set1_epi32(static_cast<int>(s[0])), vs1 = _mm256_set1_epi32(static_cast<int>(s[1]));
  const __m256i vs2 = _mm256_set1_epi32(static_cast<int>(s[2])), vs3 = _mm256_set1_epi32(static_cast<int>(s[3]));
  for (; i + 9 <= n; i += 8) {
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(data + i));
    const __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(data + i + 1));
    const __m256i fx = _mm256_or_si256(_mm256_or_si256(_mm256_cmpeq_epi32(x, vf0), _mm256_cmpeq_epi32(x, vf1)),
                                       _mm256_or_si256(_mm256_cmpeq_epi32(x, vf2), _mm256_cmpeq_epi32(x, vf3)));
    const __m256i sy = _mm256_or_si256(_mm256_or_si256(_mm256_cmpeq_epi32(y, vs0), _mm256_cmpeq_epi32(y, vs1)),
                                       _mm256_or_si256(_mm256_cmpeq_epi32(y, vs2), _mm256_cmpeq_epi32(y, vs3)));
    const int hits = _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_and_si256(fx, sy)));
    if (hits) return i + static_cast<size_t>(__builtin_ctz(static_cast<unsigned>(hits)));
  }
  return first_two_scalar(data, n, i, f, s);
}
#endif
}  // namespace

size_t LiteralSearcher::find_first_two(U32View t, size_t from) const {
  const size_t n = t.size();
  const char32_t* data = t.data();
  const auto at = [](const std::vector<char32_t>& v, size_t k) { return v[std::min(k, v.size() - 1)]; };
  const char32_t f[4] = {at(first, 0), at(first, 1), at(first, 2), at(first, 3)};
  const char32_t s[4] = {at(second, 0), at(second, 1), at(second, 2), at(second, 3)};
  size_t i = from;
#if defined(HIRFAST_AVX2_SCAN)
  if (cpu_has_avx2) return first_two_avx2(data, n, i, f, s);
#endif
#if defined(__SSE2__)
  const auto splat = [](char32_t c) { return _mm_set1_epi32(static_cast<int>(c)); };
  const __m128i vf0 = splat(f[0]), vf1 = splat(f[1]), vf2 = splat(f[2]), vf3 = splat(f[3]);
  const __m128i vs0 = splat(s[0]), vs1 = splat(s[1]), vs2 = splat(s[2]), vs3 = splat(s[3]);
  const auto any_of = [](__m128i x, __m128i a, __m128i b, __m128i c, __m128i d) {
    return _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi32(x, a), _mm_cmpeq_epi32(x, b)),
                        _mm_or_si128(_mm_cmpeq_epi32(x, c), _mm_cmpeq_epi32(x, d)));
  };
  const auto hits = [&](const char32_t* p) {
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i y = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 1));
    const __m128i both = _mm_and_si128(any_of(x, vf0, vf1, vf2, vf3), any_of(y, vs0, vs1, vs2, vs3));
    return _mm_movemask_ps(_mm_castsi128_ps(both));
  };
  for (; i + 9 <= n; i += 8) {
    const int lo = hits(data + i), hi = hits(data + i + 4);
    if (lo | hi) return i + static_cast<size_t>(__builtin_ctz(static_cast<unsigned>(lo | hi << 4)));
  }
#endif
  return first_two_scalar(data, n, i, f, s);
}

bool LiteralSearcher::matches_at(U32View t, size_t at) const {
  if (at > t.size() || t.size() - at < keys.size()) return false;
  for (size_t k = 0; k < keys.size(); ++k)
    if (key(t[at + k]) != keys[k]) return false;
  return true;
}

size_t LiteralSearcher::find(U32View t, size_t from) const {
  const size_t n = t.size(), m = keys.size();
  if (m == 0) return from <= n ? from : U32View::npos;
  const char32_t* data = t.data();
  size_t j = 0;
  for (size_t i = from; i < n; ++i) {
    if (j == 0) {
      // Scan for a code point whose key is keys[0] without computing keys: with two keys or
      // more, for one followed by a code point whose key is keys[1] (no occurrence starts
      // elsewhere). A keyword's first letter comes every ten characters or so in English text,
      // and stopping at each cost a restart of the scan; the first two letters together are
      // rarer. KMP's state after the two is 2, as from any earlier state (an occurrence
      // starting earlier would have been found first).
      const size_t nf = first.size();
      if (m >= 2 && nf <= 4 && second.size() <= 4) {
        i = find_first_two(t, i);
        if (i == U32View::npos) return U32View::npos;
        if (m == 2) return i;
        ++i;
        j = 2;
        continue;
      }
      if (nf <= 4) {  // e.g. k, K and the Kelvin sign
        i = find_any(t, i, first[0], first[std::min<size_t>(1, nf - 1)], first[std::min<size_t>(2, nf - 1)],
                     first[nf - 1]);
        if (i == U32View::npos) return U32View::npos;
      } else {
        while (i < n && std::find(first.begin(), first.end(), data[i]) == first.end()) ++i;
      }
      if (i >= n) return U32View::npos;
      j = 1;
      if (m == 1) return i;
      continue;
    }
    const char32_t k = key(data[i]);
    while (j > 0 && k != keys[j]) j = fail[j - 1];
    if (k == keys[j]) ++j;
    if (j == m) return i + 1 - m;
  }
  return U32View::npos;
}

std::unique_ptr<const Compiled> compile_pattern(const ParsedPattern& parsed) {
  const std::vector<Width>& widths = parsed.group_widths;
  python_compile_errors(parsed.seq, parsed.flags, widths);

  auto c = std::make_unique<Compiled>();
  c->groups = parsed.groups;
  c->group_index = parsed.group_index;
  c->flags = parsed.flags;

  const FoldMode mode = !(parsed.flags & kFlagIgnoreCase) ? FoldMode::kNone
                        : (parsed.flags & kFlagUnicode)   ? FoldMode::kUnicode
                                                          : FoldMode::kAscii;
  bool pure = false;
  std::u32string prefix = literal_prefix(parsed.seq, &pure);
  if (!prefix.empty()) {
    c->literal_searcher.init(prefix, mode);
    c->has_prefix = true;
    c->literal = pure;
  }
  // A plain string needs no program (and so no size limit: keywords may be long).
  if (c->literal) return c;

  Compiler(parsed, widths, c.get()).run();

  // States: one per (pc, flags of the live nullable loops).
  uint64_t total = 0;
  c->state_base.resize(c->prog.size());
  for (size_t pc = 0; pc < c->prog.size(); ++pc) {
    c->state_base[pc] = static_cast<uint32_t>(total);
    total += uint64_t{1} << c->prog[pc].depth;
    if (total > kMaxStates)
      unsupported("pattern too complex: nested repeats of sub-patterns that can match the empty string "
                  "need more than " +
                  std::to_string(kMaxStates) + " VM states");
  }
  c->num_states = static_cast<uint32_t>(total);
  if ((2 * parsed.groups + 2) * total > kMaxCaptureCells)
    unsupported("pattern has too many groups for its size (" + std::to_string(parsed.groups) + " groups)");

  if (!parsed.seq.empty() && parsed.seq[0].op == NodeOp::kAt) {
    const auto code = parsed.seq[0].c;
    c->anchored_start = code == kAtBeginningString || (code == kAtBeginning && !(parsed.flags & kFlagMultiline));
  }
  if (!parsed.seq.empty() && parsed.seq[0].op == NodeOp::kAt && parsed.seq[0].c == kAtBeginning &&
      (parsed.flags & kFlagMultiline))
    c->line_start = true;
  if (!c->has_prefix) {
    c->can_skip = first_tests(*c, &c->first_tests);
    std::u32string literal;
    if (required_literal(parsed, &literal, &c->required_min, &c->required_max)) {
      c->required_searcher.init(literal, mode);
      c->has_required = true;
    }
  }
  for (char32_t ch = 0; c->can_skip && ch < 256; ++ch)
    for (const CharTest& t : c->first_tests)
      if (t(ch)) c->first_low[ch >> 6] |= uint64_t{1} << (ch & 63);
  return c;
}

}  // namespace regex_detail
}  // namespace hirfast
