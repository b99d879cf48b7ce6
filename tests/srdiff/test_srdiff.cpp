// SRDiff against the reference code (LeiaLi/SRDiff, sr3-srdiff/srdiff_tiny*.pth): the tiny
// network's RRDB features, RRDB image, time embedding and noise prediction, directly and through
// the plugin; the reference key layout; freezing the RRDB; training it; refused inputs and configs.
#include "errors.hpp"
#include "parity.hpp"

#include "runtime/runtime.hpp"
#include "srdiff.hpp"

#include <sinsr/sdk.hpp>

#include <torch/optim/adam.h>

#include <unistd.h>
#include <filesystem>

namespace {

using sinsr_test::expect_error;

using nlohmann::json;
using sinsr::srdiff::Options;
using sinsr::srdiff::SRDiff;

const char* kWeights = "sr3-srdiff/srdiff_tiny.pth";
const char* kCases = "sr3-srdiff/srdiff_tiny_cases.pth";

// tiny-srdiff.yaml's architecture (gc = nf / 2 by default).
json tiny_config(const json& extra = json::object()) {
  json c = {{"hidden_size", 16}, {"unet_dim_mults", "1|2|3|4"}, {"rrdb_num_feat", 16}, {"rrdb_num_block", 5}};
  c.update(extra);
  return c;
}

std::shared_ptr<SRDiff> tiny(const json& extra = json::object()) {
  auto net = std::make_shared<SRDiff>(Options::from_json(tiny_config(extra)));
  sinsr::srdiff::load_weights(*net, sinsr_test::parity_file(kWeights), json::object());
  net->eval();
  return net;
}

c10::IValue tiny_case(int i) { return sinsr_test::at_key(sinsr_test::load(kCases), "case" + std::to_string(i)); }
at::Tensor get(const c10::IValue& c, const char* key) { return sinsr_test::tensor(c, key); }

std::string temp_path(const std::string& name) {
  return (std::filesystem::path(::testing::TempDir()) / ("srdiff_" + std::to_string(::getpid()) + "_" + name)).string();
}

struct Plugin {
  sinsr::host::Runtime rt{1};
  Plugin() { rt.load_dir(SINSR_PLUGIN_DIR); }
  std::unique_ptr<sinsr::host::BackboneHandle> make(const json& config, bool weights = true) {
    auto h = std::make_unique<sinsr::host::BackboneHandle>(rt.find(SINSR_KIND_BACKBONE, "srdiff"), config);
    if (weights) h->load_weights(sinsr_test::parity_file(kWeights));
    return h;
  }
};

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

TEST(SRDiffParity, EveryCaseDirect) {
  auto net = tiny();
  at::NoGradGuard no_grad;
  for (int i = 0; i < 3; ++i) {
    auto c = tiny_case(i);
    auto feas = net->rrdb().features(get(c, "img_lr"));
    ASSERT_EQ(feas.size(), 6u);
    EXPECT_TRUE(sinsr_test::all_close(at::stack(feas), get(c, "rrdb_feas"), 1e-4)) << "case " << i;
    EXPECT_TRUE(sinsr_test::all_close(net->rrdb().image(feas.back()), get(c, "rrdb_out"), 1e-4)) << "case " << i;
    EXPECT_TRUE(sinsr_test::all_close(net->denoise_fn().time_embedding(get(c, "t")), get(c, "time_emb"), 1e-4))
        << "case " << i;
    at::Tensor out = net->forward(get(c, "x_t"), get(c, "img_lr"), get(c, "t"));
    EXPECT_TRUE(sinsr_test::all_close(out, get(c, "out"), 1e-4)) << "case " << i;
  }
}

TEST(SRDiffParity, EveryCaseThroughThePlugin) {
  Plugin p;
  auto eps = p.make(tiny_config());
  auto rrdb = p.make(tiny_config({{"output", "rrdb"}}));
  eps->set_training(false);
  rrdb->set_training(false);
  EXPECT_EQ(eps->timestep_kind().kind, SINSR_TIMESTEP_INDEX);
  for (int i = 0; i < 3; ++i) {
    auto c = tiny_case(i);
    EXPECT_TRUE(sinsr_test::all_close(eps->forward(get(c, "x_t"), get(c, "img_lr"), get(c, "t")), get(c, "out"), 1e-4))
        << "case " << i;
    // x and t are ignored in the rrdb output.
    EXPECT_TRUE(sinsr_test::all_close(rrdb->forward(get(c, "x_t") * 0, get(c, "img_lr"), get(c, "t") * 0),
                                      get(c, "rrdb_out"), 1e-4))
        << "case " << i;
  }
}

// The parity file lists rrdb.* first; GaussianDiffusion registers denoise_fn first, as here. Within
// each part the order is the reference modules' own.
TEST(SRDiff, StateDictIsTheReferenceOneInOrder) {
  SRDiff net(Options::from_json(tiny_config()));
  auto file = sinsr::ckpt::read_state_dict(sinsr_test::parity_file(kWeights));
  auto mine = sinsr::ckpt::state_of(net);
  ASSERT_EQ(mine.size(), file.size());
  for (const char* part : {"denoise_fn.", "rrdb."}) {
    sinsr::ckpt::StateDict a, b;
    for (auto& kv : mine)
      if (starts_with(kv.first, part)) a.push_back(kv);
    for (auto& kv : file)
      if (starts_with(kv.first, part)) b.push_back(kv);
    ASSERT_EQ(a.size(), b.size()) << part;
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].first, b[i].first) << part << " entry " << i;
      EXPECT_EQ(a[i].second.sizes(), b[i].second.sizes()) << a[i].first;
    }
  }
  EXPECT_TRUE(starts_with(mine.front().first, "denoise_fn."));
  int64_t rrdb = 0, unet = 0;
  for (auto& kv : mine) (starts_with(kv.first, "rrdb.") ? rrdb : unet) += kv.second.numel();
  EXPECT_EQ(rrdb, 235523);
  EXPECT_EQ(unet, 745155);
}

