// Codec "vq_f4": VQModelTorch configured by the official `autoencoder.params` keys. Latents are
// multiplied by scale_factor after encoding and divided before decoding, as the diffusion does.
#include "vq_f4.hpp"

#include <sinsr/config.hpp>
#include <sinsr/sdk.hpp>

namespace {

class VQF4Codec : public sinsr::sdk::Codec {
 public:
  explicit VQF4Codec(const nlohmann::json& config) {
    nlohmann::json params = sinsr::config::resolve(config, "autoencoder");
    if (params.contains("quantize_on_decode")) {
      sinsr::sdk::require(params["quantize_on_decode"].is_boolean(), SINSR_ERR_INVALID_ARGUMENT,
                          "vq_f4 config key 'quantize_on_decode' must be true or false");
      quantize_ = params["quantize_on_decode"].get<bool>();
    }
    net_ = std::make_shared<sinsr::vq_f4::VQModel>(sinsr::vq_f4::Options::from_json(params));
    net_->eval();
  }
  torch::nn::Module& module() override { return *net_; }
  sinsr_codec_info info() const override {
    sinsr_codec_info i{};
    i.struct_size = sizeof(i);
    i.downscale = 1 << (int(net_->options().ch_mult.size()) - 1);
    i.latent_channels = net_->options().embed_dim;
    i.image_channels = net_->options().in_channels;
    return i;
  }
  // As the official first-stage calls: cast to the autoencoder dtype, back to the caller's.
  at::Tensor encode(const at::Tensor& image) override {
    at::NoGradGuard no_grad;
    sinsr::sdk::require(image.is_floating_point(), SINSR_ERR_INVALID_ARGUMENT, "vq_f4: image must be floating point");
    at::Tensor z = net_->encode(image.to(net_->dtype())) * net_->options().scale_factor;
    return z.to(image.scalar_type());
  }
  at::Tensor decode(const at::Tensor& latent) override {
    at::NoGradGuard no_grad;
    sinsr::sdk::require(latent.is_floating_point(), SINSR_ERR_INVALID_ARGUMENT, "vq_f4: latent must be floating point");
    at::Tensor z = (latent / net_->options().scale_factor).to(net_->dtype());
    return net_->decode(z, quantize_).to(latent.scalar_type());
  }
  void to(c10::Device device, at::ScalarType dtype) override { net_->set_precision(device, dtype); }

 private:
  std::shared_ptr<sinsr::vq_f4::VQModel> net_;
  bool quantize_ = true;
};

const char* kSchema = R"json({
  "config_file": {"type": "string", "description": "official YAML (autoencoder.params) or a file with top-level params"},
  "embed_dim": {"type": "integer", "default": 3}, "n_embed": {"type": "integer", "default": 8192},
  "ddconfig": {"type": "object", "default": {"z_channels": 3, "resolution": 256, "in_channels": 3, "out_ch": 3,
               "ch": 128, "ch_mult": [1, 2, 4], "num_res_blocks": 2, "attn_resolutions": []}},
  "scale_factor": {"type": "number", "default": 1.0},
  "quantize_on_decode": {"type": "boolean", "default": true},
  "attention_chunk": {"type": "integer", "default": 1024, "description": "attention queries per chunk (memory: chunk x latent pixels)"}
})json";

}  // namespace

SINSR_PLUGIN("vq_f4", "1.0.0") {
  plugin.add_codec<VQF4Codec>({"vq_f4", "1.0.0", "VQModelTorch f4 autoencoder of ResShift/SinSR", kSchema});
}
