// UNetModelSwin against the official code: the tiny network's outputs (unet_tiny_cases.pth),
// the full-size state_dict layout, and gradients across the ABI.
#include "parity.hpp"

#include "runtime.hpp"
#include "unet_swin.hpp"

#include <sinsr/config.hpp>

#include <fstream>
#include <sstream>

namespace {

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
  std::string line;
  size_t n = 0;
  while (std::getline(keys, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ss(line);
    std::string key, shape, dtype;
    std::getline(ss, key, '\t');
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

  at::Tensor xr = x.clone().set_requires_grad(true);
  at::Tensor ref = net->forward(xr, t, lq);
  EXPECT_TRUE(sinsr_test::all_close(out, ref.detach(), 1e-5, 1e-5));
  ref.backward(g);
  EXPECT_TRUE(sinsr_test::all_close(gx, xr.grad(), 1e-5, 1e-4));
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

}  // namespace
