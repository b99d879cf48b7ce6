// SR3 and SRDiff as the host assembles them from plugins: the network (sr3_unet, srdiff) and the
// diffusion (ddpm) meet only through the ABI, yet reproduce the reference samplers' 5-step
// trajectories from the recorded starting noise and fresh noise; `train` and `infer` drive them
// by name with no family-specific host code.
#include "host_run.hpp"
#include "parity.hpp"
#include "plugin_runtime.hpp"

#include "imaging/imresize.hpp"
#include "imaging/metrics.hpp"
#include "imaging/quantise.hpp"
#include "io/image_io.hpp"
#include "pipeline/pipeline.hpp"
#include "runtime/runtime.hpp"

#include <filesystem>

namespace fs = std::filesystem;

namespace {

using sinsr::host::json;

sinsr::host::Runtime& runtime() { return sinsr_test::plugin_runtime(); }

const json kSr3 = {
    {"model_channels", 16}, {"channel_expansions", {1, 2, 2}}, {"emb_expansion", 4}, {"resblock_per_down_stage", 2}};
const json kSrdiff = {{"hidden_size", 16},
                      {"dim_mults", {1, 2, 3, 4}},
                      {"rrdb_num_feat", 16},
                      {"rrdb_num_block", 5},
                      {"rrdb_num_grow_ch", 8}};

// The reference sampler's trajectory through the two plugins: x_T and every fresh noise draw
// replayed from the record, the network evaluated by the backbone plugin at each step.
at::Tensor replay(const std::string& backbone, const json& config, const std::string& weights,
                  const std::string& variant, const at::Tensor& lq, const at::Tensor& y, const at::Tensor& x_T,
                  const at::Tensor& z, int* draws) {
  auto& rt = runtime();
  sinsr::host::BackboneHandle net(rt.find(SINSR_KIND_BACKBONE, backbone), config);
  net.load_weights(sinsr_test::parity_file(weights));
  net.set_training(false);
  sinsr::host::SamplerHandle sampler(rt.find(SINSR_KIND_SAMPLER, "ddpm"), {{"variant", variant}}, 5);
  sinsr::host::check_pairing(sampler, net);
  sinsr::sdk::SampleCallbacks cb;
  cb.denoise = [&](const at::Tensor& x_in, const at::Tensor& t) { return net.forward(x_in, lq, t); };
  cb.noise = [&](const at::Tensor& like) {
    EXPECT_LT(*draws, z.size(0));
    return z[(*draws)++].reshape(like.sizes()).clone();
  };
  cb.progress = [](int, int) { return true; };
  at::NoGradGuard no_grad;
  return sampler.sample(y, x_T, cb);
}

TEST(Sr3EndToEnd, FiveStepTrajectoryMatchesTheReference) {
  auto traj = sinsr_test::at_key(sinsr_test::load("sr3-srdiff/sr3_tiny_cases.pth"), "traj");
  at::Tensor lq = sinsr_test::tensor(traj, "lr") * 2 - 1;  // the pipeline's LR in [-1, 1]
  at::Tensor y = sinsr::host::upsample_bicubic(lq, 4);
  int draws = 0;
  at::Tensor out = replay("sr3_unet", kSr3, "sr3-srdiff/sr3_tiny.pth", "sr3", lq, y, sinsr_test::tensor(traj, "x_T"),
                          sinsr_test::tensor(traj, "z"), &draws);
  EXPECT_EQ(draws, 4);  // SR3 draws no noise at the last step
  EXPECT_TRUE(sinsr_test::all_close(out * 0.5 + 0.5, sinsr_test::tensor(traj, "x0"), 1e-3));
}

TEST(SrdiffEndToEnd, FiveStepTrajectoryMatchesTheReference) {
  auto traj = sinsr_test::at_key(sinsr_test::load("sr3-srdiff/srdiff_tiny_cases.pth"), "traj");
  int draws = 0;
  at::Tensor out = replay("srdiff", kSrdiff, "sr3-srdiff/srdiff_tiny.pth", "srdiff", sinsr_test::tensor(traj, "img_lr"),
                          sinsr_test::tensor(traj, "img_lr_up"), sinsr_test::tensor(traj, "x_T"),
                          sinsr_test::tensor(traj, "z"), &draws);
  EXPECT_EQ(draws, 5);  // drawn at t = 0 too, multiplied by zero
  EXPECT_TRUE(sinsr_test::all_close(out, sinsr_test::tensor(traj, "img_sr"), 1e-3));
}

// A noise-level sampler and an index backbone cannot be paired: refused naming both.
TEST(Baselines, MismatchedTimestepsAreRefusedNamingBoth) {
  auto& rt = runtime();
  sinsr::host::BackboneHandle net(rt.find(SINSR_KIND_BACKBONE, "srdiff"), kSrdiff);
  sinsr::host::SamplerHandle sampler(rt.find(SINSR_KIND_SAMPLER, "ddpm"), {{"variant", "sr3"}});
  try {
    sinsr::host::check_pairing(sampler, net);
    FAIL() << "accepted";
  } catch (const sinsr::sdk::Error& e) {
    EXPECT_NE(std::string(e.what()).find("ddpm"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("srdiff"), std::string::npos) << e.what();
  }
}

// The CLI by component names only: a few training steps of each family (SRDiff's RRDB by plain
// regression, then its diffusion), then an upscale with what was trained.
TEST(Baselines, TrainAndInferByNameThroughTheCli) {
  const std::string data = sinsr_test::data_dir() + "/set5";
  if (!fs::exists(data + "/hr")) GTEST_SKIP();
  fs::path dir = sinsr_test::fresh_dir("baselines");
  const std::string common = "train --data " + data +
                             "/hr --codec none --gt-size 32 --batch 2 --warmup 0 "
                             "--threads 2 --max-steps 2 --save-every 2 --loss-x0 l1 ";
  auto quoted = [](const json& j) { return "'" + j.dump() + "'"; };
  const std::string lr = data + "/lr_x4/butterfly.png";

  auto sr3 =
      sinsr_test::run_host(common + "--out " + (dir / "sr3").string() + " --backbone sr3_unet --backbone-config " +
                           quoted(kSr3) + " --sampler ddpm --sampler-config '{\"variant\": \"sr3\"}'");
  ASSERT_EQ(sr3.code, 0) << sr3.output;
  auto up = sinsr_test::run_host("infer -q -i " + lr + " -o " + (dir / "sr3.png").string() +
                                 " --backbone sr3_unet --backbone-config " + quoted(kSr3) + " -w " +
                                 (dir / "sr3/ema.pth").string() +
                                 " --codec none --sampler ddpm --sampler-config '{\"variant\": \"sr3\"}' --steps 3");
  ASSERT_EQ(up.code, 0) << up.output;
  EXPECT_TRUE(fs::exists(dir / "sr3.png"));

  json rrdb = kSrdiff;
  rrdb["output"] = "rrdb";
  rrdb["fix_rrdb"] = false;
  auto pre = sinsr_test::run_host(common + "--out " + (dir / "rrdb").string() +
                                  " --backbone srdiff --backbone-config " + quoted(rrdb) +
                                  " --objective regress --sampler ddpm --sampler-config '{\"variant\": \"srdiff\"}'");
  ASSERT_EQ(pre.code, 0) << pre.output;
  EXPECT_NE(pre.output.find("regress"), std::string::npos) << pre.output;
  auto diff =
      sinsr_test::run_host(common + "--out " + (dir / "srdiff").string() + " --backbone srdiff --backbone-config " +
                           quoted(kSrdiff) + " --backbone-weights " + (dir / "rrdb/ckpt_00000002.pth").string() +
                           " --sampler ddpm --sampler-config '{\"variant\": \"srdiff\"}'");
  ASSERT_EQ(diff.code, 0) << diff.output;
  auto up2 = sinsr_test::run_host(
      "infer -q -i " + lr + " -o " + (dir / "srdiff.png").string() + " --backbone srdiff --backbone-config " +
      quoted(kSrdiff) + " -w " + (dir / "srdiff/ckpt_00000002.pth").string() +
      " --codec none --sampler ddpm --sampler-config '{\"variant\": \"srdiff\"}' --steps 3");
  ASSERT_EQ(up2.code, 0) << up2.output;
  EXPECT_TRUE(fs::exists(dir / "srdiff.png"));

  // The checkpoint alone: `train` stored the parts it was made with, so -w is the whole line.
  auto up3 = sinsr_test::run_host("infer -i " + lr + " -o " + (dir / "srdiff_w.png").string() + " -w " +
                                  (dir / "srdiff/ckpt_00000002.pth").string() + " --steps 3");
  ASSERT_EQ(up3.code, 0) << up3.output;
  EXPECT_NE(up3.output.find("stored: backbone srdiff, codec none, sampler ddpm, scale 4"), std::string::npos)
      << up3.output;
  EXPECT_EQ(sinsr_test::read_bytes(dir / "srdiff_w.png"), sinsr_test::read_bytes(dir / "srdiff.png"));
}

// The shipped srdiff_x4 by its name alone (its preferred pipeline: 25 steps of its chain) beats
// MATLAB bicubic on Set5's butterfly, and follows the posterior means at temperature 0.
TEST(Baselines, ShippedSrdiffBeatsBicubic) {
  const std::string data = sinsr_test::data_dir() + "/set5";
  if (!fs::exists(data + "/hr/butterfly.png")) GTEST_SKIP() << "no Set5 in " << data;
  if (!fs::exists(std::string(SINSR_PLUGIN_DIR) + "/srdiff_x4.so")) GTEST_SKIP() << "srdiff_x4 not built";
  fs::path dir = sinsr_test::fresh_dir("shipped_srdiff");
  const std::string lr = data + "/lr_x4/butterfly.png";
  auto r =
      sinsr_test::run_host("infer -n srdiff_x4 -i " + lr + " -o " + (dir / "sr.png").string() + " --seed 0 -j 2 -q");
  ASSERT_EQ(r.code, 0) << r.output;
  auto y = [](const at::Tensor& chw) { return sinsr::imaging::to_uint8(chw).permute({1, 2, 0}).contiguous(); };
  const at::Tensor hr = y(sinsr::io::read_image(data + "/hr/butterfly.png").pixels);
  const at::Tensor bicubic = y(sinsr::imaging::imresize(sinsr::io::read_image(lr).pixels, 4.0));
  const at::Tensor sr = y(sinsr::io::read_image((dir / "sr.png").string()).pixels);
  const double p_sr = sinsr::metrics::psnr(sr, hr, 4), p_bicubic = sinsr::metrics::psnr(bicubic, hr, 4);
  EXPECT_GT(p_sr, p_bicubic) << "srdiff_x4 " << p_sr << " dB, bicubic " << p_bicubic << " dB";
  EXPECT_GT(sinsr::metrics::detail(sr, hr, 4), sinsr::metrics::detail(bicubic, hr, 4))
      << "the residual diffusion adds detail to bicubic";
}

}  // namespace
