// ABI 1.1: shipped models (a base component, a config, weights and a preferred pipeline, no
// code of their own), components without weights (space_to_depth), and 1.0 plugins beside them.
#include "errors.hpp"
#include "pipeline/pipeline.hpp"
#include "runtime/runtime.hpp"

#include <gtest/gtest.h>

#include <filesystem>

namespace fs = std::filesystem;
using sinsr::host::json;
using sinsr::host::Pipeline;
using sinsr::host::PipelineOptions;
using sinsr::host::Runtime;

namespace {

using sinsr_test::error_of;

std::string test_plugin(const std::string& name) { return std::string(SINSR_TEST_PLUGIN_DIR) + "/" + name + ".so"; }
std::string plugin(const std::string& name) { return std::string(SINSR_PLUGIN_DIR) + "/" + name + ".so"; }

// unet_swin, resshift and space_to_depth from the build, plus the named test plugins.
void load(Runtime& rt, std::initializer_list<const char*> tests) {
  for (const char* p : {"unet_swin", "resshift", "space_to_depth"}) rt.load_file(plugin(p));
  for (const char* t : tests) rt.load_file(test_plugin(t));
}

PipelineOptions tiny_model_options() {
  PipelineOptions o;
  o.backbone = {"tiny_model", json::object(), "none"};
  o.sampler = {"single-step", json::object(), ""};
  return o;
}

}  // namespace

TEST(Models, ResolveToTheirBaseWithTheirOwnNameConfigAndWeights) {
  Runtime rt(1);
  load(rt, {"tiny_model"});
  auto base = rt.find(SINSR_KIND_BACKBONE, "unet_swin");
  auto model = rt.find(SINSR_KIND_BACKBONE, "tiny_model");
  EXPECT_EQ(model->name(), "tiny_model");
  EXPECT_EQ(model->base(), "");  // resolved: a model of nothing further
  EXPECT_EQ(model->desc->vtable, base->desc->vtable);
  EXPECT_EQ(model->desc->thread_safety, base->desc->thread_safety) << "the base's mode governs its code";
  EXPECT_EQ(model->default_config()["model_channels"], 32);
  EXPECT_EQ(model->default_config()["window_size"], 4);
  EXPECT_EQ(fs::path(model->default_weights_path()), fs::path(SINSR_TEST_PLUGIN_DIR) / "tiny_model.pth");
  EXPECT_EQ(model->preferred_pipeline()["steps"], 3);
  EXPECT_TRUE(model->needs_weights());
  EXPECT_EQ(rt.find(SINSR_KIND_BACKBONE, "tiny_model"), model) << "resolved once";
  // The unresolved descriptor is what the library declared.
  auto raw = rt.from_file(test_plugin("tiny_model"));
  ASSERT_EQ(raw.size(), 1u);
  EXPECT_EQ(raw[0]->base(), "unet_swin");
  EXPECT_EQ(raw[0]->desc->vtable, nullptr);
}

TEST(Models, AMissingOrChainedBaseIsRefusedByName) {
  Runtime rt(1);
  load(rt, {"tiny_model", "orphan_model", "chained_model"});
  int code = 0;
  std::string msg = error_of([&] { rt.find(SINSR_KIND_BACKBONE, "orphan_model"); }, &code);
  EXPECT_EQ(code, SINSR_ERR_NOT_FOUND);
  EXPECT_NE(msg.find("no_such_backbone"), std::string::npos) << msg;
  EXPECT_NE(msg.find("orphan_model.so"), std::string::npos) << msg;
  msg = error_of([&] { rt.find(SINSR_KIND_BACKBONE, "chained_model"); }, &code);
  EXPECT_EQ(code, SINSR_ERR_FORMAT);
  EXPECT_NE(msg.find("itself a model"), std::string::npos) << msg;
  EXPECT_NE(rt.find_or_null(SINSR_KIND_BACKBONE, "tiny_model"), nullptr) << "the host carries on";
}

TEST(Models, PreferredPipelineFillsOnlyWhatTheCallerLeftUnset) {
  Runtime rt(1);
  load(rt, {"tiny_model"});
  Pipeline p(rt, tiny_model_options());
  EXPECT_EQ(p.options().sampler.name, "deterministic");
  EXPECT_EQ(p.options().steps, 3);
  EXPECT_EQ(p.options().pad_multiple, 8);
  EXPECT_EQ(p.options().chop_size, 40);
  EXPECT_EQ(p.options().chop_stride, 35) << "the stride follows the preferred tile";
  EXPECT_EQ(p.options().scale, 4) << "keys the model does not prefer keep their defaults";

  PipelineOptions o = tiny_model_options();
  o.steps = 2;
  o.explicit_keys = {"sampler", "steps"};
  Pipeline q(rt, o);
  EXPECT_EQ(q.options().sampler.name, "single-step");
  EXPECT_EQ(q.options().steps, 2);
  EXPECT_EQ(q.options().pad_multiple, 8);

  // The C API's JSON form: the keys present are the caller's.
  PipelineOptions j = PipelineOptions::from_json(json::parse(
      R"({"backbone": {"name": "tiny_model", "weights": "none"}, "sampler": {"name": "stochastic", "steps": 5}})"));
  EXPECT_EQ(j.explicit_keys, (std::set<std::string>{"backbone", "sampler", "steps"}));
  Pipeline r(rt, j);
  EXPECT_EQ(r.options().sampler.name, "stochastic");
  EXPECT_EQ(r.options().steps, 5);
  EXPECT_EQ(r.options().chop_size, 40);
}

