// Language detection: a port of langdetect 1.0.9's `detect()` with `DetectorFactory.seed = 0`,
// bit for bit (same text pipeline, same profiles, same Python `random.Random(0)` draws, same
// floating-point operations in the same order).
//
// The profiles come from hirfast/assets/langdetect/profiles.bin (made by
// tools/convert_langdetect_profiles.py), read once, on first use, from
// `asset_path("langdetect/profiles.bin")`. Everything here is thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "unicode.h"

namespace hirfast {

// langdetect.detect(text) with DetectorFactory.seed = 0. Returns false where langdetect raises
// LangDetectException ("No features in text."); otherwise sets *lang ("en", "zh-cn", ..., or
// "unknown"). Throws std::runtime_error if the data file is missing or corrupt.
bool detect_language(U32View text, std::string* lang);

// Loads the profiles now rather than on the first detect_language call (same errors).
void langdetect_load();

// Test hooks for the differential tests.
// The text a langdetect Detector holds after `append(text)`: URLs and e-mail addresses replaced by
// a space, Vietnamese letters + combining marks composed, cut to 10,000 characters with runs of
// spaces collapsed.
U32 langdetect_appended_text(U32View text);
// The draws `random.Random(0)` makes for a sequence of calls: op < 0 is `gauss(0.0, 1.0)`,
// op = n > 0 is `choice(range(n))` (returned as a double).
std::vector<double> langdetect_random_trace(const std::vector<int64_t>& ops);

}  // namespace hirfast
