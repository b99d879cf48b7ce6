// The shipped models as a user meets them: the README's command on the real-world sample beats
// bicubic, student_bicubic on the clean one, --strength blends the two, and the card's
// `--plugin student.so` form writes the same bytes.
// A change that breaks the weights, their loading or the defaults fails here.
#include "host_run.hpp"

#include "imaging/imresize.hpp"
#include "imaging/metrics.hpp"
#include "imaging/niqe.hpp"
#include "io/image_io.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>

namespace fs = std::filesystem;
using sinsr_test::fresh_dir;
using sinsr_test::run_host;

namespace {

const std::string kSample = std::string(SINSR_SOURCE_DIR) + "/samples";

at::Tensor hwc_uint8(const at::Tensor& chw01) {
  return chw01.mul(255.0).round_().clamp_(0, 255).to(at::kByte).permute({1, 2, 0}).contiguous();
}

}  // namespace

struct Scores {
  double psnr, ssim, detail, niqe;
};
Scores score(const at::Tensor& sr, const at::Tensor& hr) {
  const at::Tensor s = hwc_uint8(sr), h = hwc_uint8(hr);
  return {sinsr::metrics::psnr(s, h, 4), sinsr::metrics::ssim(s, h, 4), sinsr::metrics::detail(s, h, 4),
          sinsr::metrics::niqe(s)};
}
Scores bicubic_of(const std::string& lr, const at::Tensor& hr) {
  return score(sinsr::imaging::imresize(sinsr::io::read_image(lr).pixels, 4.0).clamp(0, 1), hr);
}

// The README's main command: the real-world sample (samples/hr degraded once by `degrade --seed
// 0`) through the default model, against bicubic: more structure (SSIM) and a more natural image
// (NIQE); the card's `--plugin student.so` form writes the same bytes.
TEST(DefaultModel, ReadmeCommandBeatsBicubicOnTheRealWorldSample) {
  fs::path out = fresh_dir("default_model");
  const std::string lr = kSample + "/lr_realesrgan_x4/autumn.png";
  auto r = run_host("infer -i " + lr + " -o " + (out / "a.png").string() + " -q");
  ASSERT_EQ(r.code, 0) << r.output;
  r = run_host("--sampler deterministic --plugin " SINSR_PLUGIN_DIR "/student.so -i " + lr + " -o " +
               (out / "b.png").string() + " -q");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(sinsr_test::read_bytes(out / "a.png") == sinsr_test::read_bytes(out / "b.png"))
      << "the two forms of the command disagree";
  auto hr = sinsr::io::read_image(kSample + "/hr/autumn.png").pixels;
  auto sr = sinsr::io::read_image((out / "a.png").string()).pixels;
  ASSERT_EQ(sr.sizes(), hr.sizes());
  const Scores model = score(sr, hr), bicubic = bicubic_of(lr, hr);
  EXPECT_GT(model.ssim, bicubic.ssim) << "model " << model.ssim << ", bicubic " << bicubic.ssim;
  EXPECT_LT(model.niqe, bicubic.niqe) << "model " << model.niqe << ", bicubic " << bicubic.niqe;
}

// The default is the SinSR student after its fidelity stage: on the real-world sample it is
// closer to the ground truth than the distillation-only student (-n student_sinsr), which keeps
// more texture (a lower NIQE); both stay more natural than bicubic.
TEST(DefaultModel, TheFidelityStageTradesTextureForPsnr) {
  fs::path out = fresh_dir("student_sinsr");
  const std::string lr = kSample + "/lr_realesrgan_x4/autumn.png";
  for (const char* m : {"student", "student_sinsr"}) {
    auto r =
        run_host(std::string("infer -q -n ") + m + " -i " + lr + " -o " + (out / (std::string(m) + ".png")).string());
    ASSERT_EQ(r.code, 0) << r.output;
  }
  auto hr = sinsr::io::read_image(kSample + "/hr/autumn.png").pixels;
  const Scores fidelity = score(sinsr::io::read_image((out / "student.png").string()).pixels, hr),
               sinsr = score(sinsr::io::read_image((out / "student_sinsr.png").string()).pixels, hr),
               bicubic = bicubic_of(lr, hr);
  EXPECT_GT(fidelity.psnr, sinsr.psnr + 0.2) << "student " << fidelity.psnr << " dB, student_sinsr " << sinsr.psnr;
  EXPECT_GT(fidelity.ssim, sinsr.ssim) << "student " << fidelity.ssim << ", student_sinsr " << sinsr.ssim;
  EXPECT_LT(sinsr.niqe, fidelity.niqe) << "student_sinsr " << sinsr.niqe << ", student " << fidelity.niqe;
  EXPECT_LT(sinsr.niqe, bicubic.niqe);
  EXPECT_LT(fidelity.niqe, bicubic.niqe);
}

