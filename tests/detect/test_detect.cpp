// Architecture detection in the plugins that own the networks: the full-size key lists of the
// official networks (no network allocated) give the official SinSR.yaml hyper-parameters, the
// parity checkpoints give their tiny configs and load strictly into the network built from the
// answer, and other state dicts are refused.
#include "parity.hpp"

#include "unet_swin_detect.hpp"
#include "vq_f4_detect.hpp"

#include <sinsr/checkpoint.hpp>
#include <sinsr/config.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace {

using sinsr::sdk::Detection;
using sinsr::sdk::ShapeMap;
using json = nlohmann::json;

std::string spec_file(const std::string& name) { return sinsr_test::parity_dir() + "/../spec/" + name; }

// "key<TAB>[a, b]<TAB>dtype<TAB>kind" lines; '#' lines are comments.
ShapeMap load_keys(const std::string& path) {
  std::ifstream in(path);
  ShapeMap m;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ss(line);
    std::string key, shape;
    std::getline(ss, key, '\t');
    std::getline(ss, shape, '\t');
    std::vector<int64_t>& dims = m[key];
    for (char& ch : shape)
      if (ch == '[' || ch == ']' || ch == ',') ch = ' ';
    std::istringstream ds(shape);
    for (int64_t d; ds >> d;) dims.push_back(d);
  }
  return m;
}

ShapeMap shapes_of(const std::string& path) {
  ShapeMap m;
  for (auto& [name, t] : sinsr::ckpt::read_state_dict(path)) m[name] = t.sizes().vec();
  return m;
}

json config_of(const Detection& d) { return json::parse(d.config.dump()); }

bool assumed(const Detection& d, const std::string& key) {
  return std::find(d.assumed.begin(), d.assumed.end(), key) != d.assumed.end();
}

// The config keys of UNetModelSwin that the shapes tell (everything but dropout and the
// project's residual_* keys; image_size from the shifted-window masks when the file has them).
const std::vector<std::string> kUnetKeys = {"image_size",
                                            "in_channels",
                                            "model_channels",
                                            "out_channels",
                                            "cond_lq",
                                            "attention_resolutions",
                                            "channel_mult",
                                            "num_res_blocks",
                                            "conv_resample",
                                            "num_head_channels",
                                            "use_scale_shift_norm",
                                            "swin_depth",
                                            "swin_embed_dim",
                                            "window_size",
                                            "mlp_ratio"};
const std::vector<std::string> kVqKeys = {"z_channels", "in_channels",    "out_ch",           "ch",
                                          "ch_mult",    "num_res_blocks", "attn_resolutions", "double_z"};

// Every key the shapes tell equals the official config's value (numbers compared as numbers).
void expect_unet_matches(const json& detected, const json& official, const Detection& d) {
  for (const auto& k : kUnetKeys) {
    SCOPED_TRACE(k);
    ASSERT_TRUE(detected.contains(k));
    ASSERT_TRUE(official.contains(k));
    EXPECT_EQ(detected[k], official[k]);
    EXPECT_FALSE(assumed(d, k) && k != "image_size");
  }
}

void expect_vq_matches(const json& detected, const json& official) {
  EXPECT_EQ(detected["embed_dim"], official["embed_dim"]);
  EXPECT_EQ(detected["n_embed"], official["n_embed"]);
  for (const auto& k : kVqKeys) {
    SCOPED_TRACE(k);
    ASSERT_TRUE(detected["ddconfig"].contains(k));
    ASSERT_TRUE(official["ddconfig"].contains(k));
    EXPECT_EQ(detected["ddconfig"][k], official["ddconfig"][k]);
  }
}

sinsr_code code_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const sinsr::sdk::Error& e) {
    return e.code();
  }
  return SINSR_OK;
}

// The official SinSR.yaml values, as the official file writes them.
const json kSinSRModel = json::parse(R"({
  "image_size": 64, "in_channels": 6, "model_channels": 160, "out_channels": 3, "cond_lq": true,
  "attention_resolutions": [64, 32, 16, 8], "dropout": 0, "channel_mult": [1, 2, 2, 4],
  "num_res_blocks": [2, 2, 2, 2], "conv_resample": true, "num_head_channels": 32,
  "use_scale_shift_norm": true, "swin_depth": 2, "swin_embed_dim": 192, "window_size": 8, "mlp_ratio": 4})");
