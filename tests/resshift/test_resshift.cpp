// Schedules and samplers against the official code: schedule.pth and sampler_cases.pth, with
// a denoiser that replays the recorded network outputs (so no network is involved).
#include "parity.hpp"

#include "runtime.hpp"
#include "schedule.hpp"

namespace {

using namespace sinsr::resshift;

Schedule official() { return Schedule(ScheduleOptions::from_json(nlohmann::json::object())); }

TEST(Schedule, MatchesTheOfficialArrays) {
  auto ref = sinsr_test::load("schedule.pth");
  Schedule s = official();
  EXPECT_EQ(s.num_steps(), sinsr_test::at_key(ref, "num_timesteps").toInt());
  EXPECT_TRUE(s.get("timestep_map").equal(sinsr_test::tensor(ref, "timestep_map")));
  for (const char* key : {"sqrt_etas", "etas", "etas_prev", "alpha", "posterior_mean_coef1", "posterior_mean_coef2",
                          "posterior_variance", "posterior_variance_clipped", "posterior_log_variance_clipped",
                          "ddim_coef1", "ddim_coef2", "k_f64", "m_f64", "j_f64", "input_std_f64"}) {
    at::Tensor want = sinsr_test::tensor(ref, key);
    EXPECT_TRUE(sinsr_test::all_close(s.get(key), want, 1e-15, 1e-12)) << key;
  }
  for (const char* key : {"k_f32", "m_f32", "j_f32", "input_std_f32", "input_scale_f32", "prior_std_f32", "posterior_std_f32"}) {
    at::Tensor want = sinsr_test::tensor(ref, key).to(at::kFloat);
    at::Tensor ulp = (want.abs() * std::numeric_limits<float>::epsilon()).clamp_min(1e-30);
    EXPECT_TRUE((s.get(key) - want).abs().le(ulp).all().item<bool>()) << key;
  }
}

struct Replay {
  at::Tensor model_in, outputs;  // recorded per step
  int64_t calls = 0;
  at::Tensor operator()(const at::Tensor& x_in, const at::Tensor& t) {
    EXPECT_TRUE(sinsr_test::all_close(x_in, model_in[calls], 5e-4)) << "model input of call " << calls;
    EXPECT_EQ(t.item<int64_t>(), 14 - calls);
    return outputs[calls++];
  }
};

void run_case(const std::string& key, Rule rule, bool clip, const std::string& out_key) {
  auto cases = sinsr_test::load("sampler_cases.pth");
  auto c = sinsr_test::at_key(cases, key);
  auto base = sinsr_test::at_key(cases, "det");
  auto opts = ScheduleOptions::from_json({{"clip_denoised", clip}});
  Schedule s(opts);
  at::Tensor y = sinsr_test::tensor(cases, "y");
  at::Tensor noise_T = sinsr_test::tensor(cases, "noise_T");
  at::Tensor x_T = s.prior(y, noise_T);
  EXPECT_TRUE(sinsr_test::all_close(x_T, sinsr_test::tensor(base, "x_T"), 1e-6));
  // det_clip records clamped predictions; the network's raw output is the unclamped det one
  // only along the det trajectory, so replay the recorded (clamped) values: clamping is idempotent.
  at::Tensor in = sinsr_test::tensor(clip ? base : c, "model_in");
  Replay replay{in, sinsr_test::tensor(c, out_key)};
  if (clip) replay.model_in = at::Tensor();
  int64_t draws = 0;
  at::Tensor step_noise = key == "stochastic" ? sinsr_test::tensor(c, "step_noise") : at::Tensor();
  Denoise denoise = [&](const at::Tensor& x, const at::Tensor& t) {
    if (!replay.model_in.defined()) return replay.outputs[replay.calls++];
    return replay(x, t);
  };
  Noise noise = [&](const at::Tensor&) { return step_noise[draws++]; };
  at::Tensor final = sample(s, rule, y, x_T, denoise, noise, {});
  EXPECT_TRUE(sinsr_test::all_close(final, sinsr_test::tensor(c, "final"), 5e-4)) << key;
  if (key == "stochastic") EXPECT_EQ(draws, 15);
}

TEST(Samplers, DeterministicTrajectory) { run_case("det", Rule::Deterministic, false, "model_out"); }
TEST(Samplers, DeterministicClipped) { run_case("det_clip", Rule::Deterministic, true, "pred_x0"); }
TEST(Samplers, StochasticWithReplayedNoise) { run_case("stochastic", Rule::Stochastic, false, "pred_x0"); }

TEST(Samplers, SingleStepCallsOnceAtTheLastStep) {
  auto cases = sinsr_test::load("sampler_cases.pth");
  auto c = sinsr_test::at_key(cases, "onestep");
  Schedule s = official();
  at::Tensor x_T = s.prior(sinsr_test::tensor(cases, "y"), sinsr_test::tensor(cases, "noise_T"));
  int calls = 0;
  at::Tensor out = sample(s, Rule::SingleStep, sinsr_test::tensor(cases, "y"), x_T,
                          [&](const at::Tensor& x, const at::Tensor& t) {
                            ++calls;
                            EXPECT_EQ(t.item<int64_t>(), sinsr_test::tensor(c, "t").item<int64_t>());
                            EXPECT_TRUE(sinsr_test::all_close(x, sinsr_test::tensor(c, "model_in"), 1e-6));
                            return sinsr_test::tensor(c, "out");
                          },
                          {}, {});
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(out.equal(sinsr_test::tensor(c, "out")));
}

TEST(Samplers, OneDeterministicStepIsTheSingleStepSampler) {
  Schedule one(ScheduleOptions::from_json({{"sample_steps", 1}}));
  Schedule full = official();
  EXPECT_EQ(one.num_steps(), 1);
  EXPECT_EQ(one.get("timestep_map")[0].item<int64_t>(), 14);
  at::Tensor y = at::randn({1, 3, 8, 8}), n = at::randn({1, 3, 8, 8});
  EXPECT_TRUE(one.prior(y, n).equal(full.prior(y, n)));
  auto net = [](const at::Tensor& x, const at::Tensor& t) { return x.tanh() * 0.5 + t.to(at::kFloat).view({-1, 1, 1, 1}) * 0.01; };
  at::Tensor a = sample(one, Rule::Deterministic, y, one.prior(y, n), net, {}, {});
  at::Tensor b = sample(full, Rule::SingleStep, y, full.prior(y, n), net, {}, {});
  EXPECT_TRUE(sinsr_test::all_close(a, b, 1e-6));
  // Official respacing keeps int(T/S*x): 5 of 15 -> 0,3,6,9,12.
  Schedule r(ScheduleOptions::from_json({{"timestep_respacing", 5}}));
  EXPECT_TRUE(r.get("timestep_map").equal(at::tensor({0, 3, 6, 9, 12}, at::kLong)));
}

TEST(Samplers, ConfigErrorsAreClear) {
  try {
    Schedule s(ScheduleOptions::from_json({{"schedule_name", "cosine"}}));
    FAIL();
  } catch (const sinsr::sdk::Error& e) {
    EXPECT_NE(std::string(e.what()).find("cosine"), std::string::npos);
  }
  EXPECT_THROW(ScheduleOptions::from_json({{"sample_steps", 16}}), sinsr::sdk::Error);
  EXPECT_THROW(ScheduleOptions::from_json({{"predict_type", "epsilon"}}), sinsr::sdk::Error);
}

TEST(Samplers, ThroughTheAbiEqualsDirect) {
  sinsr::host::Runtime rt(1);
  rt.load_dir(SINSR_PLUGIN_DIR);
  sinsr::host::SamplerHandle h(rt.find(SINSR_KIND_SAMPLER, "stochastic"), nlohmann::json::object());
  Schedule s = official();
  at::manual_seed(0);
  at::Tensor y = at::randn({2, 3, 8, 8}), x_T = at::randn({2, 3, 8, 8});
  at::Tensor draws = at::randn({15, 2, 3, 8, 8});
  auto net = [](const at::Tensor& x, const at::Tensor&) { return x.sin(); };
  int64_t k1 = 0, k2 = 0;
  sinsr::sdk::SampleCallbacks cb;
  cb.denoise = net;
  cb.noise = [&](const at::Tensor&) { return draws[k1++]; };
  at::Tensor via_abi = h.sample(y, x_T, cb);
  at::Tensor direct = sample(s, Rule::Stochastic, y, x_T, net, [&](const at::Tensor&) { return draws[k2++]; }, {});
  EXPECT_TRUE(via_abi.equal(direct));
  EXPECT_EQ(h.num_steps(), 15);
  EXPECT_TRUE(h.schedule("k_f32").equal(s.get("k_f32")));
  at::Tensor t = at::tensor({3, 14}, at::kLong);
  EXPECT_TRUE(h.q_sample(y, x_T, t, y).equal(s.q_sample(y, x_T, t, y)));
}

}  // namespace
