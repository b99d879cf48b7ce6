// Running the sinsr-host program from a test: its exit code and everything it printed.
#pragma once

#include <gtest/gtest.h>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace sinsr_test {

struct HostRun {
  int code;               // the exit status, -1 when killed by a signal
  std::string output;     // stdout and stderr together
  long peak_rss_kb = -1;  // the largest resident set of the line's processes (-1: unknown)
};

// A whole file as bytes ("" when unreadable).
inline std::string read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// `sinsr-host <args>` through the shell (args may hold redirections or quotes).
inline HostRun run_host(const std::string& args) {
  static int calls = 0;
  std::string log =
      ::testing::TempDir() + "/sinsr_host_" + std::to_string(::getpid()) + "_" + std::to_string(++calls) + ".log";
  const std::string line = std::string(SINSR_HOST_EXE) + " " + args + " > " + log + " 2>&1";
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", line.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  struct rusage usage {};
  const bool waited = pid > 0 && ::wait4(pid, &status, 0, &usage) == pid;
  std::string text = read_bytes(log);
  std::filesystem::remove(log);
  if (!waited) return {-1, text};
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, text, usage.ru_maxrss};  // maxrss covers the shell's children
}

// An empty folder of the test's own under the gtest temporary directory.
inline std::filesystem::path fresh_dir(const std::string& name, bool create = true) {
  std::filesystem::path d =
      std::filesystem::path(::testing::TempDir()) / ("sinsr_" + std::to_string(::getpid()) + "_" + name);
  std::filesystem::remove_all(d);
  if (create) std::filesystem::create_directories(d);
  return d;
}

}  // namespace sinsr_test
