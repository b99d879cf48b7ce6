// sinsr-host: the command-line front end. `sinsr-host [GLOBAL OPTIONS] SUBCOMMAND ...`; with no
// subcommand and inference flags (e.g. `sinsr-host --sampler deterministic --plugin student.so -i
// a.png -o b.png`) it means `infer`. The rule is in print_usage.
#include "command_words.hpp"
#include "commands.hpp"

#include "sinsr_host.h"

#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <iostream>
#include <map>
#include <string>

namespace {

struct Subcommand {
  const char* name;
  int (*run)(const sinsr::cli::Args&);
  const char* summary;
  bool takes_plugin, takes_threads;  // which global options it accepts
};

constexpr Subcommand kCommands[] = {
    {"infer", &sinsr::cli::cmd_infer, "upscale an image or a folder of images", true, true},
    {"plugins", &sinsr::cli::cmd_plugins, "list or inspect the loaded plugin components", true, false},
    {"models", &sinsr::cli::cmd_models, "list the models: scale, the input each is for, where it came from", true,
     false},
    {"eval", &sinsr::cli::cmd_eval, "PSNR/SSIM/detail against ground truth paired by file name, or NIQE without it",
     false, false},
    {"degrade", &sinsr::cli::cmd_degrade, "make LR images (MATLAB bicubic or RealESRGAN degradation)", false, true},
    {"train", &sinsr::cli::cmd_train, "train a diffusion network with its sampler's objective (or regression)", true,
     true},
    {"distill", &sinsr::cli::cmd_distill, "distill a SinSR one-step student from a teacher", true, true},
    {"bench", &sinsr::cli::cmd_bench, "time the networks and the distillation step", true, true},
    {"serve", &sinsr::cli::cmd_serve, "an upscaling service with a web page (HTTP)", true, true},
    {"export", &sinsr::cli::cmd_export, "write a checkpoint's weights as a plain state dict (fp32/fp16/bf16)", false,
     false},
};

void print_usage(std::ostream& out) {
  out << "usage: sinsr-host [global options] <command> [options]\n"
         "       sinsr-host [infer options]        (no command: infer)\n\n"
         "commands:\n";
  for (const auto& c : kCommands)
    out << "  " << c.name << std::string(10 - std::strlen(c.name), ' ') << c.summary << "\n";
  out << "\n`sinsr-host <command> --help` describes each command's options.\n\n"
         "Global options: --plugin FILE (repeatable) and --threads N (or -j N) may precede the command\n"
         "and are passed to it as if written after its name (`sinsr-host --plugin x.so plugins list`);\n"
         "a command that does not take one says so. A line whose first word after them is another option\n"
         "is an infer line; an infer line that also names a command (`sinsr-host -q plugins list`) is\n"
         "an error: write the command first.\n\n"
         "Reproducibility: a run repeated with the same options and -j gives the same bytes; another\n"
         "thread count may change a few pixels by a level or two (`sinsr-host infer --help`).\n\n"
         "Plugins: --plugin FILE, SINSR_PLUGIN_PATH (folders or files, ':'-separated), and the plugin\n"
         "folder of this installation.\n";
}

const Subcommand* find_command(const std::string& name) {
  for (const auto& c : kCommands)
    if (name == c.name) return &c;
  return nullptr;
}

int run_command(const Subcommand& c, const sinsr::cli::Args& args) {
  try {
    return c.run(args);
  } catch (const std::exception& e) {
    std::cerr << "sinsr-host " << c.name << ": " << sinsr::cli::error_text(e) << "\n";
    return 1;
  }
}

std::string command_list() {
  std::string s;
  for (const auto& c : kCommands) s += std::string(s.empty() ? "" : ", ") + c.name;
  return s;
}

// Leading global options, normalised to their long spelling. Returns the index of the first word
// that is not one, or -1 after reporting a global option that lacks its value.
int take_globals(const sinsr::cli::Args& args, sinsr::cli::Args& globals, bool& plugin, bool& threads) {
  size_t i = 0;
  while (i < args.size()) {
    const std::string& a = args[i];
    const int words = sinsr::cli::global_option_words(a.c_str());
    if (words == 0) break;
    const bool is_plugin = a.rfind("--plugin", 0) == 0;
    (is_plugin ? plugin : threads) = true;
    if (words == 2) {
      if (i + 1 >= args.size()) {
        std::cerr << "sinsr-host: " << a << " needs a value (see `sinsr-host --help`)\n";
        return -1;
      }
      globals.push_back(is_plugin ? "--plugin" : "--threads");
      globals.push_back(args[i + 1]);
    } else {
      globals.push_back(a.rfind("-j", 0) == 0 ? "--threads=" + a.substr(2) : a);  // -j2
    }
    i += size_t(words);
  }
  return int(i);
}

}  // namespace

bool sinsr::cli::is_command_name(const std::string& word) { return find_command(word) != nullptr; }

// The program's entry, called by the sinsr-host launcher (host/launcher.cpp) once it has set
// what must be set before LibTorch loads.
extern "C" __attribute__((visibility("default"))) int sinsr_cli_main(int argc, char** argv) {
  // A file-size limit (ulimit -f) then fails the one write with EFBIG, an error of that file,
  // instead of killing the run and leaving its temporary file behind.
  std::signal(SIGXFSZ, SIG_IGN);
  // The host's and the plugins' log lines, in the program's voice (the library default would be
  // "[level] source: message").
  sinsr_log_set(
      [](void*, int32_t level, const char* source, const char* message) {
        const std::string who(source);
        const std::string text = (who == "train" || who == "sinsr" ? "" : who + ": ") + message;
        if (level >= SINSR_LOG_WARNING)
          std::cerr << "sinsr-host: warning: " << text << "\n";
        else
          std::cerr << text << "\n";
      },
      nullptr, SINSR_LOG_INFO);
  sinsr::cli::Args args(argv + 1, argv + argc);
  if (args.empty()) {
    print_usage(std::cerr);
    return 2;
  }
  const std::string& first = args[0];
  if (first == "--help" || first == "-h" || first == "help") {
    print_usage(std::cout);
    return 0;
  }
  if (first == "--version" || first == "-V") {
    std::cout << "sinsr-host " << sinsr_version() << " (plugin ABI " << SINSR_ABI_VERSION_MAJOR << "."
              << SINSR_ABI_VERSION_MINOR << ")\n"
              << "image formats: " << sinsr_image_formats() << " (written; the first when none is named)\n";
    return 0;
  }
  sinsr::cli::Args globals;
  bool plugin = false, threads = false;
  const int at = take_globals(args, globals, plugin, threads);
  if (at < 0) return 2;
  const std::string word = size_t(at) < args.size() ? args[at] : "";
  if (const Subcommand* command = find_command(word)) {
    const char* refused = plugin && !command->takes_plugin     ? "--plugin"
                          : threads && !command->takes_threads ? "--threads"
                                                               : nullptr;
    if (refused) {
      std::cerr << "sinsr-host " << command->name << ": takes no " << refused << " (see `sinsr-host " << command->name
                << " --help`)\n";
      return 2;
    }
    sinsr::cli::Args rest = globals;
    rest.insert(rest.end(), args.begin() + at + 1, args.end());
    return run_command(*command, rest);
  }
  if (word == "help") {
    print_usage(std::cout);
    return 0;
  }
  // No command word: options (or only global options) make an infer line, which refuses a
  // command name further on itself.
  if (word.empty() || word[0] == '-') return run_command(*find_command("infer"), args);
  std::cerr << "sinsr-host: unknown command '" << word << "' (commands: " << command_list()
            << "; see `sinsr-host --help`)\n";
  return 2;
}
