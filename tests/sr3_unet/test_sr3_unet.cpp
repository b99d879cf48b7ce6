// SR3 UNet against the reference code (novwaul/SR3): the tiny network's outputs and embedding
// (sr3-srdiff/sr3_tiny_cases.pth), the condition path, the key layout, config and input checks,
// and training through the ABI.
#include "errors.hpp"
#include "parity.hpp"

#include "runtime/runtime.hpp"
#include "sr3_unet.hpp"

#include <sinsr/config.hpp>
#include <sinsr/layers.hpp>

#include <torch/csrc/autograd/autograd.h>

#include <cstdio>
#include <map>

namespace {

using sinsr_test::expect_error;

using sinsr::sr3_unet::Options;
using sinsr::sr3_unet::SR3UNet;
using json = nlohmann::json;

std::string sr3_file(const std::string& name) { return sinsr_test::parity_file("sr3-srdiff/" + name); }

// The component config of tiny-sr3.yaml (the reference constructor's argument names there).
json tiny_config(const std::string& attention = "corrected") {
  json y = sinsr::config::load_file(sr3_file("tiny-sr3.yaml"));
  return {{"model_channels", y.at("C")},
          {"channel_expansions", y.at("channel_expansions")},
          {"emb_expansion", y.at("emb_expansion")},
          {"resblock_per_down_stage", y.at("resblock_per_down_stage")},
          {"dropout", y.at("drp_rate")},
          {"in_channels", y.at("in_channels")},
          {"out_channels", y.at("out_channels")},
          {"attention", attention}};
}

std::shared_ptr<SR3UNet> tiny(const std::string& attention = "corrected") {
  auto net = std::make_shared<SR3UNet>(Options::from_json(tiny_config(attention)));
  sinsr::ckpt::load_into(*net, sinsr::ckpt::read_state_dict(sr3_file("sr3_tiny.pth")));
  net->eval();
  return net;
}

c10::IValue sr3_case(int i) {
  static const c10::IValue file = sinsr_test::load("sr3-srdiff/sr3_tiny_cases.pth");
  return sinsr_test::at_key(file, "case" + std::to_string(i));
}

std::unique_ptr<sinsr::host::BackboneHandle> plugin(sinsr::host::Runtime& rt, const json& config) {
  rt.load_file(SR3_UNET_PLUGIN);
  return std::make_unique<sinsr::host::BackboneHandle>(rt.find(SINSR_KIND_BACKBONE, "sr3_unet"), config);
}

TEST(Sr3UnetParity, CasesThroughThePlugin) {
  sinsr::host::Runtime rt(2);
  auto h = plugin(rt, tiny_config());
  h->load_weights(sr3_file("sr3_tiny.pth"));
  h->set_training(false);
  auto kind = h->timestep_kind();
  EXPECT_EQ(kind.kind, SINSR_TIMESTEP_NOISE_LEVEL);
  EXPECT_EQ(kind.unit, "sqrt_alpha_bar");
  for (int i = 0; i < 3; ++i) {
    auto c = sr3_case(i);
    at::Tensor x = sinsr_test::tensor(c, "x_t"), lr = sinsr_test::tensor(c, "lr"), ref = sinsr_test::tensor(c, "out");
    at::Tensor t = sinsr_test::tensor(c, "noise_level").reshape({-1});  // the contract's [N] float32
    // The contract: cond is the LR image in [-1,1] at LR size; the backbone upsamples it.
    at::Tensor out = h->forward(x, lr * 2 - 1, t);
    EXPECT_TRUE(sinsr_test::all_close(out, ref, 1e-4)) << "case " << i;
    // Already at x's size: used as is.
    EXPECT_TRUE(sinsr_test::all_close(h->forward(x, sinsr_test::tensor(c, "cond"), t), ref, 1e-4)) << "case " << i;
  }
}

TEST(Sr3UnetParity, EmbeddingAndReferenceInput) {
  auto net = tiny();
  at::NoGradGuard no_grad;
  for (int i = 0; i < 3; ++i) {
    auto c = sr3_case(i);
    at::Tensor gamma = sinsr_test::tensor(c, "noise_level");  // (B,1,1,1): any shape with B elements
    EXPECT_TRUE(sinsr_test::all_close(net->embed(gamma), sinsr_test::tensor(c, "emb"), 1e-4)) << "case " << i;
    at::Tensor input = at::cat({sinsr_test::tensor(c, "x_t"), sinsr_test::tensor(c, "cond")}, 1);
    EXPECT_TRUE(sinsr_test::all_close(net->forward_input(input, gamma), sinsr_test::tensor(c, "out"), 1e-4))
        << "case " << i;
  }
}

TEST(Sr3UnetParity, ConditionIsClampedBicubicOfTheLr) {
  for (int i = 0; i < 3; ++i) {
    auto c = sr3_case(i);
    at::Tensor lr = sinsr_test::tensor(c, "lr"), ref = sinsr_test::tensor(c, "cond");
    at::Tensor cond = sinsr::sr3_unet::upsample_condition(lr * 2 - 1, ref.size(2), ref.size(3));
    EXPECT_TRUE(sinsr_test::all_close(cond, ref, 1e-5)) << "case " << i;
    EXPECT_TRUE(sinsr_test::all_close(cond / 2 + 0.5, sinsr_test::tensor(c, "cond_01"), 1e-5)) << "case " << i;
    EXPECT_LE(cond.abs().max().item<float>(), 1.f);
  }
  // The clamp is not a no-op on these vectors: bicubic overshoots [0,1] somewhere.
  auto c = sr3_case(0);
  at::Tensor lr = sinsr_test::tensor(c, "lr");
  at::Tensor raw = at::upsample_bicubic2d(lr, {lr.size(2) * 4, lr.size(3) * 4}, false, 4.0, 4.0);
  EXPECT_TRUE(((raw < 0) | (raw > 1)).any().item<bool>());
}

TEST(Sr3Unet, KeysShapesAndOrderAreTheReferences) {
  SR3UNet net(Options::from_json(tiny_config()));
  auto file = sinsr::ckpt::read_state_dict(sr3_file("sr3_tiny.pth"));
  auto mine = sinsr::ckpt::state_of(net);
  ASSERT_EQ(mine.size(), file.size());
  for (size_t i = 0; i < mine.size(); ++i) {
    EXPECT_EQ(mine[i].first, file[i].first) << "entry " << i;
    EXPECT_EQ(mine[i].second.sizes(), file[i].second.sizes()) << mine[i].first;
  }
  int64_t params = 0;
  for (auto& p : net.parameters()) params += p.numel();
  EXPECT_EQ(params, 409651);
  // The recomputed frequencies equal the reference buffer.
  for (auto& kv : file)
    if (kv.first == "emb.x")
      EXPECT_TRUE(sinsr_test::all_close(sinsr::sr3_unet::gamma_frequencies(16), kv.second, 1e-7));
}

TEST(Sr3Unet, StrictLoadingNamesAMissingKey) {
  auto state = sinsr::ckpt::read_state_dict(sr3_file("sr3_tiny.pth"));
  const std::string dropped = "up.4.linear2.linear.weight";  // up.3 is an UpBlock
  sinsr::ckpt::StateDict partial, no_freqs;
  for (auto& kv : state) {
    if (kv.first != dropped) partial.push_back(kv);
    if (kv.first != "emb.x") no_freqs.push_back(kv);
  }
  ASSERT_EQ(partial.size() + 1, state.size());
  const std::string dir = ::testing::TempDir();
  const std::string bad = dir + "/sr3_missing_key.pth", params_only = dir + "/sr3_params_only.pth";
  sinsr::ckpt::save_state_dict(bad, partial);
  sinsr::ckpt::save_state_dict(params_only, no_freqs);
  sinsr::host::Runtime rt(1);
  auto h = plugin(rt, tiny_config());
  expect_error([&] { h->load_weights(bad); }, SINSR_ERR_FORMAT, {"missing", dropped, "sr3_missing_key.pth"});
  // The derived buffer emb.x may be absent (files of parameters only).
  h->load_weights(params_only);
  h->set_training(false);
  auto c = sr3_case(0);
  at::Tensor out = h->forward(sinsr_test::tensor(c, "x_t"), sinsr_test::tensor(c, "lr") * 2 - 1,
                              sinsr_test::tensor(c, "noise_level").reshape({-1}));
  EXPECT_TRUE(sinsr_test::all_close(out, sinsr_test::tensor(c, "out"), 1e-4));
  std::remove(bad.c_str());
  std::remove(params_only.c_str());
}

TEST(Sr3Unet, CorrectedAttentionDiffersWithTheSameWeights) {
  auto faithful = tiny("faithful"), corrected = tiny("corrected");
  auto c = sr3_case(2);
  at::Tensor x = sinsr_test::tensor(c, "x_t"), cond = sinsr_test::tensor(c, "lr") * 2 - 1;
  at::Tensor t = sinsr_test::tensor(c, "noise_level").reshape({-1});
  at::NoGradGuard no_grad;
  at::Tensor a = faithful->forward(x, cond, t), b = corrected->forward(x, cond, t);
  EXPECT_TRUE(a.isfinite().all().item<bool>());
  EXPECT_GT((a - b).abs().max().item<double>(), 1e-3);
  // The pinned reference (f19c45d) attends for real: only "corrected" reproduces its vectors.
  EXPECT_TRUE(sinsr_test::all_close(b, sinsr_test::tensor(c, "out"), 1e-4));
  // "faithful" is x + proj(GN(x)): the qkv weights do not matter, and with proj zeroed both
  // modes reduce to the identity in every attention block.
  for (auto& kv : faithful->named_parameters())
    if (kv.key().find(".att.qkv.") != std::string::npos) kv.value().normal_();
  EXPECT_TRUE(sinsr_test::all_close(faithful->forward(x, cond, t), a, 0));
  for (auto* net : {faithful.get(), corrected.get()})
    for (auto& kv : net->named_parameters())
      if (kv.key().find(".att.proj.") != std::string::npos) kv.value().zero_();
  EXPECT_TRUE(sinsr_test::all_close(faithful->forward(x, cond, t), corrected->forward(x, cond, t), 1e-6));
}

// Large grids attend in blocks of queries (sdk::attention as SR3 calls it): any block size gives
// the whole-matrix result, in float32 and with gradients.
TEST(Sr3Unet, AttentionInBlocksOfQueriesIsTheWholeAttention) {
  at::manual_seed(3);
  at::Tensor q = at::randn({2, 300, 16}).requires_grad_(), k = at::randn({2, 300, 16}), v = at::randn({2, 300, 16});
  at::Tensor whole = at::matmul(at::softmax(at::matmul(q, k.transpose(-2, -1)) / std::sqrt(16.0), -1), v);
  sinsr::sdk::AttentionOptions options;
  options.divide = options.float32_softmax = true;
  for (int64_t block : {int64_t(1) << 20, int64_t(7), int64_t(1)}) {  // one block, 43 blocks, one query each
    options.block = block;
    at::Tensor blocked = sinsr::sdk::attention(q, k, v, options);
    ASSERT_EQ(blocked.sizes(), whole.sizes()) << block;
    EXPECT_TRUE(sinsr_test::all_close(blocked, whole, 1e-5)) << block;
    at::Tensor g_whole = torch::autograd::grad({whole.sum()}, {q}, {}, true)[0];
    at::Tensor g_blocked = torch::autograd::grad({blocked.sum()}, {q})[0];
    EXPECT_TRUE(sinsr_test::all_close(g_blocked, g_whole, 1e-5)) << block;
  }
}

TEST(Sr3Unet, InputErrorsNameTheProblem) {
  auto net = tiny();
  at::NoGradGuard no_grad;
  at::Tensor t = at::full({1}, 0.5f);
  // tiny: 3 levels, so multiples of 4.
  expect_error(
      [&] {
        net->forward(at::zeros({1, 3, 30, 32}), at::zeros({1, 3, 8, 8}), t);
      },
      SINSR_ERR_INVALID_ARGUMENT, {"30x32", "multiples of 4"});
  expect_error(
      [&] {
        net->forward(at::zeros({1, 3, 32, 32}), at::zeros({1, 3, 64, 64}), t);
      },
      SINSR_ERR_INVALID_ARGUMENT, {"larger than x"});
  expect_error([&] { net->forward(at::zeros({1, 3, 32, 32}), at::Tensor(), t); }, SINSR_ERR_INVALID_ARGUMENT, {"cond"});
  expect_error(
      [&] {
        net->forward(at::zeros({2, 3, 32, 32}), at::zeros({2, 3, 8, 8}), at::full({3}, 0.5f));
      },
      SINSR_ERR_INVALID_ARGUMENT, {"noise level"});
  expect_error(
      [&] {
        net->forward(at::zeros({1, 3, 32, 32}), at::zeros({1, 1, 8, 8}), t);
      },
      SINSR_ERR_INVALID_ARGUMENT, {"in_channels is 6"});
  // The same refusal across the ABI.
  sinsr::host::Runtime rt(1);
  auto h = plugin(rt, tiny_config());
  expect_error(
      [&] {
        h->forward(at::zeros({1, 3, 24, 26}), at::zeros({1, 3, 6, 6}), t);
      },
      SINSR_ERR_INVALID_ARGUMENT, {"24x26", "multiples of 4"});
}

TEST(Sr3Unet, ConfigIsStrict) {
  expect_error([] { Options::from_json({{"model_chanels", 16}}); }, SINSR_ERR_INVALID_ARGUMENT, {"model_chanels"});
  expect_error(
      [] {
        Options::from_json({{"model_channels", "16"}});
      },
      SINSR_ERR_INVALID_ARGUMENT, {"model_channels", "integer"});
  expect_error(
      [] {
        Options::from_json({{"model_channels", 12}});
      },
      SINSR_ERR_INVALID_ARGUMENT, {"model_channels", "multiple of 8"});
  expect_error(
      [] {
        Options::from_json({{"channel_expansions", {1, 2.5}}});
      },
      SINSR_ERR_INVALID_ARGUMENT, {"channel_expansions", "entry 1"});
  expect_error(
      [] {
        Options::from_json({{"channel_expansions", json::array()}});
      },
      SINSR_ERR_INVALID_ARGUMENT, {"channel_expansions"});
  expect_error([] { Options::from_json({{"dropout", true}}); }, SINSR_ERR_INVALID_ARGUMENT, {"dropout"});
  expect_error(
      [] {
        Options::from_json({{"attention", "multihead"}});
      },
      SINSR_ERR_INVALID_ARGUMENT, {"attention", "corrected"});
  expect_error([] { Options::from_json(json::array()); }, SINSR_ERR_INVALID_ARGUMENT, {"object"});
  // Through the ABI the component refuses at creation, naming the key.
  sinsr::host::Runtime rt(1);
  rt.load_file(SR3_UNET_PLUGIN);
  auto comp = rt.find(SINSR_KIND_BACKBONE, "sr3_unet");
  expect_error(
      [&] {
        sinsr::host::BackboneHandle h(comp, {{"drp_rate", 0.1}});
      },
      SINSR_ERR_INVALID_ARGUMENT, {"drp_rate"});
  // The schema lists exactly the accepted keys, with the defaults of Options.
  json schema = json::parse(comp->desc->config_schema);
  json defaults = json::object();
  for (auto& kv : schema.items()) defaults[kv.key()] = kv.value().at("default");
  EXPECT_EQ(Options::from_json(defaults).to_json(), Options().to_json());
  EXPECT_EQ(defaults.size(), Options().to_json().size());
}

TEST(Sr3Unet, FreshNetworkStartsNearZero) {
  at::manual_seed(0);
  SR3UNet net(Options::from_json(tiny_config("corrected")));
  at::NoGradGuard no_grad;
  at::Tensor out = net.forward(at::randn({1, 3, 16, 16}), at::rand({1, 3, 4, 4}) * 2 - 1, at::full({1}, 0.7f));
  EXPECT_EQ(out.sizes(), (at::IntArrayRef{1, 3, 16, 16}));
  EXPECT_LT(out.abs().max().item<double>(), 1e-3);
}

void check_training(const std::string& attention) {
  sinsr::host::Runtime rt(2);
  auto h = plugin(rt, tiny_config(attention));
  h->load_weights(sr3_file("sr3_tiny.pth"));
  auto net = tiny(attention);
  net->train();
  at::manual_seed(0);
  at::Tensor x = at::randn({2, 3, 16, 24}), cond = at::rand({2, 3, 4, 6}) * 2 - 1, t = at::rand({2});
  at::Tensor g = at::randn({2, 3, 16, 24});
  h->set_training(true);
  h->zero_grad();
  auto [out, tape] = h->forward_train(x, cond, t);
  auto [gx, gcond] = h->backward(std::move(tape), g, /*want_input_grads=*/true);

  at::Tensor xr = x.clone().set_requires_grad(true);
  at::Tensor ref = net->forward(xr, cond, t);
  EXPECT_TRUE(sinsr_test::all_close(out, ref.detach(), 1e-5, 1e-5));
  ref.backward(g);
  ASSERT_TRUE(gx.defined());
  EXPECT_TRUE(sinsr_test::all_close(gx, xr.grad(), 1e-5, 1e-4));
  ASSERT_TRUE(gcond.defined());
  EXPECT_TRUE(gcond.isfinite().all().item<bool>());
  EXPECT_GT(gcond.abs().max().item<double>(), 0.0);
  std::map<std::string, at::Tensor> ref_grads;
  for (auto& p : net->named_parameters()) ref_grads[p.key()] = p.value().grad();
  size_t checked = 0, nonzero = 0;
  for (auto& s : h->state()) {
    if (!s.is_parameter) continue;
    ASSERT_TRUE(s.grad.defined()) << s.name;
    EXPECT_TRUE(s.grad.isfinite().all().item<bool>()) << s.name;
    nonzero += s.grad.abs().max().item<double>() > 0;
    const bool unused_qkv = attention == "faithful" && s.name.find(".att.qkv.") != std::string::npos;
    if (!unused_qkv) EXPECT_TRUE(sinsr_test::all_close(s.grad, ref_grads.at(s.name), 1e-5, 1e-4)) << s.name;
    ++checked;
  }
  EXPECT_EQ(checked, ref_grads.size());
  // faithful: the reference discards the attention, so only the qkv layers get no gradient.
  size_t qkv = 0;
  for (auto& kv : ref_grads) qkv += kv.first.find(".att.qkv.") != std::string::npos;
  EXPECT_EQ(nonzero, attention == "corrected" ? checked : checked - qkv);
}

TEST(Sr3Unet, BackwardGivesFiniteGradientsFaithful) { check_training("faithful"); }
TEST(Sr3Unet, BackwardGivesFiniteGradientsCorrected) { check_training("corrected"); }

TEST(Sr3Unet, Bf16TorsoOnCpu) {
  auto net = tiny();
  auto c = sr3_case(2);
  at::Tensor x = sinsr_test::tensor(c, "x_t"), cond = sinsr_test::tensor(c, "lr") * 2 - 1;
  at::Tensor t = sinsr_test::tensor(c, "noise_level").reshape({-1}), ref = sinsr_test::tensor(c, "out");
  at::NoGradGuard no_grad;
  net->set_precision(c10::kCPU, at::kBFloat16);
  for (auto& kv : net->named_parameters()) {
    const std::string& k = kv.key();
    if (k == "emb.linear1.linear.weight" || k == "conv2.conv.weight" || k.find("group_norm") != std::string::npos)
      EXPECT_EQ(kv.value().scalar_type(), at::kFloat) << k;
    if (k == "down.0.conv1.conv.weight") EXPECT_EQ(kv.value().scalar_type(), at::kBFloat16) << k;
  }
  at::Tensor out = net->forward(x, cond, t);
  EXPECT_EQ(out.scalar_type(), at::kFloat);
  const double err = (out - ref).abs().max().item<double>(), scale = ref.abs().max().item<double>();
  EXPECT_LT(err, 0.08 * scale);
  EXPECT_GT(err, 0.0);
  net->set_precision(c10::kCPU, at::kFloat);
  expect_error([&] { net->set_precision(c10::kCPU, at::kDouble); }, SINSR_ERR_UNSUPPORTED, {"bfloat16"});
}

}  // namespace
