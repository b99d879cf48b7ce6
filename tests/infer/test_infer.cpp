// sinsr-host infer as a user runs it: folders with a broken file, 16-bit, gray and alpha
// round trips, and refusing to overwrite the input.
#include "host_run.hpp"
#include "parity.hpp"

#include "io/image_io.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sys/wait.h>

namespace fs = std::filesystem;

namespace {

using sinsr_test::fresh_dir;
using sinsr_test::HostRun;

HostRun run_host(const std::string& args) {
  return sinsr_test::run_host("infer --plugin " SINSR_TEST_PLUGIN_DIR "/test_components.so --backbone local_blur "
                              "--backbone-weights none --codec none --sampler single-step -q " + args);
}

TEST(Infer, FolderSkipsBrokenImagesAndReportsThem) {
  fs::path in = fresh_dir("in"), out = fresh_dir("out") / "sr";
  sinsr::io::write_image((in / "a.png").string(), at::rand({3, 12, 16}));
  sinsr::io::write_image((in / "b.jpg").string(), at::rand({3, 10, 10}));
  std::ofstream(in / "broken.png") << "definitely not a png";
  HostRun r = run_host("-i " + in.string() + " -o " + out.string());
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("broken.png"), std::string::npos) << r.output;
  auto a = sinsr::io::read_image((out / "a.png").string());
  EXPECT_EQ(a.pixels.sizes(), (at::IntArrayRef{3, 48, 64}));
  auto b = sinsr::io::read_image((out / "b.png").string());
  EXPECT_EQ(b.pixels.sizes(), (at::IntArrayRef{3, 40, 40}));
  EXPECT_FALSE(fs::exists(out / "broken.png"));
}

TEST(Infer, SixteenBitGrayAndAlphaRoundTrip) {
  fs::path d = fresh_dir("formats");
  sinsr::io::write_image((d / "deep.png").string(), at::rand({3, 8, 8}), 16);
  sinsr::io::write_image((d / "gray.png").string(), at::rand({1, 8, 8}));
  sinsr::io::write_image((d / "rgba.png").string(), at::rand({4, 8, 8}));
  for (std::string name : {"deep", "gray", "rgba"}) {
    HostRun r = run_host("-i " + (d / (name + ".png")).string() + " -o " + (d / (name + "_x4.png")).string());
    ASSERT_EQ(r.code, 0) << r.output;
  }
  auto deep = sinsr::io::read_image((d / "deep_x4.png").string());
  EXPECT_EQ(deep.bits, 16);
  EXPECT_EQ(deep.pixels.sizes(), (at::IntArrayRef{3, 32, 32}));
  EXPECT_EQ(sinsr::io::read_image((d / "gray_x4.png").string()).pixels.size(0), 1);
  auto rgba = sinsr::io::read_image((d / "rgba_x4.png").string());
  EXPECT_EQ(rgba.pixels.size(0), 4);
}

TEST(Infer, RefusesToOverwriteItsInputAndMissingFiles) {
  fs::path d = fresh_dir("same");
  sinsr::io::write_image((d / "x.png").string(), at::rand({3, 8, 8}));
  auto before = fs::file_size(d / "x.png");
  HostRun r = run_host("-i " + (d / "x.png").string() + " -o " + (d / "x.png").string());
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("overwrite"), std::string::npos) << r.output;
  EXPECT_EQ(fs::file_size(d / "x.png"), before);
  HostRun missing = run_host("-i " + (d / "nope.png").string() + " -o " + (d / "out.png").string());
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.output.find("nope.png"), std::string::npos) << missing.output;
}

}  // namespace
