// sinsr-host infer as a user runs it: folders with a broken file, 16-bit, gray and alpha
// round trips, refusing to overwrite the input, and the real networks (tiny parity weights) on
// the real test images.
#include "host_run.hpp"
#include "parity.hpp"

#include "io/image_io.hpp"

#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <vector>

namespace fs = std::filesystem;

namespace {

using sinsr_test::fresh_dir;
using sinsr_test::HostRun;

HostRun run_host(const std::string& args) {
  return sinsr_test::run_host("infer --plugin " SINSR_TEST_PLUGIN_DIR
                              "/test_components.so --backbone local_blur "
                              "--backbone-weights none --codec none --sampler single-step -q " +
                              args);
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
  // An empty input file fails alone: its output path is not made a folder (it was, before failing).
  std::ofstream(d / "EMPTY.png").flush();
  HostRun empty = run_host("-i " + (d / "EMPTY.png").string() + " -o " + (d / "X.png").string());
  EXPECT_EQ(empty.code, 1);
  EXPECT_NE(empty.output.find("EMPTY.png"), std::string::npos) << empty.output;
  EXPECT_FALSE(fs::exists(d / "X.png")) << empty.output;
}

// The main job's command with the in-tree networks and the tiny parity weights: a folder (Set5,
// odd and non-square sizes) and a single file (RealSet65, with alpha) come out exactly 4x.
TEST(Infer, TinyParityNetworksUpscaleRealImagesFourTimes) {
  fs::path data(sinsr_test::data_dir());
  if (!fs::exists(data / "set5" / "lr_x4") || !fs::exists(data / "realset65"))
    GTEST_SKIP() << "no Set5/RealSet65 in " << data;
  const std::string parity = sinsr_test::parity_dir();
  const std::string main_job =
      "infer -q --sampler deterministic --steps 1 --seed 0 --chop-size 64"
      " --backbone unet_swin --backbone-config " +
      parity +
      "/tiny-unet.yaml"
      " --backbone-weights " +
      parity +
      "/unet_tiny.pth"
      " --codec vq_f4 --codec-config " +
      parity +
      "/tiny-vq.yaml"
      " --codec-weights " +
      parity + "/vq_tiny.pth";
  auto expect_four_times = [](const fs::path& lr, const fs::path& sr) {
    auto in = sinsr::io::read_image(lr.string());
    auto out = sinsr::io::read_image(sr.string());
    EXPECT_EQ(out.pixels.size(0), in.pixels.size(0)) << sr;
    EXPECT_EQ(out.pixels.size(1), 4 * in.pixels.size(1)) << sr;
    EXPECT_EQ(out.pixels.size(2), 4 * in.pixels.size(2)) << sr;
    EXPECT_GT(out.pixels.std().item<double>(), 0.01) << sr << " is flat";
  };

  fs::path out = fresh_dir("set5_x4");
  HostRun folder = sinsr_test::run_host(main_job + " -i " + (data / "set5" / "lr_x4").string() + " -o " + out.string());
  ASSERT_EQ(folder.code, 0) << folder.output;
  int n = 0;
  for (const auto& e : fs::directory_iterator(data / "set5" / "lr_x4")) {
    expect_four_times(e.path(), out / e.path().filename());
    ++n;
  }
  EXPECT_GE(n, 5);

  fs::path lr = data / "realset65" / "penguin1.png";  // RGBA, 167x215
  if (fs::exists(lr)) {
    fs::path sr = out / "penguin1_x4.png";
    HostRun one = sinsr_test::run_host(main_job + " -i " + lr.string() + " -o " + sr.string());
    ASSERT_EQ(one.code, 0) << one.output;
    expect_four_times(lr, sr);
  }
}

}  // namespace

namespace {

// Every output name is known before the first write: a run that would overwrite one of its inputs
// or write one file twice is refused whole, and nothing is written (the input folder's bytes are
// the same after).
std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) out[fs::relative(e.path(), dir).string()] = sinsr_test::read_bytes(e.path());
  return out;
}

