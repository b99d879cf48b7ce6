// The pointwise loss plugin through the ABI (Runtime + LossHandle) against LibTorch autograd
// on the same formulas written out here; the ssim loss against the metric `eval` reports.
#include "imaging/metrics.hpp"
#include "runtime/runtime.hpp"

#include <gtest/gtest.h>
#include <parity.hpp>

#include <ATen/ATen.h>

#include <string>
#include <tuple>

namespace {

using sinsr::host::LossHandle;
using sinsr::host::Runtime;
using json = nlohmann::json;

Runtime& runtime() {
  static Runtime* rt = [] {
    auto* r = new Runtime(1);
    r->load_file(std::string(SINSR_PLUGIN_DIR) + "/pointwise.so");
    r->load_file(std::string(SINSR_PLUGIN_DIR) + "/image.so");
    return r;
  }();
  return *rt;
}

std::unique_ptr<LossHandle> make(const std::string& name, const json& config) {
  return std::make_unique<LossHandle>(runtime().find(SINSR_KIND_LOSS, name), config);
}

// Reference: elementwise formula, then the reduction, then the weight, all in autograd.
at::Tensor reference(const std::string& name, const at::Tensor& p, const at::Tensor& t, const std::string& reduction,
                     double eps, double weight) {
  at::Tensor d = p - t;
  at::Tensor e = name == "mse" ? d.pow(2) : name == "l1" ? d.abs() : (d.pow(2) + eps * eps).sqrt();
  at::Tensor r;
  if (reduction == "mean")
    r = e.mean();
  else if (reduction == "sum")
    r = e.sum();
  else
    r = e.flatten(1).mean(-1);
  return r * weight;
}

using Case = std::tuple<std::string, std::string, at::ScalarType>;

class PointwiseAbi : public ::testing::TestWithParam<Case> {};

TEST_P(PointwiseAbi, ForwardAndBackwardMatchAutograd) {
  auto [name, reduction, dtype] = GetParam();
  const double eps = 0.05, weight = 0.7;
  json cfg = {{"reduction", reduction}, {"weight", weight}};
  if (name == "charbonnier") cfg["eps"] = eps;
  auto loss = make(name, cfg);

  auto gen = at::make_generator<at::CPUGeneratorImpl>(1234);
  auto opt = at::TensorOptions().dtype(dtype);
  at::Tensor pred = at::randn({3, 4, 5, 6}, gen, opt);
  at::Tensor target = at::randn({3, 4, 5, 6}, gen, opt);
  // Exact ties at zero error exercise the l1 subgradient (0, as torch.abs gives).
  pred.select(0, 1).select(0, 2).copy_(target.select(0, 1).select(0, 2));

  at::Tensor p_ref = pred.clone().requires_grad_(true);
  at::Tensor ref = reference(name, p_ref, target, reduction, eps, weight);
  at::Tensor grad_loss = reduction == "per_sample" ? at::randn({3}, gen, opt) : at::full({}, 1.3, opt);
  ref.backward(grad_loss);

  auto [value, tape] = loss->forward_train(pred, target);
  ASSERT_TRUE(tape);
  const double tol = dtype == at::kDouble ? 1e-12 : 1e-6;
  EXPECT_EQ(value.scalar_type(), dtype);
  EXPECT_TRUE(sinsr_test::all_close(value, ref.detach(), tol, tol));
  at::Tensor grad = loss->backward(std::move(tape), grad_loss);
  ASSERT_TRUE(grad.defined());
  EXPECT_TRUE(sinsr_test::all_close(grad, p_ref.grad(), tol, tol));

  // Inference path: same value, inputs untouched.
  at::Tensor pred_copy = pred.clone();
  at::Tensor plain = loss->forward(pred, target);
  EXPECT_TRUE(sinsr_test::all_close(plain, ref.detach(), tol, tol));
  EXPECT_TRUE(at::equal(pred, pred_copy));
}

INSTANTIATE_TEST_SUITE_P(All, PointwiseAbi,
                         ::testing::Combine(::testing::Values("mse", "l1", "charbonnier"),
                                            ::testing::Values("mean", "sum", "per_sample"),
                                            ::testing::Values(at::kFloat, at::kDouble)),
                         [](const auto& info) {
                           return std::get<0>(info.param) + "_" + std::get<1>(info.param) + "_" +
                                  (std::get<2>(info.param) == at::kFloat ? "f32" : "f64");
                         });

TEST(PointwiseLoss, DefaultsAreMeanWeightOneEps1e3) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
  auto opt = at::TensorOptions().dtype(at::kDouble);
  at::Tensor p = at::randn({2, 3, 4, 4}, gen, opt), t = at::randn({2, 3, 4, 4}, gen, opt);
  EXPECT_NEAR(make("mse", json::object())->forward(p, t).item<double>(), (p - t).pow(2).mean().item<double>(), 1e-12);
  EXPECT_NEAR(make("l1", json::object())->forward(p, t).item<double>(), (p - t).abs().mean().item<double>(), 1e-12);
  // Zero error: charbonnier gives exactly eps per element.
  EXPECT_NEAR(make("charbonnier", json::object())->forward(p, p.clone()).item<double>(), 1e-3, 1e-15);
  EXPECT_EQ(make("mse", json::object())->forward(p, t).dim(), 0);
}

