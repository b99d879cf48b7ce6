// Helpers shared by the sinsr-host subcommands.
#pragma once

#include "commands.hpp"
#include "runtime.hpp"

#include <boost/program_options.hpp>

#include <string>
#include <vector>

namespace sinsr {
namespace cli {

// Loads the default plugin locations (refusals there are warnings) and then each explicit
// --plugin FILE (a refusal there is an error).
void load_plugins(host::Runtime& runtime, const std::vector<std::string>& explicit_plugins, bool defaults = true);

// A component config flag: a file (JSON or YAML, official layouts accepted) or inline JSON.
host::json config_argument(const std::string& value);
// The same argument read here in the host (file contents or inline JSON; YAML files accepted).
host::json config_contents(const std::string& value, const std::string& option);

// Parses a subcommand's options. Returns -1 to go on, otherwise the exit code to return
// (0 after printing --help, 2 after reporting a usage error with the options).
int parse_options(const Args& args, const boost::program_options::options_description& opts,
                  boost::program_options::variables_map& vm, const std::string& command);

// configs/sinsr_x4.yaml of this installation (<prefix>/share/sinsr/configs) or source tree.
std::string default_model_config();

}  // namespace cli
}  // namespace sinsr
