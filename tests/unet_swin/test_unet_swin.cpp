// UNetModelSwin against the official code: the tiny network's outputs (unet_tiny_cases.pth),
// the full-size state_dict layout, and gradients across the ABI.
#include "errors.hpp"
#include "parity.hpp"

#include "runtime/runtime.hpp"
#include "unet_swin.hpp"

#include <sinsr/config.hpp>

#include <torch/cuda.h>

#include <fstream>
#include <sstream>

namespace {

using sinsr_test::expect_error;

using sinsr::unet_swin::Options;
using sinsr::unet_swin::UNetModelSwin;

std::shared_ptr<UNetModelSwin> tiny() {
  auto cfg = sinsr::config::resolve({{"config_file", sinsr_test::parity_file("tiny-unet.yaml")}}, "model");
  auto net = std::make_shared<UNetModelSwin>(Options::from_json(cfg));
  sinsr::ckpt::load_into(*net, sinsr::ckpt::read_state_dict(sinsr_test::parity_file("unet_tiny.pth")));
  net->eval();
  return net;
}

TEST(UNetSwinParity, TinyCases) {
  auto net = tiny();
  auto file = sinsr_test::load("unet_tiny_cases.pth");
  auto cases = sinsr_test::at_key(file, "cases").toList();
  ASSERT_GT(cases.size(), 0u);
  at::NoGradGuard no_grad;
  for (size_t i = 0; i < cases.size(); ++i) {
    c10::IValue c = cases.get(i);
    at::Tensor out = net->forward(sinsr_test::tensor(c, "x"), sinsr_test::tensor(c, "t"), sinsr_test::tensor(c, "lq"));
    EXPECT_TRUE(sinsr_test::all_close(out, sinsr_test::tensor(c, "out"), 5e-5, 1e-4)) << "case " << i;
  }
}

TEST(UNetSwin, OfficialMaskDependsOnTheLocalColumnInTheLastWindowRow) {
  auto m = sinsr::unet_swin::shifted_window_mask(8, 8, 4, 2);  // 2x2 windows of 16 tokens
  ASSERT_EQ(m.sizes(), (at::IntArrayRef{4, 16, 16}));
  EXPECT_EQ(m[0].abs().sum().item<float>(), 0.f);  // first window row: unmasked
  EXPECT_EQ(m[1].abs().sum().item<float>(), 0.f);
  // Last row: tokens 0 (col 0) and 1 (col 1) together, 2 (col 2) apart; -100 not -inf.
  EXPECT_EQ(m[2][0][1].item<float>(), 0.f);
  EXPECT_EQ(m[2][0][2].item<float>(), -100.f);
  EXPECT_EQ(m[3][4][12].item<float>(), 0.f);  // same column 0, different rows
}

TEST(UNetSwin, FullSizeConfigHasTheOfficialKeys) {
  std::ifstream keys(sinsr_test::parity_dir() + "/../spec/unet-swin-keys.txt");
  if (!keys) GTEST_SKIP() << "spec/unet-swin-keys.txt not beside the parity folder";
  auto cfg = sinsr::config::resolve({{"config_file", std::string(SINSR_CONFIG_DIR) + "/sinsr_x4.yaml"}}, "model");
  UNetModelSwin net(Options::from_json(cfg));
  std::map<std::string, at::Tensor> mine;
  for (auto& kv : sinsr::ckpt::state_of(net)) mine.emplace(kv.first, kv.second);
  std::vector<std::string> order;
  for (auto& kv : sinsr::ckpt::state_of(net)) order.push_back(kv.first);
  std::string line;
  size_t n = 0;
  while (std::getline(keys, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ss(line);
    std::string key, shape, dtype;
    std::getline(ss, key, '\t');
    // Same order as PyTorch's state_dict, so saved files list keys as official ones do.
    if (n < order.size()) EXPECT_EQ(order[n], key) << "entry " << n;
    std::getline(ss, shape, '\t');
    std::getline(ss, dtype, '\t');
    auto it = mine.find(key);
    ASSERT_NE(it, mine.end()) << "missing " << key;
    std::ostringstream s;
    s << it->second.sizes();
    EXPECT_EQ(s.str(), shape) << key;
    EXPECT_EQ(std::string(it->second.scalar_type() == at::kLong ? "int64" : "float32"), dtype) << key;
    ++n;
  }
  EXPECT_EQ(n, mine.size());
  int64_t params = 0;
  for (auto& p : net.parameters()) params += p.numel();
  EXPECT_EQ(params, 118593583);
  // Official initialisation: ResBlock output convs zero, the head conv and bias tables not.
  for (auto& kv : mine) {
    const std::string& k = kv.first;
    if (k.find("out_layers.3.") != std::string::npos) EXPECT_EQ(kv.second.abs().max().item<float>(), 0.f) << k;
    if (k == "out.2.weight") EXPECT_GT(kv.second.abs().max().item<float>(), 0.f) << k;
    if (k.find("relative_position_bias_table") != std::string::npos) {
      const double sd = kv.second.std().item<double>();
      EXPECT_GT(sd, 0.015) << k;
      EXPECT_LT(sd, 0.025) << k;
    }
  }

  // The official 64x64 latent runs (shifted windows at 64/32/16, unshifted at 8) and a
  // non-square multiple of 64 too.
  at::NoGradGuard no_grad;
  net.eval();
  for (auto hw : {std::pair<int64_t, int64_t>{64, 64}, {64, 128}}) {
    at::Tensor out = net.forward(at::randn({1, 3, hw.first, hw.second}), at::full({1}, 14, at::kLong),
                                 at::rand({1, 3, hw.first, hw.second}) * 2 - 1);
    EXPECT_EQ(out.sizes(), (at::IntArrayRef{1, 3, hw.first, hw.second}));
    EXPECT_TRUE(out.isfinite().all().item<bool>());
  }
}

TEST(UNetSwin, GradientsThroughTheAbiEqualAutograd) {
  sinsr::host::Runtime rt(2);
  rt.load_dir(SINSR_PLUGIN_DIR);
  sinsr::host::BackboneHandle h(rt.find(SINSR_KIND_BACKBONE, "unet_swin"),
                                {{"config_file", sinsr_test::parity_file("tiny-unet.yaml")}});
  h.load_weights(sinsr_test::parity_file("unet_tiny.pth"));
  auto net = tiny();
  net->train();
  at::manual_seed(0);
  at::Tensor x = at::randn({1, 3, 16, 16}), lq = at::rand({1, 3, 16, 16}) * 2 - 1, t = at::tensor({7}, at::kLong);
  at::Tensor g = at::randn({1, 3, 16, 16});
  h.set_training(true);
  h.zero_grad();
  auto [out, tape] = h.forward_train(x, lq, t);
  auto [gx, gcond] = h.backward(std::move(tape), g, /*want_input_grads=*/true);

  at::Tensor xr = x.clone().set_requires_grad(true), lqr = lq.clone().set_requires_grad(true);
  at::Tensor ref = net->forward(xr, t, lqr);
  EXPECT_TRUE(sinsr_test::all_close(out, ref.detach(), 1e-5, 1e-5));
  ref.backward(g);
  EXPECT_TRUE(sinsr_test::all_close(gx, xr.grad(), 1e-5, 1e-4));
  ASSERT_TRUE(gcond.defined());
  EXPECT_TRUE(sinsr_test::all_close(gcond, lqr.grad(), 1e-5, 1e-4));
  std::map<std::string, at::Tensor> ref_grads;
  for (auto& p : net->named_parameters()) ref_grads[p.key()] = p.value().grad();
  size_t checked = 0;
  for (auto& s : h.state()) {
    if (!s.is_parameter) continue;
    ASSERT_TRUE(ref_grads.count(s.name)) << s.name;
    EXPECT_TRUE(sinsr_test::all_close(s.grad, ref_grads[s.name], 1e-5, 1e-4)) << s.name;
    ++checked;
  }
  EXPECT_EQ(checked, ref_grads.size());
}

TEST(UNetSwin, StrictLoadingNamesTheMismatch) {
  sinsr::host::Runtime rt(1);
  rt.load_dir(SINSR_PLUGIN_DIR);
  sinsr::host::BackboneHandle h(rt.find(SINSR_KIND_BACKBONE, "unet_swin"),
                                {{"config_file", sinsr_test::parity_file("tiny-unet.yaml")}});
  try {
    h.load_weights(sinsr_test::parity_file("vq_tiny.pth"));
    FAIL();
  } catch (const sinsr::sdk::Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("vq_tiny.pth"), std::string::npos) << msg;
    EXPECT_NE(msg.find("missing"), std::string::npos) << msg;
  }
}

// Case i of unet_tiny_cases.pth, or its last one when another vector set holds fewer.
c10::IValue tiny_case(size_t i) {
  auto cases = sinsr_test::at_key(sinsr_test::load("unet_tiny_cases.pth"), "cases").toList();
  return cases.get(std::min(i, cases.size() - 1));
}

at::Tensor case_output(UNetModelSwin& net, size_t i) {
  auto c = tiny_case(i);
  at::NoGradGuard no_grad;
  return net.forward(sinsr_test::tensor(c, "x"), sinsr_test::tensor(c, "t"), sinsr_test::tensor(c, "lq"));
}

TEST(UNetSwin, ResShiftConfigFormBuildsTheSameNetwork) {
  auto cfg = sinsr::config::resolve({{"config_file", sinsr_test::parity_file("tiny-unet.yaml")}}, "model");
  cfg["in_channels"] = cfg["in_channels"].get<int>() - 3;
  cfg["lq_size"] = cfg["image_size"];
  UNetModelSwin net(Options::from_json(cfg));
  sinsr::ckpt::load_into(net, sinsr::ckpt::read_state_dict(sinsr_test::parity_file("unet_tiny.pth")));
  net.eval();
  auto c = tiny_case(0);
  EXPECT_TRUE(sinsr_test::all_close(case_output(net, 0), sinsr_test::tensor(c, "out"), 5e-5, 1e-4));

  cfg["lq_size"] = cfg["image_size"].get<int>() * 4;  // would need ResShift's feature extractor
  try {
    Options::from_json(cfg);
    FAIL() << "lq_size != image_size accepted";
  } catch (const sinsr::sdk::Error& e) {
    EXPECT_EQ(e.code(), SINSR_ERR_UNSUPPORTED);
    EXPECT_NE(std::string(e.what()).find("lq_size"), std::string::npos) << e.what();
  }
}

TEST(UNetSwin, UsersCheckpointFormsLoadThroughThePlugin) {
  sinsr::host::Runtime rt(1);
  rt.load_dir(SINSR_PLUGIN_DIR);
  auto c = tiny_case(1);
  // official OrderedDict, legacy non-zip, and parameters only (derived buffers recomputed)
  for (const char* name : {"unet_tiny_official.pth", "unet_tiny_legacy.pth", "unet_tiny_params.pth"}) {
    sinsr::host::BackboneHandle h(rt.find(SINSR_KIND_BACKBONE, "unet_swin"),
                                  {{"config_file", sinsr_test::parity_file("tiny-unet.yaml")}});
    h.load_weights(sinsr_test::parity_file(name));
    h.set_training(false);
    at::Tensor out = h.forward(sinsr_test::tensor(c, "x"), sinsr_test::tensor(c, "lq"), sinsr_test::tensor(c, "t"));
    EXPECT_TRUE(sinsr_test::all_close(out, sinsr_test::tensor(c, "out"), 5e-5, 1e-4)) << name;
  }
}

TEST(UNetSwin, InputErrorsNameTheProblem) {
  auto net = tiny();
  at::NoGradGuard no_grad;
  at::Tensor t = at::zeros({1}, at::kLong);
  // Downsampling by 4 fits 24, but the 1/4 level (6x6) is not a multiple of the window 4.
  expect_error(
      [&] {
        net->forward(at::zeros({1, 3, 24, 24}), t, at::zeros({1, 3, 24, 24}));
      },
      SINSR_ERR_INVALID_ARGUMENT, {"window"});
  expect_error(
      [&] {
        net->forward(at::zeros({1, 3, 30, 30}), t, at::zeros({1, 3, 30, 30}));
      },
      SINSR_ERR_INVALID_ARGUMENT, {"multiple of"});
  expect_error(
      [&] {
        net->forward(at::zeros({1, 3, 32, 32}), t, at::Tensor());
      },
      SINSR_ERR_INVALID_ARGUMENT, {"lq missing"});
  expect_error(
      [&] {
        net->forward(at::zeros({1, 3, 32, 32}), at::zeros({2}, at::kLong), at::zeros({1, 3, 32, 32}));
      },
      SINSR_ERR_INVALID_ARGUMENT, {"one step per batch item"});
  expect_error([&] { net->set_precision(c10::kCPU, at::kDouble); }, SINSR_ERR_UNSUPPORTED, {"float16"});
}

// A smaller lq is nearest-upsampled to x's size: x4 officially, x2 for a space_to_depth latent of
// factor 2 (the UNet at twice the LR resolution).
TEST(UNetSwin, SmallerLqIsUpsampledToTheLatentSize) {
  auto net = tiny();
  at::NoGradGuard no_grad;
  at::Tensor x = at::randn({1, 3, 32, 32}, at::TensorOptions().dtype(at::kFloat)), t = at::full({1}, 3, at::kLong);
  for (int64_t f : {2, 4}) {
    at::Tensor lq = at::rand({1, 3, 32 / f, 32 / f});
    at::Tensor up = at::upsample_nearest2d(lq, {32, 32});
    EXPECT_TRUE(sinsr_test::all_close(net->forward(x, t, lq), net->forward(x, t, up), 1e-6)) << "factor " << f;
  }
}

// The official reduced-precision split: convs/linears of the three block lists in the low dtype,
// everything else (time MLP, GroupNorm affine, bias tables, head) float32.
void expect_precision_split(UNetModelSwin& net, at::ScalarType low) {
  size_t n_low = 0;
  for (auto& kv : net.named_parameters()) {
    const std::string& k = kv.key();
    const bool torso =
        k.rfind("input_blocks.", 0) == 0 || k.rfind("middle_block.", 0) == 0 || k.rfind("output_blocks.", 0) == 0;
    const bool norm = k.find("norm") != std::string::npos || k.find("in_layers.0.") != std::string::npos ||
                      k.find("out_layers.0.") != std::string::npos;
    const bool table = k.find("relative_position_bias_table") != std::string::npos;
    const at::ScalarType want = torso && !norm && !table ? low : at::kFloat;
    EXPECT_EQ(kv.value().scalar_type(), want) << k;
    n_low += want == low;
  }
  EXPECT_GT(n_low, 0u);
  for (auto& kv : net.named_buffers())
    if (kv.key().find("relative_position_index") != std::string::npos) EXPECT_EQ(kv.value().scalar_type(), at::kLong);
}

void check_low_precision(c10::Device device, at::ScalarType low, double tol) {
  auto net = tiny();
  auto c = tiny_case(2);
  at::Tensor x = sinsr_test::tensor(c, "x").to(device), t = sinsr_test::tensor(c, "t").to(device),
             lq = sinsr_test::tensor(c, "lq").to(device);
  net->set_precision(device, at::kFloat);
  at::NoGradGuard no_grad;
  at::Tensor ref = net->forward(x, t, lq).cpu();
  net->set_precision(device, low);
  expect_precision_split(*net, low);
  at::Tensor out = net->forward(x, t, lq);
  EXPECT_EQ(out.scalar_type(), at::kFloat);
  at::Tensor out_low = net->forward(x.to(low), t, lq.to(low));  // a caller in the low dtype gets it back
  EXPECT_EQ(out_low.scalar_type(), low);
  const double err = (out.cpu() - ref).abs().max().item<double>(), scale = ref.abs().max().item<double>();
  EXPECT_LT(err, tol * scale) << "max error " << err << " for output scale " << scale;
  EXPECT_GT(err, 0.0);                     // really ran in the low dtype
  net->set_precision(device, at::kFloat);  // and back: fp32 weights, up to the rounding of the trip
  EXPECT_TRUE(sinsr_test::all_close(net->forward(x, t, lq).cpu(), ref, 0.1 * scale));
}

TEST(UNetSwin, Bf16TorsoOnCpu) { check_low_precision(c10::kCPU, at::kBFloat16, 0.08); }

TEST(UNetSwin, Fp16TorsoOnCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  check_low_precision(c10::Device(c10::kCUDA, 0), at::kHalf, 0.02);
}

TEST(UNetSwin, PrecisionThroughTheAbi) {
  sinsr::host::Runtime rt(1);
  rt.load_dir(SINSR_PLUGIN_DIR);
  sinsr::host::BackboneHandle h(rt.find(SINSR_KIND_BACKBONE, "unet_swin"),
                                {{"config_file", sinsr_test::parity_file("tiny-unet.yaml")}});
  h.load_weights(sinsr_test::parity_file("unet_tiny.pth"));
  h.set_training(false);
  h.to(c10::kCPU, at::kBFloat16);
  for (auto& s : h.state()) {
    if (s.name == "time_embed.0.weight" || s.name == "out.2.weight" || s.name.find("bias_table") != std::string::npos)
      EXPECT_EQ(s.value.scalar_type(), at::kFloat) << s.name;
    if (s.name == "input_blocks.0.0.weight") EXPECT_EQ(s.value.scalar_type(), at::kBFloat16) << s.name;
  }
  auto c = tiny_case(0);
  at::Tensor out = h.forward(sinsr_test::tensor(c, "x"), sinsr_test::tensor(c, "lq"), sinsr_test::tensor(c, "t"));
  at::Tensor ref = sinsr_test::tensor(c, "out");
  EXPECT_EQ(out.scalar_type(), at::kFloat);
  EXPECT_LT((out - ref).abs().max().item<double>(), 0.08 * ref.abs().max().item<double>());
}

}  // namespace
