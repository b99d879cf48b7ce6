// Backbone "sr3_unet": the SR3 UNet (novwaul/SR3) predicting the noise eps of x_t, conditioned on
// the bicubic-upsampled LR image (cond) and the noise level t = sqrt(alpha_bar).
#include "sr3_unet.hpp"

#include <sinsr/checkpoint.hpp>
#include <sinsr/sdk.hpp>

#include <set>
#include <string>

namespace {

class SR3UNetBackbone : public sinsr::sdk::Backbone {
 public:
  explicit SR3UNetBackbone(const nlohmann::json& config)
      : net_(std::make_shared<sinsr::sr3_unet::SR3UNet>(sinsr::sr3_unet::Options::from_json(config))) {}
  torch::nn::Module& module() override { return *net_; }
  sinsr_prediction prediction() const override { return SINSR_PREDICTION_NOISE; }  // epsilon
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cond, const at::Tensor& t) override {
    return net_->forward(x, cond, t);
  }
  void to(c10::Device device, at::ScalarType dtype) override { net_->set_precision(device, dtype); }
  sinsr::sdk::Timesteps timesteps() const override { return sinsr::sdk::Timesteps::noise_level("sqrt_alpha_bar"); }
  // Strict, except that the frequency buffer emb.x (derived from the config, never learned) may
  // be absent, as in files saved from named_parameters().
  void load_weights(const std::string& path, const nlohmann::json& options) override {
    auto state = sinsr::ckpt::read_state_dict(path, options.value("key", std::string()));
    bool has_freqs = false;
    for (auto& kv : state) has_freqs |= kv.first == "emb.x";
    if (!has_freqs)
      for (auto& kv : net_->named_buffers())
        if (kv.key() == "emb.x") state.emplace_back(kv.key(), kv.value().clone());
    try {
      sinsr::ckpt::load_into(*net_, std::move(state), options.value("strict", true));
    } catch (const sinsr::sdk::Error& e) {
      throw sinsr::sdk::Error(e.code(), path + ": " + e.what());
    }
  }

 private:
  std::shared_ptr<sinsr::sr3_unet::SR3UNet> net_;
};

const char* kSchema = R"json({
  "model_channels": {"type": "integer", "default": 64,
    "doc": "base channels C (the reference's C); a multiple of 8"},
  "channel_expansions": {"type": "array", "default": [1, 2, 4, 4, 8, 8],
    "doc": "channel multiplier per level; attention at level len-2; H, W multiples of 2^(len-1)"},
  "emb_expansion": {"type": "integer", "default": 4,
    "doc": "noise-level embedding width = emb_expansion * C"},
  "resblock_per_down_stage": {"type": "integer", "default": 3,
    "doc": "resblocks per down level (up levels use one more)"},
  "dropout": {"type": "number", "default": 0,
    "doc": "dropout inside the resblocks (the reference's drp_rate), training only"},
  "in_channels": {"type": "integer", "default": 6, "doc": "x_t channels plus cond channels"},
  "out_channels": {"type": "integer", "default": 3, "doc": "predicted noise channels"},
  "attention": {"type": "string", "enum": ["corrected", "faithful"], "default": "corrected",
    "doc": "corrected: real single-head attention (the reference since e764e22); faithful: x + proj(GN(x))"}
})json";

}  // namespace

SINSR_PLUGIN("sr3_unet", "1.0.0") {
  plugin.add_backbone<SR3UNetBackbone>(
      {"sr3_unet", "1.0.0",
       "SR3 UNet (novwaul/SR3): eps from x_t, bicubic-upsampled LR and the noise level sqrt(alpha_bar)", kSchema});
}
