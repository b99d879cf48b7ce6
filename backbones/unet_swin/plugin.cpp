// Backbone "unet_swin": UNetModelSwin configured by the official `model.params` keys (or an
// official YAML through {"config_file": ...}); cond is the LR image.
#include "unet_swin.hpp"

#include <sinsr/config.hpp>
#include <sinsr/sdk.hpp>

namespace {

class UNetSwinBackbone : public sinsr::sdk::Backbone {
 public:
  explicit UNetSwinBackbone(const nlohmann::json& config)
      : net_(std::make_shared<sinsr::unet_swin::UNetModelSwin>(
            sinsr::unet_swin::Options::from_json(sinsr::config::resolve(config, "model")))) {}
  torch::nn::Module& module() override { return *net_; }
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cond, const at::Tensor& t) override {
    return net_->forward(x, t, cond);
  }
  void to(c10::Device device, at::ScalarType dtype) override { net_->set_precision(device, dtype); }

 private:
  std::shared_ptr<sinsr::unet_swin::UNetModelSwin> net_;
};

const char* kSchema = R"json({
  "config_file": {"type": "string", "description": "official YAML (model.params) or a file with top-level params"},
  "image_size": {"type": "integer", "default": 64}, "in_channels": {"type": "integer", "default": 6},
  "model_channels": {"type": "integer", "default": 160}, "out_channels": {"type": "integer", "default": 3},
  "num_res_blocks": {"default": [2, 2, 2, 2]}, "attention_resolutions": {"default": [64, 32, 16, 8]},
  "channel_mult": {"default": [1, 2, 2, 4]}, "dropout": {"type": "number", "default": 0},
  "conv_resample": {"type": "boolean", "default": true}, "num_heads": {"type": "integer", "default": 1},
  "num_head_channels": {"type": "integer", "default": 32}, "use_scale_shift_norm": {"type": "boolean", "default": true},
  "swin_depth": {"type": "integer", "default": 2}, "swin_embed_dim": {"type": "integer", "default": 192},
  "window_size": {"type": "integer", "default": 8}, "mlp_ratio": {"type": "number", "default": 4},
  "cond_lq": {"type": "boolean", "default": true}, "lq_size": {"type": "integer"}
})json";

}  // namespace

SINSR_PLUGIN("unet_swin", "1.0.0") {
  plugin.add_backbone<UNetSwinBackbone>(
      {"unet_swin", "1.0.0", "UNetModelSwin, the ResShift/SinSR denoiser (official checkpoints load unchanged)", kSchema});
}
