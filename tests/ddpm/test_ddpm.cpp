// The "ddpm" sampler against the SR3 (novwaul/SR3) and SRDiff (LeiaLi/SRDiff) reference
// vectors: every schedule array, both 5-step trajectories replayed (a denoiser that checks what
// it is given and returns the recorded eps, the recorded noise in order), training examples
// with fixed draws, respacing, cancellation and config errors. Most tests go through the
// plugin's C function table (host runtime); the exact-formula ones call the class directly.
#include "errors.hpp"
#include "parity.hpp"

#include "ddpm.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include "runtime/runtime.hpp"

#include <cmath>
#include <cstring>
#include <fstream>
#include <memory>
#include <set>

namespace {

using namespace sinsr::ddpm;
using json = nlohmann::json;
using sinsr::host::SamplerHandle;
using sinsr::sdk::Error;
using sinsr_test::error_of;

const std::string kDir = "sr3-srdiff/";

sinsr::host::Runtime& runtime() {
  static sinsr::host::Runtime* rt = [] {
    auto* r = new sinsr::host::Runtime(1);
    r->load_file(std::string(SINSR_PLUGIN_DIR) + "/ddpm.so");
    return r;
  }();
  return *rt;
}

std::unique_ptr<SamplerHandle> handle(const json& config, int steps = 0) {
  return std::make_unique<SamplerHandle>(runtime().find(SINSR_KIND_SAMPLER, "ddpm"), config, steps);
}

bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

// Largest distance in float32 units in the last place (same sign assumed: all arrays here are).
int64_t max_ulps(const at::Tensor& got, const at::Tensor& want) {
  auto g = got.to(at::kFloat).contiguous(), w = want.to(at::kFloat).contiguous();
  int64_t worst = 0;
  for (int64_t i = 0; i < g.numel(); ++i) {
    int32_t a, b;
    std::memcpy(&a, g.data_ptr<float>() + i, 4);
    std::memcpy(&b, w.data_ptr<float>() + i, 4);
    worst = std::max(worst, std::abs(int64_t(a) - int64_t(b)));
  }
  return worst;
}

// ---- schedules ---------------------------------------------------------------------------

// Every array of a schedule file: the plain keys from the default sampler, the traj5_ ones from
// the same sampler respaced to 5 steps. Arrays are float32 (betas_float64: float64).
void check_schedule_file(const std::string& file, const std::string& variant, int64_t ulps, int expected_arrays) {
  auto ref = sinsr_test::load(kDir + file);
  auto full = handle({{"variant", variant}}), five = handle({{"variant", variant}}, 5);
  EXPECT_EQ(five->num_steps(), 5);
  int arrays = 0;
  for (const auto& e : ref.toGenericDict()) {
    const std::string key = e.key().toStringRef();
    const bool traj = starts_with(key, "traj5_");
    const at::Tensor want = e.value().toTensor();
    const at::Tensor got = (traj ? five : full)->schedule(traj ? key.substr(6) : key);
    ++arrays;
    ASSERT_EQ(got.scalar_type(), want.scalar_type()) << key;
    ASSERT_EQ(got.sizes(), want.sizes()) << key;
    if (want.scalar_type() == at::kDouble) {
      // 1 - ratio of cosines: a libm ulp in cos shows up as ~1e-16 absolute.
      EXPECT_TRUE(sinsr_test::all_close(got, want, 1e-15, 1e-14)) << key;
    } else {
      EXPECT_LE(max_ulps(got, want), ulps) << key;
    }
  }
  EXPECT_EQ(arrays, expected_arrays);
}

TEST(Schedule, Sr3EveryArrayAsTheRepoBuildsIt) {
  // float32 torch ops, as SR3 builds them, in the same LibTorch: bit for bit.
  check_schedule_file("sr3_schedule.pth", "sr3", 0, 12);
  auto h = handle({{"variant", "sr3"}});
  EXPECT_EQ(h->num_steps(), 100);
  EXPECT_EQ(h->schedule("train_betas").numel(), 2000);
}

TEST(Schedule, SrdiffEveryArrayFromFloat64) {
  // float64 as numpy, cast once: at most one float32 ulp (libm vs numpy cos/log).
  check_schedule_file("srdiff_schedule.pth", "srdiff", 1, 25);
  auto h = handle({{"variant", "srdiff"}});
  EXPECT_EQ(h->num_steps(), 100);
  EXPECT_NEAR(h->schedule("betas")[99].item<float>(), 0.999f, 1e-7) << "the last cosine beta hits the clip";
  EXPECT_TRUE(h->schedule("train_betas").equal(h->schedule("betas")));
  EXPECT_TRUE(h->schedule("sample_alphas_cumprod").equal(h->schedule("alphas_cumprod")));
}

// ---- trajectories ------------------------------------------------------------------------

struct Replay {
  int calls = 0, draws = 0;
  std::vector<int> progress;
  at::Tensor out;
};

// Replays a recorded trajectory through the plugin: denoise checks x_in against `xs` and t
// against `ts`, returns the recorded eps; noise returns the recorded z in order.
Replay replay(SamplerHandle& h, const at::Tensor& y, const at::Tensor& x_T, const at::Tensor& xs, const at::Tensor& ts,
              const at::Tensor& eps, const at::Tensor& z, bool check_inputs = true) {
  Replay r;
  const int64_t steps = eps.size(0);
  sinsr::sdk::SampleCallbacks cb;
  cb.denoise = [&](const at::Tensor& x_in, const at::Tensor& t) -> at::Tensor {
    EXPECT_LT(r.calls, steps);
    if (r.calls >= steps) return x_in;
    if (check_inputs) {
      const at::Tensor want_t = ts[r.calls].reshape({-1});
      EXPECT_EQ(t.scalar_type(), want_t.scalar_type()) << "call " << r.calls;
      EXPECT_TRUE(sinsr_test::all_close(t, want_t, 0)) << "timestep of call " << r.calls;
      EXPECT_TRUE(sinsr_test::all_close(x_in, xs[r.calls], 1e-5)) << "network input of call " << r.calls;
    }
    return eps[r.calls++];
  };
  cb.noise = [&](const at::Tensor& like) -> at::Tensor {
    EXPECT_LT(r.draws, z.size(0)) << "more noise draws than recorded";
    if (r.draws >= z.size(0)) return at::zeros_like(like);
    return z[r.draws++];
  };
  cb.progress = [&](int step, int total) {
    EXPECT_EQ(total, steps);
    r.progress.push_back(step);
    return true;
  };
  r.out = h.sample(y, x_T, cb);
  EXPECT_EQ(r.calls, steps);
  return r;
}

TEST(Trajectory, Sr3FiveStepsReplayed) {
  auto traj = sinsr_test::at_key(sinsr_test::load(kDir + "sr3_tiny_cases.pth"), "traj");
  const at::Tensor x_T = sinsr_test::tensor(traj, "x_T"), model_in = sinsr_test::tensor(traj, "model_in");
  const at::Tensor cond = sinsr_test::tensor(traj, "cond_01") * 2 - 1;  // what the host passes as y (unused by SR3)
  auto h = handle({{"variant", "sr3"}}, 5);
  const auto kind = h->timestep_kind();
  EXPECT_EQ(kind.kind, SINSR_TIMESTEP_NOISE_LEVEL);
  EXPECT_EQ(kind.unit, "sqrt_alpha_bar");
  EXPECT_TRUE(h->prior(cond, x_T).equal(x_T));
  EXPECT_TRUE(sinsr_test::tensor(traj, "step_index").equal(at::arange(4, -1, -1, at::kLong)));
  // model_in holds x_t then the condition: the sampler's x_in is the first 3 channels.
  Replay r = replay(*h, cond, x_T, model_in.slice(2, 0, 3), sinsr_test::tensor(traj, "noise_level"),
                    sinsr_test::tensor(traj, "eps"), sinsr_test::tensor(traj, "z"));
  EXPECT_EQ(r.draws, 4) << "SR3 draws at steps 4..1, none at 0";
  EXPECT_EQ(r.progress, (std::vector<int>{1, 2, 3, 4, 5}));
  EXPECT_TRUE(sinsr_test::all_close(r.out * 0.5 + 0.5, sinsr_test::tensor(traj, "x0"), 1e-4));
  EXPECT_LE(r.out.abs().max().item<float>(), 1.0f);
}

TEST(Trajectory, SrdiffFiveStepsReplayed) {
  auto traj = sinsr_test::at_key(sinsr_test::load(kDir + "srdiff_tiny_cases.pth"), "traj");
  const at::Tensor y = sinsr_test::tensor(traj, "img_lr_up"), x_T = sinsr_test::tensor(traj, "x_T");
  const at::Tensor xs = sinsr_test::tensor(traj, "x_t"), ts = sinsr_test::tensor(traj, "t");
  const at::Tensor eps = sinsr_test::tensor(traj, "eps"), z = sinsr_test::tensor(traj, "z");
  const at::Tensor img_sr = sinsr_test::tensor(traj, "img_sr");
  EXPECT_TRUE(xs[0].equal(x_T));
  // A respaced default sampler and one built with 5 training steps are the same chain.
  for (const json& config : {json{{"variant", "srdiff"}}, json{{"variant", "srdiff"}, {"train_steps", 5}}}) {
    auto h = handle(config, config.contains("train_steps") ? 0 : 5);
    EXPECT_EQ(h->timestep_kind().kind, SINSR_TIMESTEP_INDEX);
    EXPECT_TRUE(h->prior(y, x_T).equal(x_T));
    Replay r = replay(*h, y, x_T, xs, ts, eps, z);
    EXPECT_EQ(r.draws, 5) << "SRDiff draws at every step, t = 0 included";
    EXPECT_TRUE(sinsr_test::all_close(r.out, img_sr, 1e-4)) << config;
  }
  // The x0 clamp is exercised: without it the end point moves.
  auto unclipped = handle({{"variant", "srdiff"}, {"clip_x0", false}}, 5);
  Replay r = replay(*unclipped, y, x_T, xs, ts, eps, z, false);
  EXPECT_GT((r.out - img_sr).abs().max().item<float>(), 1e-3);
}

// ---- training examples -------------------------------------------------------------------

// C callbacks over fixed draws, counting what the sampler asks for.
struct Draws {
  std::vector<double> uniforms;
  std::vector<int64_t> counts;  // sizes of the uniform requests
  size_t next = 0;
  at::Tensor noise;
  int noise_calls = 0;
};

sinsr_status* c_uniform(void* user, int64_t count, double* out) {
  auto* d = static_cast<Draws*>(user);
  d->counts.push_back(count);
  for (int64_t i = 0; i < count; ++i) out[i] = d->uniforms.at(d->next++);
  return nullptr;
}

sinsr_status* c_noise(void* user, const DLTensor* like, DLManagedTensor** out) {
  auto* d = static_cast<Draws*>(user);
  ++d->noise_calls;
  EXPECT_EQ(like->ndim, d->noise.dim());
  *out = sinsr::sdk::to_dlpack(d->noise.clone());
  return nullptr;
}

sinsr::sdk::TrainingExample abi_training_example(const json& config, const at::Tensor& x0, const at::Tensor& y,
                                                 Draws& d) {
  auto comp = runtime().find(SINSR_KIND_SAMPLER, "ddpm");
  auto* vt = static_cast<const sinsr_sampler_vtable*>(comp->desc->vtable);
  EXPECT_TRUE(SINSR_HAS_FIELD(vt, sinsr_sampler_vtable, training_example) && vt->training_example);
  sinsr_sampler* self = nullptr;
  sinsr::sdk::throw_if_error(vt->create(config.dump().c_str(), &self), "create");
  sinsr_sample_callbacks cb{};
  cb.struct_size = sizeof(cb);
  cb.user = &d;
  cb.noise = c_noise;
  cb.uniform = c_uniform;
  sinsr_training_example ex{};
  ex.struct_size = sizeof(ex);
  sinsr_status* st = vt->training_example(self, nullptr, sinsr::sdk::to_dlpack(x0), sinsr::sdk::to_dlpack(y), &cb, &ex);
  vt->destroy(self);
  sinsr::sdk::throw_if_error(st, "training_example");
  return {sinsr::sdk::from_dlpack(ex.x_in), sinsr::sdk::from_dlpack(ex.t), sinsr::sdk::from_dlpack(ex.target)};
}

TEST(Training, Sr3ContinuousNoiseLevelThroughTheAbi) {
  at::manual_seed(7);
  const at::Tensor x0 = at::rand({3, 3, 8, 8}) * 2 - 1, y = at::rand({3, 3, 8, 8}) * 2 - 1;
  Draws d;
  d.noise = at::randn({3, 3, 8, 8});
  // t = 1 + floor(u (T-1)): 1, 1000, 1999; alpha_bar at the low end, a quarter up, near the top.
  d.uniforms = {0.0, 0.5, 0.9999999, 0.0, 0.25, 0.9999};
  auto ex = abi_training_example({{"variant", "sr3"}}, x0, y, d);
  EXPECT_EQ(d.counts, (std::vector<int64_t>{3, 3}));
  EXPECT_EQ(d.noise_calls, 1);
  ASSERT_EQ(ex.t.scalar_type(), at::kFloat);
  ASSERT_EQ(ex.t.sizes(), (std::vector<int64_t>{3}));
  EXPECT_EQ(ex.x_in.sizes(), x0.sizes());
  EXPECT_TRUE(ex.target.equal(d.noise));

  const at::Tensor ab = handle({{"variant", "sr3"}})->schedule("train_alphas_bar");
  const at::Tensor idx = at::tensor({int64_t(1), int64_t(1000), int64_t(1999)});
  const at::Tensor v = at::tensor({0.0, 0.25, 0.9999}, at::kDouble).to(at::kFloat);
  const at::Tensor lo = ab.index_select(0, idx), hi = ab.index_select(0, idx - 1);
  const at::Tensor gamma = (hi - lo) * v + lo;
  EXPECT_TRUE(ex.t.equal(at::sqrt(gamma))) << ex.t << " vs " << at::sqrt(gamma);
  EXPECT_TRUE(ex.t.ge(at::sqrt(lo)).all().item<bool>() && ex.t.le(at::sqrt(hi)).all().item<bool>());
  EXPECT_EQ(ex.t[0].item<float>(), at::sqrt(lo[0]).item<float>());
  const at::Tensor g = gamma.view({-1, 1, 1, 1});
  EXPECT_TRUE(sinsr_test::all_close(ex.x_in, at::sqrt(g) * x0 + at::sqrt(1 - g) * d.noise, 1e-6));
}

TEST(Training, Sr3DrawsStayInTheirIntervals) {
  DdpmSampler s(json{{"variant", "sr3"}});
  const at::Tensor ab = s.schedule("train_alphas_bar");
  at::manual_seed(11);
  const int64_t n = 512;
  const at::Tensor u = at::rand({2 * n}, at::kDouble);
  int64_t k = 0;
  sinsr::sdk::SampleCallbacks cb;
  cb.uniform = [&](int64_t count) {
    at::Tensor r = u.slice(0, k, k + count).clone();
    k += count;
    return r;
  };
  cb.noise = [](const at::Tensor& like) { return at::randn_like(like); };
  const at::Tensor x0 = at::zeros({n, 3, 2, 2});
  auto ex = s.training_example(x0, x0, cb);
  const at::Tensor idx = (u.slice(0, 0, n) * 1999).floor().to(at::kLong) + 1;
  EXPECT_GE(idx.min().item<int64_t>(), 1);
  EXPECT_LE(idx.max().item<int64_t>(), 1999);
  const at::Tensor lo = ab.index_select(0, idx), hi = ab.index_select(0, idx - 1);
  EXPECT_TRUE(ex.t.ge(at::sqrt(lo)).all().item<bool>());
  EXPECT_TRUE(ex.t.le(at::sqrt(hi)).all().item<bool>());
  const at::Tensor gamma = (hi - lo) * u.slice(0, n).to(at::kFloat) + lo;
  EXPECT_TRUE(ex.t.equal(at::sqrt(gamma)));
  // x0 = 0: x_in is the scaled noise alone, sqrt(1 - alpha_bar) eps.
  EXPECT_TRUE(sinsr_test::all_close(ex.x_in, at::sqrt(1 - gamma).view({-1, 1, 1, 1}) * ex.target, 1e-6));
}

TEST(Training, SrdiffResidualIndexDrawThroughTheAbi) {
  at::manual_seed(8);
  const at::Tensor x0 = at::rand({3, 3, 8, 8}) * 2 - 1, y = at::rand({3, 3, 8, 8}) * 2 - 1;
  Draws d;
  d.noise = at::randn({3, 3, 8, 8});
  d.uniforms = {0.0, 0.5, 0.99999};  // t = floor(100 u): 0, 50, 99
  auto ex = abi_training_example({{"variant", "srdiff"}}, x0, y, d);
  EXPECT_EQ(d.counts, (std::vector<int64_t>{3}));
  EXPECT_EQ(d.noise_calls, 1);
  ASSERT_EQ(ex.t.scalar_type(), at::kLong);
  EXPECT_TRUE(ex.t.equal(at::tensor({int64_t(0), int64_t(50), int64_t(99)})));
  EXPECT_TRUE(ex.target.equal(d.noise));
  auto h = handle({{"variant", "srdiff"}}, 7);  // a respace leaves the training chain alone
  const at::Tensor sa = h->schedule("train_sqrt_alphas_cumprod").index_select(0, ex.t).view({-1, 1, 1, 1});
  const at::Tensor sb = h->schedule("train_sqrt_one_minus_alphas_cumprod").index_select(0, ex.t).view({-1, 1, 1, 1});
  EXPECT_EQ(sa.numel(), 3);
  const at::Tensor res = ((x0 - y) * 2).clamp(-1, 1);
  EXPECT_TRUE(sinsr_test::all_close(ex.x_in, sa * res + sb * d.noise, 1e-6));
  // q_sample is the same forward process with a given t.
  EXPECT_TRUE(sinsr_test::all_close(h->q_sample(x0, y, ex.t, d.noise), ex.x_in, 1e-6));
}

TEST(Training, QSampleScaleInputAndPrior) {
  at::manual_seed(9);
  const at::Tensor x0 = at::randn({2, 3, 4, 4}), y = at::randn({2, 3, 4, 4}), n = at::randn({2, 3, 4, 4});
  auto h = handle({{"variant", "sr3"}});
  const at::Tensor t = at::tensor({int64_t(0), int64_t(1999)});
  const at::Tensor ab = h->schedule("train_alphas_bar").index_select(0, t).view({-1, 1, 1, 1});
  EXPECT_TRUE(sinsr_test::all_close(h->q_sample(x0, y, t, n), at::sqrt(ab) * x0 + at::sqrt(1 - ab) * n, 1e-6));
  EXPECT_TRUE(h->scale_input(x0, t).equal(x0));
  EXPECT_TRUE(h->prior(y, n).equal(n));
  int code = 0;
  std::string m = error_of([&] { h->q_sample(x0, y, at::tensor({int64_t(0), int64_t(2000)}), n); }, &code);
  EXPECT_EQ(code, SINSR_ERR_INVALID_ARGUMENT);
  EXPECT_NE(m.find("2000"), std::string::npos) << m;
  EXPECT_NE(error_of([&] { h->q_sample(x0, y, at::tensor({0.5f, 0.5f}), n); }), "");
}

// ---- respacing, cancellation -------------------------------------------------------------

// Runs sample() with a toy network; returns the t values denoise saw and the noise draw count.
std::pair<std::vector<at::Tensor>, int> toy_run(SamplerHandle& h) {
  std::vector<at::Tensor> ts;
  int draws = 0;
  sinsr::sdk::SampleCallbacks cb;
  cb.denoise = [&](const at::Tensor& x, const at::Tensor& t) {
    ts.push_back(t.clone());
    return x.tanh();
  };
  cb.noise = [&](const at::Tensor& like) {
    ++draws;
    return at::randn_like(like);
  };
  at::manual_seed(2);
  const at::Tensor y = at::randn({2, 3, 4, 4}).clamp(-1, 1);
  const at::Tensor out = h.sample(y, at::randn({2, 3, 4, 4}), cb);
  EXPECT_TRUE(out.isfinite().all().item<bool>());
  return {ts, draws};
}

TEST(Respace, Sr3RebuildsTheLinearSamplingChain) {
  for (int n : {1, 2, 7, 250}) {
    auto h = handle({{"variant", "sr3"}}, n);
    EXPECT_EQ(h->num_steps(), n);
    EXPECT_TRUE(h->schedule("sample_betas").equal(at::linspace(1e-4, 0.1, n, at::kFloat))) << n;
    EXPECT_EQ(h->schedule("train_betas").numel(), 2000) << "the training chain is never respaced";
    auto [ts, draws] = toy_run(*h);
    ASSERT_EQ(int(ts.size()), n);
    EXPECT_EQ(draws, n - 1);
    const at::Tensor want = at::sqrt(h->schedule("sample_alphas_bar"));
    EXPECT_TRUE(want.equal(h->schedule("timesteps")));
    for (int k = 0; k < n; ++k) EXPECT_TRUE(ts[k].equal(want[n - 1 - k].expand({2}))) << n << " step " << k;
  }
  // The config key and the host's step count build the same chain.
  EXPECT_TRUE(handle({{"variant", "sr3"}, {"sample_steps", 7}})
                  ->schedule("sample_betas")
                  .equal(handle({{"variant", "sr3"}}, 7)->schedule("sample_betas")));
}

TEST(Respace, SrdiffBuildsAFreshCosineChain) {
  for (int n : {1, 3, 10, 1000}) {
    auto h = handle({{"variant", "srdiff"}}, n);
    EXPECT_EQ(h->num_steps(), n);
    auto fresh = handle({{"variant", "srdiff"}, {"train_steps", n}});
    for (const char* key : {"betas", "alphas_cumprod", "posterior_mean_coef1", "posterior_log_variance_clipped"})
      EXPECT_TRUE(h->schedule(key).equal(fresh->schedule(key))) << key << " " << n;
    EXPECT_EQ(h->schedule("train_betas").numel(), 100);
    auto [ts, draws] = toy_run(*h);
    ASSERT_EQ(int(ts.size()), n);
    EXPECT_EQ(draws, n);
    for (int k = 0; k < n; ++k) EXPECT_TRUE(ts[k].equal(at::full({2}, n - 1 - k, at::kLong)));
  }
  int code = 0;
  DdpmSampler s(json{{"variant", "srdiff"}});
  EXPECT_NE(error_of([&] { s.respace(0); }, &code), "");
  EXPECT_EQ(code, SINSR_ERR_INVALID_ARGUMENT);
}

// respace "subsequence": evenly spaced steps of the configured chain, whose alpha_bar they keep,
// and the network sees their indices in it.
TEST(Respace, SubsequenceKeepsTheTrainedNoiseLevels) {
  auto full = handle({{"variant", "srdiff"}});
  auto h = handle({{"variant", "srdiff"}, {"respace", "subsequence"}}, 5);
  ASSERT_EQ(h->num_steps(), 5);
  const at::Tensor idx = h->schedule("timesteps");
  EXPECT_TRUE(idx.equal(at::tensor(std::vector<int64_t>{0, 25, 50, 74, 99}, at::kLong))) << idx;
  const at::Tensor ab = full->schedule("alphas_cumprod").index_select(0, idx);
  EXPECT_TRUE(at::allclose(h->schedule("alphas_cumprod"), ab, 1e-5, 1e-7));
  auto [ts, draws] = toy_run(*h);
  ASSERT_EQ(ts.size(), 5u);
  for (int k = 0; k < 5; ++k) EXPECT_TRUE(ts[size_t(k)].equal(at::full({2}, idx[4 - k].item<int64_t>(), at::kLong)));
  // The configured length is the configured chain itself.
  auto same = handle({{"variant", "srdiff"}, {"respace", "subsequence"}}, 100);
  EXPECT_TRUE(same->schedule("betas").equal(full->schedule("betas")));
  EXPECT_TRUE(same->schedule("timesteps").equal(full->schedule("timesteps")));
  // SR3's noise level follows: sqrt(alpha_bar) of the kept steps.
  auto sr3 = handle({{"respace", "subsequence"}}, 4);
  auto sr3_full = handle(json::object());
  EXPECT_TRUE(at::allclose(sr3->schedule("timesteps"),
                           sr3_full->schedule("timesteps").index_select(0, at::tensor({0, 33, 66, 99})), 1e-5, 1e-7));
  int code = 0;
  EXPECT_NE(error_of(
                [] {
                  handle({{"variant", "srdiff"}, {"respace", "subsequence"}}, 101);
                },
                &code)
                .find("1 to 100"),
            std::string::npos);
  EXPECT_EQ(code, SINSR_ERR_INVALID_ARGUMENT);
}

TEST(Sample, CancellationStopsAtTheStep) {
  for (const char* variant : {"sr3", "srdiff"}) {
    auto h = handle({{"variant", variant}}, 6);
    int calls = 0;
    sinsr::sdk::SampleCallbacks cb;
    cb.denoise = [&](const at::Tensor& x, const at::Tensor&) {
      ++calls;
      return x * 0.1;
    };
    cb.noise = [](const at::Tensor& like) { return at::randn_like(like); };
    cb.progress = [](int step, int total) {
      EXPECT_EQ(total, 6);
      return step < 2;
    };
    const at::Tensor x = at::randn({1, 3, 4, 4});
    int code = 0;
    std::string m = error_of([&] { h->sample(x, x, cb); }, &code);
    EXPECT_EQ(code, SINSR_ERR_CANCELLED) << m;
    EXPECT_EQ(calls, 2) << variant;
  }
}

// Temperature tau scales the prior and every step's noise, nothing else: sampling at tau equals
// sampling at 1 with the noise scaled by tau; at 0 the noise stream no longer matters.
TEST(Sample, TemperatureScalesPriorAndStepNoise) {
  for (const char* variant : {"sr3", "srdiff"}) {
    const at::Tensor y = at::rand({1, 3, 4, 4}) * 2 - 1;
    auto run = [&](double tau, double noise_scale, uint64_t seed) {
      auto h = handle({{"variant", variant}, {"temperature", tau}}, 5);
      at::Generator gen = at::detail::createCPUGenerator(seed);
      sinsr::sdk::SampleCallbacks cb;
      cb.denoise = [](const at::Tensor& x, const at::Tensor&) { return x.tanh() * 0.3; };
      cb.noise = [&](const at::Tensor& like) { return at::randn(like.sizes(), gen) * noise_scale; };
      return h->sample(y, h->prior(y, cb.noise(y)), cb);
    };
    EXPECT_TRUE(at::allclose(run(0.5, 1.0, 7), run(1.0, 0.5, 7), 1e-5, 1e-6)) << variant;
    EXPECT_FALSE(at::allclose(run(0.5, 1.0, 7), run(1.0, 1.0, 7))) << variant;
    EXPECT_TRUE(at::equal(run(0.0, 1.0, 7), run(0.0, 1.0, 8))) << variant;
  }
  EXPECT_NE(error_of([] { handle({{"temperature", -0.5}}); }).find("'temperature'"), std::string::npos);
}

TEST(Sample, BadCallbacksAndShapesAreNamed) {
  auto h = handle({{"variant", "srdiff"}}, 3);
  const at::Tensor x = at::randn({1, 3, 4, 4});
  sinsr::sdk::SampleCallbacks cb;
  cb.denoise = [](const at::Tensor& x_in, const at::Tensor&) { return x_in.slice(2, 0, 2); };
  cb.noise = [](const at::Tensor& like) { return at::randn_like(like); };
  std::string m = error_of([&] { h->sample(x, x, cb); });
  EXPECT_NE(m.find("denoise"), std::string::npos) << m;
  m = error_of([&] { h->sample(x, at::randn({1, 3, 8, 8}), cb); });
  EXPECT_NE(m.find("one shape"), std::string::npos) << m;
  m = error_of([&] { h->schedule("no_such_array"); });
  EXPECT_NE(m.find("no_such_array"), std::string::npos) << m;
}

// ---- config ------------------------------------------------------------------------------

std::string config_error(const json& config) {
  return error_of([&] { DdpmSampler s(config); });
}

TEST(Config, ErrorsNameTheKey) {
  auto has = [](const std::string& m, const std::string& part) { return m.find(part) != std::string::npos; };
  std::string m = config_error({{"variant", "sr3"}, {"sample_step", 5}});
  EXPECT_TRUE(has(m, "unknown key 'sample_step'") && has(m, "sample_steps")) << m;
  m = config_error({{"train_steps", "many"}});
  EXPECT_TRUE(has(m, "'train_steps'") && has(m, "many")) << m;
  m = config_error({{"train_steps", 20.5}});
  EXPECT_TRUE(has(m, "'train_steps'")) << m;
  m = config_error({{"variance", "learned"}});
  EXPECT_TRUE(has(m, "'variance'") && has(m, "learned") && has(m, "posterior")) << m;
  m = config_error({{"variant", "ddim"}});
  EXPECT_TRUE(has(m, "'variant'") && has(m, "ddim")) << m;
  m = config_error({{"clip_x0", 1}});
  EXPECT_TRUE(has(m, "'clip_x0'")) << m;
  m = config_error({{"sample_beta_end", 1.5}});
  EXPECT_TRUE(has(m, "'sample_beta_end'")) << m;
  m = config_error({{"res_rescale", 0}});
  EXPECT_TRUE(has(m, "'res_rescale'")) << m;
  m = config_error({{"train_steps", 1}});
  EXPECT_TRUE(has(m, "'train_steps'") && has(m, "sqrt_alpha_bar")) << m;
  m = config_error(json::array({1, 2}));
  EXPECT_TRUE(has(m, "JSON object")) << m;
  // Through the C table: the same message and code.
  int code = 0;
  m = error_of([&] { handle({{"variant", "srdiff"}, {"residul", true}}); }, &code);
  EXPECT_EQ(code, SINSR_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(has(m, "'residul'")) << m;
  // Accepted: null, an integral float, every key at once.
  EXPECT_EQ(config_error(nullptr), "");
  EXPECT_EQ(config_error({{"train_steps", 2000.0}}), "");
  EXPECT_EQ(config_error(Options::defaults(Variant::SRDiff).to_json()), "");
}

TEST(Config, VariantsAndSchema) {
  const Options sr3 = Options::from_json(json::object()), srdiff = Options::from_json({{"variant", "srdiff"}});
  EXPECT_EQ(sr3.to_json(), Options::defaults(Variant::SR3).to_json());
  EXPECT_EQ(srdiff.to_json(), Options::defaults(Variant::SRDiff).to_json());
  EXPECT_EQ(srdiff.sample_steps, 100);
  EXPECT_TRUE(srdiff.residual && srdiff.clip_x0 && srdiff.final_noise && srdiff.float64_schedule);
  EXPECT_EQ(srdiff.variance, Variance::Posterior);
  // SRDiff samples its training chain: sample_steps follows train_steps unless given.
  EXPECT_EQ(Options::from_json({{"variant", "srdiff"}, {"train_steps", 40}}).sample_steps, 40);
  EXPECT_EQ(Options::from_json({{"variant", "srdiff"}, {"train_steps", 40}, {"sample_steps", 8}}).sample_steps, 8);
  EXPECT_EQ(Options::from_json({{"variant", "sr3"}, {"train_steps", 40}}).sample_steps, 100);
  // Round trip of every key.
  Options mixed = Options::from_json({{"variant", "srdiff"}, {"schedule", "linear"}, {"timestep", "sqrt_alpha_bar"}});
  EXPECT_EQ(Options::from_json(mixed.to_json()).to_json(), mixed.to_json());

  // The schema lists exactly the keys read, each with type, default and doc; its defaults are
  // the config of an empty object.
  auto comp = runtime().find(SINSR_KIND_SAMPLER, "ddpm");
  EXPECT_EQ(comp->desc->thread_safety, SINSR_THREAD_PARALLEL);
  const json schema = json::parse(comp->desc->config_schema);
  json defaults = json::object();
  std::set<std::string> keys;
  for (auto it = schema.begin(); it != schema.end(); ++it) {
    keys.insert(it.key());
    for (const char* f : {"type", "default", "doc"}) EXPECT_TRUE(it.value().contains(f)) << it.key() << " " << f;
    defaults[it.key()] = it.value()["default"];
  }
  std::set<std::string> read;
  const json resolved = sr3.to_json();
  for (auto it = resolved.begin(); it != resolved.end(); ++it) read.insert(it.key());
  EXPECT_EQ(keys, read);
  EXPECT_EQ(Options::from_json(defaults).to_json(), sr3.to_json());
}

// A config file through the SDK's create (what `--sampler-config file.json` sends): its
// contents, with keys given beside it on top.
TEST(Config, ConfigFileThroughTheSdk) {
  const std::string path = ::testing::TempDir() + "ddpm_native.json";
  std::ofstream(path) << R"({"variant": "srdiff", "train_steps": 40})";
  EXPECT_EQ(handle({{"config_file", path}})->num_steps(), 40);
  EXPECT_EQ(handle({{"config_file", path}, {"sample_steps", 8}})->num_steps(), 8);
  int code = 0;
  EXPECT_NE(error_of([&] { handle({{"config_file", path}, {"typo", 1}}); }, &code).find("typo"), std::string::npos);
  EXPECT_EQ(code, SINSR_ERR_INVALID_ARGUMENT);
}

TEST(Config, LinearResidualEndsAtBeta0999) {
  // SRDiff's linear schedule with res: betas[-1] = 0.999, so x_T is (nearly) pure noise.
  DdpmSampler s(json{{"variant", "srdiff"}, {"schedule", "linear"}});
  const at::Tensor b = s.schedule("betas_float64");
  EXPECT_EQ(b[99].item<double>(), 0.999);
  EXPECT_DOUBLE_EQ(b[98].item<double>(), sinsr::sdk::linspace(1e-4, 0.02, 100)[98]);
  EXPECT_EQ(b[0].item<double>(), 1e-4);
}

}  // namespace
