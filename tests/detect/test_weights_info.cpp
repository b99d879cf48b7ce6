// host::weights_info: what a weights file says about its network, through the ABI (the loaded
// plugins' detect_config) and through the components train/distill store in checkpoints.
#include "host_run.hpp"
#include "parity.hpp"

#include "pipeline/pipeline.hpp"
#include "runtime/weights_info.hpp"
#include "train/trainer.hpp"

#include <filesystem>
#include <fstream>
#include <map>

namespace {

using sinsr::host::json;
using sinsr::host::Runtime;
using sinsr::host::weights_info;

Runtime& runtime() {
  static auto* rt = [] {
    auto* r = new Runtime(2);
    for (const char* p : {"unet_swin", "vq_f4", "resshift", "pointwise"})
      r->load_file(std::string(SINSR_PLUGIN_DIR) + "/" + p + ".so");
    return r;
  }();
  return *rt;
}

bool starts_with(const std::string& s, const std::string& head) { return s.rfind(head, 0) == 0; }
bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(WeightsInfo, DetectsOfficialLayoutCheckpointsThroughTheAbi) {
  const std::string unet = sinsr_test::parity_file("unet_tiny_official.pth");
  auto info = weights_info(runtime(), SINSR_KIND_BACKBONE, unet);
  ASSERT_TRUE(info.found()) << info.summary;
  EXPECT_EQ(info.source, "detected");
  EXPECT_EQ(info.component, "unet_swin");
  EXPECT_EQ(info.config["model_channels"], 32);
  EXPECT_TRUE(starts_with(info.summary,
                          "detected: unet_swin model_channels=32 channel_mult=[1,1,2] num_res_blocks=[2,1,1] "
                          "attention_resolutions=[64,16] swin_depth=2 swin_embed_dim=64 window_size=4 mlp_ratio=4 "
                          "num_head_channels=32"))
      << info.summary;
  EXPECT_TRUE(contains(info.summary,
                       "(assumed from the official SinSR.yaml: dropout=0, residual_upscale=0, residual_unshuffle=1)"))
      << info.summary;
  sinsr::host::BackboneHandle net(runtime().find(SINSR_KIND_BACKBONE, info.component), info.config);
  EXPECT_NO_THROW(net.load_weights(unet));  // strict by default

  const std::string vq = sinsr_test::parity_file("vq_tiny_official.pth");
  auto cinfo = weights_info(runtime(), SINSR_KIND_CODEC, vq);
  ASSERT_TRUE(cinfo.found()) << cinfo.summary;
  EXPECT_EQ(cinfo.component, "vq_f4");
  EXPECT_TRUE(
      starts_with(cinfo.summary, "detected: vq_f4 embed_dim=3 n_embed=128 ch=32 ch_mult=[1,2,4] num_res_blocks=1"))
      << cinfo.summary;
  EXPECT_TRUE(contains(cinfo.summary, "resolution=256, dropout=0.0, scale_factor=1.0)")) << cinfo.summary;
  sinsr::host::CodecHandle codec(runtime().find(SINSR_KIND_CODEC, cinfo.component), cinfo.config);
  EXPECT_NO_THROW(codec.load_weights(vq));
}

TEST(WeightsInfo, OtherNetworksAreNotRecognised) {
  auto info = weights_info(runtime(), SINSR_KIND_BACKBONE, sinsr_test::parity_file("vq_tiny.pth"));
  EXPECT_FALSE(info.found());
  EXPECT_TRUE(contains(info.summary, "no loaded backbone recognises")) << info.summary;
  EXPECT_TRUE(contains(info.summary, "unet_swin: not a UNetModelSwin state dict")) << info.summary;
  EXPECT_FALSE(weights_info(runtime(), SINSR_KIND_CODEC, sinsr_test::parity_file("unet_tiny.pth")).found());
  const std::string sr3 = sinsr_test::parity_file("sr3-srdiff/sr3_tiny.pth");
  if (std::filesystem::exists(sr3)) EXPECT_FALSE(weights_info(runtime(), SINSR_KIND_BACKBONE, sr3).found());
  EXPECT_THROW(weights_info(runtime(), SINSR_KIND_SAMPLER, sr3), sinsr::sdk::Error);
}

// The call itself: static, its argument checks, and NOT_FOUND for keys that are not its own.
TEST(WeightsInfo, DetectConfigCallChecksItsArguments) {
  auto c = runtime().find(SINSR_KIND_BACKBONE, "unet_swin");
  auto* vt = static_cast<const sinsr_backbone_vtable*>(c->desc->vtable);
  ASSERT_TRUE(SINSR_HAS_FIELD(vt, sinsr_backbone_vtable, detect_config));
  ASSERT_NE(vt->detect_config, nullptr);
  const sinsr_host_api* api = sinsr::host::host_api();
  auto code = [&](sinsr_status* s) {
    int32_t k = s ? api->status_code(s) : SINSR_OK;
    if (s) api->status_release(s);
    return k;
  };
  std::string text;
  auto write = [](void* user, const char* t) { *static_cast<std::string*>(user) = t; };
  EXPECT_EQ(code(vt->detect_config(nullptr, 0, nullptr, nullptr)), SINSR_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(code(vt->detect_config(nullptr, 0, write, &text)), SINSR_ERR_NOT_FOUND);
  int64_t dims[2] = {640, 160};
  sinsr_tensor_shape small{};
  small.struct_size = offsetof(sinsr_tensor_shape, ndim);  // an older, smaller entry
  small.name = "time_embed.0.weight";
  const sinsr_tensor_shape* entries[] = {&small};
  EXPECT_EQ(code(vt->detect_config(entries, 1, write, &text)), SINSR_ERR_ABI);
  sinsr_tensor_shape one{sizeof(sinsr_tensor_shape), "time_embed.0.weight", 2, dims};
  entries[0] = &one;
  EXPECT_EQ(code(vt->detect_config(entries, 1, write, &text)), SINSR_ERR_NOT_FOUND);
  EXPECT_TRUE(text.empty());  // never written on failure
}

// A safetensors file is read from its header alone; its __metadata__ may carry the components.
TEST(WeightsInfo, SafetensorsHeaderAndMetadata) {
  const auto dir = sinsr_test::fresh_dir("weights_info_st");
  const std::string path = (dir / "w.safetensors").string();
  json components = {{"backbone", {{"name", "unet_swin"}, {"config", {{"model_channels", 32}}}}},
                     {"codec", nullptr},
                     {"sampler", {{"name", "deterministic"}, {"config", json::object()}}}};
  json header = {{"__metadata__", {{sinsr::host::kComponentsKey, components.dump()}}},
                 {"module.a.weight", {{"dtype", "F32"}, {"shape", {2, 3}}, {"data_offsets", {0, 24}}}}};
  std::string text = header.dump();
  std::ofstream out(path, std::ios::binary);
  const uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) out.put(char((n >> (8 * i)) & 0xff));
  out << text << std::string(24, '\0');
  out.close();
  json stored;
  auto shapes = sinsr::host::read_shapes(path, &stored);
  EXPECT_EQ(shapes, (sinsr::sdk::ShapeMap{{"a.weight", {2, 3}}}));
  EXPECT_EQ(stored, components);
  auto info = weights_info(runtime(), SINSR_KIND_BACKBONE, path);
  EXPECT_EQ(info.source, "stored");
  EXPECT_EQ(info.component, "unet_swin");
  EXPECT_EQ(info.config, json({{"model_channels", 32}}));
  EXPECT_EQ(info.summary, "stored: backbone unet_swin, codec none, sampler deterministic");
  auto codec = weights_info(runtime(), SINSR_KIND_CODEC, path);
  EXPECT_EQ(codec.source, "stored");
  EXPECT_EQ(codec.component, "");  // the checkpoint says: pixel space
}

// A distillation of the tiny parity networks (config files, teacher and codec weights).
sinsr::train::TrainerOptions tiny_distillation() {
  using sinsr::train::TrainerOptions;
  TrainerOptions o;
  o.mode = TrainerOptions::Mode::Distill;
  o.backbone = {"unet_swin", {{"config_file", sinsr_test::parity_file("tiny-unet.yaml")}}, ""};
  o.teacher = {"", json::object(), sinsr_test::parity_file("unet_tiny.pth")};
  o.codec = {
      "vq_f4", {{"config_file", sinsr_test::parity_file("tiny-vq.yaml")}}, sinsr_test::parity_file("vq_tiny.pth")};
  o.sampler = {"deterministic", json::object(), ""};
  return o;
}

// A distillation checkpoint carries the parts as created, config files resolved to their params,
// beside a state_dict the official loaders read; it loads with no config.
TEST(WeightsInfo, TrainerCheckpointsDescribeTheirNetwork) {
  sinsr::train::Trainer trainer(runtime(), tiny_distillation());
  const auto dir = sinsr_test::fresh_dir("weights_info_train");
  const std::string ckpt = (dir / "ckpt.pth").string(), ema = (dir / "ema.pth").string();
  trainer.save(ckpt, json{{"note", "run options"}});
  trainer.save_ema(ema);

  auto info = weights_info(runtime(), SINSR_KIND_BACKBONE, ckpt);
  ASSERT_EQ(info.source, "stored") << info.summary;
  EXPECT_EQ(info.summary, "stored: backbone unet_swin, codec vq_f4, sampler deterministic (1 step), scale 4");
  EXPECT_EQ(info.component, "unet_swin");
  EXPECT_FALSE(info.config.contains("config_file"));
  EXPECT_EQ(info.config["model_channels"], 32);
  EXPECT_EQ(info.config["attention_resolutions"], json({64, 16}));
  EXPECT_EQ(info.config["window_size"], 4);
  const json& codec = info.components["codec"];
  EXPECT_EQ(codec["name"], "vq_f4");
  EXPECT_FALSE(codec["config"].contains("config_file"));
  EXPECT_EQ(codec["config"]["ddconfig"]["ch"], 32);
  EXPECT_EQ(info.components["sampler"]["name"], "deterministic");
  EXPECT_EQ(info.components["sampler"]["steps"], 1);
  EXPECT_EQ(info.components.dump().find(sinsr_test::parity_dir()), std::string::npos);  // no paths
  auto cinfo = weights_info(runtime(), SINSR_KIND_CODEC, ckpt);
  EXPECT_EQ(cinfo.component, "vq_f4");
  EXPECT_EQ(cinfo.config, codec["config"]);

  // The stored config builds the network and the file loads into it strictly.
  sinsr::host::BackboneHandle net(runtime().find(SINSR_KIND_BACKBONE, info.component), info.config);
  EXPECT_NO_THROW(net.load_weights(ckpt));
  sinsr::host::CodecHandle vq(runtime().find(SINSR_KIND_CODEC, cinfo.component), cinfo.config);
  EXPECT_NO_THROW(vq.load_weights(sinsr_test::parity_file("vq_tiny.pth")));

  // Beside state_dict, not inside it: state_dict stays name -> tensor.
  auto root = sinsr::ckpt::read_file(ckpt).toGenericDict();
  ASSERT_TRUE(root.contains(sinsr::host::kComponentsKey));
  EXPECT_TRUE(root.at(sinsr::host::kComponentsKey).isString());
  for (auto& kv : root.at("state_dict").toGenericDict()) EXPECT_TRUE(kv.value().isTensor());

  // The EMA file describes itself as the checkpoint does: the same parts beside its state_dict.
  auto eroot = sinsr::ckpt::read_file(ema).toGenericDict();
  ASSERT_TRUE(eroot.contains(sinsr::host::kComponentsKey));
  for (auto& kv : eroot.at("state_dict").toGenericDict()) EXPECT_TRUE(kv.value().isTensor());
  auto einfo = weights_info(runtime(), SINSR_KIND_BACKBONE, ema);
  EXPECT_EQ(einfo.source, "stored") << einfo.summary;
  EXPECT_EQ(einfo.components, info.components);
}

// A shipped model is stored as its base with the model's config, so the file needs no model plugin.
TEST(WeightsInfo, ModelsAreStoredAsTheirBase) {
  const std::string student = std::string(SINSR_PLUGIN_DIR) + "/student.so";
  if (!std::filesystem::exists(student)) GTEST_SKIP() << "student.so not built";
  Runtime rt(1);
  rt.load_file(std::string(SINSR_PLUGIN_DIR) + "/unet_swin.so");
  rt.load_file(student);
  json part = sinsr::host::stored_component(rt, SINSR_KIND_BACKBONE, "student", json{{"dropout", 0}});
  EXPECT_EQ(part["name"], "unet_swin");
  EXPECT_EQ(part["model"], "student");
  EXPECT_EQ(part["config"]["residual_upscale"], 4);  // the model's own config, not in any weights
  EXPECT_EQ(part["config"]["dropout"], 0);
}

// A pipeline given weights and no config takes what the file stores or its plugin detects, and
// upscales exactly as the same pipeline with the configs spelled out.
sinsr::host::PipelineOptions spelled_out(const std::string& unet_weights, const std::string& vq_weights) {
  sinsr::host::PipelineOptions o;
  o.backbone = {"unet_swin", {{"config_file", sinsr_test::parity_file("tiny-unet.yaml")}}, unet_weights};
  o.codec = {"vq_f4", {{"config_file", sinsr_test::parity_file("tiny-vq.yaml")}}, vq_weights};
  o.sampler = {"deterministic", json::object(), ""};
  o.steps = 1;
  return o;
}

at::Tensor upscale_with(sinsr::host::PipelineOptions o, std::vector<std::string>* described = nullptr) {
  sinsr::host::Pipeline p(runtime(), std::move(o));
  if (described) *described = p.options().described;
  at::manual_seed(5);
  return p.upscale(at::rand({1, 3, 16, 16}));
}

TEST(WeightsInfo, PipelinesTakeTheirNetworkFromATrainCheckpoint) {
  const auto dir = sinsr_test::fresh_dir("weights_info_pipeline");
  const std::string ckpt = (dir / "ckpt.pth").string();
  sinsr::train::Trainer(runtime(), tiny_distillation()).save(ckpt, json::object());

  // Only the weights: backbone, codec, sampler and its one step come from the checkpoint.
  sinsr::host::PipelineOptions o;
  o.backbone.weights = ckpt;
  o.codec.weights = sinsr_test::parity_file("vq_tiny.pth");
  std::vector<std::string> described;
  at::Tensor got = upscale_with(o, &described);
  ASSERT_EQ(described.size(), 1u);
  EXPECT_EQ(described[0], ckpt + ": stored: backbone unet_swin, codec vq_f4, sampler deterministic (1 step), scale 4");
  EXPECT_TRUE(at::equal(got, upscale_with(spelled_out(ckpt, sinsr_test::parity_file("vq_tiny.pth")))));

  // What the caller names wins over what is stored.
  o.codec = {"", json::object(), ""};
  o.explicit_keys.insert("codec");
  sinsr::host::Pipeline pixel(runtime(), o);
  EXPECT_TRUE(pixel.options().codec.name.empty());
  EXPECT_EQ(pixel.options().sampler.name, "deterministic");
}

TEST(WeightsInfo, PipelinesDetectOfficialCheckpoints) {
  const std::string unet = sinsr_test::parity_file("unet_tiny_official.pth");
  const std::string vq = sinsr_test::parity_file("vq_tiny_official.pth");
  sinsr::host::PipelineOptions o;
  o.backbone.weights = unet;
  o.codec = {"vq_f4", json::object(), vq};
  o.sampler = {"deterministic", json::object(), ""};
  o.steps = 1;
  std::vector<std::string> described;
  at::Tensor got = upscale_with(o, &described);
  ASSERT_EQ(described.size(), 2u);
  EXPECT_TRUE(starts_with(described[0], unet + ": detected: unet_swin model_channels=32")) << described[0];
  EXPECT_TRUE(starts_with(described[1], vq + ": detected: vq_f4 embed_dim=3")) << described[1];
  EXPECT_TRUE(at::equal(got, upscale_with(spelled_out(unet, vq))));
}

TEST(WeightsInfo, UnrecognisedWeightsWithoutANameAreRefusedNamingTheFile) {
  sinsr::host::PipelineOptions o;
  o.backbone.weights = sinsr_test::parity_file("vq_tiny.pth");
  o.sampler = {"deterministic", json::object(), ""};
  try {
    sinsr::host::Pipeline p(runtime(), o);
    FAIL() << "a file no backbone recognises built a pipeline";
  } catch (const sinsr::sdk::Error& e) {
    EXPECT_EQ(e.code(), SINSR_ERR_NOT_FOUND);
    EXPECT_TRUE(contains(e.what(), o.backbone.weights)) << e.what();
    EXPECT_TRUE(contains(e.what(), "name its backbone")) << e.what();
  }
}

// Every file the project writes runs alone (-w): ema.pth and an export of it give the bytes of the
// checkpoint they come from, and export keeps what the input stores.
TEST(WeightsInfo, EmaAndExportedWeightsRunAloneAsTheCheckpoint) {
  sinsr::train::Trainer trainer(runtime(), tiny_distillation());
  const auto dir = sinsr_test::fresh_dir("weights_info_alone");
  const std::string ckpt = (dir / "ckpt.pth").string(), ema = (dir / "ema.pth").string(),
                    exported = (dir / "exported.pth").string();
  trainer.save(ckpt, json::object());
  trainer.save_ema(ema);  // no step taken: the EMA equals the weights
  auto alone = [&](const std::string& w) {
    sinsr::host::PipelineOptions o;
    o.backbone.weights = w;
    o.codec.weights = sinsr_test::parity_file("vq_tiny.pth");
    return upscale_with(o);
  };
  const at::Tensor want = alone(ckpt);
  EXPECT_TRUE(at::equal(alone(ema), want));
  sinsr_test::HostRun r = sinsr_test::run_host("export -w " + ema + " -o " + exported);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(weights_info(runtime(), SINSR_KIND_BACKBONE, exported).source, "stored");
  EXPECT_TRUE(at::equal(alone(exported), want));
}

// export --interpolate: alpha * IN + (1 - alpha) * OTHER for floating tensors, IN's integer
// buffers; another network, or --alpha alone, is refused.
TEST(WeightsInfo, ExportInterpolatesTwoTrainingsOfOneNetwork) {
  const auto dir = sinsr_test::fresh_dir("weights_info_interpolate");
  const std::string a = sinsr_test::parity_file("unet_tiny.pth"), b = (dir / "b.pth").string(),
                    out = (dir / "mix.pth").string();
  sinsr::ckpt::StateDict other = sinsr::ckpt::read_state_dict(a);
  for (auto& [name, t] : other)
    if (t.is_floating_point()) t = t * -2.0 + 0.5;
  sinsr::host::save_weights(b, other, json::object());
  sinsr_test::HostRun r = sinsr_test::run_host("export -w " + a + " --interpolate " + b + " --alpha 0.25 -o " + out);
  ASSERT_EQ(r.code, 0) << r.output;
  std::map<std::string, at::Tensor> mine, theirs(other.begin(), other.end());
  for (auto& kv : sinsr::ckpt::read_state_dict(a)) mine.insert(kv);
  int floating = 0;
  for (auto& [name, t] : sinsr::ckpt::read_state_dict(out)) {
    if (!t.is_floating_point()) {
      EXPECT_TRUE(at::equal(t, mine.at(name))) << name;
      continue;
    }
    ++floating;
    EXPECT_TRUE(sinsr_test::all_close(t, 0.25 * mine.at(name) + 0.75 * theirs.at(name), 1e-6)) << name;
  }
  EXPECT_GT(floating, 10);
  r = sinsr_test::run_host("export -w " + a + " --interpolate " + sinsr_test::parity_file("vq_tiny.pth") +
                           " --alpha 0.5 -o " + out);
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.output, "not the same network")) << r.output;
  r = sinsr_test::run_host("export -w " + a + " --alpha 0.5 -o " + out);
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.output, "--interpolate")) << r.output;
}

