// The "ssim" plugin: 1 - SSIM (ssim.hpp: the metric `sinsr-host eval` reports) as a loss, so a
// network can be trained for the number it is judged by. MSE-trained networks shrink local
// contrast (the conditional mean); SSIM's contrast term does not reward that. "block" unfolds
// space_to_depth latents into pixels first, so the loss sees the image the codec decodes.
#include "losses.hpp"
#include "ssim.hpp"

#include <sinsr/config.hpp>
#include <sinsr/sdk.hpp>

#include <string>

namespace {

using sinsr::sdk::Error;

class SsimLoss : public sinsr::sdk::Loss {
 public:
  explicit SsimLoss(const nlohmann::json& config) {
    sinsr::config::Reader r("loss 'ssim'", config);
    block_ = r.integer("block", 1, sinsr::config::IntRange::between(1, 64));
    y_channel_ = r.boolean("y_channel", true);
    lo_ = r.number("min", -1.0);
    hi_ = r.number("max", 1.0);
    mix_ = r.number("mix", 0.0, sinsr::config::Range::at_least(0));
    mix_kind_ = r.string("mix_loss", "mse", {"mse", "l1"}) == "l1" ? sinsr::losses::Kind::L1 : sinsr::losses::Kind::MSE;
    per_sample_ = r.string("reduction", "mean", {"mean", "per_sample"}) == "per_sample";
    weight_ = r.number("weight", 1.0);
    r.finish();
    if (!(hi_ > lo_)) throw Error(SINSR_ERR_INVALID_ARGUMENT, "loss 'ssim': \"max\" must be above \"min\"");
  }

  at::Tensor forward(const at::Tensor& pred, const at::Tensor& target) override {
    if (pred.sizes() != target.sizes()) throw Error(SINSR_ERR_INVALID_ARGUMENT, "loss 'ssim': pred and target shapes differ");
    if (pred.dim() != 4 || !at::isFloatingType(pred.scalar_type()))
      throw Error(SINSR_ERR_INVALID_ARGUMENT, "loss 'ssim': expected floating [N,C,H,W] tensors");
    at::Tensor t = target.to(pred.scalar_type());
    at::Tensor x = to_scale(pred), y = to_scale(t);
    if (x.size(2) < 11 || x.size(3) < 11)
      throw Error(SINSR_ERR_INVALID_ARGUMENT, "loss 'ssim': images smaller than the 11x11 window");
    at::Tensor ssim = sinsr::losses::ssim_map(x, y).flatten(1).mean(1);  // [N]
    at::Tensor loss = 1 - ssim;
    if (mix_ > 0) {
      sinsr::losses::PointwiseOptions o;
      o.reduction = sinsr::losses::Reduction::PerSample;
      loss = loss + mix_ * sinsr::losses::pointwise_loss(mix_kind_, pred, t, o);
    }
    if (!per_sample_) loss = loss.mean();
    return weight_ == 1.0 ? loss : loss * weight_;
  }

 private:
  // Unfolded pixels on the 0..255 scale; the Y channel (not rounded) when asked.
  at::Tensor to_scale(const at::Tensor& v) const {
    at::Tensor img = block_ > 1 ? at::pixel_shuffle(v, block_) : v;
    img = (img - lo_) * (255.0 / (hi_ - lo_));
    if (!y_channel_) return img;
    if (img.size(1) != 3) throw Error(SINSR_ERR_INVALID_ARGUMENT, "loss 'ssim': y_channel needs 3 colour channels");
    return sinsr::losses::bt601_y(img);
  }

  int64_t block_ = 1;
  bool y_channel_ = true, per_sample_ = false;
  double lo_ = -1, hi_ = 1, mix_ = 0, weight_ = 1;
  sinsr::losses::Kind mix_kind_ = sinsr::losses::Kind::MSE;
};

const char* kSchema = R"js({
  "block": {"type": "integer", "default": 1, "doc": "pixel-shuffle factor applied first: the space_to_depth codec's factor when the loss sees its latents"},
  "y_channel": {"type": "boolean", "default": true, "doc": "SSIM of the BT.601 Y channel (as eval); false: the mean over channels"},
  "min": {"type": "number", "default": -1.0, "doc": "pixel value of black"},
  "max": {"type": "number", "default": 1.0, "doc": "pixel value of white"},
  "mix": {"type": "number", "default": 0.0, "doc": "adds mix * the pointwise loss of pred and target (in the given space); >= 0"},
  "mix_loss": {"type": "string", "default": "mse", "doc": "mse | l1"},
  "reduction": {"type": "string", "default": "mean", "doc": "mean | per_sample ([N])"},
  "weight": {"type": "number", "default": 1.0, "doc": "multiplies the reduced loss"}
})js";

}  // namespace

SINSR_PLUGIN("ssim", "1.0.0") {
  plugin.add_loss<SsimLoss>({"ssim", "1.0.0", "1 - SSIM (eval's window and constants, Y channel), optionally + mix * mse",
                             kSchema, SINSR_THREAD_PARALLEL});
}
