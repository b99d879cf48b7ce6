// The ResShift eta schedule. Arrays are float64 as in the official code; every per-step
// coefficient is cast to float32 before it touches a tensor, as `_extract_into_tensor` does.
#pragma once

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <string>
#include <utility>
#include <vector>

namespace sinsr {
namespace resshift {

enum class Predict { XStart, Epsilon, EpsilonScale, Residual };

struct ScheduleOptions {
  std::string schedule_name = "exponential";
  double power = 0.3;                   // schedule_kwargs.power
  std::vector<double> given_sqrt_etas;  // schedule_kwargs.sqrt_etas (the "ldm" schedule)
  int steps = 15;                       // T the model was trained with
  double min_noise_level = 0.04;
  double etas_end = 0.99;  // sqrt(eta) at the last step, not eta
  double kappa = 2.0;
  Predict predict = Predict::XStart;
  bool normalize_input = true;
  bool latent_flag = true;
  // Official respacing (`timestep_respacing`): keeps {int(T/S * x)}, so it may drop t = T-1.
  int timestep_respacing = 0;
  // Our respacing (`sample_steps`): S evenly spaced steps that always keep the first and the
  // last, so one step is exactly SinSR's one-call inference at t = T-1.
  int sample_steps = 0;
  bool clip_denoised = false;

  // From the official `diffusion.params` keys plus sample_steps and clip_denoised; checks types
  // and ranges and names the key in its errors.
  static ScheduleOptions from_json(const nlohmann::json& params);
  // The range and consistency checks from_json applies (also after a respace).
  void check() const;
};

// The config schema of the resshift samplers (the ABI's {"key": {"type", "default", "doc"}}),
// made beside from_json with ScheduleOptions' own defaults.
const std::string& config_schema();

class Schedule {
 public:
  explicit Schedule(const ScheduleOptions& options);

  int64_t num_steps() const { return int64_t(sqrt_etas_.size()); }
  const ScheduleOptions& options() const { return o_; }
  // A [S] array by its schedule.pth name (float64, or float32 for the *_f32 keys), or
  // "timestep_map" (int64: respaced index -> index the network sees).
  at::Tensor get(const std::string& key) const;
  std::vector<std::string> keys() const;

  // float32 coefficient per sample, shaped [B,1,...] to broadcast over `like`, on its device.
  at::Tensor coef(const std::string& key, const at::Tensor& t, const at::Tensor& like) const;
  // The timestep tensor the network sees for respaced index `index`.
  at::Tensor model_timesteps(int64_t index, int64_t batch, const c10::Device& device) const;

  at::Tensor scale_input(const at::Tensor& x_t, const at::Tensor& t) const;
  at::Tensor q_sample(const at::Tensor& x0, const at::Tensor& y, const at::Tensor& t, const at::Tensor& noise) const;
  at::Tensor prior(const at::Tensor& y, const at::Tensor& noise) const;
  // The network output as predicted x0 (predict_type), clamped when clip_denoised.
  at::Tensor pred_xstart(const at::Tensor& out, const at::Tensor& x_t, const at::Tensor& y, const at::Tensor& t) const;

 private:
  void check_t(const at::Tensor& t, const at::Tensor& x, const char* what) const;

  ScheduleOptions o_;
  std::vector<double> sqrt_etas_;
  std::vector<int64_t> map_;
  std::vector<std::pair<std::string, at::Tensor>> arrays_;
};

}  // namespace resshift
}  // namespace sinsr
