// The checkpoint reader against the files users actually have: OrderedDict state dicts,
// nested training checkpoints with DataParallel prefixes, the legacy format, pickled
// nn.Parameter objects; plus the writer's round trip and refusals of damaged files.
#include "parity.hpp"

#include <caffe2/serialize/inline_container.h>
#include <torch/nn/module.h>
#include <sinsr/sdk.hpp>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <map>

namespace {

using sinsr::ckpt::StateDict;

std::map<std::string, at::Tensor> as_map(const StateDict& s) {
  std::map<std::string, at::Tensor> m;
  for (auto& kv : s) m.emplace(kv.first, kv.second);
  return m;
}

// Every name of `want` is in `got` with identical values, and `got` has nothing else.
void expect_same(const StateDict& got, const std::map<std::string, at::Tensor>& want) {
  auto g = as_map(got);
  ASSERT_EQ(g.size(), want.size());
  for (auto& [name, t] : want) {
    auto it = g.find(name);
    ASSERT_NE(it, g.end()) << name;
    EXPECT_EQ(it->second.scalar_type(), t.scalar_type()) << name;
    EXPECT_TRUE(it->second.equal(t)) << name;
  }
}

std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "/sinsr_ckpt_" + std::to_string(::getpid()) + "_" + name;
}

TEST(Checkpoint, PlainDictMatchesTorchPickleLoad) {
  auto state = sinsr::ckpt::read_state_dict(sinsr_test::parity_file("unet_tiny.pth"));
  ASSERT_GT(state.size(), 10u);
  // Buffers keep their integer dtype.
  bool saw_index = false;
  for (auto& [name, t] : state)
    if (name.find("relative_position_index") != std::string::npos) {
      saw_index = true;
      EXPECT_EQ(t.scalar_type(), at::kLong);
    }
  EXPECT_TRUE(saw_index);
}

TEST(Checkpoint, OfficialOrderedDictEqualsPlain) {
  auto plain = as_map(sinsr::ckpt::read_state_dict(sinsr_test::parity_file("unet_tiny.pth")));
  expect_same(sinsr::ckpt::read_state_dict(sinsr_test::parity_file("unet_tiny_official.pth")), plain);
}

TEST(Checkpoint, NestedModulePrefixedEqualsPlain) {
  auto plain = as_map(sinsr::ckpt::read_state_dict(sinsr_test::parity_file("vq_tiny.pth")));
  expect_same(sinsr::ckpt::read_state_dict(sinsr_test::parity_file("vq_tiny_official.pth")), plain);
  auto root = sinsr::ckpt::read_file(sinsr_test::parity_file("vq_tiny_official.pth"));
  EXPECT_EQ(sinsr_test::at_key(root, "iters_start").toInt(), 1234);
}

TEST(Checkpoint, LegacyFormatEqualsPlain) {
  auto plain = as_map(sinsr::ckpt::read_state_dict(sinsr_test::parity_file("unet_tiny.pth")));
  expect_same(sinsr::ckpt::read_state_dict(sinsr_test::parity_file("unet_tiny_legacy.pth")), plain);
}

TEST(Checkpoint, PickledParametersEqualParametersOfPlain) {
  auto plain = as_map(sinsr::ckpt::read_state_dict(sinsr_test::parity_file("unet_tiny.pth")));
  std::map<std::string, at::Tensor> params;
  for (auto& [name, t] : plain)
    if (name.find("relative_position_index") == std::string::npos && name.find("attn_mask") == std::string::npos)
      params.emplace(name, t);
  expect_same(sinsr::ckpt::read_state_dict(sinsr_test::parity_file("unet_tiny_params.pth")), params);
}

TEST(Checkpoint, NestedListsAndNumbers) {
  auto cases = sinsr_test::load("unet_tiny_cases.pth");
  auto list = sinsr_test::at_key(cases, "cases").toList();
  EXPECT_EQ(int64_t(list.size()), sinsr_test::at_key(cases, "num_cases").toInt());
  c10::IValue first = list.get(0);
  EXPECT_EQ(sinsr_test::tensor(first, "x").dim(), 4);
}

TEST(Checkpoint, WriteReadRoundTrip) {
  StateDict state = {{"a.weight", at::randn({3, 4})},
                     {"a.index", at::arange(6, at::kLong).view({2, 3})},
                     {"b.half", at::randn({5}).to(at::kHalf)},
                     {"c.strided", at::randn({4, 6}).t()}};
  std::string path = temp_path("roundtrip.pth");
  sinsr::ckpt::save_state_dict(path, state);
  auto back = sinsr::ckpt::read_state_dict(path);
  ASSERT_EQ(back.size(), state.size());
  for (size_t k = 0; k < state.size(); ++k) {
    EXPECT_EQ(back[k].first, state[k].first);  // order kept
    EXPECT_TRUE(back[k].second.equal(state[k].second)) << state[k].first;
  }
  std::remove(path.c_str());
}

