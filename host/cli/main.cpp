// sinsr-host: the command-line front end. `sinsr-host SUBCOMMAND ...`; with no subcommand and
// inference flags (e.g. `sinsr-host --sampler deterministic --plugin student.so -i a.png -o b.png`)
// it means `infer`.
#include "commands.hpp"

#include "sinsr_host.h"

#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <iostream>
#include <map>
#include <string>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace {

struct Subcommand {
  const char* name;
  int (*run)(const sinsr::cli::Args&);
  const char* summary;
};

const Subcommand kCommands[] = {
    {"infer", &sinsr::cli::cmd_infer, "upscale an image or a folder of images"},
    {"plugins", &sinsr::cli::cmd_plugins, "list or inspect the loaded plugin components"},
    {"eval", &sinsr::cli::cmd_eval, "PSNR/SSIM of predictions against ground truth, paired by file name"},
    {"degrade", &sinsr::cli::cmd_degrade, "make LR images (MATLAB bicubic or RealESRGAN degradation)"},
    {"train", &sinsr::cli::cmd_train, "train a ResShift teacher"},
    {"distill", &sinsr::cli::cmd_distill, "distill a SinSR one-step student from a teacher"},
    {"bench", &sinsr::cli::cmd_bench, "time the networks and the distillation step"},
    {"export", &sinsr::cli::cmd_export, "write a checkpoint's weights as a plain state dict (fp32/fp16/bf16)"},
};

void print_usage(std::ostream& out) {
  out << "usage: sinsr-host <command> [options]\n"
         "       sinsr-host [infer options]        (no command: infer)\n\n"
         "commands:\n";
  for (const auto& c : kCommands) out << "  " << c.name << std::string(10 - std::strlen(c.name), ' ') << c.summary << "\n";
  out << "\n`sinsr-host <command> --help` describes each command's options.\n"
         "Plugins: --plugin FILE (repeatable), SINSR_PLUGIN_PATH (folders or files, ':'-separated),\n"
         "and the plugin folder of this installation.\n";
}

// CPU LibTorch allocates and frees activation-sized buffers on every layer. glibc's defaults
// hand each one back to the kernel and fault it in again (zeroed) on the next call; keeping
// freed memory in the process made a 256x256 UNet forward about 4x faster here. The peak
// footprint is unchanged. The program only: the library never changes its host's allocator.
// SINSR_MALLOC_DEFAULTS=1 keeps glibc's own settings.
void tune_allocator() {
#if defined(__GLIBC__)
  const char* keep = std::getenv("SINSR_MALLOC_DEFAULTS");
  if (keep && std::strcmp(keep, "1") == 0) return;
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's maximum
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 256 << 20);
#endif
}

}  // namespace

int main(int argc, char** argv) {
  tune_allocator();
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
              << SINSR_ABI_VERSION_MINOR << ")\n";
    return 0;
  }
  try {
    for (const auto& c : kCommands) {
      if (first == c.name) return c.run(sinsr::cli::Args(args.begin() + 1, args.end()));
    }
    if (!first.empty() && first[0] == '-') return sinsr::cli::cmd_infer(args);
  } catch (const std::exception& e) {
    std::cerr << "sinsr-host: " << e.what() << "\n";
    return 1;
  }
  std::cerr << "sinsr-host: unknown command '" << first << "'\n\n";
  print_usage(std::cerr);
  return 2;
}