TEST(Infer, OutputsThatWouldCollideAreRefusedBeforeAnyWrite) {
  fs::path d = fresh_dir("collide");
  sinsr::io::write_image((d / "x.png").string(), at::rand({3, 8, 8}));
  sinsr::io::write_image((d / "x.jpg").string(), at::rand({3, 8, 8}));
  const auto before = snapshot(d);
  // -o equal to -i: needs --suffix.
  HostRun same = run_host("-i " + d.string() + " -o " + d.string());
  EXPECT_EQ(same.code, 1) << same.output;
  EXPECT_NE(same.output.find("--suffix"), std::string::npos) << same.output;
  EXPECT_EQ(snapshot(d), before);
  // x.jpg -> x.png would replace the input x.png, even with a suffix that does not separate them.
  sinsr::io::write_image((d / "x_x4.png").string(), at::rand({3, 8, 8}));
  const auto before2 = snapshot(d);
  HostRun over = run_host("-i " + d.string() + " -o " + d.string() + " --suffix _x4");
  EXPECT_EQ(over.code, 1) << over.output;
  EXPECT_NE(over.output.find("would overwrite the input " + (d / "x_x4.png").string()), std::string::npos)
      << over.output;
  EXPECT_EQ(snapshot(d), before2);
  fs::remove(d / "x_x4.png");
  // Into another folder, x.jpg and x.png would both write x.png.
  fs::path out = fresh_dir("collide_out", false);
  HostRun twice = run_host("-i " + d.string() + " -o " + out.string());
  EXPECT_EQ(twice.code, 1) << twice.output;
  EXPECT_NE(twice.output.find("would both write"), std::string::npos) << twice.output;
  EXPECT_FALSE(fs::exists(out)) << "nothing, not even the folder, is made";
  // --ext auto keeps each input's format: two files, and "wrote 2" counts them.
  HostRun keep = sinsr_test::run_host("infer --plugin " SINSR_TEST_PLUGIN_DIR
                                      "/test_components.so --backbone local_blur --backbone-weights none --codec "
                                      "none --sampler single-step --ext auto -i " +
                                      d.string() + " -o " + out.string());
  EXPECT_EQ(keep.code, 0) << keep.output;
  EXPECT_NE(keep.output.find("wrote 2 image(s)"), std::string::npos) << keep.output;
  EXPECT_TRUE(fs::exists(out / "x.png") && fs::exists(out / "x.jpg"));
  // In place with a suffix: the inputs stay, the outputs are beside them.
  HostRun in_place = run_host("-i " + d.string() + " -o " + d.string() + " --suffix _x4 --ext auto");
  EXPECT_EQ(in_place.code, 0) << in_place.output;
  EXPECT_EQ(sinsr_test::read_bytes(d / "x.png"), before.at("x.png"));
  EXPECT_EQ(sinsr::io::read_image((d / "x_x4.png").string()).pixels.size(1), 32);
  EXPECT_TRUE(fs::exists(d / "x_x4.jpg"));
}

TEST(Infer, OutputFolderInsideTheInputAndRecursiveRuns) {
  fs::path d = fresh_dir("nested");
  fs::create_directories(d / "sub" / "deeper");
  sinsr::io::write_image((d / "a.png").string(), at::rand({3, 8, 8}));
  sinsr::io::write_image((d / "sub" / "b.png").string(), at::rand({3, 6, 8}));
  sinsr::io::write_image((d / "sub" / "deeper" / "c.png").string(), at::rand({3, 4, 4}));
  HostRun flat = run_host("-i " + d.string() + " -o " + (d / "out").string());
  ASSERT_EQ(flat.code, 0) << flat.output;
  EXPECT_TRUE(fs::exists(d / "out" / "a.png"));
  EXPECT_FALSE(fs::exists(d / "out" / "b.png"));  // not recursive: the top folder only
  // -r mirrors the sub-folders and leaves out the output folder inside the input.
  HostRun deep = run_host("-r -i " + d.string() + " -o " + (d / "out").string());
  ASSERT_EQ(deep.code, 0) << deep.output;
  EXPECT_EQ(sinsr::io::read_image((d / "out" / "sub" / "b.png").string()).pixels.size(1), 24);
  EXPECT_EQ(sinsr::io::read_image((d / "out" / "sub" / "deeper" / "c.png").string()).pixels.size(1), 16);
  EXPECT_FALSE(fs::exists(d / "out" / "out"));
}

