// The "image" plugin: losses that look at the decoded image rather than at latent numbers.
// - ssim: 1 - SSIM (image_losses.hpp: the metric `sinsr-host eval` reports), so a network can
//   be trained for the number it is judged by. MSE-trained networks shrink local contrast (the
//   conditional mean); SSIM's contrast term does not reward that.
// - highpass: mse / l1 between the Gaussian high-passes of pred and target, so a term can ask
//   for a target's texture while another (e.g. mse against the GT) owns the rest.
// "block" unfolds space_to_depth latents into pixels first, so both see what the codec decodes.
#include "image_losses.hpp"
#include "losses.hpp"

#include <sinsr/config.hpp>
#include <sinsr/sdk.hpp>

#include <string>

namespace {

using sinsr::losses::Kind;
using sinsr::sdk::Error;

// What both read: the latent layout, the reduction and the weight.
struct Common {
  int64_t block = 1;
  bool per_sample = false;
  double weight = 1;
  void read(sinsr::config::Reader& r) {
    block = r.integer("block", 1, sinsr::config::IntRange::between(1, 64));
    per_sample = r.string("reduction", "mean", {"mean", "per_sample"}) == "per_sample";
    weight = r.number("weight", 1.0);
  }
  at::Tensor pixels(const at::Tensor& v) const { return block > 1 ? at::pixel_shuffle(v, block) : v; }
  void check(const at::Tensor& pred, const at::Tensor& target, const std::string& who) const {
    if (pred.sizes() != target.sizes())
      throw Error(SINSR_ERR_INVALID_ARGUMENT, who + ": pred and target shapes differ");
    if (pred.dim() != 4 || !at::isFloatingType(pred.scalar_type()))
      throw Error(SINSR_ERR_INVALID_ARGUMENT, who + ": expected floating [N,C,H,W] tensors");
  }
  at::Tensor finish(at::Tensor per_item) const {  // [N] -> the configured reduction and weight
    at::Tensor r = per_sample ? per_item : per_item.mean();
    return weight == 1.0 ? r : r * weight;
  }
};

Kind pointwise_kind(sinsr::config::Reader& r, const char* key) {
  return r.string(key, "mse", {"mse", "l1"}) == "l1" ? Kind::L1 : Kind::MSE;
}

at::Tensor per_item(Kind kind, const at::Tensor& pred, const at::Tensor& target) {
  sinsr::losses::PointwiseOptions o;
  o.reduction = sinsr::losses::Reduction::PerSample;
  return sinsr::losses::pointwise_loss(kind, pred, target, o);
}

class SsimLoss : public sinsr::sdk::Loss {
 public:
  explicit SsimLoss(const nlohmann::json& config) {
    sinsr::config::Reader r("loss 'ssim'", config);
    common_.read(r);
    y_channel_ = r.boolean("y_channel", true);
    lo_ = r.number("min", -1.0);
    hi_ = r.number("max", 1.0);
    mix_ = r.number("mix", 0.0, sinsr::config::Range::at_least(0));
    mix_kind_ = pointwise_kind(r, "mix_loss");
    r.finish();
    if (!(hi_ > lo_)) throw Error(SINSR_ERR_INVALID_ARGUMENT, "loss 'ssim': \"max\" must be above \"min\"");
  }

  at::Tensor forward(const at::Tensor& pred, const at::Tensor& target) override {
    common_.check(pred, target, "loss 'ssim'");
    at::Tensor t = target.to(pred.scalar_type());
    at::Tensor x = to_scale(pred), y = to_scale(t);
    if (x.size(2) < 11 || x.size(3) < 11)
      throw Error(SINSR_ERR_INVALID_ARGUMENT, "loss 'ssim': images smaller than the 11x11 window");
    at::Tensor loss = 1 - sinsr::losses::ssim_map(x, y).flatten(1).mean(1);  // [N]
    if (mix_ > 0) loss = loss + mix_ * per_item(mix_kind_, pred, t);
    return common_.finish(loss);
  }

 private:
  // Unfolded pixels on the 0..255 scale; the Y channel (not rounded) when asked.
  at::Tensor to_scale(const at::Tensor& v) const {
    at::Tensor img = (common_.pixels(v) - lo_) * (255.0 / (hi_ - lo_));
    if (!y_channel_) return img;
    if (img.size(1) != 3) throw Error(SINSR_ERR_INVALID_ARGUMENT, "loss 'ssim': y_channel needs 3 colour channels");
    return sinsr::losses::bt601_y(img);
  }

  Common common_;
  bool y_channel_ = true;
  double lo_ = -1, hi_ = 1, mix_ = 0;
  Kind mix_kind_ = Kind::MSE;
};

class HighpassLoss : public sinsr::sdk::Loss {
 public:
  explicit HighpassLoss(const nlohmann::json& config) {
    sinsr::config::Reader r("loss 'highpass'", config);
    common_.read(r);
    sigma_ = r.number("sigma", 3.0, sinsr::config::Range::above(0));
    kind_ = pointwise_kind(r, "loss");
    r.finish();
  }

  at::Tensor forward(const at::Tensor& pred, const at::Tensor& target) override {
    common_.check(pred, target, "loss 'highpass'");
    at::Tensor p = common_.pixels(pred), t = common_.pixels(target.to(pred.scalar_type()));
    if (p.size(2) < 2 || p.size(3) < 2)
      throw Error(SINSR_ERR_INVALID_ARGUMENT, "loss 'highpass': images smaller than 2x2");
    return common_.finish(per_item(kind_, sinsr::losses::highpass(p, sigma_), sinsr::losses::highpass(t, sigma_)));
  }

 private:
  Common common_;
  double sigma_ = 3;
  Kind kind_ = Kind::MSE;
};

const char* kCommonSchema = R"js(
  "block": {"type": "integer", "default": 1, "doc": "pixel-shuffle factor applied first: the space_to_depth codec's factor when the loss sees its latents"},
  "reduction": {"type": "string", "default": "mean", "doc": "mean | per_sample ([N])"},
  "weight": {"type": "number", "default": 1.0, "doc": "multiplies the reduced loss"})js";

std::string ssim_schema() {
  return std::string(R"js({
  "y_channel": {"type": "boolean", "default": true, "doc": "SSIM of the BT.601 Y channel (as eval); false: the mean over channels"},
  "min": {"type": "number", "default": -1.0, "doc": "pixel value of black"},
  "max": {"type": "number", "default": 1.0, "doc": "pixel value of white"},
  "mix": {"type": "number", "default": 0.0, "doc": "adds mix * the pointwise loss of pred and target (in the given space); >= 0"},
  "mix_loss": {"type": "string", "default": "mse", "doc": "mse | l1"},)js") +
         kCommonSchema + "\n}";
}

std::string highpass_schema() {
  return std::string(R"js({
  "sigma": {"type": "number", "default": 3.0, "doc": "the Gaussian's sigma in pixels; what it blurs away is kept; > 0"},
  "loss": {"type": "string", "default": "mse", "doc": "mse | l1 of the two high-passes"},)js") +
         kCommonSchema + "\n}";
}

}  // namespace

SINSR_PLUGIN("image", "1.0.0") {
  plugin.add_loss<SsimLoss>({"ssim", "1.0.0",
                             "1 - SSIM (eval's window and constants, Y channel), optionally + mix * mse", ssim_schema(),
                             SINSR_THREAD_PARALLEL});
  plugin.add_loss<HighpassLoss>({"highpass", "1.0.0", "mse / l1 of the Gaussian high-passes of pred and target",
                                 highpass_schema(), SINSR_THREAD_PARALLEL});
}
