#include "sr3_unet.hpp"

#include <sinsr/config.hpp>
#include <sinsr/layers.hpp>
#include <sinsr/sdk.hpp>

#include <torch/nn/init.h>
#include <torch/nn/modules/normalization.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace sinsr {
namespace sr3_unet {

namespace nn = torch::nn;
using json = nlohmann::json;
using sdk::require;

namespace {

constexpr int64_t kGroups = 8;  // every GroupNorm of the reference

std::string str(const std::vector<int64_t>& v) {
  std::string s;
  for (auto x : v) s += (s.empty() ? "" : "x") + std::to_string(x);
  return s;
}

}  // namespace

// Ranges are generous but bounded: a config is checked before any weight is allocated.
Options Options::from_json(const json& c) {
  using config::IntRange;
  config::Reader r("backbone 'sr3_unet'", c);
  Options o;
  const IntRange size = IntRange::between(1, 1 << 16);
  o.model_channels = int(r.integer("model_channels", o.model_channels, size));
  if (o.model_channels % kGroups != 0)
    r.fail("model_channels",
           "must be a multiple of 8 (GroupNorm with 8 groups), got " + std::to_string(o.model_channels));
  auto exps = r.integers("channel_expansions", {1, 2, 4, 4, 8, 8}, IntRange::between(1, 1024), 1, 16);
  o.channel_expansions.assign(exps.begin(), exps.end());
  o.emb_expansion = int(r.integer("emb_expansion", o.emb_expansion, IntRange::between(1, 1024)));
  o.resblock_per_down_stage =
      int(r.integer("resblock_per_down_stage", o.resblock_per_down_stage, IntRange::between(1, 64)));
  o.dropout = r.number("dropout", o.dropout, config::Range{0, 1, false, true});
  o.in_channels = int(r.integer("in_channels", o.in_channels, size));
  o.out_channels = int(r.integer("out_channels", o.out_channels, size));
  o.attention = r.string("attention", o.attention, {"corrected", "faithful"});
  r.finish();
  return o;
}

json Options::to_json() const {
  return {{"model_channels", model_channels},
          {"channel_expansions", channel_expansions},
          {"emb_expansion", emb_expansion},
          {"resblock_per_down_stage", resblock_per_down_stage},
          {"dropout", dropout},
          {"in_channels", in_channels},
          {"out_channels", out_channels},
          {"attention", attention}};
}

at::Tensor gamma_frequencies(int64_t channels) {
  const int64_t half = channels / 2;
  require(half >= 2, SINSR_ERR_INVALID_ARGUMENT, "the gamma embedding needs at least 4 channels");
  // float32 as the reference computes it (log of an integer tensor, then exp of -i*step).
  at::Tensor step = at::log(at::scalar_tensor(5000.0, at::kFloat)) / double(half - 1);
  return at::exp(at::arange(half, at::kFloat) * -step).reshape({1, half});
}

at::Tensor upsample_condition(const at::Tensor& cond, int64_t height, int64_t width) {
  require(cond.defined() && cond.dim() == 4, SINSR_ERR_INVALID_ARGUMENT,
          "sr3_unet: cond (the LR image) must be [N,3,h,w]");
  const int64_t h = cond.size(2), w = cond.size(3);
  if (h == height && w == width) return cond.clamp(-1, 1);
  require(
      h <= height && w <= width && h > 0 && w > 0, SINSR_ERR_INVALID_ARGUMENT,
      "sr3_unet: cond is " + str({h, w}) + ", larger than x " + str({height, width}) + " (it must be the LR image)");
  // The scale factors as nn.Upsample(scale_factor=s) passes them, so x4 matches the reference exactly.
  at::Tensor up = at::upsample_bicubic2d(cond, {height, width}, /*align_corners=*/false, double(height) / double(h),
                                         double(width) / double(w));
  // Bicubic is linear, so clamping in [-1,1] equals the reference's clip to [0,1] before 2v-1.
  return up.clamp(-1, 1);
}

namespace {

// The reference wraps every layer, so weights sit at <name>.conv.*, <name>.linear.*, <name>.group_norm.*.
// Initialisation is the reference's: xavier-uniform with gain sqrt(g), zero bias.
void init_weight(at::Tensor& w, at::Tensor& b, double gain) {
  if (!sdk::initialise_parameters()) return;
  at::NoGradGuard no_grad;
  nn::init::xavier_uniform_(w, std::sqrt(gain));
  nn::init::zeros_(b);
}

struct ConvW : nn::Module {
  sdk::Layer conv;
  ConvW(int64_t in, int64_t out, int64_t stride, double gain) {
    conv = register_module("conv", sdk::conv2d(in, out, 3, stride, 1));
    init_weight(conv->weight, conv->bias, gain);
  }
  at::Tensor operator()(const at::Tensor& x) { return conv->forward(x); }
};

struct LinW : nn::Module {
  sdk::Layer linear;
  LinW(int64_t in, int64_t out, double gain) {
    linear = register_module("linear", sdk::linear(in, out));
    init_weight(linear->weight, linear->bias, gain);
  }
  at::Tensor operator()(const at::Tensor& x) { return linear->forward(x); }
  // Per pixel over channels, as the reference applies it to x.permute(0, 2, 3, 1).
  at::Tensor channels(const at::Tensor& x) { return linear->forward(x.permute({0, 2, 3, 1})).permute({0, 3, 1, 2}); }
};

struct GNW : nn::Module {
  nn::GroupNorm group_norm{nullptr};
  explicit GNW(int64_t c) {
    group_norm = register_module("group_norm", nn::GroupNorm(nn::GroupNormOptions(kGroups, c)));
  }
  // Always float32 (the affine parameters stay float32 in every precision).
  at::Tensor operator()(const at::Tensor& x) {
    return at::group_norm(x.to(at::kFloat), kGroups, group_norm->weight, group_norm->bias, 1e-5).to(x.scalar_type());
  }
};

struct GammaEmbedding : nn::Module {
  std::shared_ptr<LinW> linear1, linear2;
  at::Tensor freqs;
  GammaEmbedding(int64_t c, int64_t expansion) {
    linear1 = register_module("linear1", std::make_shared<LinW>(c, expansion * c, 1.0));
    linear2 = register_module("linear2", std::make_shared<LinW>(expansion * c, expansion * c, 1.0));
    freqs = register_buffer("x", gamma_frequencies(c));
  }
  at::Tensor operator()(const at::Tensor& gamma) {
    // gamma used unscaled; sine half first.
    at::Tensor a = gamma.to(freqs.device(), at::kFloat).reshape({-1, 1}) * freqs;
    return (*linear2)(at::silu((*linear1)(at::cat({at::sin(a), at::cos(a)}, 1))));
  }
};

struct Attention : nn::Module {
  std::shared_ptr<GNW> gn;
  std::shared_ptr<LinW> qkv, proj;
  bool corrected;
  Attention(int64_t c, bool corrected_) : corrected(corrected_) {
    gn = register_module("gn", std::make_shared<GNW>(c));
    qkv = register_module("qkv", std::make_shared<LinW>(c, 3 * c, 1.0));
    proj = register_module("proj", std::make_shared<LinW>(c, c, 1e-10));
  }
  at::Tensor operator()(const at::Tensor& x) {
    const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
    at::Tensor z = (*gn)(x).permute({0, 2, 3, 1});  // [B,H,W,C]
    // The first upload computed the attention and then projected GN(x): no qkv work needed.
    if (!corrected) return x + (*proj)(z).permute({0, 3, 1, 2});
    at::Tensor t = (*qkv)(z).reshape({B, H * W, 3, C});  // [q | k | v] along the 3C outputs
    // A 512x512 image attends over 128x128 = 16 k positions: at most 2^24 weights at a time.
    sdk::AttentionOptions options;
    options.block = std::max<int64_t>(1, (int64_t(1) << 24) / (H * W));
    options.divide = options.float32_softmax = true;
    at::Tensor a = sdk::attention(t.select(2, 0), t.select(2, 1), t.select(2, 2), options);  // [B,HW,C]
    return x + (*proj)(a).permute({0, 2, 1}).reshape({B, C, H, W});
  }
};

}  // namespace

struct SR3UNet::Layer : nn::Module {
  virtual at::Tensor run(const at::Tensor& h, const at::Tensor& emb) = 0;
};

namespace {

using Layer = SR3UNet::Layer;

struct WideResBlock : Layer {
  std::shared_ptr<GNW> gn1, gn2;
  std::shared_ptr<ConvW> conv1, conv2;
  std::shared_ptr<LinW> linear1, linear2;
  std::shared_ptr<Attention> att;
  int64_t c_out;
  double dropout;

