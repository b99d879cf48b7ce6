// Distributed (c10d) across real processes: the test starts dist_worker ranks on a free
// loopback port and checks what each rank wrote. Children are killed on any failure.
#include "train/distributed.hpp"

#include <parity.hpp>
#include <sinsr/checkpoint.hpp>
#include <sinsr/sdk.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace {

namespace fs = std::filesystem;
using sinsr::train::Distributed;
using Clock = std::chrono::steady_clock;

const char* kDistVars[] = {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "SINSR_DIST_TIMEOUT"};

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof(a);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    if (fd >= 0) ::close(fd);
    throw std::runtime_error("cannot find a free port");
  }
  int port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

fs::path temp_dir() {
  auto d = fs::temp_directory_path() /
           ("sinsr_dist_" + std::to_string(::getpid()) + "_" + std::to_string(Clock::now().time_since_epoch().count()));
  fs::create_directories(d);
  return d;
}

std::string read_text(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

struct Child {
  pid_t pid = -1;
  int status = -1;
  fs::path out, err;
};

// Starts children, waits for all of them with a deadline, kills the rest on the way out.
class Ranks {
 public:
  ~Ranks() { kill_all(); }

  void start(const std::string& mode, const fs::path& dir, const std::map<std::string, std::string>& env, int tag) {
    Child c;
    c.out = dir / ("rank" + std::to_string(tag) + ".pth");
    c.err = dir / ("rank" + std::to_string(tag) + ".err");
    std::vector<std::string> envs;
    for (char** e = environ; *e; ++e) {
      std::string kv(*e);
      bool ours = false;
      for (const char* v : kDistVars) ours |= kv.rfind(std::string(v) + "=", 0) == 0;
      if (!ours) envs.push_back(kv);
    }
    for (auto& [k, v] : env) envs.push_back(k + "=" + v);
    std::vector<char*> envp;
    for (auto& s : envs) envp.push_back(s.data());
    envp.push_back(nullptr);
    std::string exe = SINSR_DIST_WORKER, out = c.out.string();
    std::vector<char*> argv{exe.data(), const_cast<char*>(mode.c_str()), out.data(), nullptr};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, c.err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    int rc = posix_spawn(&c.pid, exe.c_str(), &fa, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) throw std::runtime_error("posix_spawn " + exe + " failed: " + std::to_string(rc));
    children_.push_back(c);
  }

  // True when every child ended before the deadline.
  bool wait_all(std::chrono::seconds timeout) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
      bool running = false;
      for (auto& c : children_) {
        if (c.pid <= 0) continue;
        int st = 0;
        pid_t r = ::waitpid(c.pid, &st, WNOHANG);
        if (r == c.pid) {
          c.status = st;
          c.pid = -1;
        } else {
          running = true;
        }
      }
      if (!running) return true;
      if (Clock::now() > deadline) {
        kill_all();
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  const std::vector<Child>& children() const { return children_; }

  std::string report() const {
    std::string s;
    for (size_t i = 0; i < children_.size(); ++i)
      s += "rank " + std::to_string(i) + " status " + std::to_string(children_[i].status) + ": " +
           read_text(children_[i].err) + "\n";
    return s;
  }

  bool all_ok() const {
    for (auto& c : children_)
      if (!(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0)) return false;
    return true;
  }

 private:
  void kill_all() {
    for (auto& c : children_) {
      if (c.pid > 0) {
        ::kill(c.pid, SIGKILL);
        ::waitpid(c.pid, &c.status, 0);
        c.pid = -1;
      }
    }
  }
  std::vector<Child> children_;
};

std::map<std::string, at::Tensor> read(const fs::path& p) {
  std::map<std::string, at::Tensor> m;
  for (auto& [k, v] : sinsr::ckpt::read_state_dict(p.string())) m[k] = v;
  return m;
}

// Runs `world` ranks of a mode; retries with a new port when one was taken meanwhile.
std::vector<std::map<std::string, at::Tensor>> run_ranks(const std::string& mode, int world) {
  std::string last;
  for (int attempt = 0; attempt < 3; ++attempt) {
    fs::path dir = temp_dir();
    int port = free_port();
    Ranks ranks;
    for (int r = 0; r < world; ++r)
      ranks.start(mode, dir,
                  {{"RANK", std::to_string(r)},
                   {"WORLD_SIZE", std::to_string(world)},
                   {"LOCAL_RANK", std::to_string(r)},
                   {"MASTER_ADDR", "127.0.0.1"},
                   {"MASTER_PORT", std::to_string(port)},
                   {"SINSR_DIST_TIMEOUT", "60"}},
                  r);
    bool finished = ranks.wait_all(std::chrono::seconds(60));
    last = (finished ? "" : "timed out after 60 s\n") + ranks.report();
    if (finished && ranks.all_ok()) {
      std::vector<std::map<std::string, at::Tensor>> res;
      for (auto& c : ranks.children()) res.push_back(read(c.out));
      fs::remove_all(dir);
      return res;
    }
    fs::remove_all(dir);
    if (last.find("ddress already in use") == std::string::npos) break;
  }
  ADD_FAILURE() << mode << " with " << world << " ranks failed:\n" << last;
  return {};
}

// One process, no distributed environment at all.
std::map<std::string, at::Tensor> run_single(const std::string& mode) {
  fs::path dir = temp_dir();
  Ranks ranks;
  ranks.start(mode, dir, {}, 0);
  bool finished = ranks.wait_all(std::chrono::seconds(60));
  if (!finished || !ranks.all_ok()) {
    ADD_FAILURE() << "single-process " << mode << " failed:\n" << ranks.report();
    return {};
  }
  auto r = read(ranks.children()[0].out);
  fs::remove_all(dir);
  return r;
}

TEST(Distributed, TwoRanksAverageInBucketsAndBroadcast) {
  auto res = run_ranks("collectives", 2);
  ASSERT_EQ(res.size(), 2u);
  auto& r0 = res[0];
  auto& r1 = res[1];
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(res[r]["rank"].item<int64_t>(), r);
    EXPECT_EQ(res[r]["world_size"].item<int64_t>(), 2);
    EXPECT_EQ(res[r]["local_rank"].item<int64_t>(), r);
  }
  for (const char* n : {"small", "dbl", "big", "transposed", "slice", "grad_like"}) {
    std::string in = std::string("in.") + n, out = std::string("out.") + n;
    ASSERT_TRUE(r0.count(out) && r1.count(out)) << n;
    EXPECT_FALSE(at::equal(r0[in], r1[in])) << n << ": rank inputs should differ";
    at::Tensor mean = (r0[in].to(at::kDouble) + r1[in].to(at::kDouble)) / 2;
    double tol = r0[in].scalar_type() == at::kDouble ? 1e-15 : 1e-6;
    EXPECT_TRUE(sinsr_test::all_close(r0[out], mean, tol, tol)) << n;
    EXPECT_TRUE(at::equal(r0[out], r1[out])) << n << ": ranks disagree";
    EXPECT_EQ(r0[out].scalar_type(), r0[in].scalar_type()) << n;
  }
  // Views were written through: the transposed view's base, and only the slice of `wide`.
  for (auto* r : {&r0, &r1}) {
    EXPECT_TRUE(at::equal((*r)["out.square"].t(), (*r)["out.transposed"]));
    EXPECT_TRUE(at::equal((*r)["out.wide"].narrow(1, 5, 10), (*r)["out.slice"]));
    EXPECT_TRUE(at::equal((*r)["out.wide"].narrow(1, 0, 5), (*r)["in.wide"].narrow(1, 0, 5)));
    EXPECT_TRUE(at::equal((*r)["out.wide"].narrow(1, 15, 5), (*r)["in.wide"].narrow(1, 15, 5)));
  }
  for (const char* n : {"long", "bool", "float", "view"}) {
    std::string in = std::string("bin.") + n, out = std::string("bout.") + n;
    EXPECT_FALSE(at::equal(r0[in], r1[in])) << n;
    EXPECT_TRUE(at::equal(r0[out], r0[in])) << n;
    EXPECT_TRUE(at::equal(r1[out], r0[in])) << n << ": rank 1 did not receive rank 0's values";
    EXPECT_EQ(r1[out].scalar_type(), r1[in].scalar_type()) << n;
  }
  EXPECT_DOUBLE_EQ(r0["sum"].item<double>(), 1.5 + 2.5);
  EXPECT_DOUBLE_EQ(r1["sum"].item<double>(), 1.5 + 2.5);
}

TEST(Distributed, TwoRankSgdEqualsOneProcessFullBatch) {
  auto two = run_ranks("sgd", 2);
  auto one = run_single("sgd");
  ASSERT_EQ(two.size(), 2u);
  ASSERT_FALSE(one.empty());
  EXPECT_EQ(one["world_size"].item<int64_t>(), 1);
  for (const char* n : {"W", "b"}) {
    EXPECT_TRUE(at::equal(two[0][n], two[1][n])) << n << ": ranks disagree";
    EXPECT_TRUE(sinsr_test::all_close(two[0][n], one[n], 1e-6, 0)) << n;
  }
}

TEST(Distributed, RendezvousTimesOutWithAClearError) {
  // Rank 1 of 2 with nobody serving the port; then rank 0 with nobody joining.
  for (int rank : {1, 0}) {
    fs::path dir = temp_dir();
    Ranks ranks;
    ranks.start("init", dir,
                {{"RANK", std::to_string(rank)},
                 {"WORLD_SIZE", "2"},
                 {"MASTER_ADDR", "127.0.0.1"},
                 {"MASTER_PORT", std::to_string(free_port())},
                 {"SINSR_DIST_TIMEOUT", "2"}},
                0);
    auto t0 = Clock::now();
    ASSERT_TRUE(ranks.wait_all(std::chrono::seconds(60))) << "rank " << rank << " hung past 60 s";
    double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    EXPECT_LT(secs, 30) << "rank " << rank;
    EXPECT_FALSE(ranks.all_ok()) << "rank " << rank << " succeeded alone";
    std::string err = read_text(ranks.children()[0].err);
    EXPECT_NE(err.find("rendezvous"), std::string::npos) << err;
    EXPECT_NE(err.find("MASTER_PORT"), std::string::npos) << err;
    EXPECT_NE(err.find("SINSR_DIST_TIMEOUT"), std::string::npos) << err;
    fs::remove_all(dir);
  }
}

// Sets the distributed variables for one scope and restores them afterwards.
class EnvScope {
 public:
  explicit EnvScope(const std::map<std::string, std::string>& vars) {
    for (const char* v : kDistVars) {
      const char* old = std::getenv(v);
      if (old) saved_[v] = old;
      ::unsetenv(v);
    }
    for (auto& [k, v] : vars) ::setenv(k.c_str(), v.c_str(), 1);
  }
  ~EnvScope() {
    for (const char* v : kDistVars) ::unsetenv(v);
    for (auto& [k, v] : saved_) ::setenv(k.c_str(), v.c_str(), 1);
  }

 private:
  std::map<std::string, std::string> saved_;
};

void expect_env_error(const std::map<std::string, std::string>& vars, const std::string& needle,
                      const std::string& backend = "auto") {
  EnvScope env(vars);
  try {
    Distributed::from_env(backend);
    ADD_FAILURE() << "accepted environment naming " << needle;
  } catch (const sinsr::sdk::Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(Distributed, MalformedEnvironmentNamesTheVariable) {
  expect_env_error({{"WORLD_SIZE", "two"}, {"RANK", "0"}}, "WORLD_SIZE");
  expect_env_error({{"WORLD_SIZE", "0"}}, "WORLD_SIZE");
  expect_env_error({{"WORLD_SIZE", "2"}}, "RANK");
  expect_env_error({{"WORLD_SIZE", "2"}, {"RANK", "2"}}, "RANK");
  expect_env_error({{"WORLD_SIZE", "2"}, {"RANK", "-1"}}, "RANK");
  expect_env_error({{"WORLD_SIZE", "2"}, {"RANK", "1x"}}, "RANK");
  expect_env_error({{"WORLD_SIZE", "2"}, {"RANK", "0"}, {"MASTER_PORT", "70000"}}, "MASTER_PORT");
  expect_env_error({{"WORLD_SIZE", "2"}, {"RANK", "0"}, {"MASTER_PORT", "port"}}, "MASTER_PORT");
  expect_env_error({{"WORLD_SIZE", "2"}, {"RANK", "0"}, {"LOCAL_RANK", "a"}}, "LOCAL_RANK");
  expect_env_error({{"WORLD_SIZE", "2"}, {"RANK", "0"}, {"SINSR_DIST_TIMEOUT", "0"}}, "SINSR_DIST_TIMEOUT");
  expect_env_error({}, "mpi", "mpi");
}

TEST(Distributed, WorldSizeOneIsANoOp) {
  for (auto vars : {std::map<std::string, std::string>{}, std::map<std::string, std::string>{{"WORLD_SIZE", "1"}}}) {
    EnvScope env(vars);
    auto d = Distributed::from_env();
    EXPECT_EQ(d->rank(), 0);
    EXPECT_EQ(d->world_size(), 1);
    EXPECT_TRUE(d->is_main());
    at::Tensor a = at::randn({5, 5});
    at::Tensor a0 = a.clone();
    d->allreduce_mean({a});
    d->broadcast({a});
    d->barrier();
    EXPECT_TRUE(at::equal(a, a0));
    EXPECT_EQ(d->allreduce_sum(2.25), 2.25);
  }
}

}  // namespace
