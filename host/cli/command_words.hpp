// How main.cpp finds a line's command word (unit-tested in tests/cli).
#pragma once

#include <cstring>

namespace sinsr {
namespace cli {

// How many words a leading global option takes: 2 for --plugin X, --threads X, -j X; 1 for
// --plugin=X, --threads=X, -jN; 0 when `word` is not one.
inline int global_option_words(const char* word) {
  if (std::strcmp(word, "--plugin") == 0 || std::strcmp(word, "--threads") == 0 || std::strcmp(word, "-j") == 0)
    return 2;
  if (std::strncmp(word, "--plugin=", 9) == 0 || std::strncmp(word, "--threads=", 10) == 0 ||
      (std::strncmp(word, "-j", 2) == 0 && word[2] != '\0' &&
       std::strspn(word + 2, "0123456789") == std::strlen(word + 2)))
    return 1;
  return 0;
}

// The word that names a line's command as main.cpp reads it: the first word after the leading
// global options; nullptr when the line ends first. Never a later word: an input file may well be
// called `eval`.
inline const char* command_word(int argc, char** argv) {
  int k = 1;
  while (k < argc)
    if (const int n = global_option_words(argv[k]))
      k += n;
    else
      return argv[k];
  return nullptr;
}

}  // namespace cli
}  // namespace sinsr
