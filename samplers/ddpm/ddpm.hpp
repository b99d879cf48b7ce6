// Ancestral DDPM sampling for eps-prediction networks, as SR3 (novwaul/SR3) and SRDiff
// (LeiaLi/SRDiff) compute it. See README.md beside this file for the contract.
//
// Two chains: the training chain (train_steps; training_example and q_sample) and the sampling
// chain (sample_steps; sample, respace). SR3 keeps them apart (2000 training steps with
// betas 1e-4..0.005, 100 sampling steps with 1e-4..0.1); SRDiff samples the chain it trains
// on, and a respace builds a fresh N-step schedule, as building its GaussianDiffusion with
// timesteps = N does.
//
// Per step i = S-1..0 the network gets x_t unscaled and t = sqrt(alpha_bar_i) (float32) or i
// (int64); then
//   clip_x0 false (SR3):  x = 1/sqrt(alpha_i) * (x - beta_i/sqrt(1 - alpha_bar_i) * eps)
//   clip_x0 true (SRDiff): x0 = clamp(sqrt(1/alpha_bar_i) x - sqrt(1/alpha_bar_i - 1) eps, -1, 1),
//                          x = coef1_i x0 + coef2_i x
// plus sigma_i z for i > 0 (sigma: sqrt(beta) or the clipped posterior std). SR3 draws no z at
// i = 0; SRDiff draws one and discards it (final_noise).
#pragma once

#include "options.hpp"
#include "schedule.hpp"

#include <sinsr/sdk.hpp>

namespace sinsr {
namespace ddpm {

class DdpmSampler : public sdk::Sampler {
 public:
  explicit DdpmSampler(const nlohmann::json& config) : DdpmSampler(Options::from_json(config)) {}
  explicit DdpmSampler(const Options& options);

  const Options& options() const { return o_; }
  const Chain& train_chain() const { return train_; }
  const Chain& sample_chain() const { return sample_; }
  // Every key schedule() answers: the sampling chain's arrays under their own names and with
  // a "sample_" prefix (SR3's), the training chain's with "train_", and "timesteps" (what
  // denoise gets at each sampling index).
  std::vector<std::string> schedule_keys() const;

  int num_steps() const override { return int(sample_.size()); }
  at::Tensor schedule(const std::string& key) const override;
  at::Tensor prior(const at::Tensor& y, const at::Tensor& noise) override;
  at::Tensor sample(const at::Tensor& y, const at::Tensor& x_T, const sdk::SampleCallbacks& cb) override;
  at::Tensor q_sample(const at::Tensor& x0, const at::Tensor& y, const at::Tensor& t, const at::Tensor& noise) override;
  at::Tensor scale_input(const at::Tensor& x_t, const at::Tensor& t) override;
  void respace(int steps) override;
  sdk::Timesteps timesteps() const override;
  sinsr_prediction prediction() const override { return SINSR_PREDICTION_NOISE; }  // both references: epsilon
  sdk::TrainingExample training_example(const at::Tensor& x0, const at::Tensor& y,
                                        const sdk::SampleCallbacks& cb) override;

 private:
  // x0 in the chain's space: the clamped, rescaled residual over y, or x0 itself.
  at::Tensor to_chain(const at::Tensor& x0, const at::Tensor& y) const;
  at::Tensor network_t(int64_t index, int64_t batch, const c10::Device& device) const;
  void check_indices(const at::Tensor& t, const at::Tensor& x, const char* what) const;

  Options o_;
  Chain train_, sample_;
  // The configured sampling chain, and (respace "subsequence") the index in it of each step of
  // sample_; empty: the identity.
  Chain configured_;
  std::vector<int64_t> indices_;
};

ChainSpec train_spec(const Options& o);
ChainSpec sample_spec(const Options& o);

}  // namespace ddpm
}  // namespace sinsr