TEST(SRDiff, StrictLoadingNamesAMissingKey) {
  auto state = sinsr::ckpt::read_state_dict(sinsr_test::parity_file(kWeights));
  const std::string dropped = "denoise_fn.ups.2.2.conv.0.weight";
  sinsr::ckpt::StateDict partial;
  for (auto& kv : state)
    if (kv.first != dropped) partial.push_back(kv);
  ASSERT_EQ(partial.size() + 1, state.size());
  const std::string path = temp_path("partial.pth");
  sinsr::ckpt::save_state_dict(path, partial);
  Plugin p;
  auto h = p.make(tiny_config(), false);
  expect_error([&] { h->load_weights(path); }, SINSR_ERR_FORMAT, {"missing", dropped, path});
  std::filesystem::remove(path);
}

// The reference trainer saves {"state_dict": {"model": GaussianDiffusion.state_dict()}} (with the
// schedule buffers), and the pre-trained RRDB the same way around a bare RRDBNet (rrdb_ckpt).
TEST(SRDiff, ReferenceCheckpointLayoutsLoad) {
  auto state = sinsr::ckpt::read_state_dict(sinsr_test::parity_file(kWeights));
  auto nest = [](const c10::impl::GenericDict& model) {
    c10::impl::GenericDict sd(c10::StringType::get(), c10::AnyType::get());
    sd.insert(std::string("model"), model);
    c10::impl::GenericDict root(c10::StringType::get(), c10::AnyType::get());
    root.insert(std::string("global_step"), int64_t(1000));
    root.insert(std::string("state_dict"), sd);
    return root;
  };
  c10::impl::GenericDict full(c10::StringType::get(), c10::AnyType::get()),
      rrdb_only(c10::StringType::get(), c10::AnyType::get());
  for (auto& kv : state) {
    full.insert(kv.first, kv.second);
    if (starts_with(kv.first, "rrdb.")) rrdb_only.insert(kv.first.substr(5), kv.second);
  }
  full.insert(std::string("betas"), at::rand({100}));
  full.insert(std::string("posterior_mean_coef2"), at::rand({100}));
  const std::string full_path = temp_path("reference.ckpt"), rrdb_path = temp_path("rrdb.ckpt");
  sinsr::ckpt::save_file(full_path, nest(full));
  sinsr::ckpt::save_file(rrdb_path, nest(rrdb_only));

  Plugin p;
  auto c = tiny_case(2);
  auto h = p.make(tiny_config(), false);
  h->load_weights(full_path);
  EXPECT_TRUE(sinsr_test::all_close(h->forward(get(c, "x_t"), get(c, "img_lr"), get(c, "t")), get(c, "out"), 1e-4));

  auto r = p.make(tiny_config({{"output", "rrdb"}}), false);
  expect_error([&] { r->load_weights(rrdb_path); }, SINSR_ERR_FORMAT, {"missing", "unexpected", "conv_first.weight"});
  r->load_weights(rrdb_path, {{"module", "rrdb"}});
  EXPECT_TRUE(
      sinsr_test::all_close(r->forward(get(c, "x_t"), get(c, "img_lr"), get(c, "t")), get(c, "rrdb_out"), 1e-4));
  expect_error([&] { r->load_weights(rrdb_path, {{"module", "unet"}}); }, SINSR_ERR_INVALID_ARGUMENT, {"module"});
  std::filesystem::remove(full_path);
  std::filesystem::remove(rrdb_path);
}