TEST(PointwiseLoss, PerSampleIsMeanOverCHWPerItem) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(11);
  at::Tensor p = at::randn({5, 3, 8, 7}, gen), t = at::randn({5, 3, 8, 7}, gen);
  at::Tensor v = make("mse", {{"reduction", "per_sample"}})->forward(p, t);
  ASSERT_EQ(v.dim(), 1);
  ASSERT_EQ(v.size(0), 5);
  for (int64_t i = 0; i < 5; ++i) EXPECT_NEAR(v[i].item<double>(), (p[i] - t[i]).pow(2).mean().item<double>(), 1e-6);
  // Equal-sized samples: the batch mean of per-sample values is the plain mean.
  EXPECT_NEAR(v.mean().item<double>(), make("mse", json::object())->forward(p, t).item<double>(), 1e-6);
  // The trainer's use: d(mean_b w*L_b)/dpred through per-sample grads w/B.
  auto loss = make("mse", {{"reduction", "per_sample"}});
  auto [vals, tape] = loss->forward_train(p, t);
  at::Tensor g = loss->backward(std::move(tape), at::full({5}, 2.0 / 5));
  EXPECT_TRUE(sinsr_test::all_close(g, 2.0 * 2.0 * (p - t) / double(p.numel()), 1e-7, 1e-5));
}

TEST(PointwiseLoss, PerSampleOfOneDimensionalInputIsElementwise) {
  auto opt = at::TensorOptions().dtype(at::kDouble);
  at::Tensor p = at::tensor({1.0, -2.0, 3.0}, opt), t = at::zeros({3}, opt);
  at::Tensor v = make("l1", {{"reduction", "per_sample"}})->forward(p, t);
  EXPECT_TRUE(at::equal(v, p.abs()));
}

