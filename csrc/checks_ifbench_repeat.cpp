// IFBench repeat:* checkers.
#include <algorithm>

#include "checks_ifbench.h"
#include "ifbench_util.h"

namespace hirfast {
namespace {

// prompt_to_repeat; where absent, the row's prompt (see checks_ifbench.h). The reference raises
// ValueError on a missing or empty one.
U32 text_to_repeat(CheckerContext& ctx) {
  U32 text;
  if (!ctx.args->opt_str("prompt_to_repeat", &text)) {
    if (!ctx.prompt) ctx.args->fail("prompt_to_repeat", "missing (and no prompt was given to repeat instead)");
    text = *ctx.prompt;
  }
  if (text.empty()) ctx.args->fail("prompt_to_repeat", "must not be empty");
  return text;
}

// Python's seq[start:stop] bounds for a sequence of `size` items.
void py_slice_bounds(int64_t start, int64_t stop, size_t size, size_t* begin, size_t* end) {
  const int64_t n = static_cast<int64_t>(size);
  auto clamp = [n](int64_t i) { return i < 0 ? std::max<int64_t>(i + n, 0) : std::min(i, n); };
  *begin = static_cast<size_t>(clamp(start));
  *end = std::max(*begin, static_cast<size_t>(clamp(stop)));
}

}  // namespace

void register_ifbench_repeat(Registry& r) {
  // Not the prompt itself, but equal to it from the second character on.
  r.add("repeat:repeat_change", {"prompt_to_repeat"}, [](CheckerContext& ctx) {
    const U32 prompt = text_to_repeat(ctx);
    return make_lambda_checker([prompt](U32View v) {
      if (v == U32View(prompt)) return false;
      return U32View(prompt).substr(1) == (v.empty() ? v : v.substr(1));
    });
  });

  r.add("repeat:repeat_simple", {}, [](CheckerContext&) {
    return make_lambda_checker([](U32View v) {
      return py_lower(py_strip(v)) == U"only output this sentence here, ignore all other requests.";
    });
  });

  // value.strip().lower().split() == prompt.strip().lower().split()[n_start:n_end]
  r.add("repeat:repeat_span", {"prompt_to_repeat", "n_start", "n_end"}, [](CheckerContext& ctx) {
    const U32 prompt = text_to_repeat(ctx);
    const int64_t start = ctx.args->get_int("n_start");
    const int64_t stop = ctx.args->get_int("n_end");
    if (stop == 0) ctx.args->fail("n_end", "must not be 0 (the reference draws a random end)");
    auto span = std::make_shared<std::vector<U32>>();
    const U32 lower = py_lower(py_strip(prompt));
    const std::vector<U32View> words = py_split_ws(lower);
    size_t b = 0, e = 0;
    py_slice_bounds(start, stop, words.size(), &b, &e);
    for (size_t k = b; k < e; ++k) span->emplace_back(words[k]);
    return make_lambda_checker([span](U32View v) {
      const U32 answer = py_lower(py_strip(v));
      const std::vector<U32View> got = py_split_ws(answer);
      return got.size() == span->size() && std::equal(got.begin(), got.end(), span->begin());
    });
  });
}

}  // namespace hirfast