// save_weights writes every tensor (the frozen RRDB's too) under the reference names; to() moves
// the whole network, inputs follow the weights' dtype and the output the caller's.
TEST(SRDiff, SavedWeightsReloadAndDtypeFollowsTheWeights) {
  Plugin p;
  auto h = p.make(tiny_config());
  const std::string path = temp_path("saved.pth");
  h->save_weights(path);
  auto saved = sinsr::ckpt::read_state_dict(path);
  EXPECT_EQ(saved.size(), sinsr::ckpt::read_state_dict(sinsr_test::parity_file(kWeights)).size());
  auto again = p.make(tiny_config(), false);
  again->load_weights(path);
  std::filesystem::remove(path);
  again->to(c10::kCPU, at::kDouble);
  for (auto& s : again->state()) EXPECT_EQ(s.value.scalar_type(), at::kDouble) << s.name;
  auto c = tiny_case(2);
  at::Tensor out = again->forward(get(c, "x_t"), get(c, "img_lr"), get(c, "t"));
  EXPECT_EQ(out.scalar_type(), at::kFloat);
  EXPECT_TRUE(sinsr_test::all_close(out, get(c, "out"), 1e-4));
}

// The default: the RRDB is a frozen encoder; the host sees its tensors as non-parameters.
TEST(SRDiffTraining, FixedRrdbGetsNoGradient) {
  Plugin p;
  auto h = p.make(tiny_config());
  auto c = tiny_case(1);
  at::Tensor x = get(c, "x_t"), lr = get(c, "img_lr"), t = get(c, "t");
  at::manual_seed(0);
  at::Tensor g = at::randn(x.sizes());
  h->set_training(true);
  h->zero_grad();
  auto [out, tape] = h->forward_train(x, lr, t);
  EXPECT_TRUE(sinsr_test::all_close(out, get(c, "out"), 1e-4));
  auto [gx, gcond] = h->backward(std::move(tape), g, /*want_input_grads=*/true);
  EXPECT_TRUE(gx.defined());
  EXPECT_FALSE(gcond.defined());  // nothing flows into the frozen encoder

  // Same gradients as autograd on the module itself.
  auto net = tiny();
  net->train();
  at::Tensor xr = x.clone().set_requires_grad(true);
  net->forward(xr, lr, t).backward(g);
  EXPECT_TRUE(sinsr_test::all_close(gx, xr.grad(), 1e-5, 1e-4));
  std::map<std::string, at::Tensor> ref;
  for (auto& kv : net->named_parameters()) ref[kv.key()] = kv.value().grad();

  size_t rrdb = 0, unet = 0;
  for (auto& s : h->state()) {
    if (starts_with(s.name, "rrdb.")) {
      EXPECT_FALSE(s.is_parameter) << s.name;
      EXPECT_FALSE(s.grad.defined()) << s.name;
      EXPECT_FALSE(s.value.requires_grad()) << s.name;
      ++rrdb;
    } else {
      ASSERT_TRUE(s.is_parameter) << s.name;
      ASSERT_TRUE(s.grad.defined()) << s.name;
      EXPECT_TRUE(s.grad.isfinite().all().item<bool>()) << s.name;
      EXPECT_GT(s.grad.abs().sum().item<double>(), 0) << s.name;
      ASSERT_TRUE(ref.count(s.name)) << s.name;
      EXPECT_TRUE(sinsr_test::all_close(s.grad, ref[s.name], 1e-5, 1e-4)) << s.name;
      ++unet;
    }
  }
  EXPECT_EQ(rrdb, 2u * 6u + 2u * 5u * 3u * 5u);  // 6 convs outside the trunk, 5 RRDBs of 3 x 5 convs
  EXPECT_EQ(unet, ref.size());
}

