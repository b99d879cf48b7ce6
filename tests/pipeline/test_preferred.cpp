// The rules the runtime and PipelineOptions own: a model's preferred pipeline against what the
// caller gave, and where a part's weights come from.
#include "pipeline/pipeline.hpp"

#include <gtest/gtest.h>

namespace {

using sinsr::host::json;
using sinsr::host::PipelineOptions;

const json kPreferred = {{"codec", {{"name", "space_to_depth"}, {"config", {{"factor", 4}}}}},
                         {"sampler", {{"name", "deterministic"}, {"config", {{"kappa", 2.0}, {"steps", 15}}}}},
                         {"steps", 1},
                         {"scale", 4}};

PipelineOptions named(const std::string& codec, const std::string& sampler) {
  PipelineOptions o;
  o.codec = {codec, json::object(), ""};
  o.sampler = {sampler, json::object(), ""};
  o.explicit_keys = {"codec", "sampler"};
  return o;
}

TEST(PreferredPipeline, NamingThePreferredPartWithoutAConfigKeepsItsConfig) {
  PipelineOptions o = named("space_to_depth", "deterministic");
  o.codec.weights = "codec.pth";
  o.apply_preferred(kPreferred, "model 'm'");
  EXPECT_EQ(o.sampler.name, "deterministic");
  EXPECT_EQ(o.sampler.config, kPreferred["sampler"]["config"]);
  EXPECT_EQ(o.codec.config, kPreferred["codec"]["config"]);
  EXPECT_EQ(o.codec.weights, "codec.pth") << "weights named for the part stay";
  EXPECT_EQ(o.steps, 1) << "keys the caller left unset still come from the preference";
}

TEST(PreferredPipeline, AnotherPartOrAConfigOfItsOwnWins) {
  PipelineOptions other = named("vq_f4", "stochastic");
  other.apply_preferred(kPreferred, "model 'm'");
  EXPECT_EQ(other.sampler.name, "stochastic");
  EXPECT_EQ(other.sampler.config, json::object());
  EXPECT_EQ(other.codec.name, "vq_f4");
  EXPECT_EQ(other.codec.config, json::object());

  PipelineOptions own = named("space_to_depth", "deterministic");
  own.sampler.config = {{"kappa", 1.0}};
  own.apply_preferred(kPreferred, "model 'm'");
  EXPECT_EQ(own.sampler.config, json({{"kappa", 1.0}}));
  EXPECT_EQ(own.codec.config, kPreferred["codec"]["config"]);

  PipelineOptions unset;  // nothing explicit: the preference, config and all
  unset.apply_preferred(kPreferred, "model 'm'");
  EXPECT_EQ(unset.sampler.name, "deterministic");
  EXPECT_EQ(unset.sampler.config, kPreferred["sampler"]["config"]);
}

// A config without a part name (--sampler-config alone) adjusts the preferred part.
TEST(PreferredPipeline, AConfigWithoutANameAdjustsThePreferredPart) {
  PipelineOptions o;
  o.sampler = {"single-step", {{"kappa", 1.0}, {"temperature", 0}}, ""};  // a default name, not chosen
  o.apply_preferred(kPreferred, "model 'm'");
  EXPECT_EQ(o.sampler.name, "deterministic");
  EXPECT_EQ(o.sampler.config, json({{"kappa", 1.0}, {"steps", 15}, {"temperature", 0}}));
}

TEST(PreferredPipeline, AnExplicitScaleTheModelDoesNotHaveIsRefused) {
  EXPECT_EQ(PipelineOptions::fixed_scale(kPreferred), 4);
  EXPECT_EQ(PipelineOptions::fixed_scale(json::object()), 0);
  PipelineOptions o;
  o.scale = 2;
  o.apply_preferred(kPreferred, "model 'm'");
  EXPECT_EQ(o.scale, 4) << "a default scale gives way";
  o.scale = 2;
  o.explicit_keys = {"scale"};
  try {
    o.apply_preferred(kPreferred, "model 'm'");
    FAIL() << "x2 accepted";
  } catch (const sinsr::sdk::Error& e) {
    EXPECT_EQ(e.code(), SINSR_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find("model 'm' upscales x4 only, not x2"), std::string::npos) << e.what();
  }
  o.scale = 4;
  EXPECT_NO_THROW(o.apply_preferred(kPreferred, "model 'm'"));
}

}  // namespace
