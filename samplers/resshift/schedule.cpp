#include "schedule.hpp"

#include <sinsr/config.hpp>
#include <sinsr/sdk.hpp>

#include <algorithm>
#include <cmath>
#include <set>

namespace sinsr {
namespace resshift {

using sdk::Error;
using sdk::require;

namespace {

using json = nlohmann::json;

std::string where(const std::string& key) { return "diffusion.params." + key; }

std::vector<double> named_sqrt_etas(const ScheduleOptions& o) {
  if (o.schedule_name == "ldm") {
    require(!o.given_sqrt_etas.empty(), SINSR_ERR_UNSUPPORTED,
            where("schedule_name") +
                " 'ldm' reads sqrt_etas from a MATLAB file (schedule_kwargs.mat_path), which is "
                "not supported here; give the values as schedule_kwargs.sqrt_etas (a list) instead");
    require(int(o.given_sqrt_etas.size()) == o.steps, SINSR_ERR_INVALID_ARGUMENT,
            where("schedule_kwargs.sqrt_etas") + " has " + std::to_string(o.given_sqrt_etas.size()) +
                " values but steps is " + std::to_string(o.steps));
    return o.given_sqrt_etas;
  }
  require(o.schedule_name == "exponential", SINSR_ERR_UNSUPPORTED,
          where("schedule_name") + ": unknown schedule '" + o.schedule_name + "' (known: exponential, ldm)");
  require(o.steps >= 2, SINSR_ERR_INVALID_ARGUMENT,
          where("steps") + " must be >= 2 for the exponential schedule, got " + std::to_string(o.steps));
  const int T = o.steps;
  const double start = std::min({o.min_noise_level / o.kappa, o.min_noise_level, std::sqrt(0.001)});
  const double increaser = std::exp(1.0 / double(T - 1) * std::log(o.etas_end / start));
  std::vector<double> pt = sdk::linspace(0.0, 1.0, T), out(T);
  for (int t = 0; t < T; ++t) {
    pt[t] = std::pow(pt[t], o.power);
    pt[t] *= double(T - 1);
    out[t] = std::pow(increaser, pt[t]) * start;
  }
  return out;
}

std::set<int64_t> kept_steps(const ScheduleOptions& o) {
  const int T = o.steps;
  std::set<int64_t> keep;
  if (o.sample_steps > 0) {
    for (int64_t k : sdk::evenly_spaced_steps(T, o.sample_steps)) keep.insert(k);
  } else {
    const int S = o.timestep_respacing > 0 ? o.timestep_respacing : T;
    for (int x = 0; x < S; ++x) keep.insert(int64_t(double(T) / double(S) * double(x)));
  }
  return keep;
}

}  // namespace

ScheduleOptions ScheduleOptions::from_json(const json& p) {
  using config::IntRange;
  using config::Range;
  // Keys are named where an official config holds them.
  config::Reader r("resshift sampler", p, "diffusion.params.");
  ScheduleOptions o;
  o.schedule_name = r.string("schedule_name", o.schedule_name);
  config::Reader kw = r.object("schedule_kwargs");
  o.power = kw.number("power", o.power);
  o.given_sqrt_etas = kw.numbers("sqrt_etas", {}, Range::any(), 100000);
  kw.ignore({"mat_path"});  // the ldm table from a MATLAB file: refused below with a way out
  o.steps = int(r.integer("steps", o.steps, IntRange::between(1, 100000)));
  o.min_noise_level = r.number("min_noise_level", o.min_noise_level, Range::above(0));
  o.etas_end = r.number("etas_end", o.etas_end, Range{0, 1, true, false});
  o.kappa = r.number("kappa", o.kappa, Range::above(0));
  const std::string pt = r.string("predict_type", "xstart", {"xstart", "epsilon", "epsilon_scale", "residual"});
  o.predict = pt == "epsilon"         ? Predict::Epsilon
              : pt == "epsilon_scale" ? Predict::EpsilonScale
              : pt == "residual"      ? Predict::Residual
                                      : Predict::XStart;
  o.normalize_input = r.boolean("normalize_input", o.normalize_input);
  o.latent_flag = r.boolean("latent_flag", o.latent_flag);
  o.timestep_respacing = int(r.integer("timestep_respacing", 0, IntRange::at_least(0)));
  o.sample_steps = int(r.integer("sample_steps", 0, IntRange::at_least(0)));
  o.clip_denoised = r.boolean("clip_denoised", o.clip_denoised);
  // Official keys the sampler does not use (the codec reads scale_factor).
  r.integer("sf", 4, IntRange::at_least(1));
  r.number("scale_factor", 1.0);
  r.boolean("weighted_mse", false);
  r.ignore({"config_file"});
  r.finish();
  o.check();
  return o;
}

const std::string& config_schema() {
  static const std::string text = [] {
    json s = json::object();
    auto key = [&](const char* name, json type, json fallback, const char* doc, json choices = nullptr) {
      s[name] = {{"type", type}};
      if (!fallback.is_null()) s[name]["default"] = fallback;
      if (*doc) s[name]["doc"] = doc;
      if (!choices.is_null()) s[name]["enum"] = choices;
    };
    const ScheduleOptions d;
    key("schedule_name", "string", d.schedule_name, "", {"exponential", "ldm"});
    key("schedule_kwargs", "object", {{"power", d.power}}, "power; for ldm: sqrt_etas (list)");
    key("steps", "integer", d.steps, "T, the diffusion length the model was trained with");
    key("min_noise_level", "number", d.min_noise_level, "");
    key("etas_end", "number", d.etas_end, "sqrt(eta) at the last step");
    key("kappa", "number", d.kappa, "");
    key("predict_type", "string", "xstart", "", {"xstart", "epsilon", "epsilon_scale", "residual"});
    key("normalize_input", "boolean", d.normalize_input, "");
    key("latent_flag", "boolean", d.latent_flag, "");
    key("timestep_respacing", {"integer", "null"}, nullptr, "official respacing: keeps int(T/S*x), x < S");
    key("sample_steps", "integer", nullptr,
        "sample with S evenly spaced steps keeping the first and the last (1 = SinSR one-step); the host's step "
        "count (ABI respace) does the same");
    key("clip_denoised", "boolean", d.clip_denoised, "clamp predicted x0 to [-1,1] (pixel-space models)");
    key("sf", "integer", nullptr, "accepted, unused by the sampler");
    key("scale_factor", "number", nullptr, "accepted, unused by the sampler");
    key("weighted_mse", "boolean", nullptr, "accepted, unused by the sampler");
    key("config_file", "string", nullptr, "an official YAML; its diffusion.params are used, other keys override");
    return s.dump();
  }();
  return text;
}

void ScheduleOptions::check() const {
  const ScheduleOptions& o = *this;
  require(o.steps >= 1, SINSR_ERR_INVALID_ARGUMENT, where("steps") + " must be >= 1, got " + std::to_string(o.steps));
  require(o.kappa > 0, SINSR_ERR_INVALID_ARGUMENT, where("kappa") + " must be > 0");
  require(o.min_noise_level > 0, SINSR_ERR_INVALID_ARGUMENT, where("min_noise_level") + " must be > 0");
  require(o.etas_end > 0 && o.etas_end <= 1, SINSR_ERR_INVALID_ARGUMENT,
          where("etas_end") + " (sqrt of the last eta) must be in (0, 1], got " + std::to_string(o.etas_end));
  const std::string range = " (use 1.." + std::to_string(o.steps) + ")";
  require(o.timestep_respacing >= 0 && o.timestep_respacing <= o.steps, SINSR_ERR_INVALID_ARGUMENT,
          where("timestep_respacing") + " = " + std::to_string(o.timestep_respacing) +
              " but the model has steps = " + std::to_string(o.steps) + range);
  require(o.sample_steps >= 0 && o.sample_steps <= o.steps, SINSR_ERR_INVALID_ARGUMENT,
          "cannot sample with " + std::to_string(o.sample_steps) +
              " steps: the model has num_timesteps = " + std::to_string(o.steps) + range);
  require(o.sample_steps == 0 || o.timestep_respacing == 0 || o.timestep_respacing == o.steps,
          SINSR_ERR_INVALID_ARGUMENT, "give either sample_steps (or a step count) or timestep_respacing, not both");
}

Schedule::Schedule(const ScheduleOptions& o) : o_(o) {
  const std::vector<double> full = named_sqrt_etas(o);
  for (size_t t = 0; t < full.size(); ++t)
    require(full[t] > 0 && full[t] <= 1, SINSR_ERR_INVALID_ARGUMENT,
            "schedule gives sqrt_eta[" + std::to_string(t) + "] = " + std::to_string(full[t]) +
                "; every eta must lie in (0, 1]");
  for (int64_t k : kept_steps(o)) {
    map_.push_back(k);
    sqrt_etas_.push_back(full[size_t(k)]);
  }

  const int64_t S = num_steps();
  const double kappa = o.kappa;
  const bool eps_type = o.predict == Predict::Epsilon || o.predict == Predict::EpsilonScale;
  std::vector<double> etas(S), prev(S), alpha(S), pv(S), pvc(S), plog(S), c1(S), c2(S), d1(S), d2(S), wmse(S);
  std::vector<double> k64(S), m64(S), j64(S), std64(S), prior(S), one_minus(S);
  for (int64_t t = 0; t < S; ++t) {
    etas[t] = sqrt_etas_[t] * sqrt_etas_[t];
    prev[t] = t == 0 ? 0.0 : etas[t - 1];
  }
  for (int64_t t = 0; t < S; ++t) {
    alpha[t] = etas[t] - prev[t];
    pv[t] = kappa * kappa * prev[t] / etas[t] * alpha[t];
    c1[t] = prev[t] / etas[t];
    c2[t] = alpha[t] / etas[t];
    d1[t] = prev[t] * etas[t];
    d2[t] = prev[t] / etas[t];
    k64[t] = 1 - prev[t] + std::sqrt(d1[t]) - std::sqrt(d2[t]);
    m64[t] = std::sqrt(d2[t]);
    j64[t] = prev[t] - std::sqrt(d1[t]);
    std64[t] = o.latent_flag ? std::sqrt(etas[t] * (kappa * kappa) + 1) : sqrt_etas_[t] * kappa * 3 + 1;
    prior[t] = sqrt_etas_[t] * kappa;
    one_minus[t] = 1 - etas[t];
  }
  for (int64_t t = 0; t < S; ++t) {
    // Entry 0 borrows entry 1 (variance 0 there); with a single step there is nothing to borrow
    // and the value is never used (no noise at t = 0).
    pvc[t] = (t == 0 && S > 1) ? pv[1] : pv[t];
    plog[t] = std::log(pvc[t]);
    if (eps_type) {
      const double r = kappa * alpha[t] / ((1 - etas[t]) * sqrt_etas_[t]);
      wmse[t] = 0.5 / pvc[t] * (r * r);
    } else {
      const double r = alpha[t] / etas[t];
      wmse[t] = 0.5 / pvc[t] * (r * r);
    }
  }
  auto f64 = [](const std::vector<double>& v) { return at::tensor(v, at::kDouble); };
  auto f32 = [&](const std::vector<double>& v) { return f64(v).to(at::kFloat); };
  // float32 arithmetic as the official code does it on gathered (float32-cast) arrays.
  const at::Tensor e32 = f32(etas), p32 = f32(prev), se32 = f32(sqrt_etas_), dc1 = f32(d1), dc2 = f32(d2);
  const at::Tensor k32 = 1 - p32 + dc1.sqrt() - dc2.sqrt();
  const at::Tensor m32 = dc2.sqrt();
  const at::Tensor j32 = p32 - dc1.sqrt();
  const at::Tensor std32 = o.latent_flag ? (e32 * (kappa * kappa) + 1).sqrt() : se32 * kappa * 3 + 1;
  arrays_ = {{"sqrt_etas", f64(sqrt_etas_)},
             {"etas", f64(etas)},
             {"etas_prev", f64(prev)},
             {"alpha", f64(alpha)},
             {"posterior_mean_coef1", f64(c1)},
             {"posterior_mean_coef2", f64(c2)},
             {"posterior_variance", f64(pv)},
             {"posterior_variance_clipped", f64(pvc)},
             {"posterior_log_variance_clipped", f64(plog)},
             {"ddim_coef1", f64(d1)},
             {"ddim_coef2", f64(d2)},
             {"weight_loss_mse", f64(wmse)},
             {"k_f64", f64(k64)},
             {"m_f64", f64(m64)},
             {"j_f64", f64(j64)},
             {"input_std_f64", f64(std64)},
             {"k_f32", k32},
             {"m_f32", m32},
             {"j_f32", j32},
             {"input_std_f32", std32},
             {"input_scale_f32", 1.0 / std32},
             {"prior_std_f32", f32(prior)},
             {"posterior_std_f32", (f32(plog) * 0.5).exp()},
             {"sqrt_etas_f32", se32},
             {"etas_f32", e32},
             {"one_minus_etas_f32", f32(one_minus)},
             {"posterior_mean_coef1_f32", f32(c1)},
             {"posterior_mean_coef2_f32", f32(c2)}};
}

at::Tensor Schedule::get(const std::string& key) const {
  if (key == "timestep_map") return at::tensor(map_, at::kLong);
  for (auto& [k, v] : arrays_)
    if (k == key) return v;
  std::string known = "timestep_map";
  for (auto& [k, v] : arrays_) known += ", " + k;
  throw Error(SINSR_ERR_NOT_FOUND, "sampler schedule has no array '" + key + "' (known: " + known + ")");
}

std::vector<std::string> Schedule::keys() const {
  std::vector<std::string> out{"timestep_map"};
  for (auto& [k, v] : arrays_) out.push_back(k);
  return out;
}

void Schedule::check_t(const at::Tensor& t, const at::Tensor& x, const char* what) const {
  require(t.defined() && x.defined(), SINSR_ERR_INVALID_ARGUMENT, std::string(what) + ": undefined tensor");
  require(!at::isFloatingType(t.scalar_type()) && !at::isComplexType(t.scalar_type()), SINSR_ERR_INVALID_ARGUMENT,
          std::string(what) + ": t must be an integer tensor of step indices, got " +
              std::string(c10::toString(t.scalar_type())));
  require(x.dim() >= 1 && t.dim() <= 1 && (t.numel() == 1 || t.numel() == x.size(0)), SINSR_ERR_INVALID_ARGUMENT,
          std::string(what) + ": t needs one index per batch element (" + std::to_string(x.dim() ? x.size(0) : 0) +
              "), got shape " + sdk::describe_shape(t));
  const int64_t lo = t.min().item<int64_t>(), hi = t.max().item<int64_t>();
  require(lo >= 0 && hi < num_steps(), SINSR_ERR_INVALID_ARGUMENT,
          std::string(what) + ": step index " + std::to_string(lo < 0 ? lo : hi) + " outside 0.." +
              std::to_string(num_steps() - 1));
}

at::Tensor Schedule::coef(const std::string& key, const at::Tensor& t, const at::Tensor& like) const {
  return sdk::coef_at(get(key), t, like).to(at::kFloat);
}

at::Tensor Schedule::model_timesteps(int64_t index, int64_t batch, const c10::Device& device) const {
  return at::full({batch}, map_.at(size_t(index)), at::TensorOptions().dtype(at::kLong).device(device));
}

at::Tensor Schedule::scale_input(const at::Tensor& x_t, const at::Tensor& t) const {
  check_t(t, x_t, "scale_input");
  if (!o_.normalize_input) return x_t;
  return x_t / coef("input_std_f32", t, x_t);
}

at::Tensor Schedule::q_sample(const at::Tensor& x0, const at::Tensor& y, const at::Tensor& t,
                              const at::Tensor& noise) const {
  check_t(t, x0, "q_sample");
  require(y.defined() && noise.defined() && y.sizes() == x0.sizes() && noise.sizes() == x0.sizes(),
          SINSR_ERR_INVALID_ARGUMENT,
          "q_sample: x0 " + sdk::describe_shape(x0) + ", y " + sdk::describe_shape(y) + " and noise " +
              sdk::describe_shape(noise) + " must have one shape");
  return coef("etas_f32", t, x0) * (y - x0) + x0 + coef("prior_std_f32", t, x0) * noise;
}

at::Tensor Schedule::prior(const at::Tensor& y, const at::Tensor& noise) const {
  require(y.defined() && noise.defined() && y.dim() >= 1 && y.sizes() == noise.sizes(), SINSR_ERR_INVALID_ARGUMENT,
          "prior: y " + sdk::describe_shape(y) + " and noise " + sdk::describe_shape(noise) + " must have one shape");
  at::Tensor t = at::full({y.size(0)}, num_steps() - 1, at::kLong);
  return y + coef("prior_std_f32", t, y) * noise;
}

at::Tensor Schedule::pred_xstart(const at::Tensor& out, const at::Tensor& x_t, const at::Tensor& y,
                                 const at::Tensor& t) const {
  at::Tensor x0;
  switch (o_.predict) {
    case Predict::XStart: x0 = out; break;
    case Predict::Residual: x0 = y - out; break;
    case Predict::Epsilon:
      x0 = (x_t - coef("sqrt_etas_f32", t, x_t) * o_.kappa * out - coef("etas_f32", t, x_t) * y) /
           coef("one_minus_etas_f32", t, x_t);
      break;
    case Predict::EpsilonScale:
      x0 = (x_t - out - coef("etas_f32", t, x_t) * y) / coef("one_minus_etas_f32", t, x_t);
      break;
  }
  return o_.clip_denoised ? x0.clamp(-1, 1) : x0;
}

}  // namespace resshift
}  // namespace sinsr
