// Backbone "unet_swin": UNetModelSwin configured by the official `model.params` keys (or an
// official YAML through {"config_file": ...}); cond is the LR image.
#include "unet_swin.hpp"
#include "unet_swin_detect.hpp"

#include <sinsr/checkpoint.hpp>
#include <sinsr/config.hpp>
#include <sinsr/sdk.hpp>

#include <set>
#include <string>

namespace {

const char* kSchema = R"json({
  "config_file": {"type": "string", "doc": "official YAML (model.params; keys this backbone does not know are dropped) or a file with top-level params"},
  "image_size": {"type": "integer", "default": 64}, "in_channels": {"type": "integer", "default": 6},
  "model_channels": {"type": "integer", "default": 160}, "out_channels": {"type": "integer", "default": 3},
  "num_res_blocks": {"default": [2, 2, 2, 2]}, "attention_resolutions": {"default": [64, 32, 16, 8]},
  "channel_mult": {"default": [1, 2, 2, 4]}, "dropout": {"type": "number", "default": 0},
  "conv_resample": {"type": "boolean", "default": true}, "num_heads": {"type": "integer", "default": 1},
  "num_head_channels": {"type": "integer", "default": 32}, "use_scale_shift_norm": {"type": "boolean", "default": true},
  "swin_depth": {"type": "integer", "default": 2}, "swin_embed_dim": {"type": "integer", "default": 192},
  "window_size": {"type": "integer", "default": 8}, "mlp_ratio": {"type": "number", "default": 4},
  "cond_lq": {"type": "boolean", "default": true},
  "predicts": {"type": "string", "default": "x0", "enum": ["x0", "noise"], "doc": "not official: what the output is (ABI 1.4); ResShift's and SinSR's networks predict x0"},
  "residual_upscale": {"type": "integer", "default": 0, "doc": "not official: > 0 adds the bicubic-upsampled lq (by this factor) to the output"},
  "residual_unshuffle": {"type": "integer", "default": 1, "doc": "not official: pixel-unshuffle of that residual, matching a space_to_depth codec"},
  "lq_size": {"type": "integer", "doc": "ResShift form: must equal image_size; adds the 3 lq channels to in_channels"},
  "dims": {"enum": [2]}, "resblock_updown": {"enum": [false]}, "patch_norm": {"enum": [false]}, "cond_mask": {"enum": [false]},
  "use_fp16": {"type": "boolean", "doc": "ignored: precision is chosen at run time (fp16/bf16 torso, fp32 time MLP, GroupNorm and head)"}
})json";

// The params of an official YAML's model section keep only the keys above; `predicts` is the
// plugin's, not the network's.
nlohmann::json params_of(const nlohmann::json& config) {
  static const std::set<std::string> known = sinsr::config::schema_keys(kSchema);
  namespace official = sinsr::config::official;
  return official::params(config, official::Section::Model, known);
}

sinsr::unet_swin::Options options_from(nlohmann::json params) {
  params.erase("predicts");
  return sinsr::unet_swin::Options::from_json(params);
}

sinsr_prediction prediction_of(const nlohmann::json& params) {
  const auto it = params.find("predicts");
  if (it == params.end()) return SINSR_PREDICTION_X0;
  if (*it == "x0") return SINSR_PREDICTION_X0;
  if (*it == "noise") return SINSR_PREDICTION_NOISE;
  throw sinsr::sdk::Error(SINSR_ERR_INVALID_ARGUMENT,
                          "backbone 'unet_swin': 'predicts' must be \"x0\" or \"noise\", got " + it->dump());
}

class UNetSwinBackbone : public sinsr::sdk::Backbone {
 public:
  explicit UNetSwinBackbone(const nlohmann::json& config) : UNetSwinBackbone(params_of(config), 0) {}
  sinsr_prediction prediction() const override { return prediction_; }
  torch::nn::Module& module() override { return *net_; }
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cond, const at::Tensor& t) override {
    return net_->forward(x, t, cond);
  }
  // ABI 1.2 detect_config: the config of an official checkpoint from its shapes (detect.cpp).
  static sinsr::sdk::Detection detect(const sinsr::sdk::ShapeMap& shapes) { return sinsr::unet_swin::detect(shapes); }
  void to(c10::Device device, at::ScalarType dtype) override { net_->set_precision(device, dtype); }
  // Strict, except that the two derived buffers (recomputed from the config, never learned) may be
  // absent, as in files saved from named_parameters().
  void load_weights(const std::string& path, const nlohmann::json& options) override {
    auto state = sinsr::ckpt::read_state_dict(path, options.value("key", std::string()));
    std::set<std::string> present;
    for (auto& kv : state) present.insert(kv.first);
    auto ends_with = [](const std::string& s, const std::string& tail) {
      return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
    };
    for (auto& kv : net_->named_buffers())
      if (!present.count(kv.key()) &&
          (ends_with(kv.key(), ".relative_position_index") || ends_with(kv.key(), ".attn_mask")))
        state.emplace_back(kv.key(), kv.value());
    try {
      sinsr::ckpt::load_into(*net_, std::move(state), options.value("strict", true));
    } catch (const sinsr::sdk::Error& e) {
      throw sinsr::sdk::Error(e.code(), path + ": " + e.what());
    }
  }

 private:
  UNetSwinBackbone(const nlohmann::json& params, int)
      : prediction_(prediction_of(params)),
        net_(std::make_shared<sinsr::unet_swin::UNetModelSwin>(options_from(params))) {}

  sinsr_prediction prediction_;
  std::shared_ptr<sinsr::unet_swin::UNetModelSwin> net_;
};

}  // namespace

SINSR_PLUGIN("unet_swin", "1.0.0") {
  plugin.add_backbone<UNetSwinBackbone>(
      {"unet_swin", "1.0.0", "UNetModelSwin, the ResShift/SinSR denoiser (official checkpoints load unchanged)",
       kSchema});
}
