// IFEval checkers (google-research instruction_following_eval, as copied in sastpg/HIR).
#include "engine.h"

namespace hirfast {
namespace {

class NoComma : public Checker {
 public:
  bool check(U32View response) const override { return response.find(',') == U32View::npos; }
};

}  // namespace

void register_ifeval_checkers(Registry& r) {
  r.add("punctuation:no_comma", {}, [](CheckerContext&) { return std::make_unique<NoComma>(); });
}

}  // namespace hirfast
