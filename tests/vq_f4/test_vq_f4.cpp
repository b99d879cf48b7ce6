// VQ-f4 against the official code (vq_tiny_cases.pth), with near-tie handling for the hard
// argmin, chunked attention, the full-size layout, and the codec through the ABI.
#include "parity.hpp"

#include "runtime/runtime.hpp"
#include "vq_f4.hpp"

#include <sinsr/config.hpp>
#include <sinsr/layers.hpp>

#include <cmath>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#if defined(__unix__)
#include <sys/mman.h>
#include <unistd.h>
#endif

namespace {

using sinsr::vq_f4::Options;
using sinsr::vq_f4::VQModel;

std::shared_ptr<VQModel> tiny() {
  auto cfg = sinsr::config::resolve({{"config_file", sinsr_test::parity_file("tiny-vq.yaml")}}, "autoencoder");
  auto net = std::make_shared<VQModel>(Options::from_json(cfg));
  sinsr::ckpt::load_into(*net, sinsr::ckpt::read_state_dict(sinsr_test::parity_file("vq_tiny.pth")));
  net->eval();
  return net;
}

// Index mismatches are accepted only where our own nearest/second-nearest gap is a tie.
void expect_same_codes(const sinsr::vq_f4::Quantized& q, const at::Tensor& want) {
  ASSERT_EQ(q.indices.sizes(), want.sizes());
  at::Tensor differ = q.indices.ne(want);
  int64_t flips = differ.sum().item<int64_t>();
  if (flips > 0) {
    EXPECT_LT(q.margin.masked_select(differ).max().item<float>(), 1e-4f) << flips << " code flips away from a near-tie";
  }
}

std::unique_ptr<sinsr::host::CodecHandle> tiny_codec(sinsr::host::Runtime& rt,
                                                     nlohmann::json config = nlohmann::json::object()) {
  rt.load_dir(SINSR_PLUGIN_DIR);
  if (!config.contains("config_file")) config["config_file"] = sinsr_test::parity_file("tiny-vq.yaml");
  auto codec = std::make_unique<sinsr::host::CodecHandle>(rt.find(SINSR_KIND_CODEC, "vq_f4"), config);
  codec->load_weights(sinsr_test::parity_file("vq_tiny.pth"));
  return codec;
}

TEST(VQParity, EncodeQuantizeDecode) {
  auto net = tiny();
  auto c = sinsr_test::load("vq_tiny_cases.pth");
  at::NoGradGuard no_grad;
  at::Tensor latent = net->encode(sinsr_test::tensor(c, "image"));
  EXPECT_TRUE(sinsr_test::all_close(latent, sinsr_test::tensor(c, "latent"), 5e-5, 1e-4));
  for (std::string sfx : {"", "2"}) {
    at::Tensor z = sinsr_test::tensor(c, sfx.empty() ? "latent" : "latent2");  // the recorded latent: decoder alone
    auto q = net->quantize(z);
    expect_same_codes(q, sinsr_test::tensor(c, "quant" + sfx + "_indices"));
    // Where the codes agree the quantised values are the same codebook rows.
    at::Tensor agree = q.indices.eq(sinsr_test::tensor(c, "quant" + sfx + "_indices")).unsqueeze(1).expand_as(q.quant);
    EXPECT_TRUE(sinsr_test::all_close(q.quant.masked_select(agree),
                                      sinsr_test::tensor(c, "quant" + sfx).masked_select(agree), 1e-6))
        << sfx;
    EXPECT_TRUE(
        sinsr_test::all_close(net->decode(z, false), sinsr_test::tensor(c, "decoded" + sfx + "_noquant"), 5e-5, 1e-4));
    if (q.indices.equal(sinsr_test::tensor(c, "quant" + sfx + "_indices")))
      EXPECT_TRUE(sinsr_test::all_close(net->decode(z), sinsr_test::tensor(c, "decoded" + sfx), 5e-5, 1e-4));
    // The decoder on the recorded quantised latent is the quantising decode, whatever the ties did.
    EXPECT_TRUE(sinsr_test::all_close(net->decode(sinsr_test::tensor(c, "quant" + sfx), false),
                                      sinsr_test::tensor(c, "decoded" + sfx), 5e-5, 1e-4));
  }
}

TEST(VQParity, MarginAndEmbeddingLoss) {
  auto net = tiny();
  auto c = sinsr_test::load("vq_tiny_cases.pth");
  at::NoGradGuard no_grad;
  auto q = net->quantize(sinsr_test::tensor(c, "latent"));
  double want_margin = sinsr_test::tensor(c, "quant_min_margin").item<double>();
  EXPECT_NEAR(q.margin.min().item<double>(), want_margin, 1e-5 + 1e-3 * std::abs(want_margin));
  EXPECT_TRUE(q.margin.ge(0).all().item<bool>());
  EXPECT_TRUE(sinsr_test::all_close(q.emb_loss, sinsr_test::tensor(c, "emb_loss").reshape({}), 1e-7, 1e-5));
  // Brute force: every pixel's code is a nearest one up to the tie tolerance.
  at::Tensor z = sinsr_test::tensor(c, "latent2").to(at::kDouble);
  at::Tensor e = net->named_parameters()["quantize.embedding.weight"].to(at::kDouble);
  at::Tensor d = (z.permute({0, 2, 3, 1}).unsqueeze(3) - e).pow(2).sum(-1);  // [N,H,W,K]
  at::Tensor chosen = d.gather(3, net->quantize(sinsr_test::tensor(c, "latent2")).indices.unsqueeze(3)).squeeze(3);
  EXPECT_LT((chosen - std::get<0>(d.min(3))).max().item<double>(), 1e-5);
}

// A large codebook is searched a block of latent pixels at a time (9000 codes: blocks of 466 of
// the 576 pixels here): the codes and margins are the whole distance matrix's.
TEST(VQ, QuantiserInBlocksOfPixelsIsTheWholeSearch) {
  auto cfg = sinsr::config::resolve({{"config_file", sinsr_test::parity_file("tiny-vq.yaml")}}, "autoencoder");
  cfg["n_embed"] = 9000;
  VQModel net(Options::from_json(cfg));
  at::manual_seed(5);
  at::Tensor e = net.named_parameters()["quantize.embedding.weight"];
  {
    at::NoGradGuard no_grad;
    e.normal_();
  }
  const int64_t c = e.size(1);
  at::Tensor z = at::randn({1, c, 24, 24});
  at::NoGradGuard no_grad;
  auto q = net.quantize(z);
  at::Tensor rows = z.permute({0, 2, 3, 1}).reshape({-1, c});
  at::Tensor d = rows.pow(2).sum(1, true) + e.pow(2).sum(1) - 2 * at::matmul(rows, e.t());
  EXPECT_TRUE(q.indices.reshape({-1}).equal(d.argmin(1)));
  at::Tensor two = std::get<0>(d.topk(2, 1, false, true));
  EXPECT_TRUE(sinsr_test::all_close(q.margin.reshape({-1}), two.select(1, 1) - two.select(1, 0), 1e-6, 1e-5));
}

TEST(VQ, GradientPassesStraightThroughTheQuantiser) {
  auto net = tiny();
  at::Tensor z = sinsr_test::tensor(sinsr_test::load("vq_tiny_cases.pth"), "latent2").clone().requires_grad_(true);
  at::Tensor w = at::randn_like(z);
  (net->quantize(z).quant * w).sum().backward();
  EXPECT_TRUE(z.grad().equal(w));
  auto e = net->named_parameters()["quantize.embedding.weight"];
  EXPECT_FALSE(e.grad().defined() && e.grad().abs().sum().item<double>() > 0);
}

TEST(VQ, ChunkedAttentionMatchesTheFullSoftmax) {
  at::manual_seed(1);
  at::Tensor q = at::randn({2, 8, 37}), k = at::randn({2, 8, 37}), v = at::randn({2, 8, 37});
  at::Tensor w = at::softmax(at::bmm(q.transpose(1, 2), k) / std::sqrt(8.0), 2);
  at::Tensor want = at::bmm(v, w.transpose(1, 2));
  sinsr::sdk::AttentionOptions options;  // as the autoencoder calls it: logits * c^-0.5, softmax in its dtype
  for (int64_t chunk : {1, 5, 36, 37, 1000}) {
    options.block = chunk;
    at::Tensor got = sinsr::sdk::attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), options);
    EXPECT_TRUE(sinsr_test::all_close(got.transpose(1, 2), want, 1e-6, 1e-5)) << chunk;
  }
}

