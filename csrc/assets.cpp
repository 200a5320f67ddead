#include "assets.h"

#include <cstdlib>
#include <fstream>
#include <mutex>

namespace hirfast {
namespace {
std::mutex g_mu;
std::string g_dir;
}  // namespace

void set_assets_dir(const std::string& dir) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_dir = dir;
  while (g_dir.size() > 1 && g_dir.back() == '/') g_dir.pop_back();
}

std::string assets_dir() {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_dir.empty()) {
    if (const char* env = std::getenv("HIRFAST_ASSETS")) g_dir = env;
  }
  if (g_dir.empty())
    throw AssetError("hirfast: the assets directory is not set (set_assets_dir or HIRFAST_ASSETS)");
  return g_dir;
}

std::string asset_path(const std::string& relative) {
  std::string p = assets_dir() + "/" + relative;
  std::ifstream f(p);
  if (!f.good()) throw AssetError("hirfast: missing data file " + p + " (reinstall hirfast)");
  return p;
}

}  // namespace hirfast
