#include "cli_common.hpp"

#include <boost/dll/runtime_symbol_info.hpp>

#include <filesystem>
#include <iostream>

namespace sinsr {
namespace cli {

void load_plugins(host::Runtime& runtime, const std::vector<std::string>& explicit_plugins, bool defaults) {
  // Explicit files first: a --plugin that also sits in the default folder is the same file and
  // is skipped the second time; a different file with a clashing name is reported.
  for (const auto& p : explicit_plugins) runtime.load(p);
  if (defaults)
    for (const auto& refused : runtime.load_default_paths()) std::cerr << "warning: " << refused << "\n";
}

std::string default_model_config() {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path exe_dir = boost::dll::program_location().parent_path().string();
  for (const fs::path& p : {exe_dir / ".." / "share" / "sinsr" / "configs" / "sinsr_x4.yaml",
                            fs::path(SINSR_SOURCE_CONFIG_DIR) / "sinsr_x4.yaml"})
    if (fs::exists(p, ec)) return p.lexically_normal().string();
  throw sdk::Error(SINSR_ERR_NOT_FOUND, "configs/sinsr_x4.yaml not found; pass --config");
}

}  // namespace cli
}  // namespace sinsr
