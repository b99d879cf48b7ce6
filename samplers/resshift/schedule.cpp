#include "schedule.hpp"

#include <sinsr/sdk.hpp>

#include <cmath>
#include <set>

namespace sinsr {
namespace resshift {

using sdk::Error;
using sdk::require;

ScheduleOptions ScheduleOptions::from_json(const nlohmann::json& p) {
  ScheduleOptions o;
  auto num = [&](const char* key, double& dst) {
    if (p.contains(key) && !p[key].is_null()) dst = p[key].get<double>();
  };
  auto integer = [&](const char* key, int& dst) {
    if (p.contains(key) && !p[key].is_null()) dst = p[key].get<int>();
  };
  if (p.contains("schedule_name")) o.schedule_name = p["schedule_name"].get<std::string>();
  if (p.contains("schedule_kwargs") && p["schedule_kwargs"].is_object()) {
    const auto& kw = p["schedule_kwargs"];
    if (kw.contains("power")) o.power = kw["power"].get<double>();
  }
  integer("steps", o.steps);
  num("min_noise_level", o.min_noise_level);
  num("etas_end", o.etas_end);
  num("kappa", o.kappa);
  if (p.contains("predict_type")) o.predict_type = p["predict_type"].get<std::string>();
  if (p.contains("normalize_input")) o.normalize_input = p["normalize_input"].get<bool>();
  if (p.contains("latent_flag")) o.latent_flag = p["latent_flag"].get<bool>();
  integer("timestep_respacing", o.timestep_respacing);
  integer("sample_steps", o.sample_steps);
  if (p.contains("clip_denoised")) o.clip_denoised = p["clip_denoised"].get<bool>();
  require(o.steps >= 1, SINSR_ERR_INVALID_ARGUMENT, "diffusion steps must be >= 1");
  require(o.kappa > 0, SINSR_ERR_INVALID_ARGUMENT, "kappa must be > 0");
  require(o.timestep_respacing >= 0 && o.timestep_respacing <= o.steps, SINSR_ERR_INVALID_ARGUMENT,
          "timestep_respacing must be between 1 and steps (" + std::to_string(o.steps) + ")");
  require(o.sample_steps >= 0 && o.sample_steps <= o.steps, SINSR_ERR_INVALID_ARGUMENT,
          "cannot sample with " + std::to_string(o.sample_steps) + " steps: the model has " +
              std::to_string(o.steps) + " (use 1.." + std::to_string(o.steps) + ")");
  require(o.predict_type == "xstart", SINSR_ERR_UNSUPPORTED,
          "predict_type '" + o.predict_type + "' is not supported (SinSR and ResShift predict xstart)");
  return o;
}

Schedule::Schedule(const ScheduleOptions& o) : o_(o) {
  require(o.schedule_name == "exponential", SINSR_ERR_UNSUPPORTED,
          "schedule_name '" + o.schedule_name + "' is not supported (exponential)");
  const int T = o.steps;
  const double start = std::min({o.min_noise_level / o.kappa, o.min_noise_level, std::sqrt(0.001)});
  const double increaser = T > 1 ? std::exp(1.0 / (T - 1) * std::log(o.etas_end / start)) : 1.0;
  std::vector<double> full(T);
  for (int t = 0; t < T; ++t) {
    double lin = T > 1 ? double(t) / double(T - 1) : 0.0;
    double pt = std::pow(lin, o.power) * (T - 1);
    full[t] = std::pow(increaser, pt) * start;
  }
  std::set<int64_t> keep;
  if (o.sample_steps > 0) {
    const int S = o.sample_steps;
    if (S == 1) keep.insert(T - 1);
    for (int x = 0; S > 1 && x < S; ++x) keep.insert(int64_t(std::llround(double(x) * (T - 1) / double(S - 1))));
  } else if (o.timestep_respacing > 0 && o.timestep_respacing != T) {
    for (int x = 0; x < o.timestep_respacing; ++x) keep.insert(int64_t(double(T) / o.timestep_respacing * x));
  } else {
    for (int t = 0; t < T; ++t) keep.insert(t);
  }
  for (auto k : keep) {
    map_.push_back(k);
    sqrt_etas_.push_back(full[k]);
  }

  const int64_t S = num_steps();
  const double kappa = o.kappa;
  std::vector<double> etas(S), prev(S), alpha(S), pv(S), pvc(S), plog(S), c1(S), c2(S), d1(S), d2(S), wmse(S);
  std::vector<double> k64(S), m64(S), j64(S), std64(S);
  for (int64_t t = 0; t < S; ++t) {
    etas[t] = sqrt_etas_[t] * sqrt_etas_[t];
    prev[t] = t == 0 ? 0.0 : sqrt_etas_[t - 1] * sqrt_etas_[t - 1];
  }
  for (int64_t t = 0; t < S; ++t) {
    alpha[t] = etas[t] - prev[t];
    pv[t] = kappa * kappa * prev[t] / etas[t] * alpha[t];
    c1[t] = prev[t] / etas[t];
    c2[t] = alpha[t] / etas[t];
    d1[t] = prev[t] * etas[t];
    d2[t] = prev[t] / etas[t];
    k64[t] = 1 - prev[t] + std::sqrt(prev[t] * etas[t]) - std::sqrt(prev[t] / etas[t]);
    m64[t] = std::sqrt(prev[t] / etas[t]);
    j64[t] = prev[t] - std::sqrt(prev[t] * etas[t]);
    std64[t] = o.latent_flag ? std::sqrt(etas[t] * kappa * kappa + 1) : kappa * sqrt_etas_[t] * 3 + 1;
  }
  for (int64_t t = 0; t < S; ++t) {
    pvc[t] = (t == 0 && S > 1) ? pv[1] : pv[t];
    plog[t] = std::log(pvc[t]);
    // The MSE weight of weighted_mse (unused by SinSR: its loss is plain MSE).
    wmse[t] = 0.5 / pvc[t] * (alpha[t] / etas[t]) * (alpha[t] / etas[t]);
  }
  auto f64 = [&](const std::vector<double>& v) { return at::tensor(v, at::kDouble); };
  auto f32 = [&](const std::vector<double>& v) { return f64(v).to(at::kFloat); };
  at::Tensor e32 = f32(etas), p32 = f32(prev), se32 = f32(sqrt_etas_);
  // float32 arithmetic as the official sampler does it: from the float64 products
  // etas_prev*etas and etas_prev/etas (ddim_coef1/2), cast to float32, then sqrt.
  at::Tensor dc1 = f32(d1), dc2 = f32(d2);
  at::Tensor k32 = 1 - p32 + dc1.sqrt() - dc2.sqrt();
  at::Tensor m32 = dc2.sqrt();
  at::Tensor j32 = p32 - dc1.sqrt();
  at::Tensor std32 = o.latent_flag ? (e32 * float(kappa * kappa) + 1).sqrt() : se32 * float(kappa) * 3 + 1;
  at::Tensor scale32 = 1.0 / std32;
  std::vector<double> prior(S);
  for (int64_t t = 0; t < S; ++t) prior[t] = kappa * sqrt_etas_[t];
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
             {"k_f32", k32},
             {"m_f32", m32},
             {"j_f32", j32},
             {"input_std_f64", f64(std64)},
             {"input_std_f32", std32},
             {"input_scale_f32", scale32},
             {"prior_std_f32", f32(prior)},
             {"sqrt_etas_f32", se32},
             {"etas_f32", e32},
             {"posterior_mean_coef1_f32", f32(c1)},
             {"posterior_mean_coef2_f32", f32(c2)},
             {"posterior_std_f32", (f32(plog) * 0.5f).exp()}};
}

at::Tensor Schedule::get(const std::string& key) const {
  if (key == "timestep_map") return at::tensor(map_, at::kLong);
  for (auto& [k, v] : arrays_)
    if (k == key) return v;
  std::string known = "timestep_map";
  for (auto& [k, v] : arrays_) known += ", " + k;
  throw Error(SINSR_ERR_NOT_FOUND, "no schedule array '" + key + "' (known: " + known + ")");
}

at::Tensor Schedule::at_t(const std::string& key, const at::Tensor& t, const at::Tensor& like) const {
  at::Tensor v = get(key).to(like.device()).index_select(0, t.to(like.device(), at::kLong).reshape({-1}));
  std::vector<int64_t> shape(like.dim(), 1);
  shape[0] = -1;
  return v.to(at::kFloat).view(shape);
}

at::Tensor Schedule::scale_input(const at::Tensor& x_t, const at::Tensor& t) const {
  if (!o_.normalize_input) return x_t;
  return x_t / at_t("input_std_f32", t, x_t);
}

at::Tensor Schedule::q_sample(const at::Tensor& x0, const at::Tensor& y, const at::Tensor& t, const at::Tensor& noise) const {
  return at_t("etas_f32", t, x0) * (y - x0) + x0 + at_t("sqrt_etas_f32", t, x0) * float(o_.kappa) * noise;
}

at::Tensor Schedule::prior(const at::Tensor& y, const at::Tensor& noise) const {
  at::Tensor t = at::full({y.size(0)}, num_steps() - 1, at::kLong);
  return y + at_t("prior_std_f32", t, y) * noise;
}

at::Tensor Schedule::timesteps_for(int64_t index, int64_t batch, const c10::Device& device) const {
  return at::full({batch}, map_[size_t(index)], at::TensorOptions().dtype(at::kLong).device(device));
}

at::Tensor sample(const Schedule& s, Rule rule, const at::Tensor& y, const at::Tensor& x_T, const Denoise& denoise,
                  const Noise& noise, const Progress& progress) {
  const int64_t S = s.num_steps(), b = x_T.size(0);
  const int total = rule == Rule::SingleStep ? 1 : int(S);
  at::Tensor x = x_T;
  for (int64_t i = S - 1, done = 0; i >= 0; --i, ++done) {
    at::Tensor t = at::full({b}, i, at::TensorOptions().dtype(at::kLong).device(x.device()));
    at::Tensor pred = denoise(s.scale_input(x, t), s.timesteps_for(i, b, x.device())).to(x.scalar_type());
    if (s.options().clip_denoised) pred = pred.clamp(-1.0, 1.0);
    if (rule == Rule::SingleStep) {
      x = pred;
    } else if (rule == Rule::Deterministic) {
      x = pred * s.at_t("k_f32", t, x) + s.at_t("m_f32", t, x) * x + s.at_t("j_f32", t, x) * y;
    } else {
      at::Tensor mean = s.at_t("posterior_mean_coef1_f32", t, x) * x + s.at_t("posterior_mean_coef2_f32", t, x) * pred;
      at::Tensor eps = noise(x);
      x = i == 0 ? mean : mean + s.at_t("posterior_std_f32", t, x) * eps;
    }
    if (progress && !progress(int(done + 1), total)) throw Error(SINSR_ERR_CANCELLED, "sampling cancelled");
    if (rule == Rule::SingleStep) break;
  }
  return x;
}

}  // namespace resshift
}  // namespace sinsr
