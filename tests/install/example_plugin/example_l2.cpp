// A loss component in a dozen lines: the SDK supplies the C tables, tapes and error handling.
#include <sinsr/sdk.hpp>

namespace {

class HalfSquaredError : public sinsr::sdk::Loss {
 public:
  explicit HalfSquaredError(const nlohmann::json& config) : scale_(config.value("scale", 0.5)) {}
  // A 0-d batch loss; returning one value per sample ([N]) would train the same way.
  at::Tensor forward(const at::Tensor& pred, const at::Tensor& target) override {
    return (pred - target).pow(2).mean() * scale_;
  }

 private:
  double scale_;
};

}  // namespace

SINSR_PLUGIN("example_l2", "0.1.0") {
  plugin.add_loss<HalfSquaredError>({"example_l2", "0.1.0", "scale * mean squared error (an out-of-tree example)",
                                     R"({"scale": {"type": "number", "default": 0.5}})"});
}
