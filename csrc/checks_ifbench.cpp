// Registration of the 58 IFBench checkers, and the kwargs helpers the families share.
#include "checks_ifbench.h"

#include <cmath>

#include "ifbench_util.h"

namespace hirfast {

double get_count(ArgReader& args, const char* name) {
  const double v = args.get_number(name);
  if (!std::isfinite(v)) args.fail(name, "must be a finite number");
  if (v < 0)
    args.fail(name, "must not be negative (the reference replaces a negative value by a random one)");
  return v;
}

void register_ifbench_checkers(Registry& r) {
  register_ifbench_count(r);
  register_ifbench_ratio(r);
  register_ifbench_words(r);
  register_ifbench_sentence(r);
  register_ifbench_format(r);
  register_ifbench_custom(r);
  register_ifbench_repeat(r);
}

}  // namespace hirfast
