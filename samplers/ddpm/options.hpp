// The "ddpm" sampler's configuration: `variant` ("sr3" | "srdiff") picks the defaults of one
// reference code, every other key overrides one of them. Read strictly by config::Reader:
// unknown keys, wrong types and values out of range are refused naming the key.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace sinsr {
namespace ddpm {

// How every message of the sampler names it.
inline const std::string kWho = "sampler 'ddpm'";

enum class Variant { SR3, SRDiff };
enum class BetaSchedule { Linear, Cosine };
// sigma_t of the reverse step: sqrt(beta_t) (SR3) or the clipped posterior std (SRDiff).
enum class Variance { Beta, Posterior };
// What denoise gets as t: sqrt(alpha_bar) as float32 (SR3's gamma) or int64 step indices.
enum class TimestepKind { SqrtAlphaBar, Index };
// What a step count other than the configured one (the host's --steps) builds: a fresh chain of
// that length (the references), or evenly spaced steps of the configured chain, the network
// seeing their indices in it (improved-diffusion's respacing; keeps an index-conditioned network
// on the noise levels it was trained at).
enum class Respace { Rebuild, Subsequence };

struct Options {
  Variant variant = Variant::SR3;
  BetaSchedule schedule = BetaSchedule::Linear;
  int train_steps = 2000;
  double train_beta_start = 1e-4, train_beta_end = 0.005;
  int sample_steps = 100;
  double sample_beta_start = 1e-4, sample_beta_end = 0.1;
  double cosine_s = 0.008;
  Variance variance = Variance::Beta;
  bool clip_x0 = false;
  bool residual = false;
  double res_rescale = 2.0;
  TimestepKind timestep = TimestepKind::SqrtAlphaBar;
  // Draw (and discard) a noise tensor at the last step too, as SRDiff's p_sample does, so a
  // replayed or seeded noise stream lines up with it.
  bool final_noise = false;
  // Arithmetic of the schedule arrays: SR3 builds them with float32 torch ops, SRDiff in
  // float64 numpy. Both store float32 for the sampling arithmetic.
  bool float64_schedule = false;
  // Scales the prior and every step's noise: 1 samples as the references do; below 1 trades
  // detail for fidelity (SRFlow's sampling temperature); 0 follows the posterior means.
  double temperature = 1.0;
  Respace respace = Respace::Rebuild;

  // The defaults of one reference code.
  static Options defaults(Variant v);
  // The strict reader (null or {} = the sr3 defaults).
  static Options from_json(const nlohmann::json& config);
  // Range and consistency checks (also after a respace); throws naming the key.
  void check() const;
  // Every key with its resolved value (what from_json would read back to the same options).
  nlohmann::json to_json() const;
};

// The config_schema JSON: key -> {type, default, doc} (defaults of the default variant, sr3).
const std::string& config_schema();

}  // namespace ddpm
}  // namespace sinsr
