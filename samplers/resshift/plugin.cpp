// Samplers "stochastic" (ResShift), "deterministic" (SinSR k/m/j) and "single-step" (the
// one-call student) over one schedule. Configured by the official `diffusion.params` keys.
#include "samplers.hpp"

#include <sinsr/config.hpp>
#include <sinsr/sdk.hpp>

#include <set>
#include <string>

namespace {

using sinsr::resshift::Rule;
using sinsr::resshift::Schedule;
using sinsr::resshift::ScheduleOptions;

// An official YAML's diffusion part keeps only the keys above.
nlohmann::json params(const nlohmann::json& config) {
  static const std::set<std::string> known = sinsr::config::schema_keys(sinsr::resshift::config_schema());
  namespace official = sinsr::config::official;
  return official::params(config, official::Section::Diffusion, known);
}

template <Rule R>
class ResShiftSampler : public sinsr::sdk::Sampler {
 public:
  explicit ResShiftSampler(const nlohmann::json& config)
      : schedule_(ScheduleOptions::from_json(params(config))), train_(full_chain(schedule_.options())) {}

  int num_steps() const override { return int(schedule_.num_steps()); }
  at::Tensor schedule(const std::string& key) const override { return schedule_.get(key); }
  at::Tensor prior(const at::Tensor& y, const at::Tensor& noise) override { return schedule_.prior(y, noise); }
  at::Tensor sample(const at::Tensor& y, const at::Tensor& x_T, const sinsr::sdk::SampleCallbacks& cb) override {
    return sinsr::resshift::sample(schedule_, R, y, x_T, cb.denoise, cb.noise, cb.progress);
  }
  at::Tensor q_sample(const at::Tensor& x0, const at::Tensor& y, const at::Tensor& t,
                      const at::Tensor& noise) override {
    return schedule_.q_sample(x0, y, t, noise);
  }
  at::Tensor scale_input(const at::Tensor& x_t, const at::Tensor& t) override { return schedule_.scale_input(x_t, t); }
  sinsr_prediction prediction() const override {
    switch (schedule_.options().predict) {
      case sinsr::resshift::Predict::XStart: return SINSR_PREDICTION_X0;
      case sinsr::resshift::Predict::Epsilon: return SINSR_PREDICTION_NOISE;
      default: return SINSR_PREDICTION_OTHER;  // epsilon_scale, residual
    }
  }
  // The ABI's step count: the same respacing as the sample_steps key (both ends kept).
  void respace(int steps) override {
    ScheduleOptions o = schedule_.options();
    o.sample_steps = steps;
    o.check();
    schedule_ = Schedule(o);
  }
  // The official training step: t uniform over the full chain, x_t from q_sample, and the
  // target predict_type names.
  sinsr::sdk::TrainingExample training_example(const at::Tensor& x0, const at::Tensor& y,
                                               const sinsr::sdk::SampleCallbacks& cb) override {
    const int64_t b = x0.size(0), T = train_.num_steps();
    at::Tensor t = cb.uniform(b).mul_(double(T)).floor_().clamp_(0, double(T - 1)).to(at::kLong).to(x0.device());
    at::Tensor noise = cb.noise(x0);
    at::Tensor x_t = train_.q_sample(x0, y, t, noise);
    at::Tensor target;
    switch (train_.options().predict) {
      case sinsr::resshift::Predict::XStart: target = x0; break;
      case sinsr::resshift::Predict::Epsilon: target = noise; break;
      case sinsr::resshift::Predict::EpsilonScale:
        target = noise * train_.coef("sqrt_etas", t, noise) * train_.options().kappa;
        break;
      case sinsr::resshift::Predict::Residual: target = y - x0; break;
    }
    return {train_.scale_input(x_t, t), t, target};
  }
  // SinSR's: the teacher over this sampler's trajectory from x_T = prior(y, noise); the student
  // is asked at the trajectory's first step (T-1) on x_T, the inverse at step 0 (as officially).
  sinsr::sdk::DistillationExample distillation_example(const at::Tensor& y, const at::Tensor& noise,
                                                       const sinsr::sdk::SampleCallbacks& cb) override {
    const auto opts = at::TensorOptions().dtype(at::kLong).device(y.device());
    sinsr::sdk::DistillationExample ex;
    ex.x_T = schedule_.prior(y, noise);
    ex.x0 = sample(y, ex.x_T, cb);
    ex.t_student = at::full({y.size(0)}, schedule_.num_steps() - 1, opts);
    ex.t_inverse = at::zeros({y.size(0)}, opts);
    ex.x_in = schedule_.scale_input(ex.x_T, ex.t_student);
    return ex;
  }

 private:
  // Networks train on the whole chain, whatever respacing sampling uses.
  static Schedule full_chain(ScheduleOptions o) {
    o.timestep_respacing = 0;
    o.sample_steps = 0;
    return Schedule(o);
  }

  Schedule schedule_;
  Schedule train_;
};

}  // namespace

SINSR_PLUGIN("resshift", "1.0.0") {
  using sinsr::sdk::ComponentMeta;
  ComponentMeta stochastic{"stochastic", "1.0.0", "ResShift Markov chain (posterior mean plus noise each step)",
                           sinsr::resshift::config_schema()};
  ComponentMeta deterministic{"deterministic", "1.0.0", "SinSR deterministic sampler x = k*x0 + m*x_t + j*y",
                              sinsr::resshift::config_schema()};
  ComponentMeta single{"single-step", "1.0.0", "one network call at t = T-1 (SinSR student inference)",
                       sinsr::resshift::config_schema()};
  for (auto* m : {&stochastic, &deterministic, &single}) m->thread_safety = SINSR_THREAD_PARALLEL;
  plugin.add_sampler<ResShiftSampler<Rule::Stochastic>>(stochastic);
  plugin.add_sampler<ResShiftSampler<Rule::Deterministic>>(deterministic);
  plugin.add_sampler<ResShiftSampler<Rule::SingleStep>>(single);
}
