// Schedules and samplers against the official code (schedule.pth, sampler_cases.pth), with a
// denoiser that checks what it is given and replays the recorded network outputs.
#include "parity.hpp"

#include "runtime/runtime.hpp"
#include "samplers.hpp"

#include <cmath>
#include <limits>

namespace {

using namespace sinsr::resshift;
using json = nlohmann::json;

// The schedule the vectors were made with: T and kappa from schedule.pth, the rest SinSR.yaml.
json parity_params() {
  auto ref = sinsr_test::load("schedule.pth");
  return {{"steps", sinsr_test::at_key(ref, "num_timesteps").toInt()},
          {"kappa", sinsr_test::at_key(ref, "kappa").toDouble()}};
}
Schedule parity_schedule(json extra = json::object()) {
  json p = parity_params();
  p.update(extra);
  return Schedule(ScheduleOptions::from_json(p));
}

::testing::AssertionResult within_one_ulp(const at::Tensor& got, const at::Tensor& want) {
  if (got.scalar_type() != at::kFloat) return ::testing::AssertionFailure() << "dtype " << got.scalar_type();
  if (got.sizes() != want.sizes()) return ::testing::AssertionFailure() << got.sizes() << " vs " << want.sizes();
  auto g = got.contiguous(), w = want.to(at::kFloat).contiguous();
  for (int64_t i = 0; i < g.numel(); ++i) {
    float a = g.data_ptr<float>()[i], b = w.data_ptr<float>()[i];
    if (a != b && a != std::nextafter(b, INFINITY) && a != std::nextafter(b, -INFINITY))
      return ::testing::AssertionFailure() << "entry " << i << ": " << a << " vs " << b;
  }
  return ::testing::AssertionSuccess();
}

TEST(Schedule, EveryKeyOfScheduleFile) {
  auto ref = sinsr_test::load("schedule.pth");
  Schedule s = parity_schedule();
  int arrays = 0;
  for (const auto& e : ref.toGenericDict()) {
    const std::string key = e.key().toStringRef();
    if (key == "num_timesteps") {
      EXPECT_EQ(s.num_steps(), e.value().toInt());
    } else if (key == "kappa") {
      EXPECT_EQ(s.options().kappa, e.value().toDouble());
    } else {
      ASSERT_TRUE(e.value().isTensor()) << key;
      const at::Tensor want = e.value().toTensor();
      const at::Tensor got = s.get(key);
      ++arrays;
      if (!at::isFloatingType(want.scalar_type())) {
        EXPECT_TRUE(got.equal(want)) << key;
      } else if (key.size() > 4 && key.compare(key.size() - 4, 4, "_f32") == 0) {
        EXPECT_TRUE(within_one_ulp(got, want)) << key;
      } else {
        EXPECT_EQ(got.scalar_type(), at::kDouble) << key;
        EXPECT_TRUE(sinsr_test::all_close(got, want.to(at::kDouble), 0, 1e-12)) << key;
      }
    }
  }
  EXPECT_GE(arrays, 20);
}

TEST(Schedule, RespacingOfficialAndEndpointKeeping) {
  Schedule full = parity_schedule();
  const int64_t T = full.num_steps();
  EXPECT_TRUE(full.get("timestep_map").equal(at::arange(T, at::kLong)));
  EXPECT_TRUE(parity_schedule({{"timestep_respacing", T}}).get("timestep_map").equal(at::arange(T, at::kLong)));

  // Official: {int(T/S * x)}; for T = 15, S = 5 that is 0,3,6,9,12 (the last step is dropped).
  Schedule off = parity_schedule({{"timestep_respacing", 5}});
  std::vector<int64_t> want;
  for (int x = 0; x < 5; ++x) want.push_back(int64_t(double(T) / 5.0 * x));
  EXPECT_TRUE(off.get("timestep_map").equal(at::tensor(want, at::kLong)));

  // sample_steps keeps both ends and rebuilds the chain from the kept etas.
  for (int S : {1, 2, 4, int(T)}) {
    Schedule r = parity_schedule({{"sample_steps", S}});
    at::Tensor map = r.get("timestep_map");
    ASSERT_EQ(map.numel(), S);
    EXPECT_EQ(map[S - 1].item<int64_t>(), T - 1);
    if (S > 1) EXPECT_EQ(map[0].item<int64_t>(), 0);
    EXPECT_TRUE(r.get("sqrt_etas").equal(full.get("sqrt_etas").index_select(0, map)));
    EXPECT_TRUE(r.get("etas_prev").slice(0, 1).equal(r.get("etas").slice(0, 0, S - 1)));
    EXPECT_EQ(r.get("etas_prev")[0].item<double>(), 0.0);
  }
  EXPECT_TRUE(parity_schedule({{"sample_steps", 4}})
                  .get("timestep_map")
                  .equal(at::tensor(std::vector<int64_t>{0, int64_t(std::llround((T - 1) / 3.0)),
                                                         int64_t(std::llround(2 * (T - 1) / 3.0)), T - 1},
                                    at::kLong)));
}

TEST(Schedule, QSampleAndPredictTypes) {
  at::manual_seed(3);
  at::Tensor x0 = at::randn({3, 3, 8, 8}), y = at::randn({3, 3, 8, 8}), eps = at::randn({3, 3, 8, 8});
  Schedule s = parity_schedule();
  const int64_t T = s.num_steps();
  at::Tensor t = at::tensor({int64_t(0), T / 2, T - 1}, at::kLong);
  at::Tensor xt = s.q_sample(x0, y, t, eps);
  at::Tensor etas = s.get("etas").index_select(0, t).view({-1, 1, 1, 1});
  at::Tensor se = s.get("sqrt_etas").index_select(0, t).view({-1, 1, 1, 1});
  at::Tensor want = x0.to(at::kDouble) + etas * (y - x0).to(at::kDouble) + s.options().kappa * se * eps.to(at::kDouble);
  EXPECT_TRUE(sinsr_test::all_close(xt, want, 1e-5));
  EXPECT_TRUE(sinsr_test::all_close(
      s.scale_input(xt, t) * s.get("input_std_f64").index_select(0, t).view({-1, 1, 1, 1}), xt.to(at::kDouble), 1e-5));

  // Each predict_type turns its own target back into x0.
  const double kappa = s.options().kappa;
  struct P {
    const char* name;
    at::Tensor out;
  };
  for (const P& p : {P{"xstart", x0}, P{"residual", y - x0}, P{"epsilon", eps},
                     P{"epsilon_scale", eps * se.to(at::kFloat) * kappa}}) {
    Schedule sp = parity_schedule({{"predict_type", p.name}});
    EXPECT_TRUE(sinsr_test::all_close(sp.pred_xstart(p.out, xt, y, t), x0, 5e-4)) << p.name;
  }
  // latent_flag false normalises by kappa*sqrt_eta*3 + 1; normalize_input false not at all.
  Schedule pixel = parity_schedule({{"latent_flag", false}});
  EXPECT_TRUE(sinsr_test::all_close(pixel.get("input_std_f32"), pixel.get("sqrt_etas") * kappa * 3 + 1, 1e-6));
  EXPECT_TRUE(parity_schedule({{"normalize_input", false}}).scale_input(xt, t).equal(xt));
  Schedule clip = parity_schedule({{"clip_denoised", true}});
  EXPECT_LE(clip.pred_xstart(x0 * 5, xt, y, t).abs().max().item<float>(), 1.0f);
}

// The recorded trajectories: a denoiser that checks x_in and t at every call and returns the
// recorded output for that step.
struct Trajectory {
  at::Tensor y, x_T, xs, t_seq, outputs, final, step_noise;
  int64_t steps() const { return xs.size(0); }
};

Trajectory load_case(const std::string& key, const std::string& out_key) {
  auto cases = sinsr_test::load("sampler_cases.pth");
  auto c = sinsr_test::at_key(cases, key);
  Trajectory tr;
  tr.y = sinsr_test::tensor(cases, "y");
  // det_clip records no x_T of its own: every case starts from the same prior sample.
  tr.x_T = sinsr_test::tensor(c.toGenericDict().contains("x_T") ? c : sinsr_test::at_key(cases, "det"), "x_T");
  tr.xs = sinsr_test::tensor(c, "xs");
  tr.t_seq = sinsr_test::tensor(c, "t_seq");
  tr.outputs = sinsr_test::tensor(c, out_key);
  tr.final = sinsr_test::tensor(c, "final");
  if (key == "stochastic") tr.step_noise = sinsr_test::tensor(c, "step_noise");
  return tr;
}

void replay(const std::string& key, Rule rule, bool clip, const std::string& out_key) {
  auto cases = sinsr_test::load("sampler_cases.pth");
  Trajectory tr = load_case(key, out_key);
  Schedule s = parity_schedule({{"clip_denoised", clip}});
  ASSERT_EQ(s.num_steps(), tr.steps());
  at::Tensor x_T = s.prior(tr.y, sinsr_test::tensor(cases, "noise_T"));
  EXPECT_TRUE(sinsr_test::all_close(x_T, tr.x_T, 1e-6));
  const at::Tensor input_std = s.get("input_std_f32");
  int64_t calls = 0, draws = 0, clamped = 0;
  Denoise denoise = [&](const at::Tensor& x_in, const at::Tensor& t) -> at::Tensor {
    EXPECT_LT(calls, tr.steps());
    if (calls >= tr.steps()) return x_in;
    EXPECT_EQ(t.scalar_type(), at::kLong);
    EXPECT_TRUE(t.equal(tr.t_seq[calls].reshape({-1}))) << "timestep of call " << calls;
    const at::Tensor x_t = calls == 0 ? tr.x_T : tr.xs[calls - 1];
    const int64_t ti = tr.t_seq[calls].reshape({-1})[0].item<int64_t>();
    EXPECT_TRUE(sinsr_test::all_close(x_in, x_t / input_std[ti], 5e-4)) << key << ": model input of call " << calls;
    at::Tensor out = tr.outputs[calls++];
    if (!clip) return out;
    // Recorded predictions are clamped; push the clamped entries out so the sampler must clamp.
    at::Tensor at_bound = out.abs().eq(1);
    clamped += at_bound.sum().item<int64_t>();
    return at::where(at_bound, out * 3, out);
  };
  Noise noise = [&](const at::Tensor& like) {
    EXPECT_TRUE(tr.step_noise.defined()) << "noise drawn by a deterministic rule";
    return tr.step_noise.defined() ? tr.step_noise[draws++] : at::zeros_like(like);
  };
  std::vector<int> seen;
  at::Tensor final = sample(s, rule, tr.y, x_T, denoise, noise, [&](int step, int total) {
    EXPECT_EQ(total, tr.steps());
    seen.push_back(step);
    return true;
  });
  EXPECT_EQ(calls, tr.steps());
  EXPECT_EQ(int64_t(seen.size()), tr.steps());
  EXPECT_EQ(seen.back(), tr.steps());
  if (clip) EXPECT_GT(clamped, 0) << "the case exercises no clamping";
  if (rule == Rule::Stochastic) EXPECT_EQ(draws, tr.steps());  // t = 0 draws too, as the official loop
  EXPECT_TRUE(sinsr_test::all_close(final, tr.xs[tr.steps() - 1], 5e-4)) << key;
  EXPECT_TRUE(sinsr_test::all_close(final, tr.final, 5e-4)) << key;
}

TEST(Samplers, DeterministicTrajectory) { replay("det", Rule::Deterministic, false, "model_out"); }
TEST(Samplers, DeterministicClipped) { replay("det_clip", Rule::Deterministic, true, "pred_x0"); }
TEST(Samplers, StochasticWithReplayedNoise) { replay("stochastic", Rule::Stochastic, false, "pred_x0"); }

TEST(Samplers, OneStepCaseByEveryRule) {
  auto cases = sinsr_test::load("sampler_cases.pth");
  auto c = sinsr_test::at_key(cases, "onestep");
  const at::Tensor y = sinsr_test::tensor(cases, "y"), want = sinsr_test::tensor(c, "out");
  const at::Tensor t_want = sinsr_test::tensor(c, "t").reshape({-1});
  struct R {
    Rule rule;
    json extra;
  };
  for (const R& r : {R{Rule::SingleStep, json::object()}, R{Rule::Deterministic, {{"sample_steps", 1}}},
                     R{Rule::Stochastic, {{"sample_steps", 1}}}}) {
    Schedule s = parity_schedule(r.extra);
    at::Tensor x_T = s.prior(y, sinsr_test::tensor(cases, "noise_T"));
    int calls = 0;
    at::Tensor out = sample(
        s, r.rule, y, x_T,
        [&](const at::Tensor& x, const at::Tensor& t) {
          ++calls;
          EXPECT_TRUE(t.equal(t_want));
          EXPECT_TRUE(sinsr_test::all_close(x, sinsr_test::tensor(c, "model_in"), 1e-6));
          return want;
        },
        [](const at::Tensor& like) { return at::randn_like(like); }, {});
    EXPECT_EQ(calls, 1);
    EXPECT_TRUE(out.equal(want)) << int(r.rule);
  }
}

at::Tensor toy_net(const at::Tensor& x, const at::Tensor& t) {
  return x.tanh() * 0.5 + t.to(at::kFloat).view({-1, 1, 1, 1}) * 0.01;
}

TEST(Samplers, OneDeterministicStepIsTheSingleStepSampler) {
  Schedule one = parity_schedule({{"sample_steps", 1}});
  Schedule full = parity_schedule();
  at::manual_seed(1);
  at::Tensor y = at::randn({2, 3, 8, 8}), n = at::randn({2, 3, 8, 8});
  EXPECT_TRUE(one.prior(y, n).equal(full.prior(y, n)));
  at::Tensor a = sample(one, Rule::Deterministic, y, one.prior(y, n), toy_net, {}, {});
  at::Tensor b = sample(full, Rule::SingleStep, y, full.prior(y, n), toy_net, {}, {});
  EXPECT_TRUE(a.equal(b));
  // A 3-step deterministic run calls the network at the three kept steps, last first.
  Schedule three = parity_schedule({{"sample_steps", 3}});
  std::vector<int64_t> ts;
  sample(three, Rule::Deterministic, y, three.prior(y, n),
         [&](const at::Tensor& x, const at::Tensor& t) {
           ts.push_back(t[0].item<int64_t>());
           return toy_net(x, t);
         },
         {}, {});
  const int64_t T = full.num_steps();
  EXPECT_EQ(ts, (std::vector<int64_t>{T - 1, std::llround((T - 1) / 2.0), 0}));
}

TEST(Samplers, CancellationAndBadCallbacks) {
  Schedule s = parity_schedule();
  at::Tensor y = at::randn({1, 3, 8, 8});
  int last = 0;
  try {
    sample(s, Rule::Deterministic, y, y, toy_net, {}, [&](int step, int) {
      last = step;
      return step < 3;
    });
    FAIL() << "not cancelled";
  } catch (const sinsr::sdk::Error& e) {
    EXPECT_EQ(e.code(), SINSR_ERR_CANCELLED);
    EXPECT_EQ(last, 3);
  }
  try {
    sample(s, Rule::Deterministic, y, y, [](const at::Tensor& x, const at::Tensor&) { return x.slice(2, 0, 4); }, {},
           {});
    FAIL();
  } catch (const sinsr::sdk::Error& e) {
    EXPECT_EQ(e.code(), SINSR_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find("denoise"), std::string::npos) << e.what();
  }
  EXPECT_THROW(sample(s, Rule::Stochastic, y, y, toy_net, {}, {}), sinsr::sdk::Error);
  EXPECT_THROW(s.q_sample(y, y, at::tensor({s.num_steps()}, at::kLong), y), sinsr::sdk::Error);
  EXPECT_THROW(s.scale_input(y, at::tensor({0.5})), sinsr::sdk::Error);
}

std::string schedule_error(const json& params) {
  try {
    Schedule s(ScheduleOptions::from_json(params));
  } catch (const sinsr::sdk::Error& e) {
    return e.what();
  }
  return "";
}

TEST(Samplers, ConfigErrorsAreClear) {
  auto has = [](const std::string& msg, const std::string& part) { return msg.find(part) != std::string::npos; };
  std::string m = schedule_error({{"schedule_name", "cosine"}});
  EXPECT_TRUE(has(m, "cosine") && has(m, "schedule_name")) << m;
  m = schedule_error({{"sample_steps", 16}});
  EXPECT_TRUE(has(m, "16") && has(m, "15")) << m;
  m = schedule_error({{"timestep_respacing", 30}});
  EXPECT_TRUE(has(m, "timestep_respacing") && has(m, "30")) << m;
  m = schedule_error({{"kappa", "two"}});
  EXPECT_TRUE(has(m, "diffusion.params.kappa")) << m;
  m = schedule_error({{"sample_step", 3}});
  EXPECT_TRUE(has(m, "sample_step'")) << m;
  m = schedule_error({{"predict_type", "velocity"}});
  EXPECT_TRUE(has(m, "velocity")) << m;
  m = schedule_error({{"etas_end", 1.5}});
  EXPECT_TRUE(has(m, "etas_end")) << m;
  m = schedule_error({{"schedule_name", "ldm"}});
  EXPECT_TRUE(has(m, "ldm") && has(m, "sqrt_etas")) << m;
  // Accepted: the whole official diffusion block, and an explicit ldm table.
  EXPECT_EQ(schedule_error({{"sf", 4},
                            {"schedule_name", "exponential"},
                            {"schedule_kwargs", {{"power", 0.3}}},
                            {"etas_end", 0.99},
                            {"steps", 15},
                            {"min_noise_level", 0.04},
                            {"kappa", 2.0},
                            {"weighted_mse", false},
                            {"predict_type", "xstart"},
                            {"timestep_respacing", nullptr},
                            {"scale_factor", 1.0},
                            {"normalize_input", true},
                            {"latent_flag", true}}),
            "");
  Schedule ldm(ScheduleOptions::from_json(
      {{"schedule_name", "ldm"}, {"steps", 3}, {"schedule_kwargs", {{"sqrt_etas", {0.1, 0.5, 0.9}}}}}));
  EXPECT_TRUE(ldm.get("sqrt_etas").equal(at::tensor({0.1, 0.5, 0.9}, at::kDouble)));
}

sinsr::host::Runtime& runtime() {
  static sinsr::host::Runtime* rt = [] {
    auto* r = new sinsr::host::Runtime(1);
    r->load_dir(SINSR_PLUGIN_DIR);
    return r;
  }();
  return *rt;
}

TEST(Abi, DeterministicCaseEqualsDirectCall) {
  auto cases = sinsr_test::load("sampler_cases.pth");
  Trajectory tr = load_case("det", "model_out");
  sinsr::host::SamplerHandle h(runtime().find(SINSR_KIND_SAMPLER, "deterministic"), parity_params());
  Schedule s = parity_schedule();
  EXPECT_EQ(h.num_steps(), tr.steps());
  at::Tensor noise_T = sinsr_test::tensor(cases, "noise_T");
  at::Tensor x_T = h.prior(tr.y, noise_T);
  EXPECT_TRUE(x_T.equal(s.prior(tr.y, noise_T)));
  int64_t k1 = 0, k2 = 0;
  int progressed = 0;
  sinsr::sdk::SampleCallbacks cb;
  cb.denoise = [&](const at::Tensor&, const at::Tensor&) { return tr.outputs[k1++]; };
  cb.progress = [&](int, int) {
    ++progressed;
    return true;
  };
  at::Tensor via_abi = h.sample(tr.y, x_T, cb);
  at::Tensor direct = sample(s, Rule::Deterministic, tr.y, x_T,
                             [&](const at::Tensor&, const at::Tensor&) { return tr.outputs[k2++]; }, {}, {});
  EXPECT_TRUE(via_abi.equal(direct));
  EXPECT_TRUE(sinsr_test::all_close(via_abi, tr.final, 5e-4));
  EXPECT_EQ(progressed, tr.steps());
}

TEST(Abi, StochasticScheduleAndHelpersEqualDirect) {
  sinsr::host::SamplerHandle h(runtime().find(SINSR_KIND_SAMPLER, "stochastic"), json::object());
  Schedule s = Schedule(ScheduleOptions::from_json(json::object()));
  at::manual_seed(0);
  at::Tensor y = at::randn({2, 3, 8, 8}), x_T = at::randn({2, 3, 8, 8});
  at::Tensor draws = at::randn({s.num_steps(), 2, 3, 8, 8});
  auto net = [](const at::Tensor& x, const at::Tensor&) { return x.sin(); };
  int64_t k1 = 0, k2 = 0;
  sinsr::sdk::SampleCallbacks cb;
  cb.denoise = net;
  cb.noise = [&](const at::Tensor&) { return draws[k1++]; };
  at::Tensor via_abi = h.sample(y, x_T, cb);
  at::Tensor direct = sample(s, Rule::Stochastic, y, x_T, net, [&](const at::Tensor&) { return draws[k2++]; }, {});
  EXPECT_TRUE(via_abi.equal(direct));
  for (const std::string& key : s.keys()) EXPECT_TRUE(h.schedule(key).equal(s.get(key))) << key;
  at::Tensor t = at::tensor({int64_t(3), s.num_steps() - 1}, at::kLong);
  EXPECT_TRUE(h.q_sample(y, x_T, t, y).equal(s.q_sample(y, x_T, t, y)));
  EXPECT_TRUE(h.scale_input(y, t).equal(s.scale_input(y, t)));
}

TEST(Abi, ErrorsCrossTheBoundaryWithTheirCode) {
  try {
    sinsr::host::SamplerHandle h(runtime().find(SINSR_KIND_SAMPLER, "single-step"), {{"schedule_name", "cosine"}});
    FAIL();
  } catch (const sinsr::sdk::Error& e) {
    EXPECT_EQ(e.code(), SINSR_ERR_UNSUPPORTED);
    EXPECT_NE(std::string(e.what()).find("cosine"), std::string::npos) << e.what();
  }
  sinsr::host::SamplerHandle h(runtime().find(SINSR_KIND_SAMPLER, "deterministic"), {{"sample_steps", 4}});
  EXPECT_EQ(h.num_steps(), 4);
  sinsr::sdk::SampleCallbacks cb;
  cb.denoise = toy_net;
  cb.progress = [](int step, int total) { return step < total - 1; };
  at::Tensor y = at::randn({1, 3, 8, 8});
  try {
    h.sample(y, y, cb);
    FAIL();
  } catch (const sinsr::sdk::Error& e) {
    EXPECT_EQ(e.code(), SINSR_ERR_CANCELLED) << e.what();
  }
  EXPECT_THROW(h.schedule("no_such_array"), sinsr::sdk::Error);
}

}  // namespace