TEST(VQ, ChunkedAttentionEqualsTheFullMatrix) {
  auto net = tiny();
  at::NoGradGuard no_grad;
  at::manual_seed(0);
  at::Tensor x = at::rand({1, 3, 64, 48}) * 2 - 1;
  net->set_attention_chunk(1 << 20);
  at::Tensor full = net->encode(x);
  at::Tensor dfull = net->decode(full, false);
  net->set_attention_chunk(7);  // uneven chunks
  EXPECT_TRUE(sinsr_test::all_close(net->encode(x), full, 1e-5, 1e-5));
  EXPECT_TRUE(sinsr_test::all_close(net->decode(full, false), dfull, 1e-5, 1e-5));
}

TEST(VQ, FullSizeConfigHasTheOfficialKeys) {
  std::ifstream keys(sinsr_test::parity_dir() + "/../spec/autoencoder-vq-f4-keys.txt");
  if (!keys) GTEST_SKIP() << "spec/autoencoder-vq-f4-keys.txt not beside the parity folder";
  auto cfg = sinsr::config::resolve({{"config_file", std::string(SINSR_CONFIG_DIR) + "/sinsr_x4.yaml"}}, "autoencoder");
  VQModel net(Options::from_json(cfg));
  auto state = sinsr::ckpt::state_of(net);
  std::vector<std::string> want;
  std::string line;
  size_t i = 0;
  while (std::getline(keys, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ss(line);
    std::string key, shape, dtype, kind;
    std::getline(ss, key, '\t');
    std::getline(ss, shape, '\t');
    std::getline(ss, dtype, '\t');
    std::getline(ss, kind, '\t');
    ASSERT_LT(i, state.size());
    EXPECT_EQ(state[i].first, key);  // same order as the official state_dict
    std::ostringstream s;
    s << state[i].second.sizes();
    EXPECT_EQ(s.str(), shape) << key;
    EXPECT_EQ(dtype, "float32") << key;
    EXPECT_EQ(state[i].second.scalar_type(), at::kFloat) << key;
    EXPECT_EQ(kind == "param", net.named_parameters().contains(key)) << key;
    ++i;
  }
  EXPECT_EQ(i, state.size());
  int64_t params = 0;
  for (auto& p : net.parameters()) params += p.numel();
  EXPECT_EQ(params, 55322782);
}

#if defined(__unix__)
// Issue 15, start-up: a network whose checkpoint follows (create_with {"init": "none"}) touches
// none of its parameters' memory before the weights arrive (mincore: no page resident), and the
// parameters then take the weights either way the loader gives them (adopted or copied).
TEST(VQ, ParametersWhoseWeightsFollowAreNotFaultedIn) {
  const auto resident_pages = [](const at::Tensor& t) {
    const size_t page = size_t(::sysconf(_SC_PAGESIZE));
    const auto begin = reinterpret_cast<uintptr_t>(t.data_ptr()) & ~(page - 1);
    const auto end = reinterpret_cast<uintptr_t>(t.data_ptr()) + t.nbytes();
    std::vector<unsigned char> in((end - begin + page - 1) / page);
    EXPECT_EQ(::mincore(reinterpret_cast<void*>(begin), end - begin, in.data()), 0);
    size_t n = 0;
    for (unsigned char c : in) n += c & 1;
    return n;
  };
  auto cfg = sinsr::config::resolve({{"config_file", std::string(SINSR_CONFIG_DIR) + "/sinsr_x4.yaml"}}, "autoencoder");
  std::shared_ptr<VQModel> net;
  {
    sinsr::sdk::ParameterInitScope none(false);
    net = std::make_shared<VQModel>(Options::from_json(cfg));
  }
  size_t large = 0;
  for (const auto& [name, p] : net->named_parameters().pairs())
    if (p.nbytes() >= (size_t(1) << 20)) {
      ++large;
      EXPECT_EQ(resident_pages(p), 0u) << name;
    }
  EXPECT_GT(large, 10u);

  at::manual_seed(0);
  const at::Tensor w = at::randn({256, 256, 3, 3}), b = at::randn({256}), x = at::randn({1, 256, 6, 6});
  const at::Tensor want = at::conv2d(x, w, b, 1, 1);
  for (bool adopt : {true, false}) {
    sinsr::sdk::Layer layer;
    {
      sinsr::sdk::ParameterInitScope none(false);
      layer = sinsr::sdk::conv2d(256, 256, 3, 1, 1);
    }
    EXPECT_EQ(resident_pages(layer->weight), 0u);
    sinsr::ckpt::StateDict state{{"weight", w.clone()}, {"bias", b.clone()}};
    if (adopt)
      sinsr::ckpt::load_into(*layer, std::move(state));
    else
      sinsr::ckpt::load_into(*layer, static_cast<const sinsr::ckpt::StateDict&>(state));
    at::NoGradGuard no_grad;
    EXPECT_TRUE(at::equal(layer->forward(x), want)) << (adopt ? "adopted" : "copied");
  }
}
#endif

TEST(VQ, BatchEqualsOneByOne) {
  auto net = tiny();
  at::NoGradGuard no_grad;
  at::manual_seed(2);
  at::Tensor x = at::rand({2, 3, 24, 40}) * 2 - 1;
  net->set_attention_chunk(11);
  at::Tensor z = net->encode(x), img = net->decode(z);
  for (int64_t i = 0; i < 2; ++i) {
    EXPECT_TRUE(sinsr_test::all_close(z[i], net->encode(x.narrow(0, i, 1))[0], 1e-5, 1e-5));
    EXPECT_TRUE(sinsr_test::all_close(img[i], net->decode(z.narrow(0, i, 1))[0], 1e-5, 1e-5));
  }
  EXPECT_EQ(img.sizes(), x.sizes());
}

TEST(VQ, CodecThroughTheAbiEqualsTheModule) {
  sinsr::host::Runtime rt(1);
  auto holder = tiny_codec(rt);
  auto& codec = *holder;
  auto info = codec.info();
  EXPECT_EQ(info.downscale, 4);
  EXPECT_EQ(info.latent_channels, 3);
  EXPECT_EQ(info.image_channels, 3);
  auto net = tiny();
  at::NoGradGuard no_grad;
  at::Tensor x = at::rand({1, 3, 32, 32}) * 2 - 1;
  at::Tensor z = codec.encode(x);
  EXPECT_TRUE(z.equal(net->encode(x)));
  EXPECT_TRUE(codec.decode(z).equal(net->decode(z)));
  // Another caller dtype comes back in that dtype, computed in the codec's float32.
  at::Tensor zd = codec.encode(x.to(at::kDouble));
  EXPECT_EQ(zd.scalar_type(), at::kDouble);
  EXPECT_TRUE(zd.to(at::kFloat).equal(z));
}

TEST(VQ, CodecConfigForms) {
  sinsr::host::Runtime rt(1);
  auto c = sinsr_test::load("vq_tiny_cases.pth");
  at::Tensor z = sinsr_test::tensor(c, "latent2");
  // The params themselves instead of a file, and quantize_on_decode off: the decoder alone.
  auto params = sinsr::config::resolve({{"config_file", sinsr_test::parity_file("tiny-vq.yaml")}}, "autoencoder");
  params["quantize_on_decode"] = false;
  params["attention_chunk"] = 5;
  rt.load_dir(SINSR_PLUGIN_DIR);
  sinsr::host::CodecHandle plain(rt.find(SINSR_KIND_CODEC, "vq_f4"), params);
  plain.load_weights(sinsr_test::parity_file("vq_tiny.pth"));
  EXPECT_TRUE(sinsr_test::all_close(plain.decode(z), sinsr_test::tensor(c, "decoded2_noquant"), 5e-5, 1e-4));
  // The shipped full-size config.
  sinsr::host::CodecHandle full(rt.find(SINSR_KIND_CODEC, "vq_f4"),
                                {{"config_file", std::string(SINSR_CONFIG_DIR) + "/sinsr_x4.yaml"}});
  auto info = full.info();
  EXPECT_EQ(info.downscale, 4);
  EXPECT_EQ(info.latent_channels, 3);
  EXPECT_EQ(info.image_channels, 3);
}

TEST(VQ, PrecisionThroughTheAbi) {
  sinsr::host::Runtime rt(1);
  auto holder = tiny_codec(rt);
  auto& codec = *holder;
  auto c = sinsr_test::load("vq_tiny_cases.pth");
  codec.to(at::kCPU, at::kDouble);
  at::Tensor z = codec.encode(sinsr_test::tensor(c, "image"));
  EXPECT_EQ(z.scalar_type(), at::kFloat);
  EXPECT_TRUE(sinsr_test::all_close(z, sinsr_test::tensor(c, "latent"), 5e-5, 1e-4));
  EXPECT_TRUE(sinsr_test::all_close(codec.decode(sinsr_test::tensor(c, "quant2")), sinsr_test::tensor(c, "decoded2"),
                                    5e-5, 1e-4));
  // (The host's CodecHandle maps non-float dtypes to float32, so the refusal is checked on the module.)
  try {
    tiny()->set_precision(at::kCPU, at::kInt);
    ADD_FAILURE() << "int32 precision accepted";
  } catch (const sinsr::sdk::Error& e) {
    EXPECT_EQ(e.code(), SINSR_ERR_UNSUPPORTED) << e.what();
  }
}

// The official GPU mode: the whole autoencoder in float16.
TEST(VQ, Float16OnCuda) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA in this LibTorch build or machine";
  sinsr::host::Runtime rt(1);
  auto holder = tiny_codec(rt);
  auto& codec = *holder;
  auto c = sinsr_test::load("vq_tiny_cases.pth");
  codec.to(at::Device(at::kCUDA, 0), at::kHalf);
  at::Tensor x = sinsr_test::tensor(c, "image").cuda();
  at::Tensor z = codec.encode(x);
  EXPECT_EQ(z.scalar_type(), at::kFloat);
  EXPECT_TRUE(sinsr_test::all_close(z.cpu(), sinsr_test::tensor(c, "latent"), 2e-2, 2e-2));
  at::Tensor img = codec.decode(sinsr_test::tensor(c, "quant2").cuda());
  EXPECT_TRUE(sinsr_test::all_close(img.cpu(), sinsr_test::tensor(c, "decoded2"), 5e-2, 5e-2));
}

