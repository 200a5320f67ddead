// Where the engine finds its data files (Punkt parameters, langdetect profiles, ...).
// The Python package sets this once to hirfast/assets on import of hirfast.verify; the fuzz
// target and C++ tests set it from the HIRFAST_ASSETS environment variable.
#pragma once

#include <stdexcept>
#include <string>

namespace hirfast {

void set_assets_dir(const std::string& dir);
// The directory, without a trailing slash. Throws std::runtime_error if it was never set.
std::string assets_dir();
// assets_dir() + "/" + relative, checked to exist (std::runtime_error naming the path if not).
std::string asset_path(const std::string& relative);

}  // namespace hirfast
