// The "pointwise" plugin: mse, l1 and charbonnier losses; backward comes from the SDK's tape.
#include "losses.hpp"

#include <sinsr/sdk.hpp>

#include <string>

namespace {

using sinsr::losses::Kind;

template <Kind K>
class PointwiseLoss : public sinsr::sdk::Loss {
 public:
  explicit PointwiseLoss(const nlohmann::json& config) : options_(sinsr::losses::parse_options(K, config)) {}
  at::Tensor forward(const at::Tensor& pred, const at::Tensor& target) override {
    return sinsr::losses::pointwise_loss(K, pred, target, options_);
  }

 private:
  sinsr::losses::PointwiseOptions options_;
};

std::string schema(bool with_eps) {
  std::string s = R"js({
  "reduction": {"type": "string", "default": "mean", "doc": "mean | sum | per_sample (mean over all but dim 0, gives [N])"},
  "weight": {"type": "number", "default": 1.0, "doc": "multiplies the reduced loss"})js";
  if (with_eps)
    s += R"js(,
  "eps": {"type": "number", "default": 0.001, "doc": "sqrt((p-t)^2 + eps^2); > 0"})js";
  return s + "\n}";
}

}  // namespace

SINSR_PLUGIN("pointwise", "1.0.0") {
  plugin.add_loss<PointwiseLoss<Kind::MSE>>(
      {"mse", "1.0.0", "mean squared error (p-t)^2", schema(false), SINSR_THREAD_PARALLEL});
  plugin.add_loss<PointwiseLoss<Kind::L1>>(
      {"l1", "1.0.0", "mean absolute error |p-t|", schema(false), SINSR_THREAD_PARALLEL});
  plugin.add_loss<PointwiseLoss<Kind::Charbonnier>>({"charbonnier", "1.0.0",
                                                     "Charbonnier loss sqrt((p-t)^2 + eps^2), a smooth L1",
                                                     schema(true), SINSR_THREAD_PARALLEL});
}