const json kSinSRAutoencoder = json::parse(R"({
  "embed_dim": 3, "n_embed": 8192,
  "ddconfig": {"double_z": false, "z_channels": 3, "resolution": 256, "in_channels": 3, "out_ch": 3, "ch": 128,
               "ch_mult": [1, 2, 4], "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0}})");

TEST(DetectUnetSwin, FullSizeKeyListGivesTheOfficialConfig) {
  const ShapeMap keys = load_keys(spec_file("unet-swin-keys.txt"));
  if (keys.empty()) GTEST_SKIP() << "spec/unet-swin-keys.txt not beside the parity folder";
  ASSERT_EQ(keys.size(), 564u);
  const Detection d = sinsr::unet_swin::detect(keys);
  const json c = config_of(d);
  expect_unet_matches(c, kSinSRModel, d);
  EXPECT_EQ(c["dropout"], 0);
  EXPECT_EQ(c["residual_upscale"], 0);
  EXPECT_FALSE(assumed(d, "image_size"));  // told by the masks of the shifted blocks
  EXPECT_TRUE(assumed(d, "dropout"));
  EXPECT_EQ(d.assumed_from, "the official SinSR.yaml");
  // The generator behind the check rebuilds exactly the official list.
  EXPECT_EQ(sinsr::unet_swin::expected_shapes(sinsr::unet_swin::Options::from_json(kSinSRModel)), keys);
}

TEST(DetectUnetSwin, ParametersOnlyKeyListAssumesTheImageSize) {
  ShapeMap keys = load_keys(spec_file("unet-swin-keys.txt"));
  if (keys.empty()) GTEST_SKIP() << "spec/unet-swin-keys.txt not beside the parity folder";
  for (auto it = keys.begin(); it != keys.end();)
    it = sinsr::unet_swin::is_derived_buffer(it->first) ? keys.erase(it) : ++it;
  ASSERT_EQ(keys.size(), 540u);
  const Detection d = sinsr::unet_swin::detect(keys);
  expect_unet_matches(config_of(d), kSinSRModel, d);
  EXPECT_TRUE(assumed(d, "image_size"));
}

TEST(DetectVqF4, FullSizeKeyListGivesTheOfficialConfig) {
  const ShapeMap keys = load_keys(spec_file("autoencoder-vq-f4-keys.txt"));
  if (keys.empty()) GTEST_SKIP() << "spec/autoencoder-vq-f4-keys.txt not beside the parity folder";
  ASSERT_EQ(keys.size(), 205u);
  const Detection d = sinsr::vq_f4::detect(keys);
  const json c = config_of(d);
  expect_vq_matches(c, kSinSRAutoencoder);
  EXPECT_EQ(c["ddconfig"]["resolution"], 256);
  EXPECT_EQ(c["scale_factor"], 1.0);
  EXPECT_TRUE(assumed(d, "ddconfig.resolution"));
  EXPECT_TRUE(assumed(d, "scale_factor"));
  EXPECT_EQ(sinsr::vq_f4::expected_shapes(sinsr::vq_f4::Options::from_json(kSinSRAutoencoder)), keys);
}

// The parity checkpoints, official layouts included, against the YAMLs they were made from.
TEST(DetectUnetSwin, ParityCheckpointsGiveTheirConfigAndLoadStrictly) {
  const json official = sinsr::config::load_file(sinsr_test::parity_file("tiny-unet.yaml"))["params"];
  for (const char* file : {"unet_tiny_official.pth", "unet_tiny.pth", "unet_tiny_legacy.pth"}) {
    SCOPED_TRACE(file);
    const std::string path = sinsr_test::parity_file(file);
    const Detection d = sinsr::unet_swin::detect(shapes_of(path));
    expect_unet_matches(config_of(d), official, d);
    EXPECT_FALSE(assumed(d, "image_size"));
    sinsr::unet_swin::UNetModelSwin net(sinsr::unet_swin::Options::from_json(config_of(d)));
    EXPECT_NO_THROW(sinsr::ckpt::load_into(net, sinsr::ckpt::read_state_dict(path), /*strict=*/true));
  }
  // Without buffers the masks are gone: the same network, image_size from SinSR.yaml (also 64).
  const Detection d = sinsr::unet_swin::detect(shapes_of(sinsr_test::parity_file("unet_tiny_params.pth")));
  expect_unet_matches(config_of(d), official, d);
  EXPECT_TRUE(assumed(d, "image_size"));
}

TEST(DetectVqF4, ParityCheckpointsGiveTheirConfigAndLoadStrictly) {
  const json official = sinsr::config::load_file(sinsr_test::parity_file("tiny-vq.yaml"))["params"];
  for (const char* file : {"vq_tiny_official.pth", "vq_tiny.pth"}) {
    SCOPED_TRACE(file);
    const std::string path = sinsr_test::parity_file(file);
    const Detection d = sinsr::vq_f4::detect(shapes_of(path));
    expect_vq_matches(config_of(d), official);
    sinsr::vq_f4::VQModel net(sinsr::vq_f4::Options::from_json(config_of(d)));
    EXPECT_NO_THROW(sinsr::ckpt::load_into(net, sinsr::ckpt::read_state_dict(path), /*strict=*/true));
  }
}

TEST(Detect, OtherNetworksAreNotFound) {
  const ShapeMap unet = shapes_of(sinsr_test::parity_file("unet_tiny.pth"));
  const ShapeMap vq = shapes_of(sinsr_test::parity_file("vq_tiny.pth"));
  EXPECT_EQ(code_of([&] { sinsr::unet_swin::detect(vq); }), SINSR_ERR_NOT_FOUND);
  EXPECT_EQ(code_of([&] { sinsr::vq_f4::detect(unet); }), SINSR_ERR_NOT_FOUND);
  EXPECT_EQ(code_of([&] { sinsr::unet_swin::detect({}); }), SINSR_ERR_NOT_FOUND);
  EXPECT_EQ(code_of([&] { sinsr::vq_f4::detect({}); }), SINSR_ERR_NOT_FOUND);
  const std::string sr3 = sinsr_test::parity_file("sr3-srdiff/sr3_tiny.pth");
  if (!std::filesystem::exists(sr3)) GTEST_SKIP() << "sr3-srdiff/sr3_tiny.pth not in the parity folder";
  const ShapeMap sr3_shapes = shapes_of(sr3);
  EXPECT_EQ(code_of([&] { sinsr::unet_swin::detect(sr3_shapes); }), SINSR_ERR_NOT_FOUND);
  EXPECT_EQ(code_of([&] { sinsr::vq_f4::detect(sr3_shapes); }), SINSR_ERR_NOT_FOUND);
}

// Keys of the network that no config of this plugin builds are refused, never guessed.
TEST(Detect, VariantsThatCannotBeBuiltAreUnsupported) {
  ShapeMap unet = shapes_of(sinsr_test::parity_file("unet_tiny.pth"));
  ShapeMap extra = unet;
  extra["input_blocks.1.1.patch_embed.norm.weight"] = {64};  // patch_norm
  EXPECT_EQ(code_of([&] { sinsr::unet_swin::detect(extra); }), SINSR_ERR_UNSUPPORTED);
  ShapeMap missing = unet;
  missing.erase("output_blocks.0.0.skip_connection.weight");
  EXPECT_EQ(code_of([&] { sinsr::unet_swin::detect(missing); }), SINSR_ERR_UNSUPPORTED);
  ShapeMap reshaped = unet;
  reshaped["input_blocks.1.1.blocks.0.mlp.fc1.weight"] = {100, 64, 1, 1};  // one layer's MLP differs
  EXPECT_EQ(code_of([&] { sinsr::unet_swin::detect(reshaped); }), SINSR_ERR_UNSUPPORTED);

  ShapeMap vq = shapes_of(sinsr_test::parity_file("vq_tiny.pth"));
  ShapeMap double_z = vq;
  double_z["encoder.conv_out.weight"][0] *= 2;
  double_z["encoder.conv_out.bias"][0] *= 2;
  EXPECT_EQ(code_of([&] { sinsr::vq_f4::detect(double_z); }), SINSR_ERR_UNSUPPORTED);
  ShapeMap short_codebook = vq;
  short_codebook["quantize.embedding.weight"] = {128, 4};
  EXPECT_EQ(code_of([&] { sinsr::vq_f4::detect(short_codebook); }), SINSR_ERR_UNSUPPORTED);
}

}  // namespace