TEST(VQ, ErrorsNameTheProblem) {
  sinsr::host::Runtime rt(1);
  auto holder = tiny_codec(rt);
  auto& codec = *holder;
  auto code_of = [](const std::function<void()>& f) {
    try {
      f();
    } catch (const sinsr::sdk::Error& e) {
      return e.code();
    }
    return SINSR_OK;
  };
  EXPECT_EQ(code_of([&] { codec.encode(at::zeros({1, 4, 16, 16})); }), SINSR_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(code_of([&] {
              codec.encode(at::zeros({1, 3, 3, 8}));
            }),
            SINSR_ERR_INVALID_ARGUMENT);  // 3 -> 1 -> too small
  EXPECT_EQ(codec.encode(at::zeros({1, 3, 5, 6})).sizes(),
            at::IntArrayRef({1, 3, 1, 1}));  // floor sizes, as officially
  EXPECT_EQ(code_of([&] { codec.decode(at::zeros({3, 4, 4})); }), SINSR_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(code_of([&] { codec.decode(at::zeros({1, 3, 4, 4}, at::kLong)); }), SINSR_ERR_INVALID_ARGUMENT);
  auto make = [&](nlohmann::json cfg) {
    return [&rt, cfg] { sinsr::host::CodecHandle h(rt.find(SINSR_KIND_CODEC, "vq_f4"), cfg); };
  };
  EXPECT_EQ(code_of(make({{"ddconfig", {{"ch", 48}}}})), SINSR_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(code_of(make({{"n_embed", "many"}})), SINSR_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(code_of(make({{"ddconfig", {{"double_z", true}}}})), SINSR_ERR_UNSUPPORTED);
  EXPECT_EQ(code_of(make({{"quantize_on_decode", 1}})), SINSR_ERR_INVALID_ARGUMENT);
}

}  // namespace
