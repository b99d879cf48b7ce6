#include "losses.hpp"

#include <sinsr/sdk.hpp>

#include <cmath>

namespace sinsr {
namespace losses {

using sdk::Error;

const char* kind_name(Kind kind) {
  switch (kind) {
    case Kind::MSE: return "mse";
    case Kind::L1: return "l1";
    case Kind::Charbonnier: return "charbonnier";
  }
  return "?";
}

namespace {

double number_at(const nlohmann::json& config, const std::string& who, const char* key, double fallback) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return fallback;
  if (!it->is_number())
    throw Error(SINSR_ERR_INVALID_ARGUMENT, who + ": config key '" + key + "' must be a number, got " + it->dump());
  double v = it->get<double>();
  if (!std::isfinite(v)) throw Error(SINSR_ERR_INVALID_ARGUMENT, who + ": config key '" + key + "' must be finite");
  return v;
}

}  // namespace

PointwiseOptions parse_options(Kind kind, const nlohmann::json& config) {
  const std::string who = std::string("loss '") + kind_name(kind) + "'";
  PointwiseOptions o;
  if (config.is_null()) return o;
  if (!config.is_object()) throw Error(SINSR_ERR_INVALID_ARGUMENT, who + ": config must be a JSON object");
  for (auto it = config.begin(); it != config.end(); ++it) {
    const std::string& k = it.key();
    bool known = k == "reduction" || k == "weight" || (k == "eps" && kind == Kind::Charbonnier);
    if (!known) throw Error(SINSR_ERR_INVALID_ARGUMENT, who + ": unknown config key '" + k + "'");
  }
  if (auto it = config.find("reduction"); it != config.end() && !it->is_null()) {
    if (!it->is_string())
      throw Error(SINSR_ERR_INVALID_ARGUMENT, who + ": config key 'reduction' must be a string, got " + it->dump());
    const std::string r = it->get<std::string>();
    if (r == "mean") o.reduction = Reduction::Mean;
    else if (r == "sum") o.reduction = Reduction::Sum;
    else if (r == "per_sample") o.reduction = Reduction::PerSample;
    else
      throw Error(SINSR_ERR_INVALID_ARGUMENT,
                  who + ": config key 'reduction' is '" + r + "'; expected 'mean', 'sum' or 'per_sample'");
  }
  o.weight = number_at(config, who, "weight", o.weight);
  if (kind == Kind::Charbonnier) {
    o.eps = number_at(config, who, "eps", o.eps);
    // eps = 0 leaves the gradient at zero error undefined.
    if (!(o.eps > 0)) throw Error(SINSR_ERR_INVALID_ARGUMENT, who + ": config key 'eps' must be > 0");
  }
  return o;
}

at::Tensor elementwise(Kind kind, const at::Tensor& pred, const at::Tensor& target, double eps) {
  at::Tensor d = pred - target;
  switch (kind) {
    case Kind::MSE: return d * d;
    case Kind::L1: return d.abs();
    case Kind::Charbonnier: return (d * d + eps * eps).sqrt();
  }
  throw Error(SINSR_ERR_INVALID_ARGUMENT, "unknown pointwise loss kind");
}

at::Tensor pointwise_loss(Kind kind, const at::Tensor& pred, const at::Tensor& target, const PointwiseOptions& o) {
  const std::string who = std::string("loss '") + kind_name(kind) + "'";
  if (pred.sizes() != target.sizes()) throw Error(SINSR_ERR_INVALID_ARGUMENT, who + ": pred and target shapes differ");
  if (!at::isFloatingType(pred.scalar_type()))
    throw Error(SINSR_ERR_INVALID_ARGUMENT, who + ": pred must be a floating-point tensor");
  at::Tensor e = elementwise(kind, pred, target.to(pred.scalar_type()), o.eps);
  at::Tensor r;
  switch (o.reduction) {
    case Reduction::Mean: r = e.mean(); break;
    case Reduction::Sum: r = e.sum(); break;
    case Reduction::PerSample:
      if (e.dim() < 1)
        throw Error(SINSR_ERR_INVALID_ARGUMENT, who + ": reduction 'per_sample' needs a batch dimension");
      // A batch of scalars is its own per-sample value.
      r = e.dim() == 1 ? e : e.reshape({e.size(0), -1}).mean(1);
      break;
  }
  return o.weight == 1.0 ? r : r * o.weight;
}

}  // namespace losses
}  // namespace sinsr
