// libFuzzer target over the checker entry point: an instruction id, kwargs of every type (right
// and wrong), a prompt and a response, all drawn from the fuzzer's bytes; then the checker is
// built (bad kwargs must give InputError, nothing else) and run strict and loose.
//
// Built by fuzz/run.sh with clang++ -fsanitize=fuzzer,address,undefined; data files are read
// from HIRFAST_ASSETS (run.sh points it at hirfast/assets).
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "checks_muldimif.h"
#include "engine.h"
#include "unicode.h"

using namespace hirfast;

namespace {

// Bytes to code points: valid UTF-8 is decoded; otherwise each byte becomes a code point, and a
// few bytes are widened to reach the interesting non-ASCII ranges.
U32 to_text(const std::string& bytes) {
  U32 out;
  size_t bad = 0;
  if (decode_utf8(bytes, &out, &bad)) return out;
  out.clear();
  for (unsigned char b : bytes) {
    if (b >= 0xF8) {
      static const char32_t kSpecial[] = {0x212A, 0x03A3, 0x00DF, 0x0130, 0x3000, 0x200B, 0x0915, 0x65E5};
      out.push_back(kSpecial[b - 0xF8]);
    } else {
      out.push_back(b);
    }
  }
  return out;
}

Value random_value(FuzzedDataProvider& fdp, KwargsArena* arena, int depth) {
  Value v;
  switch (fdp.ConsumeIntegralInRange<int>(0, 6)) {
    case 0:
      v.type = Value::Type::kNull;
      break;
    case 1:
      v.type = Value::Type::kInt;
      v.i = fdp.ConsumeIntegralInRange<int64_t>(-3, 40);
      break;
    case 2:
      v.type = Value::Type::kFloat;
      v.f = fdp.ConsumeFloatingPoint<double>();
      break;
    case 3:
      v.type = Value::Type::kBool;
      v.b = fdp.ConsumeBool();
      break;
    case 4:
    case 5:
      v.type = Value::Type::kStr;
      v.s = arena->copy(to_text(fdp.ConsumeRandomLengthString(24)));
      break;
    default:
      v.type = Value::Type::kList;
      if (depth < 2) {
        int n = fdp.ConsumeIntegralInRange<int>(0, 3);
        Value* list = arena->items<Value>(static_cast<size_t>(n));
        for (int k = 0; k < n; ++k) list[k] = random_value(fdp, arena, depth + 1);
        v.list = {list, static_cast<size_t>(n)};
      }
  }
  v.type_name = "fuzz";
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<std::string> ids = Registry::get().ids();
  // MulDimIF Language_Chinese asks Python's zhconv through a hook; a stand-in answers here.
  static const bool hooked = (set_md_zhconv_hook([](MdChineseRule, U32View) { return false; }), true);
  (void)hooked;
  FuzzedDataProvider fdp(data, size);
  const CheckerSpec* spec = Registry::get().find(ids[fdp.ConsumeIntegralInRange<size_t>(0, ids.size() - 1)]);
  KwargsArena arena;
  std::vector<Kwarg> items;
  for (const std::string& name : spec->arg_names) {
    if (fdp.ConsumeIntegralInRange<int>(0, 9) == 0) continue;  // sometimes missing
    items.emplace_back(name, random_value(fdp, &arena, 0));
  }
  if (fdp.ConsumeIntegralInRange<int>(0, 19) == 0) items.emplace_back("unexpected", random_value(fdp, &arena, 0));
  const Kwargs kwargs{items.data(), items.size()};
  U32 prompt = to_text(fdp.ConsumeRandomLengthString(64));
  U32 response = to_text(fdp.ConsumeRemainingBytesAsString());
  std::unique_ptr<Checker> checker;
  try {
    checker = make_checker(spec->id, kwargs, &prompt);
  } catch (const InputError&) {
    return 0;  // bad kwargs are reported, which is the point
  }
  check_strict(*checker, response);
  check_loose(*checker, response);
  return 0;
}
