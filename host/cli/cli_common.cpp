#include "cli_common.hpp"

#include <sinsr/config.hpp>

#include <boost/dll/runtime_symbol_info.hpp>

#include <c10/util/Exception.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>

namespace sinsr {
namespace cli {

namespace fs = std::filesystem;

void load_plugins(host::Runtime& runtime, const std::vector<std::string>& explicit_plugins, bool defaults) {
  // Explicit files first: a --plugin that also sits in the default folder is the same file and
  // is skipped the second time; a different file with a clashing name is reported.
  for (const auto& p : explicit_plugins) runtime.load(p);
  if (defaults)
    for (const auto& refused : runtime.load_default_paths()) std::cerr << "sinsr-host: warning: " << refused << "\n";
}

host::json config_argument(const std::string& value) {
  if (value.empty()) return host::json::object();
  std::error_code ec;
  if (fs::exists(value, ec)) return host::json{{"config_file", value}};
  return config::parse(value, "config argument");
}

host::json config_contents(const std::string& value, const std::string& option) {
  std::error_code ec;
  return fs::exists(value, ec) ? config::load_file(value) : config::parse(value, option);
}

std::string error_text(const std::exception& e) {
  if (const auto* missing = dynamic_cast<const host::MissingWeights*>(&e))
    return std::string(e.what()) + " (--" + missing->part() + "-weights)";
  if (const auto* torch_error = dynamic_cast<const c10::Error*>(&e)) return torch_error->what_without_backtrace();
  if (dynamic_cast<const std::bad_alloc*>(&e)) return "out of memory";
  // A LibTorch message passed on inside another error still carries its stack: one line is kept.
  std::string text = e.what();
  for (const char* tail : {"Exception raised from ", "\nframe #"})
    if (const size_t at = text.find(tail); at != std::string::npos) text.erase(at);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  return text;
}

void report_file_error(const std::string& command, const std::string& file, const std::exception& e) {
  const std::string msg = error_text(e);
  std::cerr << "sinsr-host " << command << ": " << (msg.find(file) == std::string::npos ? file + ": " : "") << msg
            << "\n";
}

int usage_error(const std::string& command, const std::string& message) {
  std::cerr << "sinsr-host " << command << ": " << message << " (see `sinsr-host " << command << " --help`)\n";
  return 2;
}

namespace {
void print_help(std::ostream& os, const boost::program_options::options_description& opts,
                const boost::program_options::options_description* more) {
  os << opts;
  if (!more || more->options().empty()) return;
  std::string line = "  more (docs/cli.md):";
  for (const auto& o : more->options()) {
    const std::string name = o->format_name();
    if (line.size() + 1 + name.size() > 110) {
      os << line << "\n";
      line = "   ";
    }
    line += " " + name;
  }
  os << line << "\n";
}
}  // namespace

boost::program_options::options_description options_table(const std::string& caption) {
  return boost::program_options::options_description(caption, 112, 56);
}

int parse_options(const Args& args, const boost::program_options::options_description& opts,
                  boost::program_options::variables_map& vm, const std::string& command,
                  const boost::program_options::options_description* hidden,
                  const boost::program_options::positional_options_description* positional,
                  const std::function<int(const boost::program_options::variables_map&)>& early,
                  const boost::program_options::options_description* more) {
  namespace po = boost::program_options;
  po::options_description all;
  all.add(opts);
  if (hidden) all.add(*hidden);
  if (more) all.add(*more);
  po::positional_options_description none;
  try {
    po::store(po::command_line_parser(args).options(all).positional(positional ? *positional : none).run(), vm);
    if (vm.count("help")) {
      print_help(std::cout, opts, more);
      return 0;
    }
    if (early)
      if (int rc = early(vm); rc >= 0) return rc;
    po::notify(vm);
  } catch (const po::error& e) {
    // One line: the whole option table buries the one thing that went wrong.
    return usage_error(command, e.what());
  }
  return -1;
}

std::string readable(double value) {
  char buf[32];
  for (int digits = 1; digits <= 17; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, value);
    if (std::strtod(buf, nullptr) == value) break;
  }
  return buf;
}

namespace {
std::vector<fs::path> config_dirs() {
  fs::path exe_dir = boost::dll::program_location().parent_path().string();
  return {exe_dir / ".." / "share" / "sinsr" / "configs", fs::path(SINSR_SOURCE_CONFIG_DIR)};
}
}  // namespace

std::string installed_default(const std::string& key, const std::string& section) {
  std::string out;
  for (const auto& n : host::Runtime::names_in(host::Runtime::installed_defaults(), section, key))
    out += (out.empty() ? "" : ", else ") + n;
  return out.empty() ? "none installed" : out;
}

std::string resolve_config(const std::string& value) {
  std::error_code ec;
  if (value.empty() || fs::exists(value, ec)) return value;
  // Inline JSON/YAML is left to the parser; anything else names a file.
  if (value.find_first_of("{[:\n") != std::string::npos) return value;
  std::string installed;
  if (value.find_first_of("/\\") == std::string::npos)  // a bare name: the installed configs
    for (const fs::path& d : config_dirs()) {
      for (const std::string& name : {value, value + ".yaml"})
        if (fs::is_regular_file(d / name, ec)) return (d / name).lexically_normal().string();
      for (auto it = fs::directory_iterator(d, ec); !ec && it != fs::directory_iterator(); it.increment(ec))
        if (installed.find(it->path().filename().string()) == std::string::npos)
          installed += (installed.empty() ? "" : ", ") + it->path().filename().string();
    }
  throw sdk::Error(SINSR_ERR_NOT_FOUND,
                   "--config " + value + ": no such file" +
                       (installed.empty() ? std::string() : ", nor an installed config (" + installed + ")"));
}

}  // namespace cli
}  // namespace sinsr
