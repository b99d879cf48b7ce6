// Placeholders for subcommands whose implementation lands in its own file; a real definition
// there overrides these weak ones.
#include "commands.hpp"

#include <iostream>

namespace sinsr {
namespace cli {

static int pending(const char* name) {
  std::cerr << "sinsr-host " << name << ": not available in this build\n";
  return 1;
}

__attribute__((weak)) int cmd_infer(const Args&) { return pending("infer"); }
__attribute__((weak)) int cmd_train(const Args&) { return pending("train"); }
__attribute__((weak)) int cmd_distill(const Args&) { return pending("distill"); }
__attribute__((weak)) int cmd_eval(const Args&) { return pending("eval"); }
__attribute__((weak)) int cmd_degrade(const Args&) { return pending("degrade"); }

}  // namespace cli
}  // namespace sinsr
