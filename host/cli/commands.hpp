// sinsr-host subcommands. Each takes the arguments after its name, parses them with
// Boost.Program_options, prints its own --help, and returns the process exit code.
#pragma once

#include <exception>
#include <string>
#include <vector>

namespace sinsr {
namespace cli {

using Args = std::vector<std::string>;

int cmd_plugins(const Args& args);
int cmd_models(const Args& args);  // models [--json]: the models the runtime can see  // plugins list [--json] |
                                   // plugins inspect NAME
int cmd_infer(const Args& args);
int cmd_train(const Args& args);
int cmd_distill(const Args& args);
int cmd_eval(const Args& args);
int cmd_degrade(const Args& args);
int cmd_bench(const Args& args);
int cmd_export(const Args& args);
int cmd_serve(const Args& args);

// A library error as the command line says it: a part without weights (host::MissingWeights)
// gets the flag that gives them, --<part>-weights (cli_common.cpp).
std::string error_text(const std::exception& e);

// Whether a word is a subcommand's name (infer uses it to refuse lines that are both).
bool is_command_name(const std::string& word);

}  // namespace cli
}  // namespace sinsr
