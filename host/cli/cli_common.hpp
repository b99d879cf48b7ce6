// Helpers shared by the sinsr-host subcommands.
#pragma once

#include "commands.hpp"
#include "runtime/runtime.hpp"

#include <boost/program_options.hpp>

#include <functional>
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

// A command's option table, one line per option where it fits (a terminal is wider than Boost's
// 80-column default).
boost::program_options::options_description options_table(const std::string& caption);

// Parses a subcommand's options. Returns -1 to go on, otherwise the exit code to return
// (0 after printing --help, 2 after a one-line usage error that points to --help).
// `hidden` options parse but stay out of --help (test hooks, positional catch-alls). `early`
// sees the parsed words before required options are checked (a wrong kind of line is the error
// to report, not its missing -i); it returns an exit code, or -1 to go on. `more` options parse
// like `opts`, but --help lists only their names (each command's help stays under 40 lines; the
// whole table is in docs/cli.md).
int parse_options(const Args& args, const boost::program_options::options_description& opts,
                  boost::program_options::variables_map& vm, const std::string& command,
                  const boost::program_options::options_description* hidden = nullptr,
                  const boost::program_options::positional_options_description* positional = nullptr,
                  const std::function<int(const boost::program_options::variables_map&)>& early = {},
                  const boost::program_options::options_description* more = nullptr);

// Prints "sinsr-host COMMAND: FILE: MESSAGE" for a file a folder run skips (FILE left out when
// the message names it already).
void report_file_error(const std::string& command, const std::string& file, const std::exception& e);

// Prints "sinsr-host COMMAND: MESSAGE (see `sinsr-host COMMAND --help`)" and returns 2.
int usage_error(const std::string& command, const std::string& message);

// A double as --help should show it: the shortest text that reads back as the same value
// (5e-05, not 5.0000000000000002e-05).
std::string readable(double value);

// The install's default for one key of a defaults.json section, for --help: "student, else
// unet_swin" for a list; "none installed" when no defaults file names it.
std::string installed_default(const std::string& key, const std::string& section = "infer");
// A --config value: an existing file or inline JSON stays as it is; otherwise a bare name of an
// installed config (`sinsr_x4` or `sinsr_x4.yaml`) is found in <prefix>/share/sinsr/configs or
// the source tree's configs/.
// Throws naming the installed configs when it is neither.
std::string resolve_config(const std::string& value);

}  // namespace cli
}  // namespace sinsr