// A file that stores its options, run as its network under other options, is refused naming the
// key (a network trained with a residual over bicubic and run without it paints a flat image).
TEST(WeightsInfo, OptionsThatContradictStoredOnesAreRefused) {
  const auto dir = sinsr_test::fresh_dir("weights_info_contradict");
  const std::string ema = (dir / "ema.pth").string();
  sinsr::train::Trainer(runtime(), tiny_distillation()).save_ema(ema);
  // The file names the network (no name given), the config on the line contradicts it.
  const json stored = weights_info(runtime(), SINSR_KIND_BACKBONE, ema).config;
  sinsr::host::PipelineOptions o = spelled_out(ema, sinsr_test::parity_file("vq_tiny.pth"));
  o.backbone.name.clear();
  o.backbone.config = stored;
  o.backbone.config["dropout"] = 0.25;
  try {
    sinsr::host::Pipeline p(runtime(), o);
    FAIL() << "weights ran under options they contradict";
  } catch (const sinsr::sdk::Error& e) {
    EXPECT_TRUE(contains(e.what(), ema + " was made with dropout=")) << e.what();
  }
  // The same options as stored are no contradiction; every part spelled out (-n, config, weights)
  // is the caller's own choice and is not second-guessed.
  sinsr::host::PipelineOptions same = spelled_out(ema, sinsr_test::parity_file("vq_tiny.pth"));
  same.backbone.name.clear();
  same.backbone.config = stored;
  EXPECT_NO_THROW(sinsr::host::Pipeline(runtime(), same));
  sinsr::host::PipelineOptions spelled = spelled_out(ema, sinsr_test::parity_file("vq_tiny.pth"));
  spelled.backbone.config = stored;
  spelled.backbone.config["dropout"] = 0.25;
  EXPECT_NO_THROW(sinsr::host::Pipeline(runtime(), spelled));
}

