#include "losses.hpp"

#include <sinsr/sdk.hpp>

namespace sinsr {
namespace losses {

Options Options::from_json(const nlohmann::json& c) {
  Options o;
  for (auto& [k, v] : c.items())
    sdk::require(k == "reduction" || k == "eps" || k == "weight", SINSR_ERR_INVALID_ARGUMENT,
                 "unknown loss option '" + k + "' (reduction, eps, weight)");
  o.reduction = c.value("reduction", o.reduction);
  o.eps = c.value("eps", o.eps);
  o.weight = c.value("weight", o.weight);
  sdk::require(o.reduction == "mean" || o.reduction == "sum" || o.reduction == "per_sample", SINSR_ERR_INVALID_ARGUMENT,
               "reduction must be mean, sum or per_sample, not '" + o.reduction + "'");
  sdk::require(o.eps > 0, SINSR_ERR_INVALID_ARGUMENT, "eps must be > 0");
  return o;
}

at::Tensor pointwise(Kind kind, const at::Tensor& pred, const at::Tensor& target, const Options& o) {
  sdk::require(pred.sizes() == target.sizes(), SINSR_ERR_INVALID_ARGUMENT, "pred and target shapes differ");
  at::Tensor d = pred - target;
  at::Tensor r;
  switch (kind) {
    case Kind::MSE: r = d * d; break;
    case Kind::L1: r = d.abs(); break;
    case Kind::Charbonnier: r = (d * d + o.eps * o.eps).sqrt(); break;
  }
  if (o.reduction == "sum") r = r.sum();
  else if (o.reduction == "per_sample") r = r.reshape({r.size(0), -1}).mean(1);
  else r = r.mean();
  return o.weight == 1.0 ? r : r * o.weight;
}

}  // namespace losses
}  // namespace sinsr