TEST(SRDiffTraining, UnfixedRrdbTrainsThroughTheUnet) {
  Plugin p;
  auto h = p.make(tiny_config({{"fix_rrdb", false}}));
  auto c = tiny_case(0);
  h->set_training(true);
  h->zero_grad();
  auto [out, tape] = h->forward_train(get(c, "x_t"), get(c, "img_lr"), get(c, "t"));
  auto [gx, gcond] = h->backward(std::move(tape), at::ones_like(out), true);
  EXPECT_TRUE(gcond.defined());
  size_t params = 0;
  for (auto& s : h->state()) {
    EXPECT_TRUE(s.is_parameter) << s.name;
    params += s.is_parameter;
    if (s.name == "rrdb.conv_first.weight" || s.name == "rrdb.RRDB_trunk.2.RDB3.conv5.weight" ||
        s.name == "rrdb.trunk_conv.weight") {
      EXPECT_TRUE(s.grad.isfinite().all().item<bool>()) << s.name;
      EXPECT_GT(s.grad.abs().sum().item<double>(), 0) << s.name;
    }
  }
  EXPECT_EQ(params, sinsr::ckpt::read_state_dict(sinsr_test::parity_file(kWeights)).size());
}

// output "rrdb": the RRDB alone, trained by L1 against HR (the reference's RRDB pre-training);
// the Unet is the frozen part then.
TEST(SRDiffTraining, RrdbOutputTrainsTheRrdb) {
  Plugin p;
  auto h = p.make(tiny_config({{"output", "rrdb"}}));
  auto c = tiny_case(2);
  at::Tensor hr = get(c, "img_lr_up").clamp(-1, 1);
  h->set_training(true);
  h->zero_grad();
  auto [out, tape] = h->forward_train(get(c, "x_t"), get(c, "img_lr"), get(c, "t"));
  h->backward(std::move(tape), (out - hr).sign() / double(out.numel()));
  for (auto& s : h->state()) {
    if (starts_with(s.name, "rrdb.")) {
      ASSERT_TRUE(s.is_parameter) << s.name;
      EXPECT_TRUE(s.grad.isfinite().all().item<bool>()) << s.name;
      if (s.name == "rrdb.conv_last.weight" || s.name == "rrdb.conv_first.weight")
        EXPECT_GT(s.grad.abs().sum().item<double>(), 0) << s.name;
    } else {
      EXPECT_FALSE(s.is_parameter) << s.name;
    }
  }

  // A few Adam steps on the module lower the L1 loss.
  auto net = tiny({{"output", "rrdb"}});
  net->train();
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(1e-3));
  for (auto& kv : net->named_parameters()) ASSERT_TRUE(starts_with(kv.key(), "rrdb.")) << kv.key();
  auto loss = [&] { return (net->forward(at::Tensor(), get(c, "img_lr"), at::Tensor()) - hr).abs().mean(); };
  const double before = loss().item<double>();
  for (int k = 0; k < 10; ++k) {
    opt.zero_grad();
    loss().backward();
    opt.step();
  }
  EXPECT_LT(loss().item<double>(), before * 0.95);
}

