// The official-YAML adapter: an official file's section reaches a component with only the keys
// it knows; keys given directly pass untouched (the component's Reader refuses a bad one).
#include <sinsr/config.hpp>
#include <sinsr/sdk.hpp>

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

namespace {

using sinsr::config::json;
namespace official = sinsr::config::official;

std::string write_temp(const std::string& name, const std::string& text) {
  std::string path = ::testing::TempDir() + name;
  std::ofstream(path) << text;
  return path;
}

const char* kOfficial = R"(model:
  target: models.unet.UNetModelSwin
  ckpt_path: ~
  params:
    image_size: 64
    use_fp16: false
    model_channels: 160
autoencoder:
  target: ldm.models.autoencoder.VQModelTorch
  params:
    embed_dim: 3
    ddconfig: {ch: 128}
diffusion:
  params:
    steps: 15
    scale_factor: 1.0
    sf: 4
)";

TEST(ConfigOfficial, FileSectionFilteredToKnownKeys) {
  const std::string path = write_temp("official.yaml", kOfficial);
  json p = official::params({{"config_file", path}}, official::Section::Model, {"image_size", "model_channels"});
  EXPECT_EQ(p, json::parse(R"({"image_size": 64, "model_channels": 160})"));
  // Direct keys override and are never dropped.
  p = official::params({{"config_file", path}, {"model_channels", 32}, {"typo", 1}}, official::Section::Model,
                       {"image_size", "model_channels"});
  EXPECT_EQ(p, json::parse(R"({"image_size": 64, "model_channels": 32, "typo": 1})"));
}

TEST(ConfigOfficial, AutoencoderTakesTheDiffusionScaleFactor) {
  const std::string path = write_temp("official.yaml", kOfficial);
  json p = official::params({{"config_file", path}}, official::Section::Autoencoder,
                            {"embed_dim", "ddconfig", "scale_factor"});
  EXPECT_EQ(p, json::parse(R"({"embed_dim": 3, "ddconfig": {"ch": 128}, "scale_factor": 1.0})"));
  // A file with top-level params and scale_factor beside them (the parity tiny-vq.yaml form).
  const std::string tiny = write_temp("tiny.yaml", "target: x\nparams: {embed_dim: 3}\nscale_factor: 0.5\n");
  p = official::params({{"config_file", tiny}}, official::Section::Autoencoder, {"embed_dim", "scale_factor"});
  EXPECT_EQ(p, json::parse(R"({"embed_dim": 3, "scale_factor": 0.5})"));
}

TEST(ConfigOfficial, InlineOfficialAndNativeConfigs) {
  json whole = sinsr::config::parse(kOfficial);
  EXPECT_EQ(official::params(whole, official::Section::Diffusion, {"steps"}), json::parse(R"({"steps": 15})"));
  // A native config is the component's own: nothing dropped, nothing added.
  json native = json::parse(R"({"steps": 4, "typo": 1})");
  EXPECT_EQ(official::params(native, official::Section::Diffusion, {"steps"}), native);
  // A native file (no section, no params) too.
  const std::string path = write_temp("native.json", R"({"steps": 4, "typo": 1})");
  EXPECT_EQ(official::params({{"config_file", path}}, official::Section::Diffusion, {"steps"}), native);
}

TEST(ConfigOfficial, ShippedConfigGivesEachPartItsParams) {
  const std::string path = std::string(SINSR_CONFIG_DIR) + "/sinsr_x4.yaml";
  json model = official::params({{"config_file", path}}, official::Section::Model, {"image_size", "swin_depth"});
  EXPECT_EQ(model, json::parse(R"({"image_size": 64, "swin_depth": 2})"));
  json diffusion = official::params({{"config_file", path}}, official::Section::Diffusion, {"kappa", "steps"});
  EXPECT_EQ(diffusion, json::parse(R"({"kappa": 2.0, "steps": 15})"));
}

TEST(ConfigOfficial, Errors) {
  EXPECT_THROW(official::params({{"config_file", 3}}, official::Section::Model, {}), sinsr::sdk::Error);
  try {
    official::params({{"config_file", "no/such.yaml"}}, official::Section::Model, {});
    FAIL();
  } catch (const sinsr::sdk::Error& e) {
    EXPECT_EQ(e.code(), SINSR_ERR_NOT_FOUND);
  }
  const std::string path = write_temp("list.yaml", "model: {params: [1, 2]}\n");
  EXPECT_THROW(official::params({{"config_file", path}}, official::Section::Model, {}), sinsr::sdk::Error);
}

TEST(ConfigOfficial, ResolveKeepsEveryKey) {
  const std::string path = write_temp("official.yaml", kOfficial);
  json p = sinsr::config::resolve({{"config_file", path}}, "model");
  EXPECT_EQ(p, json::parse(R"({"image_size": 64, "use_fp16": false, "model_channels": 160})"));
  EXPECT_THROW(sinsr::config::resolve(json::object(), "unet"), sinsr::sdk::Error);
}

// The SDK's rule before every create: a native config file becomes its contents (other keys
// over them); an official file, or no file, is left to the component.
TEST(ConfigOfficial, NativeFileBecomesItsContents) {
  const std::string native = write_temp("native_sr3.json", R"({"inner_channel": 8, "norm_groups": 4})");
  EXPECT_EQ(official::native_file({{"config_file", native}, {"norm_groups", 2}}),
            json::parse(R"({"inner_channel": 8, "norm_groups": 2})"));
  const std::string yaml = write_temp("native.yaml", "variant: srdiff\nsteps: 7\n");
  EXPECT_EQ(official::native_file({{"config_file", yaml}}), json::parse(R"({"variant": "srdiff", "steps": 7})"));
  const std::string whole = write_temp("official_whole.yaml", kOfficial);
  const json official_file = {{"config_file", whole}};
  EXPECT_EQ(official::native_file(official_file), official_file);
  const json plain = {{"steps", 4}};
  EXPECT_EQ(official::native_file(plain), plain);
  EXPECT_EQ(official::native_file({{"config_file", 3}}), json({{"config_file", 3}}));  // the component says why
  const std::string list = write_temp("native_list.json", "[1, 2]");
  EXPECT_THROW(official::native_file({{"config_file", list}}), sinsr::sdk::Error);
  EXPECT_THROW(official::native_file({{"config_file", "no/such.json"}}), sinsr::sdk::Error);
}

}  // namespace
