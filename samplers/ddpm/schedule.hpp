// One DDPM beta chain and every array the two references derive from it, under both sets of
// names: SRDiff's buffers (betas, alphas_cumprod, ..., posterior_mean_coef2) and SR3's
// (alphas_bar, one_over_sqrt_alphas, betas_over_sqrt_one_minus_alphas_bar, sigmas).
#pragma once

#include "options.hpp"

#include <ATen/ATen.h>

#include <map>
#include <string>
#include <vector>

namespace sinsr {
namespace ddpm {

struct ChainSpec {
  BetaSchedule schedule = BetaSchedule::Linear;
  int steps = 1;
  double beta_start = 1e-4, beta_end = 0.02;
  double cosine_s = 0.008;
  bool last_beta_0999 = false;  // SRDiff: a linear schedule with res sets betas[-1] = 0.999
  bool float64 = false;         // arithmetic: float64 (numpy, SRDiff) or float32 torch ops (SR3)
  std::vector<double> betas;    // non-empty: these betas (a respaced chain), steps = their count
};

class Chain {
 public:
  Chain() = default;
  explicit Chain(const ChainSpec& spec);

  int64_t size() const { return size_; }
  const ChainSpec& spec() const { return spec_; }
  // A [size] CPU array: float32, except betas_float64 (float64). Throws naming the known keys.
  const at::Tensor& get(const std::string& key) const;
  std::vector<std::string> keys() const;

  // float32 values at int64 indices t [B], shaped [B,1,...] to broadcast over `like`, on its device.
  at::Tensor coef(const std::string& key, const at::Tensor& t, const at::Tensor& like) const;

 private:
  ChainSpec spec_;
  int64_t size_ = 0;
  std::map<std::string, at::Tensor> arrays_;
};

// The betas alone, in float64 as the references compute them (for tests and docs).
std::vector<double> cosine_betas(int steps, double s);
// `steps` evenly spaced indices of a chain of `size` steps, the first and the last kept
// (steps <= size), and the betas of the chain through them: 1 - alpha_bar[k] / alpha_bar[prev].
std::vector<int64_t> spaced_indices(int64_t size, int64_t steps);
std::vector<double> subsequence_betas(const Chain& chain, const std::vector<int64_t>& indices);

}  // namespace ddpm
}  // namespace sinsr
