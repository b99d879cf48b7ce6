// Shared by the fuzz targets: one intra-op thread, inputs as temporary files, and the rule that
// only sinsr::sdk::Error may escape the code under test.
#pragma once

#include <sinsr/sdk.hpp>

#include <ATen/Parallel.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <unistd.h>

namespace sinsr_fuzz {

inline void init_torch() {
  ::setenv("OMP_NUM_THREADS", "1", 0);
  at::set_num_threads(1);
}

// A file holding the input; one per process (libFuzzer runs inputs one after another).
inline std::string write_temp(const uint8_t* data, size_t size, const std::string& suffix) {
  static const std::string dir = [] {
    const char* t = std::getenv("TMPDIR");
    return std::string(t && *t ? t : "/tmp");
  }();
  const std::string path = dir + "/sinsr-fuzz-" + std::to_string(::getpid()) + suffix;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (size && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
  return path;
}

// SINSR_FUZZ_FOREIGN=count: a foreign exception is counted (printed at exit) instead of
// aborting, to keep looking for memory errors behind a known, not yet fixed escape.
inline bool count_foreign() {
  static const bool on = [] {
    const char* v = std::getenv("SINSR_FUZZ_FOREIGN");
    return v && std::string(v) == "count";
  }();
  return on;
}

struct ForeignCount {
  size_t n = 0;
  std::string first;
  ~ForeignCount() {
    if (n) std::fprintf(stderr, "foreign exceptions (counted, not fixed): %zu; first: %s\n", n, first.c_str());
  }
};

// Runs f; sdk::Error is an accepted answer, any other exception is a finding.
template <class F>
void expect_sdk_errors_only(const char* what, F&& f) {
  try {
    f();
  } catch (const sinsr::sdk::Error&) {
  } catch (const std::exception& e) {
    if (count_foreign()) {
      static ForeignCount count;
      if (count.n++ == 0) count.first = std::string(what) + ": " + e.what();
      return;
    }
    std::fprintf(stderr, "%s: foreign exception escaped: %s\n", what, e.what());
    std::abort();
  }
}

}  // namespace sinsr_fuzz