TEST(Models, ABadPreferredPipelineNamesTheModelAndTheKey) {
  Runtime rt(1);
  load(rt, {"bad_pipeline_model"});
  PipelineOptions o = tiny_model_options();
  o.backbone.name = "bad_pipeline_model";
  int code = 0;
  std::string msg = error_of([&] { Pipeline p(rt, o); }, &code);
  EXPECT_EQ(code, SINSR_ERR_FORMAT);
  EXPECT_NE(msg.find("bad_pipeline_model"), std::string::npos) << msg;
  EXPECT_NE(msg.find("stepz"), std::string::npos) << msg;
}

TEST(Models, AModelWithoutItsWeightsFileSaysWhichFile) {
  Runtime rt(1);
  load(rt, {"tiny_model"});
  PipelineOptions o = tiny_model_options();
  o.backbone.weights.clear();  // the model's default: tiny_model.pth, which the test build has not made
  std::string msg = error_of([&] { Pipeline p(rt, o); });
  EXPECT_NE(msg.find("tiny_model.pth"), std::string::npos) << msg;
}

TEST(SpaceToDepth, IsLosslessAndNeedsNoWeights) {
  Runtime rt(1);
  load(rt, {});
  auto c = rt.find(SINSR_KIND_CODEC, "space_to_depth");
  EXPECT_FALSE(c->needs_weights());
  sinsr::host::CodecHandle codec(c, json{{"factor", 4}});
  auto info = codec.info();
  EXPECT_EQ(info.downscale, 4);
  EXPECT_EQ(info.latent_channels, 48);
  at::Tensor img = at::rand({2, 3, 16, 24}) * 2 - 1;
  at::Tensor z = codec.encode(img);
  EXPECT_EQ(z.sizes(), (at::IntArrayRef{2, 48, 4, 6}));
  // Channel c*16 + i*4 + j holds pixel (4y + i, 4x + j) of colour c.
  EXPECT_EQ(z[1][2 * 16 + 3 * 4 + 1][2][5].item<float>(), img[1][2][2 * 4 + 3][5 * 4 + 1].item<float>());
  EXPECT_TRUE(at::equal(codec.decode(z), img));
  std::string msg = error_of([&] { codec.load_weights("w.pth"); });
  EXPECT_NE(msg.find("no weights"), std::string::npos) << msg;
  msg = error_of([&] { codec.encode(at::zeros({1, 3, 10, 8})); });
  EXPECT_NE(msg.find("multiples of 4"), std::string::npos) << msg;
  msg = error_of([&] { sinsr::host::CodecHandle bad(c, json{{"factor", 0}}); });
  EXPECT_NE(msg.find("factor"), std::string::npos) << msg;
  msg = error_of([&] { sinsr::host::CodecHandle bad(c, json{{"factr", 2}}); });
  EXPECT_NE(msg.find("factr"), std::string::npos) << msg;

  // In a pipeline it runs without weights, and an untrained residual UNet over it is bicubic.
  PipelineOptions o;
  o.backbone = {"unet_swin",
                json{{"in_channels", 51},
                     {"out_channels", 48},
                     {"model_channels", 32},
                     {"channel_mult", {1, 2}},
                     {"num_res_blocks", {1, 1}},
                     {"attention_resolutions", {8}},
                     {"window_size", 4},
                     {"swin_embed_dim", 32},
                     {"residual_upscale", 4},
                     {"residual_unshuffle", 4}},
                "none"};
  o.codec = {"space_to_depth", json::object(), ""};
  o.sampler = {"deterministic", json::object(), ""};
  o.steps = 1;
  o.pad_multiple = 8;  // the middle block's Swin needs LR/2 to be a multiple of its window 4
  o.chop_size = 0;
  Pipeline p(rt, o);
  at::Tensor lr = at::rand({1, 3, 8, 16});
  at::Tensor sr = p.upscale(lr);
  at::Tensor bicubic = sinsr::host::upsample_bicubic(lr * 2 - 1, 4).clamp(-1, 1) * 0.5 + 0.5;
  EXPECT_TRUE(at::allclose(sr, bicubic, 1e-5, 1e-5)) << (sr - bicubic).abs().max().item<float>();
}

TEST(Models, A10PluginBesideThemReadsAsHavingNoneOfThe11Fields) {
  Runtime rt(1);
  rt.load_file(test_plugin("l1_c"));
  auto c = rt.find(SINSR_KIND_LOSS, "l1_c");
  EXPECT_LT(c->desc->struct_size, sizeof(sinsr_component));
  EXPECT_EQ(c->base(), "");
  EXPECT_TRUE(c->preferred_pipeline().empty());
  EXPECT_TRUE(c->needs_weights());
}