// student_bicubic keeps its job: on the clean bicubic sample it is sharper than bicubic and
// closer to the ground truth.
TEST(DefaultModel, StudentBicubicBeatsBicubicOnTheCleanSample) {
  fs::path out = fresh_dir("student_bicubic");
  const std::string lr = kSample + "/lr_x4/autumn.png";
  auto r = run_host("infer -n student_bicubic -i " + lr + " -o " + (out / "a.png").string() + " -q");
  ASSERT_EQ(r.code, 0) << r.output;
  auto hr = sinsr::io::read_image(kSample + "/hr/autumn.png").pixels;
  const Scores model = score(sinsr::io::read_image((out / "a.png").string()).pixels, hr), bicubic = bicubic_of(lr, hr);
  EXPECT_GT(model.psnr, bicubic.psnr) << "model " << model.psnr << " dB, bicubic " << bicubic.psnr << " dB";
  EXPECT_GT(model.detail, bicubic.detail) << "the model should be sharper than bicubic";
}

// --self-ensemble averages the 8 flips and rotations: on the clean sample student_bicubic gets
// closer to the ground truth, and the averaging smooths (less detail than one pass).
TEST(DefaultModel, SelfEnsembleRaisesPsnrAndSmooths) {
  fs::path out = fresh_dir("self_ensemble");
  const std::string lr = kSample + "/lr_x4/autumn.png";
  for (const char* flag : {"", " --self-ensemble"}) {
    auto r = run_host(std::string("infer -q -n student_bicubic") + flag + " -i " + lr + " -o " +
                      (out / (*flag ? "ens.png" : "one.png")).string());
    ASSERT_EQ(r.code, 0) << r.output;
  }
  auto hr = sinsr::io::read_image(kSample + "/hr/autumn.png").pixels;
  const Scores one = score(sinsr::io::read_image((out / "one.png").string()).pixels, hr),
               ens = score(sinsr::io::read_image((out / "ens.png").string()).pixels, hr);
  EXPECT_GT(ens.psnr, one.psnr) << "ensemble " << ens.psnr << " dB, one pass " << one.psnr;
  EXPECT_LT(ens.detail, one.detail) << "ensemble " << ens.detail << ", one pass " << one.detail;
}

// --strength blends student with its partner: 0 is student_bicubic's bytes, 1 the default's, 0.5
// neither; a model without a partner refuses it in one line.
TEST(DefaultModel, StrengthBlendsTheTwoModels) {
  fs::path out = fresh_dir("strength");
  const std::string lr = kSample + "/lr_realesrgan_x4/autumn.png";
  auto run = [&](const std::string& flags, const std::string& name) {
    auto r = run_host("infer -q -i " + lr + " -o " + (out / name).string() + " " + flags);
    EXPECT_EQ(r.code, 0) << flags << "\n" << r.output;
    return sinsr_test::read_bytes(out / name);
  };
  const std::string bicubic_model = run("-n student_bicubic", "b.png"), zero = run("--strength 0", "s0.png"),
                    half = run("--strength 0.5", "s05.png"), one = run("--strength 1", "s1.png"),
                    plain = run("", "d.png");
  EXPECT_TRUE(zero == bicubic_model) << "--strength 0 is student_bicubic";
  EXPECT_TRUE(one == plain) << "--strength 1 is the model as it is";
  EXPECT_TRUE(half != zero && half != one) << "--strength 0.5 is neither";
  auto refused = run_host("infer -q -n student_bicubic --strength 0.5 -i " + lr + " -o " + (out / "x.png").string());
  EXPECT_EQ(refused.code, 1) << refused.output;
  EXPECT_NE(refused.output.find("names no partner"), std::string::npos) << refused.output;
  auto bad = run_host("infer -q --strength 1.5 -i " + lr + " -o " + (out / "x.png").string());
  EXPECT_EQ(bad.code, 2) << bad.output;
  EXPECT_FALSE(fs::exists(out / "x.png"));
}

TEST(DefaultModel, InspectShowsWhatTheModelResolvesTo) {
  auto r = run_host("plugins inspect student");
  ASSERT_EQ(r.code, 0) << r.output;
  auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["base"], "unet_swin");
  EXPECT_EQ(j["default_config"]["residual_upscale"], 4);
  EXPECT_TRUE(j["config_schema"].contains("model_channels")) << "the base's schema";
  EXPECT_EQ(j["preferred_pipeline"]["steps"], 1);
  EXPECT_EQ(fs::path(j["default_weights"].get<std::string>()).filename(), "student.pth");
}
