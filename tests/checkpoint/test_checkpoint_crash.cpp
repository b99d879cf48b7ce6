// A checkpoint write that dies midway leaves the previous file whole (issue 16: no silent data
// loss). The write is cut by the file-size limit: with SIGXFSZ at its default the process is
// killed inside write(2), the way a crash or a kill would stop it; with SIGXFSZ ignored the
// write fails and the writer must report it and clean up.
#include <sinsr/checkpoint.hpp>
#include <sinsr/sdk.hpp>
#include "host_run.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace {

using sinsr_test::fresh_dir;

std::string bytes_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Runs `body` in a child limited to `max_bytes` per file; returns its wait status.
template <class F>
int in_child_with_file_limit(rlim_t max_bytes, bool ignore_sigxfsz, F&& body) {
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    struct rlimit lim = {max_bytes, max_bytes};
    ::setrlimit(RLIMIT_FSIZE, &lim);
    if (ignore_sigxfsz) std::signal(SIGXFSZ, SIG_IGN);
    ::_exit(body());
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return status;
}

TEST(CheckpointCrash, KilledMidWriteLeavesThePreviousFileIntact) {
  const fs::path d = fresh_dir("killed");
  const std::string path = (d / "model.pth").string();
  sinsr::ckpt::save_state_dict(path, {{"w", at::arange(1000, at::kFloat)}});
  const std::string before = bytes_of(path);
  // The new state is ~4 MB; the child may write 64 kB of any file before the kernel kills it.
  // Made before the fork: a forked child must not start LibTorch's thread pool.
  const sinsr::ckpt::StateDict bigger = {{"w", at::ones({1 << 20}, at::kFloat)}};
  const int status = in_child_with_file_limit(64 << 10, false, [&] {
    sinsr::ckpt::save_state_dict(path, bigger);
    return 0;
  });
  ASSERT_TRUE(WIFSIGNALED(status)) << "the child was not killed by the size limit (status " << status << ")";
  EXPECT_EQ(WTERMSIG(status), SIGXFSZ);
  EXPECT_EQ(bytes_of(path), before);
  auto state = sinsr::ckpt::read_state_dict(path);
  ASSERT_EQ(state.size(), 1u);
  EXPECT_TRUE(state[0].second.equal(at::arange(1000, at::kFloat)));
}

TEST(CheckpointCrash, AFailedWriteIsReportedAndCleanedUp) {
  const fs::path d = fresh_dir("failed");
  const std::string path = (d / "model.pth").string();
  sinsr::ckpt::save_state_dict(path, {{"w", at::arange(10, at::kFloat)}});
  const std::string before = bytes_of(path);
  // Made before the fork: a forked child must not start LibTorch's thread pool.
  const sinsr::ckpt::StateDict bigger = {{"w", at::ones({1 << 20}, at::kFloat)}};
  const int status = in_child_with_file_limit(64 << 10, true, [&] {
    try {
      sinsr::ckpt::save_state_dict(path, bigger);
    } catch (const sinsr::sdk::Error& e) {
      return e.code() == SINSR_ERR_IO && std::string(e.what()).find(path) != std::string::npos ? 42 : 2;
    } catch (...) {
      return 3;  // a foreign exception type
    }
    return 1;  // no error at all
  });
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  EXPECT_EQ(WEXITSTATUS(status), 42) << "1: accepted, 2: wrong code or message, 3: foreign exception";
  EXPECT_EQ(bytes_of(path), before);
  size_t files = 0;
  for (auto& e : fs::directory_iterator(d)) files += e.is_regular_file();
  EXPECT_EQ(files, 1u) << "the temporary file was left behind";
}

}  // namespace