// A config with weights and no name: the file names the network, the config is used as given;
// the bytes equal the spelled-out line (-n unet_swin).
TEST(WeightsInfo, AConfigWithWeightsNeedsNoName) {
  const std::string unet = sinsr_test::parity_file("unet_tiny_official.pth");
  const std::string vq = sinsr_test::parity_file("vq_tiny_official.pth");
  sinsr::host::PipelineOptions o = spelled_out(unet, vq);
  o.backbone.name.clear();
  std::vector<std::string> described;
  at::Tensor got = upscale_with(o, &described);
  ASSERT_FALSE(described.empty());
  EXPECT_EQ(described[0], unet + ": unet_swin (named by the file; its config as given)");
  EXPECT_TRUE(at::equal(got, upscale_with(spelled_out(unet, vq))));
  // Codec weights of another codec than the pipeline runs: refused naming both.
  sinsr::host::PipelineOptions wrong = spelled_out(unet, vq);
  wrong.codec = {"", json::object(), ""};
  wrong.codec.name = "pixels_do_not_exist";
  wrong.codec.weights = vq;
  try {
    sinsr::host::Pipeline p(runtime(), wrong);
    FAIL() << "vq weights went to another codec";
  } catch (const sinsr::sdk::Error& e) {
    EXPECT_TRUE(contains(e.what(), "holds a 'vq_f4' codec")) << e.what();
  }
}

}  // namespace
