// One runtime per test binary with every plugin of the build loaded (two threads), made on first
// use and kept for the binary's life: loading the plugins once keeps the tests fast.
#pragma once

#include "runtime/runtime.hpp"

namespace sinsr_test {

inline sinsr::host::Runtime& plugin_runtime() {
  static auto* rt = [] {
    auto* r = new sinsr::host::Runtime(2);
    r->load_dir(SINSR_PLUGIN_DIR);
    return r;
  }();
  return *rt;
}

}  // namespace sinsr_test
