// Losses "mse", "l1" and "charbonnier"; the SDK provides backward through the tape.
#include "losses.hpp"

#include <sinsr/sdk.hpp>

namespace {

template <sinsr::losses::Kind K>
class Pointwise : public sinsr::sdk::Loss {
 public:
  explicit Pointwise(const nlohmann::json& config) : o_(sinsr::losses::Options::from_json(config)) {}
  at::Tensor forward(const at::Tensor& pred, const at::Tensor& target) override {
    return sinsr::losses::pointwise(K, pred, target, o_);
  }

 private:
  sinsr::losses::Options o_;
};

const char* kSchema = R"json({
  "reduction": {"type": "string", "enum": ["mean", "sum", "per_sample"], "default": "mean"},
  "weight": {"type": "number", "default": 1.0},
  "eps": {"type": "number", "default": 0.001, "description": "charbonnier only"}
})json";

}  // namespace

SINSR_PLUGIN("pointwise", "1.0.0") {
  using sinsr::losses::Kind;
  sinsr::sdk::ComponentMeta mse{"mse", "1.0.0", "mean squared error", kSchema, SINSR_THREAD_PARALLEL};
  sinsr::sdk::ComponentMeta l1{"l1", "1.0.0", "mean absolute error", kSchema, SINSR_THREAD_PARALLEL};
  sinsr::sdk::ComponentMeta ch{"charbonnier", "1.0.0", "sqrt(d^2 + eps^2), a smooth L1", kSchema, SINSR_THREAD_PARALLEL};
  plugin.add_loss<Pointwise<Kind::MSE>>(mse);
  plugin.add_loss<Pointwise<Kind::L1>>(l1);
  plugin.add_loss<Pointwise<Kind::Charbonnier>>(ch);
}
