// The inference pipeline: parity with the official Sampler.sample_func on the tiny networks,
// tiling geometry and blending, seeds, channel handling, and the C API.
#include "parity.hpp"

#include "pipeline/pipeline.hpp"
#include "sinsr_host.h"

#include <sinsr/config.hpp>

#include <functional>

namespace {

using sinsr::host::json;
using sinsr::host::Pipeline;
using sinsr::host::PipelineOptions;
using sinsr::host::Runtime;

Runtime& runtime() {
  static Runtime* rt = [] {
    auto* r = new Runtime(2);
    r->load_dir(SINSR_PLUGIN_DIR);
    r->load_file(SINSR_TEST_PLUGIN_DIR "/test_components.so");
    return r;
  }();
  return *rt;
}

PipelineOptions tiny_latent(const std::string& sampler) {
  PipelineOptions o;
  o.backbone = {"unet_swin",
                {{"config_file", sinsr_test::parity_file("tiny-unet.yaml")}},
                sinsr_test::parity_file("unet_tiny.pth")};
  o.codec = {
      "vq_f4", {{"config_file", sinsr_test::parity_file("tiny-vq.yaml")}}, sinsr_test::parity_file("vq_tiny.pth")};
  o.sampler = {sampler, json::object(), ""};
  o.chop_size = 0;
  return o;
}

// Replays recorded N(0,1) draws in order.
struct Replay {
  at::Tensor draws;
  int64_t next = 0;
  at::Tensor operator()(const at::Tensor& like) {
    EXPECT_LT(next, draws.size(0)) << "more noise draws than recorded";
    return draws[next++].view(like.sizes()).to(like.device());
  }
};

void check_case(const std::string& sampler, const std::string& key) {
  auto pc = sinsr_test::load("pipeline_case.pth");
  auto one = sinsr_test::at_key(pc, "onestep");
  auto run = sinsr_test::at_key(pc, key);
  Pipeline p(runtime(), tiny_latent(sampler));
  at::Tensor im = sinsr_test::tensor(pc, "im_lq");
  (void)one;
  Replay noise{sinsr_test::tensor(run, "randn")};
  at::Tensor sr = p.run_batch(im.sub(0.5).div(0.5), std::ref(noise));
  at::Tensor ref = sinsr_test::tensor(run, "sr");
  ASSERT_EQ(sr.sizes(), ref.sizes());
  // A VQ near-tie may flip one code and change a 4x4 patch; everything else must match.
  double off = (sr - ref).abs().gt(1e-3).to(at::kDouble).mean().item<double>();
  EXPECT_LE(off, 1e-3) << "fraction of pixels off by more than 1e-3";
  at::Tensor u8 = sr.mul(0.5).add(0.5).clamp(0, 1).mul(255).round().squeeze(0).permute({1, 2, 0}).to(at::kInt);
  at::Tensor ref8 = sinsr_test::tensor(run, "sr_uint8").to(at::kInt);
  double bad = (u8 - ref8).abs().gt(1).to(at::kDouble).mean().item<double>();
  EXPECT_LE(bad, 1e-3);
}

TEST(PipelineParity, OneStep) { check_case("single-step", "onestep"); }
TEST(PipelineParity, Ddim15) { check_case("deterministic", "ddim15"); }

TEST(Tiling, StartsFollowTheOfficialSplitter) {
  EXPECT_EQ(sinsr::host::tile_starts(600, 512, 448), (std::vector<int64_t>{0, 88}));
  EXPECT_EQ(sinsr::host::tile_starts(512, 512, 448), (std::vector<int64_t>{0}));
  EXPECT_EQ(sinsr::host::tile_starts(100, 32, 24), (std::vector<int64_t>{0, 24, 48, 68}));
}

TEST(Tiling, WindowIsOneInsideAndRampsOnSharedSides) {
  auto w = sinsr::host::tile_window(20, 30, 6, /*top=*/true, /*bottom=*/false, /*left=*/false, /*right=*/true);
  EXPECT_EQ(w.sizes(), (at::IntArrayRef{20, 30}));
  EXPECT_GT(w.min().item<float>(), 0.f);
  EXPECT_FLOAT_EQ(w[19][0].item<float>(), 1.f);  // border sides keep full weight
  EXPECT_LT(w[0][10].item<float>(), 0.1f);       // shared sides start near zero
  EXPECT_LT(w[10][29].item<float>(), 0.1f);
  EXPECT_FLOAT_EQ(w[10][10].item<float>(), 1.f);
  // Two overlapping ramps sum to a constant: cos^2 + sin^2.
  auto rise = sinsr::host::tile_window(1, 12, 6, false, false, true, false)[0].narrow(0, 0, 6);
  auto fall = sinsr::host::tile_window(1, 12, 6, false, false, false, true)[0].narrow(0, 6, 6);
  EXPECT_TRUE(sinsr_test::all_close(rise + fall, at::ones({6}), 1e-6));
}

PipelineOptions pixel(const std::string& backbone, const std::string& sampler, int chop, int stride, int batch = 1) {
  PipelineOptions o;
  o.backbone = {backbone, json::object(), "none"};
  o.explicit_keys.insert("codec");  // pixel space: a codec left unnamed is the installed default
  o.sampler = {sampler, json::object(), ""};
  o.chop_size = chop;
  o.chop_stride = stride;
  o.chop_batch = batch;
  o.pad_multiple = 8;
  return o;
}

at::Tensor test_image(int64_t h, int64_t w) {
  at::manual_seed(3);
  // Smooth content plus detail, in [0,1].
  auto yy = at::linspace(0, 1, h).view({1, 1, h, 1}), xx = at::linspace(0, 1, w).view({1, 1, 1, w});
  return (0.5 + 0.3 * at::sin(6 * xx + 4 * yy) + 0.1 * at::rand({1, 3, h, w})).clamp(0, 1);
}

TEST(Tiling, OneTileCoveringTheImageEqualsUntiled) {
  auto img = test_image(40, 56);
  auto a = Pipeline(runtime(), pixel("tiny_convnet", "stochastic", 0, 0)).upscale(img);
  auto b = Pipeline(runtime(), pixel("tiny_convnet", "stochastic", 64, 0)).upscale(img);
  EXPECT_EQ(a.sizes(), (at::IntArrayRef{1, 3, 160, 224}));
  EXPECT_TRUE(a.equal(b));
}

TEST(Tiling, SeamsAreBoundedAndTheRestIsExact) {
  auto img = test_image(40, 56);
  auto whole = Pipeline(runtime(), pixel("local_blur", "single-step", 0, 0)).upscale(img);
  auto tiled = Pipeline(runtime(), pixel("local_blur", "single-step", 16, 12)).upscale(img);
  auto diff = (whole - tiled).abs();
  // Every SR pixel more than 1 px from an interior tile edge is untouched by the tiling.
  auto near_edge = at::zeros({160, 224}, at::kBool);
  for (auto r : sinsr::host::tile_starts(40, 16, 12))
    for (int64_t e : {r * 4, (r + 16) * 4 - 1})
      if (e > 0 && e < 159) near_edge.narrow(0, std::max<int64_t>(e - 1, 0), 3).fill_(true);
  for (auto c : sinsr::host::tile_starts(56, 16, 12))
    for (int64_t e : {c * 4, (c + 16) * 4 - 1})
      if (e > 0 && e < 223) near_edge.narrow(1, std::max<int64_t>(e - 1, 0), 3).fill_(true);
  auto far = diff.masked_fill(near_edge.view({1, 1, 160, 224}), 0.0);
  EXPECT_LT(far.max().item<float>(), 1e-5);
  // At the seams the smooth window keeps the error well below a plain average's.
  EXPECT_LT(diff.max().item<float>(), 0.02f);
}

TEST(Tiling, ResultDoesNotDependOnTheTileBatch) {
  auto img = test_image(40, 56);
  auto a = Pipeline(runtime(), pixel("tiny_convnet", "stochastic", 16, 12, 1)).upscale(img);
  auto b = Pipeline(runtime(), pixel("tiny_convnet", "stochastic", 16, 12, 5)).upscale(img);
  EXPECT_TRUE(sinsr_test::all_close(a, b, 1e-6));
}

// Self-ensemble: the mean over the 8 symmetries of the square (each undone on its output),
// enumerated here independently of the pipeline's own order, on a network that is not symmetric.
TEST(SelfEnsemble, IsTheMeanOverTheEightSymmetriesUndone) {
  auto img = test_image(20, 28);
  auto o = pixel("tiny_convnet", "stochastic", 16, 12);
  Pipeline single(runtime(), o);
  using Map = std::function<at::Tensor(const at::Tensor&)>;
  auto id = [](const at::Tensor& x) { return x; };
  auto fh = [](const at::Tensor& x) { return x.flip({3}); };
  auto fv = [](const at::Tensor& x) { return x.flip({2}); };
  auto tr = [](const at::Tensor& x) { return x.transpose(2, 3); };
  // {g, g^-1}: the flips are their own inverses; (flip after transpose)^-1 = transpose after flip.
  std::vector<std::pair<Map, Map>> group = {
      {id, id},
      {fh, fh},
      {fv, fv},
      {[&](auto& x) { return fh(fv(x)); }, [&](auto& x) { return fv(fh(x)); }},
      {tr, tr},
      {[&](auto& x) { return fh(tr(x)); }, [&](auto& x) { return tr(fh(x)); }},
      {[&](auto& x) { return fv(tr(x)); }, [&](auto& x) { return tr(fv(x)); }},
      {[&](auto& x) { return fh(fv(tr(x))); }, [&](auto& x) { return tr(fv(fh(x))); }},
  };
  at::Tensor want = at::zeros({1, 3, 80, 112});
  for (auto& [g, inverse] : group) want += inverse(single.upscale(g(img).contiguous()));
  want /= 8.0;

  o.self_ensemble = true;
  std::vector<std::pair<int, int>> calls;
  at::Tensor got = Pipeline(runtime(), o).upscale(img, [&](int done, int total) {
    calls.emplace_back(done, total);
    return true;
  });
  EXPECT_TRUE(sinsr_test::all_close(got, want, 1e-5)) << (got - want).abs().max().item<float>();
  EXPECT_GT((got - single.upscale(img)).abs().max().item<float>(), 1e-3);  // it does change the image
  // Progress counts over all eight passes, once per batch of tiles, to the end.
  ASSERT_FALSE(calls.empty());
  EXPECT_EQ(calls.back().first, calls.back().second);
  EXPECT_EQ(int(calls.size()), calls.back().second);
  EXPECT_EQ(calls.back().second % 8, 0);
}

TEST(SelfEnsemble, IsASpecKeyAndASetting) {
  auto o = PipelineOptions::from_json(json{{"self_ensemble", true}});
  EXPECT_TRUE(o.self_ensemble);
  EXPECT_FALSE(PipelineOptions::from_json(json::object()).self_ensemble);
  // A value of the wrong type is refused naming its key.
  for (const auto& [key, bad] : std::vector<std::pair<std::string, json>>{
           {"self_ensemble", "yes"}, {"strength", "x"}, {"chop_size", json::array()}, {"device", 3}}) {
    try {
      PipelineOptions::from_json(json{{key, bad}});
      ADD_FAILURE() << key << " accepted " << bad.dump();
    } catch (const sinsr::sdk::Error& e) {
      EXPECT_EQ(e.code(), SINSR_ERR_INVALID_ARGUMENT);
      EXPECT_NE(std::string(e.what()).find("'" + key + "'"), std::string::npos) << e.what();
    }
  }
}

TEST(Seeds, SameSeedSameImageOtherSeedOtherImage) {
  auto img = test_image(24, 24);
  auto o = pixel("tiny_convnet", "stochastic", 0, 0);
  auto a = Pipeline(runtime(), o).upscale(img);
  auto b = Pipeline(runtime(), o).upscale(img);
  o.seed += 1;
  auto c = Pipeline(runtime(), o).upscale(img);
  EXPECT_TRUE(a.equal(b));
  EXPECT_FALSE(a.equal(c));
}

TEST(Channels, GrayStaysGrayAndAlphaIsUpscaledSeparately) {
  Pipeline p(runtime(), pixel("local_blur", "single-step", 0, 0));
  auto rgba = at::cat({test_image(16, 20).squeeze(0), at::rand({1, 16, 20})}, 0);
  auto out = p.upscale_any(rgba);
  ASSERT_EQ(out.sizes(), (at::IntArrayRef{4, 64, 80}));
  auto alpha = at::upsample_bicubic2d(rgba.narrow(0, 3, 1).unsqueeze(0), {64, 80}, false, 4.0, 4.0).clamp(0, 1);
  EXPECT_TRUE(sinsr_test::all_close(out.narrow(0, 3, 1), alpha.squeeze(0), 1e-6));
  auto gray = p.upscale_any(rgba.narrow(0, 0, 1));
  EXPECT_EQ(gray.sizes(), (at::IntArrayRef{1, 64, 80}));
  auto gray_alpha = p.upscale_any(at::cat({rgba.narrow(0, 0, 1), rgba.narrow(0, 3, 1)}, 0));
  EXPECT_EQ(gray_alpha.sizes(), (at::IntArrayRef{2, 64, 80}));
}

TEST(PipelineErrors, BadOptionsAreRefusedClearly) {
  auto o = pixel("no_such_net", "single-step", 0, 0);
  try {
    Pipeline p(runtime(), o);
    FAIL();
  } catch (const sinsr::sdk::Error& e) {
    EXPECT_NE(std::string(e.what()).find("no_such_net"), std::string::npos);
  }
  o = pixel("tiny_convnet", "single-step", 0, 0);
  o.backbone.weights = "";
  EXPECT_THROW(Pipeline(runtime(), o), sinsr::sdk::Error);  // no weights and not "none"
  o.backbone.weights = "none";
  o.precision = "fp8";
  EXPECT_THROW(Pipeline(runtime(), o), sinsr::sdk::Error);
  EXPECT_THROW(PipelineOptions::from_json(json{{"chop_sise", 64}}), sinsr::sdk::Error);  // typo caught
  EXPECT_EQ(PipelineOptions::from_json(json{{"sampler", {{"name", "ddpm"}, {"steps", 7}}}}).steps, 7);
  EXPECT_EQ(PipelineOptions::from_json(json{{"steps", 7}}).steps, 7);
  try {  // the same number in two places
    PipelineOptions::from_json(json{{"steps", 7}, {"sampler", {{"name", "ddpm"}, {"steps", 7}}}});
    FAIL();
  } catch (const sinsr::sdk::Error& e) {
    EXPECT_NE(std::string(e.what()).find("'steps' is given twice"), std::string::npos) << e.what();
  }
  o.precision = "fp32";
  const std::pair<const char*, void (*)(PipelineOptions&)> bad[] = {
      {"steps -1", [](PipelineOptions& b) { b.steps = -1; }},
      {"chop stride 65 > size 64", [](PipelineOptions& b) { b.chop_size = 64, b.chop_stride = 65; }},
      {"chop_batch 0", [](PipelineOptions& b) { b.chop_batch = 0; }},
      {"scale 0", [](PipelineOptions& b) { b.scale = 0; }},
      {"pad_multiple 0", [](PipelineOptions& b) { b.pad_multiple = 0; }},
      {"pad_multiple 100000 (16 GB of padding)", [](PipelineOptions& b) { b.pad_multiple = 100000; }},
      {"tiles of 1 pixel, each padded to 8", [](PipelineOptions& b) { b.chop_size = 1, b.chop_stride = 1; }},
  };
  for (const auto& [what, make_bad] : bad) {
    auto b = o;
    make_bad(b);
    try {
      Pipeline p(runtime(), b);
      ADD_FAILURE() << "accepted " << what;
    } catch (const sinsr::sdk::Error& e) {
      EXPECT_EQ(e.code(), SINSR_ERR_INVALID_ARGUMENT) << what;
    }
  }
}

// A network output with NaN fails the image (it used to become black pixels, silently).
TEST(PipelineErrors, NonFiniteNetworkOutputFailsTheImage) {
  PipelineOptions o;
  o.backbone = {"nan_spot", json::object(), "none"};
  o.explicit_keys.insert("codec");  // pixel space
  o.sampler = {"single-step", json::object(), ""};
  o.pad_multiple = 8;
  Pipeline p(runtime(), o);
  try {
    p.upscale_any(at::rand({3, 8, 8}));
    ADD_FAILURE() << "a NaN output was taken";
  } catch (const sinsr::sdk::Error& e) {
    EXPECT_EQ(e.code(), SINSR_ERR_RUNTIME);
    EXPECT_NE(std::string(e.what()).find("NaN or infinite"), std::string::npos) << e.what();
  }
}

// An output whose buffers exceed the memory budget is refused before any tile runs (an image
// at the pixel limit needed 17 GB for its x4 output and failed, or was killed, after the work).
TEST(PipelineErrors, AnOutputBeyondTheMemoryBudgetIsRefusedFirst) {
  Pipeline p(runtime(), pixel("local_blur", "single-step", 0, 0));
  ::setenv("SINSR_MEMORY_LIMIT_MB", "10", 1);  // 400x400 x4: 2.56 M pixels, ~80 MB of buffers
  try {
    p.upscale(at::rand({1, 3, 400, 400}));
    ADD_FAILURE() << "an 80 MB output was taken under a 10 MB budget";
  } catch (const sinsr::sdk::Error& e) {
    EXPECT_EQ(e.code(), SINSR_ERR_OUT_OF_MEMORY);
    EXPECT_NE(std::string(e.what()).find("the 1600x1600 output needs about 59 MB of buffers and 10 MB are free"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(p.upscale(at::rand({1, 3, 40, 40})).size(2), 160);  // 0.8 MB fits
  ::unsetenv("SINSR_MEMORY_LIMIT_MB");
}

// The weights rule is the runtime's (resolve_weights), its error names the part and the
// component, never a command-line flag.
TEST(PipelineErrors, MissingWeightsNameThePartNotAFlag) {
  auto o = pixel("tiny_convnet", "single-step", 0, 0);
  o.backbone.weights = "";
  try {
    Pipeline p(runtime(), o);
    FAIL() << "ran without weights";
  } catch (const sinsr::host::MissingWeights& e) {
    EXPECT_EQ(e.part(), "backbone");
    EXPECT_EQ(e.component_name(), "tiny_convnet");
    EXPECT_EQ(e.code(), SINSR_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(std::string(e.what()).find("--"), std::string::npos) << e.what();
  }
  const auto& c = *runtime().find(SINSR_KIND_BACKBONE, "tiny_convnet");
  EXPECT_EQ(sinsr::host::resolve_weights(c, "none", "backbone"), "");
  EXPECT_EQ(sinsr::host::resolve_weights(c, "w.pth", "backbone"), "w.pth");
  EXPECT_EQ(sinsr::host::resolve_weights(c, "", "backbone", /*required=*/false), "");
  EXPECT_THROW(sinsr::host::resolve_weights(c, "", "teacher"), sinsr::host::MissingWeights);
}

// Issue 15, start-up: networks whose weights follow are made with create_with {"init": "none"}
// (ABI 1.3) and draw no initial values (a full-size UNet's 118 M draws cost more than reading its
// weights); the parity cases above run through that path. Seen from outside: building such a
// pipeline leaves the global generator where it was, while building one with untrained weights
// moves it.
TEST(PipelineStartup, NetworksWhoseWeightsFollowDrawNoInitialValues) {
  auto next_draw_after = [](const std::function<void()>& build) {
    at::manual_seed(7);
    build();
    return at::rand({4});
  };
  at::manual_seed(7);
  const at::Tensor untouched = at::rand({4});
  auto o = tiny_latent("single-step");
  EXPECT_TRUE(at::equal(next_draw_after([&] { Pipeline p(runtime(), o); }), untouched));
  o.backbone.weights = "none";
  EXPECT_FALSE(at::equal(next_draw_after([&] { Pipeline p(runtime(), o); }), untouched));

  // The options are checked: an unknown value or key is refused naming it.
  auto c = runtime().find(SINSR_KIND_BACKBONE, "unet_swin");
  auto* vt = static_cast<const sinsr_backbone_vtable*>(sinsr::host::detail::table_of(*c, SINSR_KIND_BACKBONE));
  ASSERT_TRUE(SINSR_HAS_FIELD(vt, sinsr_backbone_vtable, create_with));
  const std::string config = json{{"config_file", sinsr_test::parity_file("tiny-unet.yaml")}}.dump();
  const std::pair<const char*, const char*> refused[] = {{R"({"init": "zeros"})", "zeros"},
                                                         {R"({"initialise": "none"})", "initialise"}};
  for (const auto& [options, named] : refused) {
    sinsr_backbone* self = nullptr;
    sinsr_status* st = vt->create_with(config.c_str(), options, &self);
    ASSERT_NE(st, nullptr) << options;
    EXPECT_EQ(self, nullptr);
    const std::string msg = sinsr_status_message(st);
    EXPECT_NE(msg.find(named), std::string::npos) << msg;
    sinsr_status_release(st);
  }
}

TEST(PipelineCApi, RunsAnHwcImageAndReportsErrors) {
  sinsr_runtime* rt = nullptr;
  ASSERT_EQ(sinsr_runtime_create(nullptr, &rt), nullptr);
  ASSERT_EQ(sinsr_runtime_load(rt, SINSR_PLUGIN_DIR), nullptr);
  ASSERT_EQ(sinsr_runtime_load(rt, SINSR_TEST_PLUGIN_DIR "/test_components.so"), nullptr);
  sinsr_pipeline* p = nullptr;
  sinsr_status* st =
      sinsr_pipeline_create(rt, R"({"backbone": {"name": "local_blur", "weights": "none"}, "bogus": 1})", &p);
  ASSERT_NE(st, nullptr);
  EXPECT_NE(std::string(sinsr_status_message(st)).find("bogus"), std::string::npos);
  sinsr_status_release(st);
  ASSERT_EQ(sinsr_pipeline_create(rt, R"({"backbone": {"name": "local_blur", "weights": "none"}, "codec": null,
      "sampler": "single-step", "pad_multiple": 8, "chop_size": 0})",
                                  &p),
            nullptr);
  auto hwc = at::rand({12, 10, 3});
  DLManagedTensor* out = nullptr;
  ASSERT_EQ(sinsr_pipeline_run(p, sinsr::sdk::to_dlpack(hwc), &out), nullptr);
  auto result = sinsr::sdk::from_dlpack(out);
  EXPECT_EQ(result.sizes(), (at::IntArrayRef{48, 40, 3}));
  sinsr_pipeline_destroy(p);
  sinsr_runtime_destroy(rt);
}

}  // namespace
