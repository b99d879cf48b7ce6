// The words of a sinsr-host line that run no network. The launcher reads them before any library
// loads (it warms heap only for lines that will need it); the program's command table is checked
// against them when it compiles (main.cpp), so a new command cannot be missed by one of the two.
#pragma once

#include <cstring>

namespace sinsr {
namespace cli {

inline constexpr const char* kNoNetworkWords[] = {"--version", "-V",   "--help",  "-h",     "help",
                                                  "plugins",   "eval", "degrade", "export", "models"};

inline bool runs_no_network(const char* word) {
  for (const char* w : kNoNetworkWords)
    if (std::strcmp(w, word) == 0) return true;
  return false;
}

}  // namespace cli
}  // namespace sinsr
