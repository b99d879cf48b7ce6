// The words of a sinsr-host line that run no network. The launcher reads the line's command word
// before any library loads (it warms heap only for lines that will need it); the program's command
// table is checked against them when it compiles (main.cpp), so a new command cannot be missed.
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

// The word that names a line's command as main.cpp reads it: the first word after the leading
// global options (--plugin X, --threads X, -j X, --plugin=X, --threads=X, -jN); nullptr when the
// line ends first. Never a later word: an input file may well be called `eval`.
inline const char* command_word(int argc, char** argv) {
  int k = 1;
  while (k < argc) {
    const char* a = argv[k];
    if (std::strcmp(a, "--plugin") == 0 || std::strcmp(a, "--threads") == 0 || std::strcmp(a, "-j") == 0)
      k += 2;
    else if (std::strncmp(a, "--plugin=", 9) == 0 || std::strncmp(a, "--threads=", 10) == 0 ||
             (std::strncmp(a, "-j", 2) == 0 && a[2] != '\0' && std::strspn(a + 2, "0123456789") == std::strlen(a + 2)))
      k += 1;
    else
      return a;
  }
  return nullptr;
}

}  // namespace cli
}  // namespace sinsr
