// VQ-f4 against the official code (vq_tiny_cases.pth), with near-tie handling for the hard
// argmin, chunked attention, the full-size layout, and the codec through the ABI.
#include "parity.hpp"

#include "runtime.hpp"
#include "vq_f4.hpp"

#include <sinsr/config.hpp>

#include <fstream>
#include <sstream>

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
  at::Tensor differ = q.indices.ne(want);
  int64_t flips = differ.sum().item<int64_t>();
  if (flips > 0) {
    EXPECT_LT(q.margin.masked_select(differ).max().item<float>(), 1e-4f) << flips << " code flips away from a near-tie";
  }
  EXPECT_LE(flips, 2);
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
    EXPECT_TRUE(sinsr_test::all_close(q.quant, sinsr_test::tensor(c, "quant" + sfx), 1e-6)) << sfx;
    EXPECT_TRUE(sinsr_test::all_close(net->decode(z, false), sinsr_test::tensor(c, "decoded" + sfx + "_noquant"), 5e-5, 1e-4));
    EXPECT_TRUE(sinsr_test::all_close(net->decode(z), sinsr_test::tensor(c, "decoded" + sfx), 5e-5, 1e-4));
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
    std::string key, shape;
    std::getline(ss, key, '\t');
    std::getline(ss, shape, '\t');
    ASSERT_LT(i, state.size());
    EXPECT_EQ(state[i].first, key);  // same order as the official state_dict
    std::ostringstream s;
    s << state[i].second.sizes();
    EXPECT_EQ(s.str(), shape) << key;
    ++i;
  }
  EXPECT_EQ(i, state.size());
  int64_t params = 0;
  for (auto& p : net.parameters()) params += p.numel();
  EXPECT_EQ(params, 55322782);
}

TEST(VQ, CodecThroughTheAbiEqualsTheModule) {
  sinsr::host::Runtime rt(1);
  rt.load_dir(SINSR_PLUGIN_DIR);
  sinsr::host::CodecHandle codec(rt.find(SINSR_KIND_CODEC, "vq_f4"), {{"config_file", sinsr_test::parity_file("tiny-vq.yaml")}});
  codec.load_weights(sinsr_test::parity_file("vq_tiny.pth"));
  auto info = codec.info();
  EXPECT_EQ(info.downscale, 4);
  EXPECT_EQ(info.latent_channels, 3);
  auto net = tiny();
  at::NoGradGuard no_grad;
  at::Tensor x = at::rand({1, 3, 32, 32}) * 2 - 1;
  at::Tensor z = codec.encode(x);
  EXPECT_TRUE(z.equal(net->encode(x)));
  EXPECT_TRUE(codec.decode(z).equal(net->decode(z)));
}

}  // namespace
