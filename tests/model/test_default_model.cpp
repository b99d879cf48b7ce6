// The shipped model as a user meets it: the README's command on the shipped sample writes a
// sharper-than-bicubic x4 image, and the card's `--plugin student.so` form writes the same bytes.
// A change that breaks the weights, their loading or the defaults fails here.
#include "host_run.hpp"

#include "imaging/imresize.hpp"
#include "imaging/metrics.hpp"
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

TEST(DefaultModel, ReadmeCommandBeatsBicubicAndTheCardFormGivesTheSameBytes) {
  fs::path out = fresh_dir("default_model");
  const std::string lr = kSample + "/lr_x4/autumn.png";
  auto r = run_host("infer -i " + lr + " -o " + (out / "a.png").string() + " --threads 2 -q");
  ASSERT_EQ(r.code, 0) << r.output;
  r = run_host("--sampler deterministic --plugin " SINSR_PLUGIN_DIR "/student.so -i " + lr + " -o " +
               (out / "b.png").string() + " --threads 2 -q");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(sinsr_test::read_bytes(out / "a.png"), sinsr_test::read_bytes(out / "b.png"))
      << "the two forms of the command disagree";

  auto hr = sinsr::io::read_image(kSample + "/hr/autumn.png").pixels;
  auto sr = sinsr::io::read_image((out / "a.png").string()).pixels;
  ASSERT_EQ(sr.sizes(), hr.sizes());
  auto lr_img = sinsr::io::read_image(lr).pixels;
  at::Tensor bicubic = sinsr::imaging::imresize(lr_img, 4.0).clamp(0, 1);
  const double p_model = sinsr::metrics::psnr(hwc_uint8(sr), hwc_uint8(hr), 4);
  const double p_bicubic = sinsr::metrics::psnr(hwc_uint8(bicubic), hwc_uint8(hr), 4);
  EXPECT_GT(p_model, p_bicubic) << "model " << p_model << " dB, bicubic " << p_bicubic << " dB";
  EXPECT_GT(sinsr::metrics::detail(hwc_uint8(sr), hwc_uint8(hr), 4),
            sinsr::metrics::detail(hwc_uint8(bicubic), hwc_uint8(hr), 4))
      << "the model should be sharper than bicubic";
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