TEST(SRDiff, WrongSizesAreRefused) {
  auto net = tiny();
  at::NoGradGuard no_grad;
  at::Tensor t = at::zeros({1}, at::kLong);
  expect_error(
      [&] {
        net->forward(at::zeros({1, 3, 28, 32}), at::zeros({1, 3, 7, 8}), t);
      },
      SINSR_ERR_INVALID_ARGUMENT, {"28x32", "multiple of 8"});
  expect_error(
      [&] {
        net->forward(at::zeros({1, 3, 32, 32}), at::zeros({1, 3, 7, 8}), t);
      },
      SINSR_ERR_INVALID_ARGUMENT, {"HR size 32x32", "sr_scale 4", "LR size 7x8"});
  expect_error(
      [&] {
        net->forward(at::zeros({1, 3, 8, 8}), at::zeros({1, 3, 2, 2}), t);
      },
      SINSR_ERR_INVALID_ARGUMENT, {"8x8", "too small"});
  expect_error(
      [&] {
        net->forward(at::zeros({1, 3, 32, 32}), at::zeros({1, 3, 8, 8}), at::zeros({2}, at::kLong));
      },
      SINSR_ERR_INVALID_ARGUMENT, {"one step per batch item"});
  expect_error(
      [&] {
        net->forward(at::zeros({1, 3, 32, 32}), at::zeros({1, 1, 8, 8}), t);
      },
      SINSR_ERR_INVALID_ARGUMENT, {"cond"});
  auto rrdb = tiny({{"output", "rrdb"}});
  expect_error(
      [&] {
        rrdb->forward(at::zeros({1, 3, 16, 16}), at::zeros({1, 3, 8, 8}), t);
      },
      SINSR_ERR_INVALID_ARGUMENT, {"HR size 16x16", "LR size 8x8"});
  // and through the ABI
  Plugin p;
  auto h = p.make(tiny_config());
  expect_error(
      [&] {
        h->forward(at::zeros({1, 3, 36, 32}), at::zeros({1, 3, 9, 8}), t);
      },
      SINSR_ERR_INVALID_ARGUMENT, {"36x32", "multiple of 8"});
}

TEST(SRDiff, ConfigIsStrict) {
  auto refused = [](const json& extra, sinsr_code code, const std::vector<std::string>& words) {
    expect_error([&] { Options::from_json(tiny_config(extra)); }, code, words);
  };
  refused({{"use_attn", true}}, SINSR_ERR_INVALID_ARGUMENT, {"unknown key 'use_attn'"});
  refused({{"hidden_size", "16"}}, SINSR_ERR_INVALID_ARGUMENT, {"'hidden_size'", "integer"});
  refused({{"hidden_size", 16.5}}, SINSR_ERR_INVALID_ARGUMENT, {"'hidden_size'"});
  refused({{"hidden_size", 15}}, SINSR_ERR_INVALID_ARGUMENT, {"'hidden_size'", "even"});
  refused({{"fix_rrdb", 1}}, SINSR_ERR_INVALID_ARGUMENT, {"'fix_rrdb'", "true or false"});
  refused({{"sr_scale", 3}}, SINSR_ERR_INVALID_ARGUMENT, {"'sr_scale'"});
  refused({{"output", "x0"}}, SINSR_ERR_INVALID_ARGUMENT, {"'output'", "x0"});
  refused({{"unet_dim_mults", "1|two"}}, SINSR_ERR_INVALID_ARGUMENT, {"'unet_dim_mults'"});
  refused({{"unet_dim_mults", json::array({2, 4})}}, SINSR_ERR_INVALID_ARGUMENT, {"'unet_dim_mults'", "start with 1"});
  refused({{"dim_mults", json::array({1, 2})}}, SINSR_ERR_INVALID_ARGUMENT, {"not both"});
  refused({{"rrdb_num_block", 1}}, SINSR_ERR_INVALID_ARGUMENT, {"'rrdb_num_block'"});
  refused({{"out_dim", 6}}, SINSR_ERR_INVALID_ARGUMENT, {"'out_dim'"});
  expect_error([] { Options::from_json(json::array({1})); }, SINSR_ERR_INVALID_ARGUMENT, {"JSON object"});

  Options d = Options::from_json(json::object());
  EXPECT_EQ(d.hidden_size, 64);
  EXPECT_EQ(d.dim_mults, (std::vector<int>{1, 2, 2, 4}));
  EXPECT_EQ(d.rrdb_num_feat, 32);
  EXPECT_EQ(d.rrdb_num_block, 8);
  EXPECT_EQ(d.rrdb_num_grow_ch, 16);
  EXPECT_EQ(d.sr_scale, 4);
  EXPECT_EQ(d.output, "eps");
  EXPECT_TRUE(d.fix_rrdb);
  json alias = tiny_config();
  alias.erase("unet_dim_mults");
  alias["dim_mults"] = json::array({1, 2, 3, 4});
  EXPECT_EQ(Options::from_json(alias).dim_mults, (std::vector<int>{1, 2, 3, 4}));
  EXPECT_EQ(Options::from_json(tiny_config({{"rrdb_num_grow_ch", nullptr}})).rrdb_num_grow_ch, 8);

  // The schema documents every accepted key.
  json schema = json::parse(sinsr::srdiff::kConfigSchema);
  for (const char* key : {"hidden_size", "unet_dim_mults", "dim_mults", "rrdb_num_feat", "rrdb_num_block",
                          "rrdb_num_grow_ch", "sr_scale", "out_dim", "output", "fix_rrdb"}) {
    ASSERT_TRUE(schema.contains(key)) << key;
    EXPECT_TRUE(schema[key].contains("doc")) << key;
    EXPECT_NO_THROW(
        Options::from_json(schema[key].contains("default") ? json{{key, schema[key]["default"]}} : json::object()))
        << key;
  }
  Plugin p;
  expect_error([&] { p.make(tiny_config({{"gn_groups", 8}}), false); }, SINSR_ERR_INVALID_ARGUMENT, {"gn_groups"});
}

