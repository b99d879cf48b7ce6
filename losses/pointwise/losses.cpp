#include "losses.hpp"

#include <sinsr/config.hpp>
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

PointwiseOptions parse_options(Kind kind, const nlohmann::json& config) {
  config::Reader r(std::string("loss '") + kind_name(kind) + "'", config);
  PointwiseOptions o;
  const std::string reduction = r.string("reduction", "mean", {"mean", "sum", "per_sample"});
  o.reduction = reduction == "sum"          ? Reduction::Sum
                : reduction == "per_sample" ? Reduction::PerSample
                                            : Reduction::Mean;
  o.weight = r.number("weight", o.weight);
  // eps = 0 leaves the gradient at zero error undefined.
  if (kind == Kind::Charbonnier) o.eps = r.number("eps", o.eps, config::Range::above(0));
  r.finish();
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