// The default thread count follows the cores this process may use, not the machine's load: the
// same command gives the same bytes beside a busy process (and equals -j <cores>).
TEST(Infer, DefaultThreadsGiveTheSameBytesIdleAndBusy) {
  fs::path data(sinsr_test::data_dir());
  if (!fs::exists(data / "set5" / "lr_x4" / "baby.png")) GTEST_SKIP() << "no Set5";
  const std::string parity = sinsr_test::parity_dir();
  const std::string line =
      "infer -q --seed 0 --backbone unet_swin --backbone-config " + parity + "/tiny-unet.yaml --backbone-weights " +
      parity + "/unet_tiny.pth --codec vq_f4 --codec-config " + parity + "/tiny-vq.yaml --codec-weights " + parity +
      "/vq_tiny.pth --sampler deterministic --steps 1 -i " + (data / "set5" / "lr_x4" / "baby.png").string();
  fs::path d = fresh_dir("threads");
  ASSERT_EQ(sinsr_test::run_host(line + " -o " + (d / "idle.png").string()).code, 0);
  // Busy: a child spinning on every core while the same command runs.
  std::vector<pid_t> spinners;
  const long cores = ::sysconf(_SC_NPROCESSORS_ONLN);
  for (long k = 0; k < cores; ++k) {
    pid_t p = ::fork();
    if (p == 0) {
      for (volatile unsigned long i = 0;; ++i) {
      }
    }
    spinners.push_back(p);
  }
  HostRun busy = sinsr_test::run_host(line + " -o " + (d / "busy.png").string());
  for (pid_t p : spinners) ::kill(p, SIGKILL);
  for (pid_t p : spinners) ::waitpid(p, nullptr, 0);
  ASSERT_EQ(busy.code, 0) << busy.output;
  EXPECT_EQ(sinsr_test::read_bytes(d / "idle.png"), sinsr_test::read_bytes(d / "busy.png"));
  cpu_set_t set;
  CPU_ZERO(&set);
  ASSERT_EQ(::sched_getaffinity(0, sizeof set, &set), 0);
  ASSERT_EQ(
      sinsr_test::run_host(line + " -j " + std::to_string(CPU_COUNT(&set)) + " -o " + (d / "all.png").string()).code,
      0);
  EXPECT_EQ(sinsr_test::read_bytes(d / "idle.png"), sinsr_test::read_bytes(d / "all.png"));
}

}  // namespace

