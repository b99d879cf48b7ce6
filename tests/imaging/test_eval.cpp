// sinsr-host eval: the published bicubic anchor on Set5, and pairing by name with problems
// reported by file.
#include "parity.hpp"

#include "io/image_io.hpp"

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sys/wait.h>

namespace fs = std::filesystem;

namespace {

int run(const std::string& args, std::string* output = nullptr) {
  std::string log = ::testing::TempDir() + "/eval_" + std::to_string(::getpid()) + ".log";
  int status = std::system((std::string(SINSR_HOST_EXE) + " eval " + args + " > " + log + " 2>&1").c_str());
  if (output) {
    std::ifstream in(log);
    output->assign((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(Eval, Set5BicubicReproducesThePublishedBaseline) {
  std::string data = sinsr_test::data_dir() + "/set5";
  if (!fs::exists(data)) GTEST_SKIP() << "no Set5 in " << sinsr_test::data_dir();
  std::string json = ::testing::TempDir() + "/set5_" + std::to_string(::getpid()) + ".json";
  ASSERT_EQ(run("--bicubic-from " + data + "/lr_x4 --gt " + data + "/hr --json " + json), 0);
  std::ifstream in(json);
  auto j = nlohmann::json::parse(in);
  EXPECT_EQ(j["count"].get<int>(), 5);
  EXPECT_NEAR(j["mean_psnr"].get<double>(), 28.42, 0.02);
  EXPECT_NEAR(j["mean_ssim"].get<double>(), 0.810, 0.002);
}

TEST(Eval, PairsByNameAndReportsMissingAndMismatchedFiles) {
  fs::path d = fs::path(::testing::TempDir()) / ("eval_pairs_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d / "pred");
  fs::create_directories(d / "gt");
  at::Tensor a = at::rand({3, 32, 32}), b = at::rand({3, 32, 32});
  sinsr::io::write_image((d / "gt" / "a.png").string(), a);
  sinsr::io::write_image((d / "gt" / "b.png").string(), b);
  sinsr::io::write_image((d / "gt" / "c.png").string(), b);
  sinsr::io::write_image((d / "pred" / "b.png").string(), b);  // sorted position would pair b with a
  sinsr::io::write_image((d / "pred" / "a.png").string(), a);
  sinsr::io::write_image((d / "pred" / "c.png").string(), at::rand({3, 16, 16}));
  sinsr::io::write_image((d / "pred" / "z.png").string(), a);
  std::string out;
  EXPECT_EQ(run("--pred " + (d / "pred").string() + " --gt " + (d / "gt").string() + " --crop-border 0", &out), 1);
  EXPECT_NE(out.find("z.png"), std::string::npos) << out;   // no ground truth
  EXPECT_NE(out.find("c.png"), std::string::npos) << out;   // size mismatch
  EXPECT_NE(out.find("inf"), std::string::npos) << out;     // a and b matched by name: identical
}

}  // namespace
