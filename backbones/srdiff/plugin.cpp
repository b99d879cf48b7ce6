// Backbone "srdiff": SRDiff's RRDB LR encoder and conditional Unet, f(x_t, LR, t) -> eps on the
// residual image (the sampler maps it back with up(LR)); or, with output "rrdb", the RRDB's own
// SR image for pre-training it. Reference GaussianDiffusion checkpoints load unchanged.
#include "srdiff.hpp"

#include <sinsr/sdk.hpp>

namespace {

class SRDiffBackbone : public sinsr::sdk::Backbone {
 public:
  explicit SRDiffBackbone(const nlohmann::json& config)
      : net_(std::make_shared<sinsr::srdiff::SRDiff>(sinsr::srdiff::Options::from_json(config))) {}
  torch::nn::Module& module() override { return *net_; }
  sinsr_prediction prediction() const override { return SINSR_PREDICTION_NOISE; }  // epsilon
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cond, const at::Tensor& t) override {
    return net_->forward(x, cond, t);
  }
  void load_weights(const std::string& path, const nlohmann::json& options) override {
    sinsr::srdiff::load_weights(*net_, path, options);
  }

 private:
  std::shared_ptr<sinsr::srdiff::SRDiff> net_;
};

}  // namespace

SINSR_PLUGIN("srdiff", "1.0.0") {
  plugin.add_backbone<SRDiffBackbone>(
      {"srdiff", "1.0.0",
       "SRDiff (RRDB LR encoder + conditional Unet), eps on the residual image; reference checkpoints load unchanged",
       sinsr::srdiff::kConfigSchema});
}