TEST(Checkpoint, GenericValuesRoundTrip) {
  c10::impl::GenericDict inner(c10::StringType::get(), c10::AnyType::get());
  inner.insert("step", int64_t(-70000));
  inner.insert("big", int64_t(1) << 40);
  inner.insert("lr", 2.5e-5);
  inner.insert("name", std::string("sinsr"));
  inner.insert("flag", true);
  c10::impl::GenericDict root(c10::StringType::get(), c10::AnyType::get());
  root.insert("meta", inner);
  root.insert("w", at::ones({2, 2}));
  std::string path = temp_path("generic.pth");
  sinsr::ckpt::save_file(path, root);
  auto back = sinsr::ckpt::read_file(path);
  auto meta = sinsr_test::at_key(back, "meta");
  EXPECT_EQ(sinsr_test::at_key(meta, "step").toInt(), -70000);
  EXPECT_EQ(sinsr_test::at_key(meta, "big").toInt(), int64_t(1) << 40);
  EXPECT_DOUBLE_EQ(sinsr_test::at_key(meta, "lr").toDouble(), 2.5e-5);
  EXPECT_EQ(sinsr_test::at_key(meta, "name").toStringRef(), "sinsr");
  EXPECT_TRUE(sinsr_test::at_key(meta, "flag").toBool());
  std::remove(path.c_str());
}

void expect_format_error(const std::string& path, const std::string& needle) {
  try {
    sinsr::ckpt::read_file(path);
    FAIL() << "no error for " << path;
  } catch (const sinsr::sdk::Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
  }
}

