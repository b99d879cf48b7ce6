// Helpers shared by the sinsr-host subcommands.
#pragma once

#include "runtime.hpp"

#include <string>
#include <vector>

namespace sinsr {
namespace cli {

// Loads the default plugin locations (refusals there are warnings) and then each explicit
// --plugin FILE (a refusal there is an error).
void load_plugins(host::Runtime& runtime, const std::vector<std::string>& explicit_plugins, bool defaults = true);

// configs/sinsr_x4.yaml of this installation (<prefix>/share/sinsr/configs) or source tree.
std::string default_model_config();

}  // namespace cli
}  // namespace sinsr
