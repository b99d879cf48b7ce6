// sinsr-host degrade as a user runs it: a folder with a broken file, per-image seeds that do not
// depend on the rest of the folder, sizes, bicubic mode, and never overwriting an input.
#include "host_run.hpp"
#include "parity.hpp"

#include "imaging/imresize.hpp"
#include "io/image_io.hpp"

#include <sys/wait.h>
#include <unistd.h>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;

namespace {

using sinsr_test::fresh_dir;
using sinsr_test::HostRun;

HostRun run_host(const std::string& args) { return sinsr_test::run_host("degrade --threads 2 " + args); }

std::string bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

at::Tensor picture(int64_t h, int64_t w, double phase) {
  at::Tensor y = at::arange(h, at::kFloat).view({1, h, 1}), x = at::arange(w, at::kFloat).view({1, 1, w});
  at::Tensor c = at::arange(3, at::kFloat).view({3, 1, 1});
  return (0.5 + 0.3 * at::sin(x * 0.11 + c + phase) * at::cos(y * 0.07) + 0.1 * at::sin(x * 1.1 + y * 0.8)).clamp(0, 1);
}

}  // namespace

TEST(DegradeCli, FolderWithABrokenFile) {
  fs::path in = fresh_dir("in"), out = fresh_dir("out") / "lr";
  sinsr::io::write_image((in / "a.png").string(), picture(64, 80, 0));
  sinsr::io::write_image((in / "b.jpg").string(), picture(50, 38, 1));
  sinsr::io::write_image((in / "gray.png").string(), picture(32, 32, 2).narrow(0, 0, 1));
  std::ofstream(in / "broken.png") << "not an image at all";
  HostRun r = run_host("--in " + in.string() + " --out " + out.string() + " --seed 7");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("broken.png"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(out / "broken.png"));
  EXPECT_EQ(sinsr::io::read_image((out / "a.png").string()).pixels.sizes(), (at::IntArrayRef{3, 16, 20}));
  EXPECT_EQ(sinsr::io::read_image((out / "b.png").string()).pixels.sizes(), (at::IntArrayRef{3, 12, 9}));
  EXPECT_EQ(sinsr::io::read_image((out / "gray.png").string()).pixels.sizes(), (at::IntArrayRef{1, 8, 8}));
}

TEST(DegradeCli, SeedsArePerImageAndReproducible) {
  fs::path one = fresh_dir("one"), two = fresh_dir("two"), o1 = fresh_dir("o1"), o2 = fresh_dir("o2"),
           o3 = fresh_dir("o3");
  sinsr::io::write_image((one / "x.png").string(), picture(64, 64, 0));
  fs::copy_file(one / "x.png", two / "x.png");
  sinsr::io::write_image((two / "y.png").string(), picture(64, 64, 3));
  ASSERT_EQ(run_host("--in " + one.string() + " --out " + o1.string() + " --seed 5").code, 0);
  ASSERT_EQ(run_host("--in " + two.string() + " --out " + o2.string() + " --seed 5 --scale 4").code, 0);
  ASSERT_EQ(run_host("--in " + two.string() + " --out " + o3.string() + " --seed 6").code, 0);
  // Same seed and name: same bytes whatever else is in the folder.
  EXPECT_EQ(bytes(o1 / "x.png"), bytes(o2 / "x.png"));
  // Another seed, or another name under the same seed: other images.
  EXPECT_NE(bytes(o2 / "x.png"), bytes(o3 / "x.png"));
  EXPECT_NE(bytes(o2 / "x.png"), bytes(o2 / "y.png"));
}