void expect_config_error(const std::string& name, const json& cfg, const std::string& needle) {
  try {
    make(name, cfg);
    ADD_FAILURE() << name << " accepted " << cfg.dump();
  } catch (const sinsr::sdk::Error& e) {
    EXPECT_EQ(e.code(), SINSR_ERR_INVALID_ARGUMENT) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(PointwiseLoss, BadConfigsAreRefusedNamingTheKey) {
  expect_config_error("mse", {{"reduction", "median"}}, "reduction");
  expect_config_error("mse", {{"reduction", 3}}, "reduction");
  expect_config_error("l1", {{"weight", "heavy"}}, "weight");
  expect_config_error("charbonnier", {{"eps", 0}}, "eps");
  expect_config_error("charbonnier", {{"eps", -1e-3}}, "eps");
  expect_config_error("charbonnier", {{"eps", "small"}}, "eps");
  expect_config_error("mse", {{"eps", 1e-3}}, "eps");  // eps belongs to charbonnier only
  expect_config_error("l1", {{"reductoin", "sum"}}, "reductoin");
}

TEST(PointwiseLoss, ShapeMismatchAndZeroDimPerSampleAreErrors) {
  auto loss = make("mse", json::object());
  EXPECT_THROW(loss->forward(at::zeros({2, 3}), at::zeros({2, 4})), sinsr::sdk::Error);
  auto ps = make("mse", {{"reduction", "per_sample"}});
  try {
    ps->forward(at::ones({}), at::zeros({}));
    ADD_FAILURE() << "0-d per_sample accepted";
  } catch (const sinsr::sdk::Error& e) {
    EXPECT_NE(std::string(e.what()).find("batch dimension"), std::string::npos) << e.what();
  }
}

TEST(PointwiseLoss, PluginListsItsThreeComponents) {
  for (const char* n : {"mse", "l1", "charbonnier"}) {
    auto c = runtime().find(SINSR_KIND_LOSS, n);
    EXPECT_EQ(c->plugin_name, "pointwise");
    auto schema = json::parse(c->desc->config_schema);
    EXPECT_TRUE(schema.contains("reduction"));
    EXPECT_EQ(schema.contains("eps"), std::string(n) == "charbonnier");
  }
}

// ---- ssim --------------------------------------------------------------------------------

// A smooth random colour image [1,3,h,w] in [-1, 1] and a noisy, blurred copy.
std::pair<at::Tensor, at::Tensor> image_pair(int64_t h, int64_t w, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  at::Tensor base = at::upsample_bilinear2d(at::rand({1, 3, h / 4, w / 4}, gen), {h, w}, false) * 2 - 1;
  at::Tensor other = at::avg_pool2d(base, 3, 1, 1, false, false) + 0.15 * at::randn({1, 3, h, w}, gen);
  return {base, other.clamp(-1, 1)};
}

// [1,3,H,W] in [-1, 1] -> [H,W,3] uint8 as an image file holds it.
at::Tensor to_u8(const at::Tensor& x) {
  return ((x[0].permute({1, 2, 0}) + 1) * 127.5).round().clamp(0, 255).to(at::kByte).contiguous();
}

TEST(SsimLoss, IsOneMinusTheSsimEvalReports) {
  for (uint64_t seed : {1u, 2u, 3u}) {
    auto [a, b] = image_pair(48, 40, seed);
    a = (to_u8(a).permute({2, 0, 1}).unsqueeze(0).to(at::kDouble) / 127.5) - 1;  // on the byte grid
    b = (to_u8(b).permute({2, 0, 1}).unsqueeze(0).to(at::kDouble) / 127.5) - 1;
    const double metric = sinsr::metrics::ssim(to_u8(a), to_u8(b), 0, true);
    const double loss = make("ssim", json::object())->forward(a, b).item<double>();
    // eval rounds Y to bytes first (the official rgb2ycbcr); the loss keeps it continuous.
    EXPECT_NEAR(1 - loss, metric, 2e-3) << "seed " << seed;
    EXPECT_LT(metric, 0.95);  // the pair is far enough apart for the comparison to mean something
    const double rgb = sinsr::metrics::ssim(to_u8(a), to_u8(b), 0, false);
    EXPECT_NEAR(1 - make("ssim", {{"y_channel", false}})->forward(a, b).item<double>(), rgb, 1e-9);
  }
}

TEST(SsimLoss, IdenticalImagesCostNothingAndBlockUnfoldsLatents) {
  auto [a, b] = image_pair(32, 32, 5);
  EXPECT_NEAR(make("ssim", json::object())->forward(a, a.clone()).item<double>(), 0.0, 1e-6);
  // The space_to_depth codec's latents (pixel_unshuffle by 4) score as the images they decode to.
  const double pixels = make("ssim", json::object())->forward(a, b).item<double>();
  const double latents =
      make("ssim", {{"block", 4}})->forward(at::pixel_unshuffle(a, 4), at::pixel_unshuffle(b, 4)).item<double>();
  EXPECT_NEAR(latents, pixels, 1e-6);
  // [0, 1] pixels with min/max say so score as the same image.
  EXPECT_NEAR(make("ssim", {{"min", 0.0}, {"max", 1.0}})->forward((a + 1) / 2, (b + 1) / 2).item<double>(), pixels,
              1e-6);
}

TEST(SsimLoss, MixAddsThePointwiseLossPerSample) {
  auto [a0, b0] = image_pair(24, 24, 8);
  auto [a1, b1] = image_pair(24, 24, 9);
  at::Tensor a = at::cat({a0, a1}).to(at::kDouble), b = at::cat({b0, b1}).to(at::kDouble);
  at::Tensor plain = make("ssim", {{"reduction", "per_sample"}})->forward(a, b);
  ASSERT_EQ(plain.sizes(), at::IntArrayRef({2}));
  at::Tensor l1 = (a - b).abs().flatten(1).mean(1);
  at::Tensor mixed =
      make("ssim", {{"reduction", "per_sample"}, {"mix", 0.5}, {"mix_loss", "l1"}, {"weight", 2.0}})->forward(a, b);
  EXPECT_TRUE(sinsr_test::all_close(mixed, 2.0 * (plain + 0.5 * l1), 1e-12, 1e-12));
  EXPECT_NEAR(make("ssim", json::object())->forward(a, b).item<double>(), plain.mean().item<double>(), 1e-12);
}

TEST(SsimLoss, BackwardMatchesFiniteDifferences) {
  auto [a, b] = image_pair(16, 16, 12);
  a = a.to(at::kDouble);
  b = b.to(at::kDouble);
  auto loss = make("ssim", {{"mix", 0.3}});
  auto [value, tape] = loss->forward_train(a, b);
  at::Tensor grad = loss->backward(std::move(tape), at::full({}, 1.0, a.options()));
  ASSERT_TRUE(grad.defined());
  ASSERT_EQ(grad.sizes(), a.sizes());
  const double h = 1e-6;
  for (int64_t k : {0, 77, 300, 511, 700}) {
    at::Tensor up = a.clone(), down = a.clone();
    up.view(-1)[k] += h;
    down.view(-1)[k] -= h;
    const double numeric = (loss->forward(up, b).item<double>() - loss->forward(down, b).item<double>()) / (2 * h);
    EXPECT_NEAR(grad.view(-1)[k].item<double>(), numeric, 1e-6 + 1e-4 * std::abs(numeric)) << "element " << k;
  }
  EXPECT_GT(grad.abs().max().item<double>(), 0.0);
}

TEST(SsimLoss, BadConfigsAndInputsAreRefused) {
  expect_config_error("ssim", {{"block", 0}}, "block");
  expect_config_error("ssim", {{"min", 1.0}, {"max", 1.0}}, "max");
  expect_config_error("ssim", {{"mix", -0.1}}, "mix");
  expect_config_error("ssim", {{"mix_loss", "charbonnier"}}, "mix_loss");
  expect_config_error("ssim", {{"reduction", "sum"}}, "reduction");
  expect_config_error("ssim", {{"windows", 7}}, "windows");
  auto loss = make("ssim", json::object());
  EXPECT_THROW(loss->forward(at::zeros({1, 3, 8, 8}), at::zeros({1, 3, 8, 8})), sinsr::sdk::Error);      // < window
  EXPECT_THROW(loss->forward(at::zeros({1, 1, 16, 16}), at::zeros({1, 1, 16, 16})), sinsr::sdk::Error);  // no colour
  EXPECT_THROW(loss->forward(at::zeros({1, 3, 16, 16}), at::zeros({1, 3, 16, 17})), sinsr::sdk::Error);
}

// ---- highpass ------------------------------------------------------------------------------

// x minus its blur by an explicit 2-D Gaussian over reflected borders (not the separable code).
at::Tensor reference_highpass(const at::Tensor& x, double sigma) {
  const int64_t r = int64_t(std::ceil(3 * sigma)), c = x.size(1);
  at::Tensor g = at::arange(-r, r + 1, x.options()).pow(2).div(-2 * sigma * sigma).exp();
  at::Tensor k2 = at::outer(g, g);
  k2 = (k2 / k2.sum()).view({1, 1, 2 * r + 1, 2 * r + 1}).expand({c, 1, 2 * r + 1, 2 * r + 1}).contiguous();
  at::Tensor padded = at::reflection_pad2d(x, {r, r, r, r});
  return x - at::conv2d(padded, k2, {}, at::IntArrayRef{1, 1}, at::IntArrayRef{0, 0}, at::IntArrayRef{1, 1}, c);
}

TEST(HighpassLoss, ComparesWhatLiesAboveTheBlur) {
  auto [a, b] = image_pair(32, 28, 21);
  a = a.to(at::kDouble);
  b = b.to(at::kDouble);
  for (double sigma : {1.0, 2.5}) {
    at::Tensor want = (reference_highpass(a, sigma) - reference_highpass(b, sigma)).pow(2).mean();
    EXPECT_NEAR(make("highpass", {{"sigma", sigma}})->forward(a, b).item<double>(), want.item<double>(), 1e-10);
    at::Tensor l1 = (reference_highpass(a, sigma) - reference_highpass(b, sigma)).abs().mean();
    EXPECT_NEAR(make("highpass", {{"sigma", sigma}, {"loss", "l1"}})->forward(a, b).item<double>(), l1.item<double>(),
                1e-10);
  }
  // A brightness offset lies below every frequency: it costs nothing. Plain mse sees it.
  auto hp = make("highpass", json::object());
  EXPECT_NEAR(hp->forward(a + 0.3, a).item<double>(), 0.0, 1e-12);
  EXPECT_GT(make("mse", json::object())->forward(a + 0.3, a).item<double>(), 0.05);
  // Latents unfold to the same image.
  EXPECT_NEAR(
      make("highpass", {{"block", 4}})->forward(at::pixel_unshuffle(a, 4), at::pixel_unshuffle(b, 4)).item<double>(),
      hp->forward(a, b).item<double>(), 1e-12);
  // Gradients flow (checked against finite differences at a few elements).
  auto [value, tape] = hp->forward_train(a, b);
  at::Tensor grad = hp->backward(std::move(tape), at::full({}, 1.0, a.options()));
  for (int64_t k : {3, 400, 1500}) {
    at::Tensor up = a.clone(), down = a.clone();
    up.view(-1)[k] += 1e-6;
    down.view(-1)[k] -= 1e-6;
    const double numeric = (hp->forward(up, b).item<double>() - hp->forward(down, b).item<double>()) / 2e-6;
    EXPECT_NEAR(grad.view(-1)[k].item<double>(), numeric, 1e-8 + 1e-5 * std::abs(numeric)) << k;
  }
  expect_config_error("highpass", {{"sigma", 0}}, "sigma");
  expect_config_error("highpass", {{"loss", "huber"}}, "loss");
  EXPECT_THROW(hp->forward(at::zeros({1, 3, 1, 8}), at::zeros({1, 3, 1, 8})), sinsr::sdk::Error);
}

}  // namespace
