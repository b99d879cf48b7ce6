// Pointwise losses L(pred, target) = reduce(w * rho(pred - target)); differentiable by LibTorch.
#pragma once

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <string>

namespace sinsr {
namespace losses {

enum class Kind { MSE, L1, Charbonnier };

struct Options {
  std::string reduction = "mean";  // mean | sum | per_sample (mean over all but the batch dim)
  double eps = 1e-3;               // Charbonnier: sqrt(d^2 + eps^2)
  double weight = 1.0;
  static Options from_json(const nlohmann::json& config);
};

at::Tensor pointwise(Kind kind, const at::Tensor& pred, const at::Tensor& target, const Options& o);

}  // namespace losses
}  // namespace sinsr
