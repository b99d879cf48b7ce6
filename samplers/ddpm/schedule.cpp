#include "schedule.hpp"

#include <sinsr/sdk.hpp>

#include <algorithm>
#include <cmath>

namespace sinsr {
namespace ddpm {

using sdk::Error;
using sdk::require;

std::vector<double> cosine_betas(int steps, double s) {
  // SRDiff's cosine_beta_schedule (Nichol & Dhariwal), in its order of operations.
  const int n = steps + 1;
  const std::vector<double> x = sdk::linspace(0.0, double(n), n);
  std::vector<double> ac(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double c = std::cos(((x[i] / double(n)) + s) / (1 + s) * M_PI * 0.5);
    ac[i] = c * c;
  }
  const double first = ac[0];
  for (double& v : ac) v = v / first;
  std::vector<double> betas(static_cast<size_t>(steps));
  for (size_t i = 0; i < betas.size(); ++i) betas[i] = std::min(std::max(1 - (ac[i + 1] / ac[i]), 0.0), 0.999);
  return betas;
}

std::vector<int64_t> spaced_indices(int64_t size, int64_t steps) {
  require(steps >= 1 && steps <= size, SINSR_ERR_INVALID_ARGUMENT,
          kWho + ": respace \"subsequence\" takes 1 to " + std::to_string(size) +
              " steps of the configured chain, got " + std::to_string(steps));
  return sdk::evenly_spaced_steps(size, steps);
}

std::vector<double> subsequence_betas(const Chain& chain, const std::vector<int64_t>& indices) {
  const at::Tensor ab = at::cumprod(at::rsub(chain.get("betas_float64"), 1), 0);
  const double* a = ab.data_ptr<double>();
  std::vector<double> betas;
  double prev = 1.0;
  for (int64_t k : indices) {
    betas.push_back(1.0 - a[k] / prev);
    prev = a[k];
  }
  return betas;
}

Chain::Chain(const ChainSpec& spec) : spec_(spec), size_(spec.steps) {
  require(spec.steps >= 1, SINSR_ERR_INVALID_ARGUMENT, kWho + ": a chain needs at least one step");
  const at::ScalarType dt = spec.float64 ? at::kDouble : at::kFloat;
  const int64_t n = spec.steps;
  at::Tensor b;
  if (!spec.betas.empty()) {
    require(int64_t(spec.betas.size()) == n, SINSR_ERR_INVALID_ARGUMENT, kWho + ": betas and steps disagree");
    b = at::tensor(spec.betas, at::kDouble).to(dt);
  } else if (spec.schedule == BetaSchedule::Linear) {
    // SR3 builds its betas with torch.linspace in float32, SRDiff with np.linspace in float64.
    b = spec.float64 ? at::tensor(sdk::linspace(spec.beta_start, spec.beta_end, spec.steps), at::kDouble)
                     : at::linspace(spec.beta_start, spec.beta_end, n, at::kFloat);
    if (spec.last_beta_0999) b[n - 1] = 0.999;
  } else {
    b = at::tensor(cosine_betas(spec.steps, spec.cosine_s), at::kDouble).to(dt);
  }
  // Every derived array in the chain's arithmetic, with the references' operations.
  const at::Tensor a = at::rsub(b, 1);
  const at::Tensor ab = at::cumprod(a, 0);
  const at::Tensor abp = at::cat({at::ones({1}, b.options()), ab.slice(0, 0, n - 1)});
  const at::Tensor one_m_ab = at::rsub(ab, 1);
  const at::Tensor one_m_abp = at::rsub(abp, 1);
  const at::Tensor pv = b * one_m_abp / one_m_ab;
  std::map<std::string, at::Tensor> m = {
      {"betas", b},
      {"alphas", a},
      {"alphas_cumprod", ab},
      {"alphas_cumprod_prev", abp},
      {"sqrt_alphas_cumprod", at::sqrt(ab)},
      {"sqrt_one_minus_alphas_cumprod", at::sqrt(one_m_ab)},
      {"log_one_minus_alphas_cumprod", at::log(one_m_ab)},
      {"sqrt_recip_alphas_cumprod", at::sqrt(at::reciprocal(ab))},
      {"sqrt_recipm1_alphas_cumprod", at::sqrt(at::reciprocal(ab) - 1)},
      {"posterior_variance", pv},
      {"posterior_log_variance_clipped", at::log(at::clamp_min(pv, 1e-20))},
      {"posterior_mean_coef1", b * at::sqrt(abp) / one_m_ab},
      {"posterior_mean_coef2", one_m_abp * at::sqrt(a) / one_m_ab},
      // SR3's names.
      {"alphas_bar", ab},
      {"one_over_sqrt_alphas", at::sqrt(at::reciprocal(a))},
      {"betas_over_sqrt_one_minus_alphas_bar", b / at::sqrt(one_m_ab)},
      {"sigmas", at::sqrt(b)},
  };
  for (auto& kv : m) arrays_[kv.first] = kv.second.to(at::kFloat).contiguous();
  arrays_["betas_float64"] = b.to(at::kDouble).contiguous();
}

const at::Tensor& Chain::get(const std::string& key) const {
  auto it = arrays_.find(key);
  if (it != arrays_.end()) return it->second;
  std::string known;
  for (const auto& kv : arrays_) known += (known.empty() ? "" : ", ") + kv.first;
  throw Error(SINSR_ERR_NOT_FOUND, kWho + ": no schedule array '" + key + "' (known: " + known + ")");
}

std::vector<std::string> Chain::keys() const {
  std::vector<std::string> k;
  for (const auto& kv : arrays_) k.push_back(kv.first);
  return k;
}

at::Tensor Chain::coef(const std::string& key, const at::Tensor& t, const at::Tensor& like) const {
  return sdk::coef_at(get(key), t, like);
}

}  // namespace ddpm
}  // namespace sinsr
