#include "cli_common.hpp"

#include <sinsr/config.hpp>

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

host::json config_argument(const std::string& value) {
  if (value.empty()) return host::json::object();
  std::error_code ec;
  if (std::filesystem::exists(value, ec)) return host::json{{"config_file", value}};
  return config::parse(value, "config argument");
}

host::json config_contents(const std::string& value, const std::string& option) {
  std::error_code ec;
  return std::filesystem::exists(value, ec) ? config::load_file(value) : config::parse(value, option);
}

int parse_options(const Args& args, const boost::program_options::options_description& opts,
                  boost::program_options::variables_map& vm, const std::string& command) {
  namespace po = boost::program_options;
  try {
    po::store(po::command_line_parser(args).options(opts).run(), vm);
    if (vm.count("help")) {
      std::cout << opts << "\n";
      return 0;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "sinsr-host " << command << ": " << e.what() << "\n\n" << opts << "\n";
    return 2;
  }
  return -1;
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
