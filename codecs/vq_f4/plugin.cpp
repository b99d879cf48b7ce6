// Codec "vq_f4": VQModelTorch configured by the official `autoencoder.params` keys. Latents are
// multiplied by scale_factor after encoding and divided before decoding, as the diffusion does.
#include "vq_f4.hpp"
#include "vq_f4_detect.hpp"

#include <sinsr/config.hpp>
#include <sinsr/sdk.hpp>

#include <set>
#include <string>

namespace {

const char* kSchema = R"json({
  "config_file": {"type": "string", "doc": "official YAML (autoencoder.params; keys this codec does not know are dropped) or a file with top-level params"},
  "embed_dim": {"type": "integer", "default": 3}, "n_embed": {"type": "integer", "default": 8192},
  "ddconfig": {"type": "object", "default": {"z_channels": 3, "resolution": 256, "in_channels": 3, "out_ch": 3,
               "ch": 128, "ch_mult": [1, 2, 4], "num_res_blocks": 2, "attn_resolutions": []}},
  "scale_factor": {"type": "number", "default": 1.0},
  "quantize_on_decode": {"type": "boolean", "default": true},
  "attention_chunk": {"type": "integer", "default": 1024, "doc": "attention queries per chunk (memory: chunk x latent pixels)"}
})json";

// The params of an official YAML's autoencoder section keep only the keys above.
sinsr::vq_f4::Options options_from(const nlohmann::json& config) {
  static const std::set<std::string> known = sinsr::config::schema_keys(kSchema);
  namespace official = sinsr::config::official;
  return sinsr::vq_f4::Options::from_json(official::params(config, official::Section::Autoencoder, known));
}

class VQF4Codec : public sinsr::sdk::Codec {
 public:
  explicit VQF4Codec(const nlohmann::json& config) {
    net_ = std::make_shared<sinsr::vq_f4::VQModel>(options_from(config));
    quantize_ = net_->options().quantize_on_decode;
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
  // ABI 1.2 detect_config: the config of an official checkpoint from its shapes (detect.cpp).
  static sinsr::sdk::Detection detect(const sinsr::sdk::ShapeMap& shapes) { return sinsr::vq_f4::detect(shapes); }

 private:
  std::shared_ptr<sinsr::vq_f4::VQModel> net_;
  bool quantize_ = true;
};

}  // namespace

SINSR_PLUGIN("vq_f4", "1.0.0") {
  plugin.add_codec<VQF4Codec>({"vq_f4", "1.0.0", "VQModelTorch f4 autoencoder of ResShift/SinSR", kSchema});
}
