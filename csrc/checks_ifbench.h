// IFBench checkers (allenai/IFBench as of 2025-07, commit 8a66c06, as copied in sastpg/HIR
// `evaluation/IFBench/instructions.py`), split by family over csrc/checks_ifbench_*.cpp.
//
// Each check reproduces the reference's check_following on the same input, quirks included; a
// reference exception (an IndexError on an empty list, a ZeroDivisionError, ...) is a False.
// Kwargs follow the reference's build_description after its evaluation drops null values:
// - a missing value, or one for which the reference would draw a random replacement (a negative
//   count, an empty keyword, n=0 where it tests `if not n`), is an InputError naming the field;
// - exception: repeat:repeat_span's n_start=0, which IFBench's own test file uses (the reference
//   then draws a random start, so its verdict there is a coin toss); hirfast takes it as 0;
// - repeat:* take the text to repeat from `prompt_to_repeat`; where that kwarg is absent and the
//   row's prompt is given, the prompt is used (the reference raises there).
#pragma once

#include <memory>
#include <utility>

#include "engine.h"

namespace hirfast {

// A checker whose check() is a callable: the family files build their checkers from lambdas
// that capture the parsed kwargs.
template <class F>
class LambdaChecker final : public Checker {
 public:
  explicit LambdaChecker(F fn) : fn_(std::move(fn)) {}
  bool check(U32View response) const override { return fn_(response); }

 private:
  F fn_;
};
template <class F>
std::unique_ptr<Checker> make_lambda_checker(F fn) {
  return std::make_unique<LambdaChecker<F>>(std::move(fn));
}

// kwargs shared by several families.
// A count the reference replaces by a random one when it is None or negative.
double get_count(ArgReader& args, const char* name);

void register_ifbench_count(Registry& r);
void register_ifbench_ratio(Registry& r);
void register_ifbench_words(Registry& r);
void register_ifbench_sentence(Registry& r);
void register_ifbench_format(Registry& r);
void register_ifbench_custom(Registry& r);
void register_ifbench_repeat(Registry& r);

}  // namespace hirfast
