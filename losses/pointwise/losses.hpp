// Elementwise losses between a prediction and a target, reduced over everything but the batch
// (per_sample) or to one number (mean, sum), then scaled by a weight.
#pragma once

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <string>

namespace sinsr {
namespace losses {

enum class Kind { MSE, L1, Charbonnier };
enum class Reduction { Mean, Sum, PerSample };

struct PointwiseOptions {
  Reduction reduction = Reduction::Mean;
  double eps = 1e-3;  // charbonnier only
  double weight = 1.0;
};

// Reads "reduction", "eps" (charbonnier only) and "weight"; throws sdk::Error
// (SINSR_ERR_INVALID_ARGUMENT) naming the component and the key on unknown keys, wrong types
// and out-of-range values.
PointwiseOptions parse_options(Kind kind, const nlohmann::json& config);

const char* kind_name(Kind kind);

// Per-element loss: (p-t)^2, |p-t| or sqrt((p-t)^2 + eps^2).
at::Tensor elementwise(Kind kind, const at::Tensor& pred, const at::Tensor& target, double eps);

// Differentiable in pred. per_sample needs a batch dimension and gives shape [N]
// (mean over the remaining dimensions); mean and sum give a 0-d tensor.
at::Tensor pointwise_loss(Kind kind, const at::Tensor& pred, const at::Tensor& target, const PointwiseOptions& o);

}  // namespace losses
}  // namespace sinsr
