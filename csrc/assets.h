// Where the engine finds its data files (Punkt parameters, langdetect profiles, ...).
// The Python package sets this once to hirfast/assets on import of hirfast.verify; the fuzz
// target and C++ tests set it from the HIRFAST_ASSETS environment variable.
#pragma once

#include <stdexcept>
#include <string>

namespace hirfast {

// A data file the engine needs is missing or unreadable: a broken installation. Unlike other
// exceptions inside a check (which count as "not followed", as in the reference), this one
// propagates to the caller.
class AssetError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

void set_assets_dir(const std::string& dir);
// The directory, without a trailing slash. Throws AssetError if it was never set.
std::string assets_dir();
// assets_dir() + "/" + relative, checked to exist (AssetError naming the path if not).
std::string asset_path(const std::string& relative);

}  // namespace hirfast
