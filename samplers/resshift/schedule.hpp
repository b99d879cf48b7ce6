// The ResShift eta schedule and the three sampling rules that use it. Arrays are float64 as in
// the official code; every per-step coefficient is cast to float32 before it touches a tensor.
#pragma once

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <vector>

namespace sinsr {
namespace resshift {

struct ScheduleOptions {
  std::string schedule_name = "exponential";
  double power = 0.3;            // schedule_kwargs.power
  int steps = 15;                // T of the trained model
  double min_noise_level = 0.04;
  double etas_end = 0.99;        // sqrt(eta) at the last step
  double kappa = 2.0;
  std::string predict_type = "xstart";
  bool normalize_input = true;
  bool latent_flag = true;
  // Official respacing (`timestep_respacing`): keeps {int(T/S * x)}, as the official code does.
  int timestep_respacing = 0;
  // Our respacing (`sample_steps`): S evenly spaced steps that always include the first and the
  // last, so one step is exactly SinSR's one-call inference at t = T-1.
  int sample_steps = 0;
  bool clip_denoised = false;

  // From the official `diffusion.params` keys (plus sample_steps, clip_denoised).
  static ScheduleOptions from_json(const nlohmann::json& params);
};

class Schedule {
 public:
  explicit Schedule(const ScheduleOptions& options);

  int64_t num_steps() const { return int64_t(sqrt_etas_.size()); }
  const ScheduleOptions& options() const { return o_; }
  // Any key of the official schedule (float64 unless it ends in _f32), or "timestep_map".
  at::Tensor get(const std::string& key) const;

  // Per-sample float32 coefficient of a [S] array, shaped to broadcast over x.
  at::Tensor at_t(const std::string& key, const at::Tensor& t, const at::Tensor& like) const;
  at::Tensor scale_input(const at::Tensor& x_t, const at::Tensor& t) const;
  at::Tensor q_sample(const at::Tensor& x0, const at::Tensor& y, const at::Tensor& t, const at::Tensor& noise) const;
  at::Tensor prior(const at::Tensor& y, const at::Tensor& noise) const;
  at::Tensor timesteps_for(int64_t index, int64_t batch, const c10::Device& device) const;  // mapped

 private:
  ScheduleOptions o_;
  std::vector<double> sqrt_etas_;
  std::vector<int64_t> map_;
  std::vector<std::pair<std::string, at::Tensor>> arrays_;
};

using Denoise = std::function<at::Tensor(const at::Tensor& x_in, const at::Tensor& t)>;
using Noise = std::function<at::Tensor(const at::Tensor& like)>;
using Progress = std::function<bool(int step, int total)>;

enum class Rule { Stochastic, Deterministic, SingleStep };

// Runs the sampling loop from x_T; throws on cancellation.
at::Tensor sample(const Schedule& s, Rule rule, const at::Tensor& y, const at::Tensor& x_T, const Denoise& denoise,
                  const Noise& noise, const Progress& progress);

}  // namespace resshift
}  // namespace sinsr
