// Codec "space_to_depth": a lossless, weightless latent space. encode() folds each f x f block
// of pixels into channels (pixel-unshuffle), decode() unfolds them (pixel-shuffle), so a
// backbone runs at 1/f of the image resolution on 3 f^2 channels. With f = scale the UNet runs
// at LR resolution: 16x fewer pixels than pixel space at x4, and an ablation of the VQ codec.
#include <sinsr/config.hpp>
#include <sinsr/sdk.hpp>

#include <ATen/ATen.h>
#include <torch/nn/module.h>

namespace {

class SpaceToDepthCodec : public sinsr::sdk::Codec {
 public:
  explicit SpaceToDepthCodec(const nlohmann::json& config) {
    sinsr::config::Reader r("codec 'space_to_depth'", config);
    factor_ = r.integer("factor", 4, sinsr::config::IntRange::between(1, 64));
    r.finish();
  }
  torch::nn::Module& module() override { return module_; }
  sinsr_codec_info info() const override {
    sinsr_codec_info i{};
    i.struct_size = sizeof(i);
    i.downscale = int32_t(factor_);
    i.latent_channels = int32_t(3 * factor_ * factor_);
    i.image_channels = 3;
    return i;
  }
  at::Tensor encode(const at::Tensor& image) override {
    sinsr::sdk::require(image.dim() == 4 && image.size(2) % factor_ == 0 && image.size(3) % factor_ == 0,
                        SINSR_ERR_INVALID_ARGUMENT,
                        "space_to_depth: image must be [N,C,H,W] with H and W multiples of " + std::to_string(factor_));
    return at::pixel_unshuffle(image, factor_);
  }
  at::Tensor decode(const at::Tensor& latent) override {
    sinsr::sdk::require(latent.dim() == 4 && latent.size(1) % (factor_ * factor_) == 0, SINSR_ERR_INVALID_ARGUMENT,
                        "space_to_depth: latent must be [N, C*f*f, h, w] with f = " + std::to_string(factor_));
    return at::pixel_shuffle(latent, factor_);
  }
  void load_weights(const std::string& path, const nlohmann::json&) override {
    throw sinsr::sdk::Error(SINSR_ERR_INVALID_ARGUMENT,
                            "space_to_depth has no weights to load (given '" + path + "'); omit them");
  }
  void to(c10::Device, at::ScalarType) override {}

 private:
  torch::nn::Module module_;
  int64_t factor_ = 4;
};

const char* kSchema = R"json({
  "factor": {"type": "integer", "default": 4, "doc": "block size f: latent = [N, 3 f^2, H/f, W/f]"}
})json";

}  // namespace

SINSR_PLUGIN("space_to_depth", "1.0.0") {
  sinsr::sdk::ComponentMeta meta{"space_to_depth", "1.0.0",
                                 "lossless pixel-unshuffle latent (no weights): the backbone runs at 1/f resolution",
                                 kSchema};
  meta.flags = SINSR_COMPONENT_NO_WEIGHTS;
  plugin.add_codec<SpaceToDepthCodec>(meta);
}