TEST(DegradeCli, ConfigScaleAndBicubic) {
  fs::path in = fresh_dir("cfg_in"), out = fresh_dir("cfg_out");
  at::Tensor hr = picture(40, 60, 0);
  sinsr::io::write_image((in / "p.png").string(), hr);
  fs::path cfg = in.parent_path() / ("degrade_cfg_" + std::to_string(::getpid()) + ".yaml");
  std::ofstream(cfg) << "degradation:\n  sf: 2\n  second_order_prob: 0.0\n";
  HostRun r = run_host("--in " + in.string() + " --out " + out.string() + " --seed 1 --config " + cfg.string());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(sinsr::io::read_image((out / "p.png").string()).pixels.sizes(), (at::IntArrayRef{3, 20, 30}));
  // Bad option values fail with the key named.
  HostRun bad =
      run_host("--in " + in.string() + " --out " + out.string() + " --seed 1 --config '{\"jpeg_range\": [5, 500]}'");
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.output.find("jpeg_range"), std::string::npos) << bad.output;
  // MATLAB bicubic mode: exactly imresize, rounded to 8 bits by the PNG.
  fs::path bic = fresh_dir("bic");
  ASSERT_EQ(run_host("--in " + in.string() + " --out " + bic.string() + " --seed 1 --mode bicubic --scale 4").code, 0);
  at::Tensor got = sinsr::io::read_image((bic / "p.png").string()).pixels;
  at::Tensor src = sinsr::io::read_image((in / "p.png").string()).pixels;
  at::Tensor want = at::round(sinsr::imaging::imresize(src, 0.25).clamp(0, 1) * 255) / 255;
  EXPECT_TRUE(sinsr_test::all_close(got, want, 1.01 / 255));
}

TEST(DegradeCli, NeverOverwritesInputs) {
  fs::path d = fresh_dir("same");
  sinsr::io::write_image((d / "x.png").string(), picture(32, 32, 0));
  const std::string before = bytes(d / "x.png");
  HostRun r = run_host("--in " + d.string() + " --out " + d.string() + " --seed 1");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("overwrite"), std::string::npos) << r.output;
  EXPECT_EQ(bytes(d / "x.png"), before);
  HostRun missing = run_host("--in " + (d / "nope").string() + " --out " + (d / "o").string() + " --seed 1");
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.output.find("nope"), std::string::npos);
  EXPECT_EQ(run_host("--in " + d.string() + " --out " + (d / "o").string()).code, 2);  // --seed is required
}

// Bicubic draws nothing, so it takes no seed; the random mode still insists on one.
TEST(DegradeCli, BicubicNeedsNoSeed) {
  fs::path in = fresh_dir("noseed_in"), out = fresh_dir("noseed_out");
  sinsr::io::write_image((in / "p.png").string(), picture(40, 60, 0));
  HostRun r = run_host("--in " + in.string() + " --out " + out.string() + " --mode bicubic");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(sinsr::io::read_image((out / "p.png").string()).pixels.sizes(), (at::IntArrayRef{3, 10, 15}));
  HostRun seedless = run_host("--in " + in.string() + " --out " + out.string());
  EXPECT_EQ(seedless.code, 2) << seedless.output;
  EXPECT_NE(seedless.output.find("--seed is required for --mode realesrgan"), std::string::npos) << seedless.output;
}

// The real-world test pairs of ../shared/data were made by `degrade --seed 0` and frozen: the
// degradation (its JPEG step through libjpeg included) still makes them sample for sample, so
// scores on them keep meaning what they meant. Set5: 5 images, two JPEG passes each.
TEST(DegradeCli, RemakesTheFrozenRealWorldPairs) {
  const fs::path hr = fs::path(sinsr_test::data_dir()) / "set5" / "hr",
                 frozen = fs::path(sinsr_test::data_dir()) / "set5" / "lr_realesrgan_x4";
  if (!fs::is_directory(hr) || !fs::is_directory(frozen)) GTEST_SKIP() << "no " << frozen;
  fs::path out = fresh_dir("frozen_out") / "lr";
  HostRun r = run_host("--in " + hr.string() + " --out " + out.string() + " --seed 0 -q");
  ASSERT_EQ(r.code, 0) << r.output;
  int compared = 0;
  for (const auto& file : sinsr::io::list_images(frozen.string())) {
    const fs::path name = fs::path(file).filename();
    at::Tensor want = sinsr::io::read_image(file).pixels, got = sinsr::io::read_image((out / name).string()).pixels;
    ASSERT_EQ(got.sizes(), want.sizes()) << name;
    EXPECT_TRUE(at::equal(got, want)) << name << ": max difference " << (got - want).abs().max().item<double>() * 255
                                      << " levels";
    ++compared;
  }
  EXPECT_GT(compared, 0);
}