TEST(Checkpoint, DamagedFilesAreRefusedWithTheirName) {
  std::string src = sinsr_test::parity_file("unet_tiny_legacy.pth");
  std::ifstream in(src, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string truncated = temp_path("truncated.pth");
  std::ofstream(truncated, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  expect_format_error(truncated, "truncated");

  std::string text = temp_path("text.pth");
  std::ofstream(text) << "hello, not a checkpoint\n";
  expect_format_error(text, "not a PyTorch checkpoint");

  try {
    sinsr::ckpt::read_file(temp_path("does-not-exist.pth"));
    FAIL();
  } catch (const sinsr::sdk::Error& e) {
    EXPECT_EQ(e.code(), SINSR_ERR_IO);
  }
  std::remove(truncated.c_str());
  std::remove(text.c_str());
}

// A zip checkpoint whose pickle calls os.system: refused by name, nothing runs.
TEST(Checkpoint, RefusesGlobalsOutsideTheAllowlist) {
  std::string marker = temp_path("pwned");
  std::string cmd = "touch " + marker;
  std::string pkl =
      "\x80\x02"
      "cos\nsystem\n"
      "X";
  uint32_t n = uint32_t(cmd.size());
  pkl += std::string(reinterpret_cast<const char*>(&n), 4) + cmd + "\x85R.";
  std::string path = temp_path("evil.pth");
  {
    std::ofstream f(path, std::ios::binary);
    caffe2::serialize::PyTorchStreamWriter w([&](const void* b, size_t k) {
      f.write(static_cast<const char*>(b), std::streamsize(k));
      return k;
    });
    w.writeRecord("data.pkl", pkl.data(), pkl.size());
    w.writeEndOfFile();
  }
  expect_format_error(path, "os.system");
  EXPECT_FALSE(std::ifstream(marker).good());
  std::remove(path.c_str());
}

struct Net : torch::nn::Module {
  Net() {
    w = register_parameter("w", at::zeros({2, 3}));
    idx = register_buffer("idx", at::zeros({4}, at::kLong));
  }
  at::Tensor w, idx;
};

TEST(Checkpoint, LoadIntoIsStrictAndAtomic) {
  Net net;
  StateDict good = {{"w", at::ones({2, 3})}, {"idx", at::arange(4, at::kLong)}};
  sinsr::ckpt::load_into(net, good);
  EXPECT_TRUE(net.w.equal(at::ones({2, 3})));
  EXPECT_TRUE(net.idx.equal(at::arange(4, at::kLong)));

  StateDict bad = {{"w", at::full({2, 3}, 7.0)}, {"idx", at::zeros({5}, at::kLong)}, {"extra", at::ones({1})}};
  try {
    sinsr::ckpt::load_into(net, bad);
    FAIL();
  } catch (const sinsr::sdk::Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("extra"), std::string::npos) << msg;
    EXPECT_NE(msg.find("idx"), std::string::npos) << msg;
  }
  EXPECT_TRUE(net.w.equal(at::ones({2, 3})));  // nothing copied on failure
  auto report = sinsr::ckpt::load_into(net, bad, /*strict=*/false);
  EXPECT_EQ(report.unexpected, std::vector<std::string>{"extra"});
  EXPECT_EQ(report.mismatched.size(), 1u);
  EXPECT_TRUE(net.w.equal(at::full({2, 3}, 7.0)));
}

// A NaN weight made a black image and an infinite one a wrong image, both silently: refused at
// load naming the tensor, nothing copied.
TEST(Checkpoint, NonFiniteWeightsAreRefusedByName) {
  for (float v : {std::nanf(""), std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()}) {
    Net net;
    sinsr::ckpt::load_into(net, StateDict{{"w", at::ones({2, 3})}, {"idx", at::arange(4, at::kLong)}});
    at::Tensor w = at::full({2, 3}, 2.0);
    w[1][2] = v;
    try {
      sinsr::ckpt::load_into(net, StateDict{{"w", w}, {"idx", at::arange(4, at::kLong)}});
      ADD_FAILURE() << "loaded a weight of " << v;
    } catch (const sinsr::sdk::Error& e) {
      EXPECT_EQ(e.code(), SINSR_ERR_FORMAT);
      EXPECT_NE(std::string(e.what()).find("1 weight tensor(s) hold NaN or infinite values: w"), std::string::npos)
          << e.what();
    }
    EXPECT_TRUE(net.w.equal(at::ones({2, 3})));
  }
}

// Tensors read from a file alias its pages (no fresh memory at start-up): writing one copies the
// page and leaves the file alone, and they stay valid after the file is gone.
TEST(Checkpoint, TensorsAliasTheFileCopyOnWriteAndOutliveIt) {
  const std::string path = temp_path("alias.pth");
  const at::Tensor a = at::randn({64, 64}), flags = at::arange(3) != 1;
  sinsr::ckpt::save_state_dict(path, {{"a", a}, {"idx", at::arange(5, at::kLong)}, {"flags", flags}});
  auto first = as_map(sinsr::ckpt::read_state_dict(path));
  first["a"].add_(1);
  first["idx"].mul_(2);
  auto second = as_map(sinsr::ckpt::read_state_dict(path));
  EXPECT_TRUE(second["a"].equal(a));
  EXPECT_TRUE(second["idx"].equal(at::arange(5, at::kLong)));
  EXPECT_TRUE(second["flags"].equal(flags));
  EXPECT_TRUE(first["a"].equal(a + 1));
  std::remove(path.c_str());
  EXPECT_TRUE(second["a"].equal(a));
  EXPECT_TRUE(first["idx"].equal(at::arange(5, at::kLong) * 2));
}

struct TwinNet : torch::nn::Module {
  TwinNet() {
    w1 = register_parameter("w1", at::zeros({2, 3}));
    w2 = register_parameter("w2", at::zeros({2, 3}));
    h = register_parameter("h", at::zeros({4}));
  }
  at::Tensor w1, w2, h;
};

// Given by value (moved), a state dict's tensors become the parameters when dtype and layout
// match; one storage is never adopted twice (that would tie parameters the network keeps
// apart); given by reference, the module gets copies.
TEST(Checkpoint, LoadIntoTakesTensorsOverOnlyWhenGiven) {
  const at::Tensor x = at::randn({2, 3}), h = at::randn({4}, at::kDouble);
  TwinNet copied;
  StateDict state = {{"w1", x}, {"w2", x}, {"h", h}};
  sinsr::ckpt::load_into(copied, state);
  EXPECT_NE(copied.w1.data_ptr(), x.data_ptr());
  EXPECT_NE(copied.w2.data_ptr(), x.data_ptr());

  TwinNet adopted;
  sinsr::ckpt::load_into(adopted, std::move(state));
  EXPECT_EQ(adopted.w1.data_ptr(), x.data_ptr());
  EXPECT_NE(adopted.w2.data_ptr(), x.data_ptr());
  EXPECT_TRUE(adopted.w2.equal(x));
  EXPECT_EQ(adopted.h.scalar_type(), at::kFloat);  // another dtype: converted, not adopted
  EXPECT_TRUE(adopted.h.allclose(h.to(at::kFloat)));
  EXPECT_TRUE(adopted.w1.requires_grad());
}

}  // namespace
