// sinsr-host eval: the published bicubic anchors on Set5 and Set14, pairing by name, and every
// problem reported by file.
#include "host_run.hpp"
#include "parity.hpp"

#include "imaging/imresize.hpp"
#include "imaging/metrics.hpp"
#include "imaging/niqe.hpp"
#include "io/image_io.hpp"

#include <nlohmann/json.hpp>

#include <sys/wait.h>
#include <unistd.h>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;

namespace {

int run(const std::string& args, std::string* output = nullptr) {
  sinsr_test::HostRun r = sinsr_test::run_host("eval " + args);
  if (output) *output = r.output;
  return r.code;
}

nlohmann::json bicubic_anchor(const std::string& set) {
  fs::path data = fs::path(sinsr_test::data_dir()) / set;
  std::string json = ::testing::TempDir() + "/" + set + "_" + std::to_string(::getpid()) + ".json";
  std::string out;
  int rc =
      run("--bicubic-from " + (data / "lr_x4").string() + " --gt " + (data / "hr").string() + " --json " + json, &out);
  EXPECT_EQ(rc, 0) << out;
  std::ifstream in(json);
  return nlohmann::json::parse(in);
}

// The commonly published MATLAB-bicubic x4 figures (Y channel, 4-pixel border).
TEST(Eval, Set5BicubicReproducesThePublishedBaseline) {
  if (!fs::exists(fs::path(sinsr_test::data_dir()) / "set5")) GTEST_SKIP() << "no Set5 in " << sinsr_test::data_dir();
  auto j = bicubic_anchor("set5");
  EXPECT_EQ(j["count"].get<int>(), 5);
  EXPECT_EQ(j["border"].get<int>(), 4);
  EXPECT_EQ(j["mode"].get<std::string>(), "y");
  EXPECT_NEAR(j["mean_psnr"].get<double>(), 28.42, 0.02);
  EXPECT_NEAR(j["mean_ssim"].get<double>(), 0.810, 0.002);
  EXPECT_NEAR(j["mean_detail"].get<double>(), 0.6900, 0.0005);  // measured here: bicubic keeps 69% of the gradient
  EXPECT_EQ(j["detail_count"].get<int>(), 5);
}

TEST(Eval, Set14BicubicReproducesThePublishedBaseline) {
  if (!fs::exists(fs::path(sinsr_test::data_dir()) / "set14")) GTEST_SKIP() << "no Set14 in " << sinsr_test::data_dir();
  auto j = bicubic_anchor("set14");
  EXPECT_EQ(j["count"].get<int>(), 14);  // bridge is gray in both folders and counts too
  EXPECT_NEAR(j["mean_psnr"].get<double>(), 26.09, 0.02);
  EXPECT_NEAR(j["mean_ssim"].get<double>(), 0.704, 0.002);
  EXPECT_NEAR(j["mean_detail"].get<double>(), 0.5627, 0.0005);  // measured here
}

struct Folders {
  fs::path root, pred, gt;
};

Folders make_folders(const std::string& name) {
  Folders f;
  f.root = fs::path(::testing::TempDir()) / ("eval_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(f.root);
  f.pred = f.root / "pred";
  f.gt = f.root / "gt";
  fs::create_directories(f.pred);
  fs::create_directories(f.gt);
  return f;
}

TEST(Eval, PairsByNameAndReportsMissingAndMismatchedFiles) {
  Folders d = make_folders("pairs");
  at::Tensor a = at::rand({3, 32, 32}), b = at::rand({3, 32, 32});
  sinsr::io::write_image((d.gt / "a.png").string(), a);
  sinsr::io::write_image((d.gt / "b.png").string(), b);
  sinsr::io::write_image((d.gt / "c.png").string(), b);
  sinsr::io::write_image((d.gt / "lonely.png").string(), b);
  sinsr::io::write_image((d.pred / "b.png").string(), b);  // sorted position would pair b with a
  sinsr::io::write_image((d.pred / "a.tif").string(), a);  // other format, same stem
  sinsr::io::write_image((d.pred / "c.png").string(), at::rand({3, 16, 16}));
  sinsr::io::write_image((d.pred / "z.png").string(), a);
  std::string json = (d.root / "r.json").string(), csv = (d.root / "r.csv").string(), out;
  EXPECT_EQ(
      run("--pred " + d.pred.string() + " --gt " + d.gt.string() + " --crop-border 0 --json " + json + " --csv " + csv,
          &out),
      1);
  EXPECT_NE(out.find((d.pred / "z.png").string() + ": no ground truth"), std::string::npos) << out;
  EXPECT_NE(out.find((d.gt / "lonely.png").string() + ": no prediction"), std::string::npos) << out;
  EXPECT_NE(out.find((d.pred / "c.png").string() + ": size 16x16 differs"), std::string::npos) << out;
  std::ifstream in(json);
  auto j = nlohmann::json::parse(in);
  EXPECT_EQ(j["count"].get<int>(), 2);
  EXPECT_EQ(j["problems"].size(), 3u);
  for (auto& row : j["images"]) EXPECT_TRUE(row["psnr"].is_null()) << row;  // identical by name: infinite PSNR
  std::ifstream c(csv);
  std::string header, line;
  std::getline(c, header);
  EXPECT_EQ(header, "image,pred,gt,psnr,ssim,detail");
  std::getline(c, line);
  EXPECT_EQ(line.rfind("a,", 0), 0u) << line;
  EXPECT_NE(line.find(",inf,1.000000,1.000000"), std::string::npos) << line;
  for (auto& row : j["images"]) EXPECT_EQ(row["detail"].get<double>(), 1.0) << row;
  EXPECT_EQ(j["mean_detail"].get<double>(), 1.0);
  EXPECT_EQ(j["detail_count"].get<int>(), 2);
}

// One file each side is a pair whatever the names; a file against a folder pairs by name.
TEST(Eval, FilesAreFoldersOfOne) {
  Folders d = make_folders("files");
  at::Tensor g = at::rand({3, 32, 32}), p = (g + 0.05 * at::randn({3, 32, 32})).clamp(0, 1);
  sinsr::io::write_image((d.gt / "photo.png").string(), g);
  sinsr::io::write_image((d.pred / "photo_up.png").string(), p);
  std::string json = (d.root / "r.json").string(), out;
  ASSERT_EQ(run("--pred " + (d.pred / "photo_up.png").string() + " --gt " + (d.gt / "photo.png").string() +
                    " --crop-border 0 --json " + json,
                &out),
            0)
      << out;
  auto j = nlohmann::json::parse(std::ifstream(json));
  EXPECT_EQ(j["count"].get<int>(), 1);
  EXPECT_TRUE(j["images"][0]["psnr"].is_number()) << j;
  EXPECT_EQ(run("--pred " + (d.pred / "photo_up.png").string() + " --gt " + d.gt.string() + " --crop-border 0", &out),
            1)
      << out;  // by name against a folder: photo_up has no partner
  EXPECT_NE(out.find("photo_up.png: no ground truth"), std::string::npos) << out;
  EXPECT_EQ(run("--pred " + (d.pred / "photo_up.png").string() + " --pred-suffix _up --gt " + d.gt.string() +
                    " --crop-border 0",
                &out),
            0)
      << out;
}

TEST(Eval, ScoresEqualTheLibraryAndModesDiffer) {
  Folders d = make_folders("modes");
  at::Tensor g = at::rand({3, 40, 36}), p = (g + 0.05 * at::randn({3, 40, 36})).clamp(0, 1);
  sinsr::io::write_image((d.gt / "im.png").string(), g);
  sinsr::io::write_image((d.pred / "im_x4.png").string(), p, 16);  // 16-bit predictions are measured at 8 bits
  at::Tensor gu = sinsr::io::to_uint8_hwc(sinsr::io::read_image((d.gt / "im.png").string()).pixels);
  at::Tensor pu = sinsr::io::to_uint8_hwc(sinsr::io::read_image((d.pred / "im_x4.png").string()).pixels);
  std::string base = "--pred " + d.pred.string() + " --gt " + d.gt.string() + " --pred-suffix _x4 --json " +
                     (d.root / "m.json").string();
  for (auto mode : {sinsr::metrics::Mode::y, sinsr::metrics::Mode::rgb, sinsr::metrics::Mode::pyiqa})
    for (int border : {0, 3}) {
      std::string out;
      ASSERT_EQ(
          run(base + " --metric-mode " + sinsr::metrics::mode_name(mode) + " --crop-border " + std::to_string(border),
              &out),
          0)
          << out;
      std::ifstream in(d.root / "m.json");
      auto j = nlohmann::json::parse(in);
      auto want = sinsr::metrics::evaluate(pu, gu, border, mode);
      EXPECT_NEAR(j["mean_psnr"].get<double>(), want.psnr, 1e-9) << out;
      EXPECT_NEAR(j["mean_ssim"].get<double>(), want.ssim, 1e-9) << out;
      // detail is on the rounded Y in every mode.
      EXPECT_NEAR(j["mean_detail"].get<double>(), sinsr::metrics::detail(pu, gu, border), 1e-12) << out;
      EXPECT_NEAR(j["images"][0]["detail"].get<double>(), sinsr::metrics::detail(pu, gu, border), 1e-12) << out;
      EXPECT_EQ(j["images"][0]["image"].get<std::string>(), "im");
    }
  auto y = sinsr::metrics::evaluate(pu, gu, 0, sinsr::metrics::Mode::y);
  auto rgb = sinsr::metrics::evaluate(pu, gu, 0, sinsr::metrics::Mode::rgb);
  EXPECT_GT(std::abs(y.psnr - rgb.psnr), 0.01);
  std::string out;
  EXPECT_EQ(run(base + " --metric-mode lab", &out), 2) << out;
  EXPECT_NE(out.find("lab"), std::string::npos) << out;
}

TEST(Eval, BicubicModeUpscalesTheLrImages) {
  Folders d = make_folders("bicubic");
  at::Tensor hr = at::rand({3, 48, 40});
  sinsr::io::write_image((d.gt / "x.png").string(), hr);
  at::Tensor hr8 = sinsr::io::read_image((d.gt / "x.png").string()).pixels;
  sinsr::io::write_image((d.pred / "x.png").string(), sinsr::imaging::imresize(hr8, 0.25));
  sinsr::io::write_image((d.pred / "wrong.png").string(), at::rand({3, 10, 11}));
  sinsr::io::write_image((d.gt / "wrong.png").string(), at::rand({3, 48, 40}));
  std::string json = (d.root / "b.json").string(), out;
  EXPECT_EQ(run("--bicubic-from " + d.pred.string() + " --gt " + d.gt.string() + " --json " + json, &out), 1) << out;
  EXPECT_NE(out.find((d.pred / "wrong.png").string() + ": size 44x40 after x4 differs"), std::string::npos) << out;
  std::ifstream in(json);
  auto j = nlohmann::json::parse(in);
  ASSERT_EQ(j["count"].get<int>(), 1);
  at::Tensor lr = sinsr::io::read_image((d.pred / "x.png").string()).pixels;
  auto want = sinsr::metrics::evaluate(sinsr::io::to_uint8_hwc(sinsr::imaging::imresize(lr, 4.0)),
                                       sinsr::io::to_uint8_hwc(hr8), 4, sinsr::metrics::Mode::y);
  EXPECT_NEAR(j["mean_psnr"].get<double>(), want.psnr, 1e-9);
  const double want_d = sinsr::metrics::detail(sinsr::io::to_uint8_hwc(sinsr::imaging::imresize(lr, 4.0)),
                                               sinsr::io::to_uint8_hwc(hr8), 4);
  EXPECT_NEAR(j["mean_detail"].get<double>(), want_d, 1e-12);
  EXPECT_NEAR(j["images"][0]["detail"].get<double>(), want_d, 1e-12);
}

TEST(Eval, FlatGroundTruthGivesNanDetailOutsideTheMean) {
  Folders d = make_folders("flat");
  at::Tensor g = at::rand({3, 32, 32}), p = (g + 0.05 * at::randn({3, 32, 32})).clamp(0, 1);
  sinsr::io::write_image((d.gt / "a.png").string(), g);
  sinsr::io::write_image((d.pred / "a.png").string(), p);
  sinsr::io::write_image((d.gt / "flat.png").string(), at::full({3, 32, 32}, 0.5f));
  sinsr::io::write_image((d.pred / "flat.png").string(), p);
  std::string json = (d.root / "f.json").string(), csv = (d.root / "f.csv").string(), out;
  EXPECT_EQ(run("--pred " + d.pred.string() + " --gt " + d.gt.string() + " --json " + json + " --csv " + csv, &out), 0)
      << out;
  EXPECT_NE(out.find("detail over 1"), std::string::npos) << out;
  std::ifstream in(json);
  auto j = nlohmann::json::parse(in);
  ASSERT_EQ(j["count"].get<int>(), 2);
  EXPECT_EQ(j["detail_count"].get<int>(), 1);
  EXPECT_EQ(j["images"][0]["image"].get<std::string>(), "a");
  EXPECT_TRUE(j["images"][1]["detail"].is_null()) << j["images"][1];
  at::Tensor pu = sinsr::io::to_uint8_hwc(sinsr::io::read_image((d.pred / "a.png").string()).pixels);
  at::Tensor gu = sinsr::io::to_uint8_hwc(sinsr::io::read_image((d.gt / "a.png").string()).pixels);
  EXPECT_NEAR(j["mean_detail"].get<double>(), sinsr::metrics::detail(pu, gu, 4), 1e-12);  // the flat image is left out
  EXPECT_NEAR(j["images"][0]["detail"].get<double>(), j["mean_detail"].get<double>(), 1e-12);
  std::ifstream c(csv);
  std::string line;
  std::getline(c, line);
  std::getline(c, line);
  std::getline(c, line);
  EXPECT_EQ(line.rfind("flat,", 0), 0u) << line;
  EXPECT_EQ(line.substr(line.size() - 4), ",nan") << line;
  // Only flat ground truth: no mean detail at all (null), still not an error.
  fs::remove(d.gt / "a.png");
  fs::remove(d.pred / "a.png");
  EXPECT_EQ(run("--pred " + d.pred.string() + " --gt " + d.gt.string() + " --json " + json, &out), 0) << out;
  std::ifstream in2(json);
  auto j2 = nlohmann::json::parse(in2);
  EXPECT_TRUE(j2["mean_detail"].is_null()) << j2;
  EXPECT_EQ(j2["detail_count"].get<int>(), 0);
}

TEST(Eval, UsageErrorsAndEmptyFolders) {
  Folders d = make_folders("usage");
  std::string out;
  EXPECT_EQ(run("--gt " + d.gt.string(), &out), 2) << out;  // neither --pred nor --bicubic-from
  EXPECT_EQ(run("--pred " + d.pred.string() + " --bicubic-from " + d.pred.string() + " --gt " + d.gt.string(), &out), 2)
      << out;
  EXPECT_EQ(run("--pred " + d.pred.string() + " --gt " + d.gt.string(), &out), 1) << out;  // nothing to evaluate
  EXPECT_NE(out.find("no image pairs"), std::string::npos) << out;
  EXPECT_EQ(run("--pred " + (d.root / "nope").string() + " --gt " + d.gt.string(), &out), 1) << out;
  EXPECT_NE(out.find((d.root / "nope").string()), std::string::npos) << out;
  // Two files with one stem are reported, not silently chosen between.
  sinsr::io::write_image((d.pred / "s.png").string(), at::rand({3, 16, 16}));
  sinsr::io::write_image((d.pred / "s.jpg").string(), at::rand({3, 16, 16}));
  sinsr::io::write_image((d.gt / "s.png").string(), at::rand({3, 16, 16}));
  EXPECT_EQ(run("--pred " + d.pred.string() + " --gt " + d.gt.string() + " --crop-border 0", &out), 1) << out;
  EXPECT_NE(out.find("same name as"), std::string::npos) << out;
}

}  // namespace

namespace {

// No pair at all is a failure that says why, not a table of nothing with zero means.
TEST(Eval, NoPairsSaysWhyAndFails) {
  Folders d = make_folders("nopairs");
  std::string out;
  EXPECT_EQ(run("--pred " + d.pred.string() + " --gt " + d.gt.string(), &out), 1) << out;
  EXPECT_NE(out.find("no image pairs to evaluate: no images in " + d.pred.string()), std::string::npos) << out;
  sinsr::io::write_image((d.pred / "a.png").string(), at::rand({3, 16, 16}));
  sinsr::io::write_image((d.gt / "b.png").string(), at::rand({3, 16, 16}));
  EXPECT_EQ(run("--pred " + d.pred.string() + " --gt " + d.gt.string(), &out), 1) << out;
  EXPECT_NE(out.find("no file names in common"), std::string::npos) << out;
  EXPECT_EQ(out.find("mean"), std::string::npos) << out;
  EXPECT_EQ(run("--bicubic-from " + d.pred.string() + " --gt " + d.gt.string(), &out), 1) << out;
  EXPECT_NE(out.find("no image pairs"), std::string::npos) << out;
}

}  // namespace

namespace {

// NIQE against the reference values of ../shared/parity/niqe/vectors.json (or the file named by
// SINSR_NIQE_VECTORS): every entry recomputed from its image, nothing stored here.
fs::path niqe_vectors() {
  const char* env = std::getenv("SINSR_NIQE_VECTORS");
  return (env && *env) ? fs::path(env) : fs::path(sinsr_test::parity_dir()) / "niqe" / "vectors.json";
}

// Image paths are relative to the shared/ folder that holds parity/niqe/vectors.json.
fs::path niqe_image(const fs::path& vectors, const std::string& rel) {
  for (fs::path base : {vectors.parent_path().parent_path().parent_path(), fs::path(sinsr_test::parity_dir()) / "..",
                        vectors.parent_path()})
    if (fs::exists(base / rel)) return base / rel;
  return vectors.parent_path().parent_path().parent_path() / rel;
}

at::Tensor read_u8(const fs::path& f) { return sinsr::io::color_uint8_hwc(sinsr::io::read_image(f.string()).pixels); }

TEST(Niqe, MatchesTheReferenceOnEveryVector) {
  const fs::path file = niqe_vectors();
  if (!fs::exists(file)) GTEST_SKIP() << "no NIQE vectors at " << file;
  std::ifstream in(file);
  auto j = nlohmann::json::parse(in);
  ASSERT_GT(j["vectors"].size(), 0u);
  for (const auto& v : j["vectors"]) {
    const fs::path img = niqe_image(file, v["image"].get<std::string>());
    ASSERT_TRUE(fs::exists(img)) << img;
    EXPECT_NEAR(sinsr::metrics::niqe(read_u8(img)), v["niqe"].get<double>(), 1e-3) << img;
  }
}

TEST(Niqe, NeedsAWholeBlockAndIgnoresTheRest) {
  at::Tensor img = (at::rand({3, 200, 300}) * 255).to(at::kByte).permute({1, 2, 0}).contiguous();
  EXPECT_TRUE(std::isnan(sinsr::metrics::niqe(img.narrow(0, 0, 95))));                       // no whole block
  EXPECT_TRUE(std::isfinite(sinsr::metrics::niqe(img.narrow(0, 0, 96).narrow(1, 0, 150))));  // one block
  EXPECT_TRUE(std::isnan(sinsr::metrics::niqe(at::full({200, 300}, 128, at::kByte))));       // flat: no features
  const double two = sinsr::metrics::niqe(img.narrow(0, 0, 96).narrow(1, 0, 192));
  EXPECT_TRUE(std::isfinite(two));
  // Rows and columns past the last whole block do not count.
  EXPECT_EQ(sinsr::metrics::niqe(img.narrow(0, 0, 120).narrow(1, 0, 250)), two);
  // Gray equals the same values in three channels; noise is far less natural than a smooth ramp.
  at::Tensor gray = img.select(2, 1).contiguous();
  EXPECT_EQ(sinsr::metrics::niqe(gray), sinsr::metrics::niqe(gray.unsqueeze(2).expand({-1, -1, 3}).contiguous()));
  at::Tensor ramp =
      (at::linspace(0, 1, 300).view({1, 300}) * at::linspace(0, 1, 200).view({200, 1}) * 255 + at::rand({200, 300}) * 8)
          .clamp(0, 255)
          .to(at::kByte);
  EXPECT_LT(sinsr::metrics::niqe(ramp), sinsr::metrics::niqe(gray));
}

TEST(Eval, WithoutGroundTruthScoresNiqePerImage) {
  Folders d = make_folders("niqe");
  at::Tensor big = at::rand({3, 200, 200}), small = at::rand({3, 64, 200});
  sinsr::io::write_image((d.pred / "big.png").string(), big);
  sinsr::io::write_image((d.pred / "small.png").string(), small);
  std::string json = (d.root / "n.json").string(), csv = (d.root / "n.csv").string(), out;
  ASSERT_EQ(run("--pred " + d.pred.string() + " --json " + json + " --csv " + csv, &out), 0) << out;
  EXPECT_NE(out.find("NIQE"), std::string::npos) << out;
  EXPECT_NE(out.find("NIQE over 1"), std::string::npos) << out;
  std::ifstream in(json);
  auto j = nlohmann::json::parse(in);
  const double want = sinsr::metrics::niqe(read_u8(d.pred / "big.png"));
  ASSERT_EQ(j["count"].get<int>(), 2);
  EXPECT_EQ(j["niqe_count"].get<int>(), 1);
  EXPECT_EQ(j["images"][0]["niqe"].get<double>(), want);
  EXPECT_TRUE(j["images"][1]["niqe"].is_null()) << j;
  EXPECT_EQ(j["mean_niqe"].get<double>(), want);
  EXPECT_FALSE(j.contains("mean_psnr")) << j;
  EXPECT_FALSE(j["images"][0].contains("psnr")) << j;
  std::ifstream c(csv);
  std::string header;
  std::getline(c, header);
  EXPECT_EQ(header, "image,pred,niqe");

  // Beside the ground-truth metrics, and for bicubic upscales without a ground truth.
  fs::create_directories(d.root / "lr");
  sinsr::io::write_image((d.gt / "big.png").string(), big);
  ASSERT_EQ(run("--pred " + d.pred.string() + " --gt " + d.gt.string() + " --metrics psnr,niqe --json " + json +
                    " --metric-mode rgb",
                &out),
            1)  // small.png has no ground truth
      << out;
  std::ifstream in2(json);
  auto j2 = nlohmann::json::parse(in2);
  EXPECT_EQ(j2["images"][0]["niqe"].get<double>(), want);  // NIQE ignores the metric mode
  EXPECT_TRUE(j2["images"][0]["psnr"].is_null());          // identical
  EXPECT_FALSE(j2.contains("mean_ssim")) << j2;
  sinsr::io::write_image((d.root / "lr" / "x.png").string(), at::rand({3, 50, 50}));
  ASSERT_EQ(run("--bicubic-from " + (d.root / "lr").string() + " --json " + json, &out), 0) << out;
  std::ifstream in3(json);
  auto j3 = nlohmann::json::parse(in3);
  at::Tensor up = sinsr::imaging::imresize(sinsr::io::read_image((d.root / "lr" / "x.png").string()).pixels, 4.0);
  EXPECT_EQ(j3["images"][0]["niqe"].get<double>(), sinsr::metrics::niqe(sinsr::io::color_uint8_hwc(up)));

  // A reference metric without --gt, or an unknown name, is a usage error.
  EXPECT_EQ(run("--pred " + d.pred.string() + " --metrics psnr", &out), 2) << out;
  EXPECT_NE(out.find("need --gt"), std::string::npos) << out;
  EXPECT_EQ(run("--pred " + d.pred.string() + " --metrics niqe,lpips", &out), 2) << out;
  EXPECT_NE(out.find("lpips"), std::string::npos) << out;
}

}  // namespace