  WideResBlock(int64_t c_in, int64_t c_out_, int64_t emb_dim, bool attention, bool corrected, double dropout_)
      : c_out(c_out_), dropout(dropout_) {
    gn1 = register_module("gn1", std::make_shared<GNW>(c_in));
    conv1 = register_module("conv1", std::make_shared<ConvW>(c_in, c_out, 1, 1.0));
    linear1 = register_module("linear1", std::make_shared<LinW>(emb_dim, c_out, 1.0));
    gn2 = register_module("gn2", std::make_shared<GNW>(c_out));
    // Near-zero gain: a fresh block starts as its skip path.
    conv2 = register_module("conv2", std::make_shared<ConvW>(c_out, c_out, 1, 1e-10));
    if (c_in != c_out) linear2 = register_module("linear2", std::make_shared<LinW>(c_in, c_out, 1.0));
    if (attention) att = register_module("att", std::make_shared<Attention>(c_out, corrected));
  }
  at::Tensor run(const at::Tensor& x, const at::Tensor& emb) override {
    at::Tensor z = (*conv1)(at::silu((*gn1)(x)));
    z = (*linear1)(at::silu(emb)).reshape({x.size(0), c_out, 1, 1}) + z;
    z = at::silu((*gn2)(z));
    if (dropout > 0 && is_training()) z = at::dropout(z, dropout, true);
    z = (*conv2)(z);
    at::Tensor out = (linear2 ? linear2->channels(x) : x) + z;
    return att ? (*att)(out) : out;
  }
};

struct DownBlock : Layer {
  std::shared_ptr<ConvW> conv;
  explicit DownBlock(int64_t c) { conv = register_module("conv", std::make_shared<ConvW>(c, c, 2, 1.0)); }
  at::Tensor run(const at::Tensor& h, const at::Tensor&) override { return (*conv)(h); }
};

struct UpBlock : Layer {
  std::shared_ptr<ConvW> conv;
  explicit UpBlock(int64_t c) { conv = register_module("conv", std::make_shared<ConvW>(c, c, 1, 1.0)); }
  at::Tensor run(const at::Tensor& h, const at::Tensor&) override {
    return (*conv)(at::upsample_nearest2d(h, {h.size(2) * 2, h.size(3) * 2}, 2.0, 2.0));
  }
};

template <class T>
T& cast(const std::shared_ptr<nn::Module>& m) {
  return static_cast<T&>(*m);
}

}  // namespace

SR3UNet::SR3UNet(const Options& o) : o_(o) {
  const int64_t C = o.model_channels, E = int64_t(o.emb_expansion) * C;
  const int64_t D = int64_t(o.channel_expansions.size()), att_depth = D - 2, R = o.resblock_per_down_stage;
  const bool corrected = o.attention == "corrected";
  emb_ = register_module("emb", std::make_shared<GammaEmbedding>(C, o.emb_expansion));
  conv1_ = register_module("conv1", std::make_shared<ConvW>(o.in_channels, C, 1, 1.0));

  // Key indices run over resblocks and Down/UpBlocks together, as in the reference ModuleLists.
  auto add = [](nn::Module& list, std::vector<std::shared_ptr<Layer>>& dst, std::shared_ptr<Layer> layer) {
    list.register_module(std::to_string(dst.size()), layer);
    dst.push_back(std::move(layer));
  };
  auto wrn = [&](int64_t in, int64_t out, bool attention) {
    return std::make_shared<WideResBlock>(in, out, E, attention, corrected, o.dropout);
  };
  std::vector<int64_t> skips = {C};
  int64_t ch = C;
  auto down = std::make_shared<nn::Module>();
  for (int64_t d = 0; d < D; ++d) {
    const int64_t out = o.channel_expansions[d] * C;
    for (int64_t r = 0; r < R; ++r) {
      add(*down, down_, wrn(ch, out, d == att_depth));
      ch = out;
      skips.push_back(ch);
    }
    if (d < D - 1) {
      add(*down, down_, std::make_shared<DownBlock>(ch));
      skips.push_back(ch);
    }
  }
  register_module("down", down);
  auto mid = std::make_shared<nn::Module>();
  add(*mid, mid_, wrn(ch, ch, true));
  add(*mid, mid_, wrn(ch, ch, false));
  register_module("mid", mid);
  auto up = std::make_shared<nn::Module>();
  for (int64_t d = D - 1; d >= 0; --d) {
    const int64_t out = o.channel_expansions[d] * C;
    for (int64_t r = 0; r <= R; ++r) {
      add(*up, up_, wrn(ch + skips.back(), out, d == att_depth));
      skips.pop_back();
      ch = out;
    }
    if (d > 0) add(*up, up_, std::make_shared<UpBlock>(ch));
  }
  register_module("up", up);
  gn_ = register_module("gn", std::make_shared<GNW>(ch));
  conv2_ = register_module("conv2", std::make_shared<ConvW>(ch, o.out_channels, 1, 1e-10));
}

at::Tensor SR3UNet::embed(const at::Tensor& gamma) { return cast<GammaEmbedding>(emb_)(gamma); }

namespace {

void check_size(const Options& o, int64_t H, int64_t W) {
  const int64_t m = int64_t(1) << (o.channel_expansions.size() - 1);
  require(H > 0 && W > 0 && H % m == 0 && W % m == 0, SINSR_ERR_INVALID_ARGUMENT,
          "sr3_unet: x is " + str({H, W}) + ", height and width must be multiples of " + std::to_string(m) +
              " (2^(levels-1) for " + std::to_string(o.channel_expansions.size()) + " levels; pad the input)");
}

}  // namespace

at::Tensor SR3UNet::forward_input(const at::Tensor& input, const at::Tensor& gamma) {
  require(input.defined() && input.dim() == 4, SINSR_ERR_INVALID_ARGUMENT, "sr3_unet: the input must be [N,C,H,W]");
  require(input.size(1) == o_.in_channels, SINSR_ERR_INVALID_ARGUMENT,
          "sr3_unet: the network input has " + std::to_string(input.size(1)) + " channels, in_channels is " +
              std::to_string(o_.in_channels));
  check_size(o_, input.size(2), input.size(3));
  const int64_t N = input.size(0);
  require(gamma.defined() && gamma.is_floating_point() && (gamma.numel() == N || gamma.numel() == 1),
          SINSR_ERR_INVALID_ARGUMENT,
          "sr3_unet: t must hold one floating-point noise level sqrt(alpha_bar) per batch item");
  at::Tensor g = gamma.reshape({-1});
  if (g.numel() != N) g = g.expand({N});
  at::Tensor emb = embed(g).to(torso_);

  at::Tensor h = cast<ConvW>(conv1_)(input.to(at::kFloat)).to(torso_);
  std::vector<at::Tensor> skips = {h};
  for (auto& l : down_) {
    h = l->run(h, emb);
    skips.push_back(h);
  }
  for (auto& l : mid_) h = l->run(h, emb);
  for (auto& l : up_) {
    if (dynamic_cast<UpBlock*>(l.get())) {
      h = l->run(h, emb);
      continue;
    }
    h = l->run(at::cat({h, skips.back()}, 1), emb);
    skips.pop_back();
  }
  // The head keeps float32 weights in every precision; callers get their dtype back.
  at::Tensor out = cast<ConvW>(conv2_)(at::silu(cast<GNW>(gn_)(h.to(at::kFloat))));
  return out.to(input.scalar_type());
}

at::Tensor SR3UNet::forward(const at::Tensor& x, const at::Tensor& cond, const at::Tensor& gamma) {
  require(x.defined() && x.dim() == 4, SINSR_ERR_INVALID_ARGUMENT, "sr3_unet: x must be [N,3,H,W]");
  require(cond.defined(), SINSR_ERR_INVALID_ARGUMENT, "sr3_unet: cond (the LR image in [-1,1]) is required");
  require(cond.dim() == 4 && cond.size(0) == x.size(0), SINSR_ERR_INVALID_ARGUMENT,
          "sr3_unet: cond must be [N,3,h,w] with the batch size of x");
  require(x.size(1) + cond.size(1) == o_.in_channels, SINSR_ERR_INVALID_ARGUMENT,
          "sr3_unet: x has " + std::to_string(x.size(1)) + " and cond " + std::to_string(cond.size(1)) +
              " channels; in_channels is " + std::to_string(o_.in_channels));
  check_size(o_, x.size(2), x.size(3));
  at::Tensor c = upsample_condition(cond.to(at::kFloat), x.size(2), x.size(3));
  return forward_input(at::cat({x.to(at::kFloat), c}, 1), gamma).to(x.scalar_type());
}

void SR3UNet::set_precision(c10::Device device, at::ScalarType torso) {
  require(torso == at::kFloat || torso == at::kHalf || torso == at::kBFloat16, SINSR_ERR_UNSUPPORTED,
          std::string("sr3_unet runs in float32, float16 or bfloat16, not ") + c10::toString(torso));
  at::NoGradGuard no_grad;
  // set_data keeps the parameter objects, so views handed out across the ABI stay valid.
  for (auto& p : parameters()) p.set_data(p.to(device, at::kFloat));
  for (auto& b : buffers()) b.set_data(b.to(device, at::kFloat));
  torso_ = torso;
  if (torso == at::kFloat) return;
  for (auto* list : {&down_, &mid_, &up_})
    for (auto& l : *list)
      for (auto& m : l->modules())
        if (dynamic_cast<sdk::LayerImpl*>(m.get()))
          for (auto& p : m->parameters(false)) p.set_data(p.to(torso));
}

}  // namespace sr3_unet
}  // namespace sinsr
