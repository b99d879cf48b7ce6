#include "commands.hpp"

#include <iostream>

int main(int argc, char** argv) {
  (void)argc;
  (void)argv;
  std::cerr << "sinsr-host: under construction\n";
  return 1;
}