TEST(SRDiff, ScaleEightAndTheDefaultSize) {
  at::NoGradGuard no_grad;
  SRDiff x8(Options::from_json(tiny_config({{"sr_scale", 8}})));
  std::map<std::string, at::Tensor> keys;
  for (auto& kv : sinsr::ckpt::state_of(x8)) keys.emplace(kv.first, kv.second);
  ASSERT_TRUE(keys.count("rrdb.upconv3.weight"));
  EXPECT_EQ(keys["denoise_fn.cond_proj.weight"].sizes(), (at::IntArrayRef{32, 16, 16, 16}));
  at::Tensor lr = at::rand({2, 3, 4, 5}) * 2 - 1;
  EXPECT_EQ(x8.forward(at::randn({2, 3, 32, 40}), lr, at::tensor({3, 50}, at::kLong)).sizes(),
            (at::IntArrayRef{2, 3, 32, 40}));
  SRDiff x8_rrdb(Options::from_json(tiny_config({{"sr_scale", 8}, {"output", "rrdb"}})));
  at::Tensor img = x8_rrdb.forward(at::Tensor(), lr, at::Tensor());
  EXPECT_EQ(img.sizes(), (at::IntArrayRef{2, 3, 32, 40}));
  EXPECT_LE(img.abs().max().item<double>(), 1.0);

  // The reference default (diffsr_base.yaml): features 2, 5, 8 of 9 -> 96 channels into cond_proj.
  SRDiff base(Options::from_json(json::object()));
  keys.clear();
  for (auto& kv : sinsr::ckpt::state_of(base)) keys.emplace(kv.first, kv.second);
  EXPECT_FALSE(keys.count("rrdb.upconv3.weight"));
  EXPECT_EQ(keys["denoise_fn.cond_proj.weight"].sizes(), (at::IntArrayRef{96, 64, 8, 8}));
  EXPECT_EQ(keys["rrdb.RRDB_trunk.7.RDB3.conv5.weight"].sizes(), (at::IntArrayRef{32, 32 + 4 * 16, 3, 3}));
  at::Tensor out = base.forward(at::randn({1, 3, 32, 32}), at::rand({1, 3, 8, 8}) * 2 - 1, at::tensor({99}, at::kLong));
  EXPECT_EQ(out.sizes(), (at::IntArrayRef{1, 3, 32, 32}));
  EXPECT_TRUE(out.isfinite().all().item<bool>());
}

}  // namespace