namespace {

// --outscale: the model's x4, then MATLAB-style bicubic to any factor; --max-pixels refuses an
// input over the count, naming it, and the folder run goes on with the others.
TEST(Infer, OutscaleAndMaxPixels) {
  fs::path d = fresh_dir("outscale");
  sinsr::io::write_image((d / "a.png").string(), at::rand({3, 8, 12}));
  ASSERT_EQ(run_host("-i " + (d / "a.png").string() + " -o " + (d / "x2.png").string() + " --outscale 2").code, 0);
  EXPECT_EQ(sinsr::io::read_image((d / "x2.png").string()).pixels.sizes(), (at::IntArrayRef{3, 16, 24}));
  ASSERT_EQ(run_host("-i " + (d / "a.png").string() + " -o " + (d / "x15.png").string() + " --outscale 1.5").code, 0);
  EXPECT_EQ(sinsr::io::read_image((d / "x15.png").string()).pixels.sizes(), (at::IntArrayRef{3, 12, 18}));
  ASSERT_EQ(run_host("-i " + (d / "a.png").string() + " -o " + (d / "x4.png").string() + " --outscale 4").code, 0);
  ASSERT_EQ(run_host("-i " + (d / "a.png").string() + " -o " + (d / "plain.png").string()).code, 0);
  EXPECT_TRUE(sinsr_test::read_bytes(d / "x4.png") == sinsr_test::read_bytes(d / "plain.png"));
  EXPECT_EQ(run_host("-i " + (d / "a.png").string() + " -o " + (d / "bad.png").string() + " --outscale 0").code, 2);

  fs::path in = fresh_dir("max_pixels_in"), out = fresh_dir("max_pixels_out", false);
  sinsr::io::write_image((in / "small.png").string(), at::rand({3, 4, 4}));
  sinsr::io::write_image((in / "big.png").string(), at::rand({3, 8, 8}));
  HostRun r = run_host("-i " + in.string() + " -o " + out.string() + " --max-pixels 20");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("big.png: the header declares 8x8, beyond the limit of 20 pixels (--max-pixels raises it)"),
            std::string::npos)
      << r.output;
  EXPECT_TRUE(fs::exists(out / "small.png"));
  EXPECT_FALSE(fs::exists(out / "big.png"));
}

}  // namespace

namespace {

// A FIFO given as the input is refused at once instead of blocking the run forever, and an
// absurd -j is capped rather than starting a thread per unit.
TEST(Infer, PipesAreRefusedAndThreadCountsCapped) {
  fs::path d = fresh_dir("fifo");
  ASSERT_EQ(::mkfifo((d / "pipe.png").c_str(), 0600), 0);
  HostRun r = run_host("-i " + (d / "pipe.png").string() + " -o " + (d / "x.png").string());
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("not a regular file"), std::string::npos) << r.output;
  sinsr::io::write_image((d / "a.png").string(), at::rand({3, 8, 8}));
  HostRun many = run_host("-j 100000 -i " + (d / "a.png").string() + " -o " + (d / "a_x4.png").string());
  EXPECT_EQ(many.code, 0) << many.output;
}

}  // namespace

namespace {

// A photo's metadata survives the upscale and its EXIF orientation is applied: a JPEG stored
// sideways (Orientation 6) with a camera make and model comes out upright, Orientation 1, with
// the make and model kept.
TEST(Infer, ExifOrientationIsAppliedAndMetadataKept) {
  if (std::system("oiiotool --help > /dev/null 2>&1") != 0) GTEST_SKIP() << "no oiiotool";
  fs::path d = fresh_dir("exif");
  sinsr::io::write_image((d / "plain.png").string(), at::rand({3, 6, 8}));  // stored 8 wide, 6 high
  const std::string make = "oiiotool " + (d / "plain.png").string() +
                           " --attrib Orientation 6 --attrib Make TestCam --attrib Model X1 -o " +
                           (d / "photo.jpg").string();
  ASSERT_EQ(std::system(make.c_str()), 0);
  auto in = sinsr::io::read_image((d / "photo.jpg").string());
  EXPECT_EQ(in.orientation, 6);
  EXPECT_EQ(in.pixels.sizes(), (at::IntArrayRef{3, 8, 6}));  // upright: 6 wide, 8 high
  HostRun r = run_host("-i " + (d / "photo.jpg").string() + " -o " + (d / "up.jpg").string());
  ASSERT_EQ(r.code, 0) << r.output;
  auto out = sinsr::io::read_image((d / "up.jpg").string());
  EXPECT_EQ(out.orientation, 1);
  EXPECT_EQ(out.pixels.sizes(), (at::IntArrayRef{3, 32, 24}));
  const std::string info = "oiiotool --info -v " + (d / "up.jpg").string() + " > " + (d / "info.txt").string();
  ASSERT_EQ(std::system(info.c_str()), 0);
  const std::string text = sinsr_test::read_bytes(d / "info.txt");
  EXPECT_NE(text.find("TestCam"), std::string::npos) << text;
  EXPECT_NE(text.find("X1"), std::string::npos) << text;
}

}  // namespace
