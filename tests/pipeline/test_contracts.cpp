// The contracts the header states and the host relies on: the step count (respace), the
// timestep kind of a sampler/backbone pair, the call options' CUDA stream and the host log,
// exercised with components that know nothing of ResShift.
#include "errors.hpp"
#include "host_run.hpp"

#include "pipeline/pipeline.hpp"
#include "train/trainer.hpp"

#if defined(SINSR_WITH_IMAGE_IO)
#include "io/image_io.hpp"
#endif

#if defined(SINSR_WITH_CUDA)
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

#include <filesystem>

namespace {

using sinsr_test::error_of;

using sinsr::host::json;
using sinsr::host::Pipeline;
using sinsr::host::PipelineOptions;
using sinsr::host::Runtime;
using sinsr::host::SamplerHandle;
using sinsr::sdk::Error;

const std::string kContractPlugin = SINSR_TEST_PLUGIN_DIR "/contract_components.so";

Runtime& runtime() {
  static Runtime* rt = [] {
    auto* r = new Runtime(2);
    r->load_dir(SINSR_PLUGIN_DIR);
    r->load_file(kContractPlugin);
    return r;
  }();
  return *rt;
}

PipelineOptions toy(const json& sampler_config, const json& net_config, int steps) {
  PipelineOptions o;
  o.backbone = {"toy_net", net_config, ""};
  o.explicit_keys.insert("codec");  // pixel space: a codec left unnamed is the installed default
  o.sampler = {"toy_chain", sampler_config, ""};
  o.steps = steps;
  o.chop_size = 0;
  o.pad_multiple = 8;
  return o;
}

// Runs an upscale and returns what the host log printed (the toy sampler reports its calls).
std::string upscale_log(const PipelineOptions& o) {
  Pipeline p(runtime(), o);
  testing::internal::CaptureStderr();
  at::Tensor sr = p.upscale(at::rand({1, 3, 8, 12}));
  std::string log = testing::internal::GetCapturedStderr();
  EXPECT_EQ(sr.sizes(), (at::IntArrayRef{1, 3, 32, 48}));
  return log;
}

TEST(SamplerContract, ASamplerWithoutResShiftKeysRespacesToTheStepCount) {
  // The host's log carries the plugin's name as the source (sdk::log -> host->log).
  EXPECT_NE(upscale_log(toy(json::object(), json::object(), 3))
                .find("[info] contract_components: toy_chain: 3 denoise calls"),
            std::string::npos);
  EXPECT_NE(upscale_log(toy(json::object(), json::object(), 0)).find("toy_chain: 8 denoise calls"), std::string::npos);
  SamplerHandle s(runtime().find(SINSR_KIND_SAMPLER, "toy_chain"), json::object(), 3);
  EXPECT_EQ(s.num_steps(), 3);
  EXPECT_TRUE(s.schedule("timestep_map").equal(at::tensor({0, 4, 7}, at::kLong)));
}

TEST(SamplerContract, ResShiftRespacesLikeItsOwnKey) {
  for (const char* name : {"deterministic", "stochastic"}) {
    SamplerHandle by_abi(runtime().find(SINSR_KIND_SAMPLER, name), json::object(), 4);
    SamplerHandle by_key(runtime().find(SINSR_KIND_SAMPLER, name), {{"sample_steps", 4}});
    EXPECT_EQ(by_abi.num_steps(), 4);
    for (const char* key : {"timestep_map", "sqrt_etas"})
      EXPECT_TRUE(by_abi.schedule(key).equal(by_key.schedule(key))) << name << " " << key;
  }
  std::string msg =
      error_of([] { SamplerHandle(runtime().find(SINSR_KIND_SAMPLER, "deterministic"), json::object(), 99); });
  EXPECT_NE(msg.find("deterministic"), std::string::npos) << msg;
  EXPECT_NE(msg.find("99"), std::string::npos) << msg;
}

TEST(SamplerContract, ASamplerThatCannotRespaceIsRefusedClearly) {
  auto c = runtime().find(SINSR_KIND_SAMPLER, "toy_chain");
  try {
    SamplerHandle s(c, {{"fixed", true}}, 2);
    FAIL() << "respaced a fixed sampler";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), SINSR_ERR_UNSUPPORTED);
    EXPECT_NE(std::string(e.what()).find("sampler 'toy_chain' cannot respace to 2 steps"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(SamplerHandle(c, {{"fixed", true}}).num_steps(), 8);  // its own count still works
  // The pipeline refuses it at assembly, before running anything.
  std::string msg = error_of([] { Pipeline(runtime(), toy({{"fixed", true}}, json::object(), 2)); });
  EXPECT_NE(msg.find("cannot respace"), std::string::npos) << msg;
}

TEST(SamplerContract, AVersionOneTableHasNoRespaceAndPassesIndices) {
  // The same component seen through a 1.0-sized function table.
  auto c = runtime().find(SINSR_KIND_SAMPLER, "toy_chain");
  static sinsr_sampler_vtable v10;
  v10 = *static_cast<const sinsr_sampler_vtable*>(c->desc->vtable);
  v10.struct_size = offsetof(sinsr_sampler_vtable, respace);
  static sinsr_component desc;
  desc = *c->desc;
  desc.vtable = &v10;
  auto old = std::make_shared<sinsr::host::Component>(*c);
  old->desc = &desc;
  std::string msg = error_of([&] { SamplerHandle(old, json::object(), 2); });
  EXPECT_NE(msg.find("has no respace call"), std::string::npos) << msg;
  EXPECT_NE(msg.find("own 8 steps"), std::string::npos) << msg;
  // timestep_kind is beyond the table too: the 1.0 meaning, even though the instance would say otherwise.
  SamplerHandle s(old, {{"timesteps", "noise_level"}});
  EXPECT_EQ(s.timestep_kind().kind, SINSR_TIMESTEP_INDEX);
}

TEST(Timesteps, AMismatchedPairIsRefusedNamingBoth) {
  const json noise = {{"timesteps", "noise_level"}, {"unit", "sigma"}};
  // A noise-level network behind ResShift (indices).
  auto o = toy(json::object(), noise, 0);
  o.sampler = {"deterministic", json::object(), ""};
  std::string msg = error_of([&] { Pipeline(runtime(), o); });
  EXPECT_NE(msg.find("sampler 'deterministic' passes int64 step indices"), std::string::npos) << msg;
  EXPECT_NE(msg.find("backbone 'toy_net' takes noise levels in 'sigma'"), std::string::npos) << msg;
  // Same kind, other unit.
  msg = error_of([&] { Pipeline(runtime(), toy({{"timesteps", "noise_level"}, {"unit", "log_snr"}}, noise, 0)); });
  EXPECT_NE(msg.find("'toy_chain' passes noise levels in 'log_snr'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'toy_net' takes noise levels in 'sigma'"), std::string::npos) << msg;
  // A pair that agrees runs, and the network receives what it declared (it throws otherwise).
  EXPECT_NE(upscale_log(toy(noise, noise, 2)).find("2 denoise calls"), std::string::npos);
  EXPECT_NE(upscale_log(toy(json::object(), json::object(), 2)).find("2 denoise calls"), std::string::npos);
}

TEST(Timesteps, TheTrainerRefusesAMismatchedPairToo) {
  sinsr::train::TrainerOptions o;
  o.mode = sinsr::train::TrainerOptions::Mode::Teacher;
  o.backbone = {"toy_net", {{"timesteps", "noise_level"}}, ""};
  o.sampler = {"deterministic", json::object(), ""};
  std::string msg = error_of([&] { sinsr::train::Trainer(runtime(), o); });
  EXPECT_NE(msg.find("'deterministic'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'toy_net'"), std::string::npos) << msg;
  // The sampler makes the training examples (ABI 1.2), so a matching noise-level pair trains.
  o.sampler = {"toy_chain", {{"timesteps", "noise_level"}}, ""};
  EXPECT_NO_THROW(sinsr::train::Trainer(runtime(), o));
}

// ABI 1.5: distillation's data comes from the sampler that owns the trajectory. A sampler that
// does not provide it (toy_chain does not override distillation_example, so the SDK leaves the
// slot empty) is refused by name before any compute; ResShift's samplers provide it.
TEST(Distillation, ASamplerWithoutTheCallIsRefusedBeforeCompute) {
  sinsr::train::TrainerOptions o;
  o.mode = sinsr::train::TrainerOptions::Mode::Distill;
  o.backbone = {"toy_net", json::object(), "none"};
  o.teacher = {"toy_net", json::object(), "none"};
  o.sampler = {"toy_chain", json::object(), ""};
  std::string msg = error_of([&] { sinsr::train::Trainer(runtime(), o); });
  EXPECT_NE(msg.find("sampler 'toy_chain' cannot distil (it has no distillation_example call, ABI 1.5)"),
            std::string::npos)
      << msg;
  for (const char* name : {"deterministic", "stochastic", "single-step"})
    EXPECT_TRUE(SamplerHandle(runtime().find(SINSR_KIND_SAMPLER, name), json::object()).can_distill()) << name;
  EXPECT_FALSE(SamplerHandle(runtime().find(SINSR_KIND_SAMPLER, "toy_chain"), json::object()).can_distill());
}

TEST(CallOptions, CpuTensorsGetNoStreamCudaTensorsTheCurrentOne) {
  auto cpu = sinsr::host::call_options_for(at::zeros({2}));
  EXPECT_EQ(cpu.struct_size, sizeof(sinsr_call_options));
  EXPECT_EQ(cpu.cuda_stream, nullptr);
#if defined(SINSR_WITH_CUDA)
  if (!at::hasCUDA()) GTEST_SKIP() << "CUDA build without a GPU";
  auto stream = c10::cuda::getStreamFromPool();
  c10::cuda::CUDAStreamGuard guard(stream);
  auto cuda = sinsr::host::call_options_for(at::zeros({2}, at::kCUDA));
  EXPECT_EQ(cuda.cuda_stream, static_cast<void*>(stream.stream()));
#else
  GTEST_SKIP() << "built without CUDA: the stream is compiled out";
#endif
}

#if defined(SINSR_WITH_IMAGE_IO)
// --steps on the command line reaches a sampler that knows only the ABI.
TEST(SamplerContract, StepsFlagRespacesAPluginSampler) {
  auto dir = sinsr_test::fresh_dir("contract_cli");
  sinsr::io::write_image((dir / "lr.png").string(), at::rand({3, 8, 12}));
  auto r = sinsr_test::run_host("infer -q --plugin " + kContractPlugin +
                                " --backbone toy_net --codec none --sampler toy_chain --steps 3 --pad-multiple 8"
                                " --chop-size 0 -i " +
                                (dir / "lr.png").string() + " -o " + (dir / "sr.png").string());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("toy_chain: 3 denoise calls"), std::string::npos) << r.output;
  EXPECT_EQ(sinsr::io::read_image((dir / "sr.png").string()).pixels.sizes(), (at::IntArrayRef{3, 32, 48}));
  auto fixed = sinsr_test::run_host("infer -q --plugin " + kContractPlugin +
                                    " --backbone toy_net --codec none --sampler toy_chain --sampler-config "
                                    "'{\"fixed\": true}' --steps 3 -i " +
                                    (dir / "lr.png").string() + " -o " + (dir / "sr2.png").string());
  EXPECT_EQ(fixed.code, 1) << fixed.output;
  EXPECT_NE(fixed.output.find("cannot respace to 3 steps"), std::string::npos) << fixed.output;
}
#endif

}  // namespace
