// The in-tree components read their configs through config::Reader: the issue-16 cases (wrong
// types and ranges used to pass silently or fail without naming the key) are refused naming the
// component and the key; the official YAML files keep working through the adapter.
#include "backbones/unet_swin/unet_swin.hpp"
#include "codecs/vq_f4/vq_f4.hpp"
#include "errors.hpp"
#include "losses/pointwise/losses.hpp"
#include "samplers/resshift/schedule.hpp"

#include <sinsr/config.hpp>
#include <sinsr/sdk.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

namespace {

using sinsr_test::error_of;

using sinsr::config::json;

std::string unet_error(const json& p) {
  return error_of([&] { sinsr::unet_swin::Options::from_json(p); });
}

TEST(ComponentConfigs, UNetSwinTypesAndRanges) {
  EXPECT_EQ(unet_error({{"model_channels", 4294967328LL}}),
            "backbone 'unet_swin': 'model_channels' must be an integer in [1, 65536], got 4294967328");
  EXPECT_EQ(unet_error({{"model_channels", 32.9}}),
            "backbone 'unet_swin': 'model_channels' must be an integer in [1, 65536], got 32.9");
  EXPECT_EQ(unet_error({{"mlp_ratio", NAN}}), "backbone 'unet_swin': 'mlp_ratio' must be a number in (0, 64], got nan");
  EXPECT_EQ(unet_error({{"swin_depth", -1}}),
            "backbone 'unet_swin': 'swin_depth' must be an integer in [1, 64], got -1");
  EXPECT_EQ(unet_error({{"channel_mult", {1, 0}}}),
            "backbone 'unet_swin': 'channel_mult' entry 1 must be an integer in [1, 64], got 0");
  EXPECT_NE(unet_error({{"modle_channels", 32}}).find("unknown key 'modle_channels' (known: "), std::string::npos);
  EXPECT_NE(unet_error({{"model_channels", 48}}).find("'model_channels' must be a multiple of 32"), std::string::npos);
  EXPECT_NE(unet_error({{"dims", 3}}).find("'dims'"), std::string::npos);
  // window^4 position entries: 1024 took 2.5 GB before the network refused it.
  EXPECT_EQ(unet_error({{"window_size", 1024}}),
            "backbone 'unet_swin': 'window_size' must be an integer in [1, 64], got 1024");
  // The short forms of the official configs still read.
  auto o = sinsr::unet_swin::Options::from_json({{"channel_mult", {1, 2}},
                                                 {"num_res_blocks", 3},
                                                 {"attention_resolutions", 8},
                                                 {"use_fp16", false},
                                                 {"dims", 2}});
  EXPECT_EQ(o.num_res_blocks, (std::vector<int>{3, 3}));
  EXPECT_EQ(o.attention_resolutions, (std::vector<int>{8}));
}

TEST(ComponentConfigs, VQF4NestedKeysNamedWithTheirPath) {
  auto err = [](const json& p) { return error_of([&] { sinsr::vq_f4::Options::from_json(p); }); };
  EXPECT_EQ(err({{"ddconfig", {{"ch", 48}}}}),
            "codec 'vq_f4': 'ddconfig.ch' must be a multiple of 32 (GroupNorm has 32 groups), got 48");
  EXPECT_EQ(err({{"ddconfig", {{"ch_mult", json::array()}}}}),
            "codec 'vq_f4': 'ddconfig.ch_mult' must be a list of 1 to 16 integers, got []");
  EXPECT_NE(err({{"ddconfig", {{"chh", 32}}}}).find("unknown key 'ddconfig.chh'"), std::string::npos);
  EXPECT_EQ(err({{"quantize_on_decode", "yes"}}),
            "codec 'vq_f4': 'quantize_on_decode' must be true or false, got \"yes\"");
  EXPECT_FALSE(sinsr::vq_f4::Options::from_json({{"quantize_on_decode", false}}).quantize_on_decode);
}

TEST(ComponentConfigs, ScheduleAndLosses) {
  auto err = [](const json& p) { return error_of([&] { sinsr::resshift::ScheduleOptions::from_json(p); }); };
  EXPECT_EQ(err({{"steps", 2.5}}),
            "resshift sampler: 'diffusion.params.steps' must be an integer in [1, 100000], got 2.5");
  EXPECT_EQ(err({{"kappa", -1}}), "resshift sampler: 'diffusion.params.kappa' must be a number > 0, got -1");
  EXPECT_NE(err({{"schedule_kwargs", {{"powr", 1}}}}).find("unknown key 'diffusion.params.schedule_kwargs.powr'"),
            std::string::npos);
  EXPECT_EQ(error_of([] {
              sinsr::losses::parse_options(sinsr::losses::Kind::Charbonnier, {{"eps", 0}});
            }),
            "loss 'charbonnier': 'eps' must be a number > 0, got 0");
}

// An official file holds keys a component ignores (target, ckpt_path, keys of other parts); the
// adapter passes on only the schema's keys, so `--config SinSR.yaml` keeps working, while the
// same unknown key given directly is refused.
TEST(ComponentConfigs, OfficialFilesPassOnlyKnownKeys) {
  const std::string path = ::testing::TempDir() + "official_extra.yaml";
  std::ofstream(path)
      << "model:\n  target: x\n  ckpt_path: ~\n  params:\n    model_channels: 32\n    swin_embed_dim: 64\n"
         "    image_size: 16\n    channel_mult: [1, 2]\n    attention_resolutions: [4]\n"
         "    num_res_blocks: 1\n    window_size: 4\n    future_key: 1\n";
  const std::set<std::string> known = {"model_channels",        "swin_embed_dim", "image_size", "channel_mult",
                                       "attention_resolutions", "num_res_blocks", "window_size"};
  namespace official = sinsr::config::official;
  json p = official::params({{"config_file", path}}, official::Section::Model, known);
  EXPECT_FALSE(p.contains("future_key"));
  EXPECT_EQ(sinsr::unet_swin::Options::from_json(p).model_channels, 32);
  p = official::params({{"config_file", path}, {"future_key", 1}}, official::Section::Model, known);
  EXPECT_NE(unet_error(p).find("unknown key 'future_key'"), std::string::npos);
}

}  // namespace
