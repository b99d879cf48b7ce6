#include "cli_common.hpp"

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

}  // namespace cli
}  // namespace sinsr
