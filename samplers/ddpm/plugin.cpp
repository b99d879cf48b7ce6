// Sampler "ddpm": ancestral DDPM sampling for eps-prediction networks, as SR3 (novwaul/SR3) and
// SRDiff (LeiaLi/SRDiff) compute it; `variant` picks one reference's defaults.
//
// Pipeline contract (host/lib/pipeline.cpp run_batch, no codec): images in [-1, 1]; the host
// upsamples the LR by bicubic (unclipped) into y; prior(y, noise) = noise (x_T ~ N(0, I), in
// residual space for SRDiff); sample() calls denoise(x_t, t) once per step with x_t unscaled;
// the backbone adds its own conditioning from the LR (SR3: bicubic-up + clamp, concatenated;
// SRDiff: its RRDB). t is float32 sqrt(alpha_bar) [N] (SR3, a noise level in unit
// "sqrt_alpha_bar") or int64 indices [N] (SRDiff). Noise: SR3 draws at steps S-1..1, SRDiff at
// every step (the one at t = 0 is discarded). Returns an image in [-1, 1]: SR3 clamp(x, -1, 1),
// SRDiff clamp(x, -1, 1) / res_rescale + y.
//
// Training (ABI 1.2 training_example) on the training chain, never a respaced one: SR3 draws
// t in 1..T-1, then alpha_bar uniform in [alphas_bar[t], alphas_bar[t-1]], x_t = gamma x0 +
// sqrt(1 - alpha_bar) eps with gamma = sqrt(alpha_bar) the network's t; SRDiff draws t in 0..T-1
// and noises the clamped, rescaled residual. The target is eps. Randomness comes only from
// the uniform and noise callbacks. Keys, defaults and formulas: README.md and options.cpp.
//
// No state changes during calls (respace comes right after create), hence THREAD_PARALLEL.
#include "ddpm.hpp"

SINSR_PLUGIN("ddpm", "1.0.0") {
  sinsr::sdk::ComponentMeta meta{"ddpm", "1.0.0",
                                 "ancestral DDPM for eps-prediction, as SR3 (variant sr3) or SRDiff (variant srdiff)",
                                 sinsr::ddpm::config_schema()};
  meta.thread_safety = SINSR_THREAD_PARALLEL;
  plugin.add_sampler<sinsr::ddpm::DdpmSampler>(meta);
}
