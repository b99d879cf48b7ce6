#include "unet_swin.hpp"

#include <sinsr/config.hpp>
#include <sinsr/layers.hpp>
#include <sinsr/sdk.hpp>

#include <torch/nn/modules/normalization.h>

#include <cmath>
#include <functional>
#include <set>

namespace sinsr {
namespace unet_swin {

namespace nn = torch::nn;
using sdk::require;

namespace {

std::vector<int> ints(const std::vector<int64_t>& v) { return std::vector<int>(v.begin(), v.end()); }

}  // namespace

// Ranges are generous but bounded: a config is checked before any weight is allocated.
Options Options::from_json(const nlohmann::json& p) {
  using config::IntRange;
  using config::Range;
  config::Reader r("backbone 'unet_swin'", p);
  Options o;
  const IntRange size = IntRange::between(1, 1 << 16);
  o.image_size = int(r.integer("image_size", o.image_size, size));
  o.in_channels = int(r.integer("in_channels", o.in_channels, size));
  o.model_channels = int(r.integer("model_channels", o.model_channels, size));
  o.out_channels = int(r.integer("out_channels", o.out_channels, size));
  // The official short forms: one number for a one-entry list (num_res_blocks: one per level).
  o.channel_mult = ints(r.integers("channel_mult", {1, 2, 2, 4}, IntRange::between(1, 64), 1, 16, 1));
  o.attention_resolutions = ints(r.integers("attention_resolutions", {64, 32, 16, 8}, size, 0, 64, 1));
  o.num_res_blocks =
      ints(r.integers("num_res_blocks", {2, 2, 2, 2}, IntRange::between(0, 64), 1, 16, o.channel_mult.size()));
  o.cond_lq = r.boolean("cond_lq", o.cond_lq);
  o.dropout = r.number("dropout", o.dropout, Range{0, 1, false, true});
  o.conv_resample = r.boolean("conv_resample", o.conv_resample);
  o.num_heads = int(r.integer("num_heads", o.num_heads, IntRange::between(-1, 1024)));
  o.num_head_channels = int(r.integer("num_head_channels", o.num_head_channels, IntRange::between(-1, 1 << 16)));
  o.use_scale_shift_norm = r.boolean("use_scale_shift_norm", o.use_scale_shift_norm);
  o.swin_depth = int(r.integer("swin_depth", o.swin_depth, IntRange::between(1, 64)));
  o.swin_embed_dim = int(r.integer("swin_embed_dim", o.swin_embed_dim, size));
  // The relative-position index holds window^4 entries: 64 (the official 8 times 8) is 134 MB.
  o.window_size = int(r.integer("window_size", o.window_size, IntRange::between(1, 64)));
  o.mlp_ratio = r.number("mlp_ratio", o.mlp_ratio, Range{0, 64, true, false});
  o.residual_upscale = int(r.integer("residual_upscale", o.residual_upscale, IntRange::between(0, 64)));
  o.residual_unshuffle = int(r.integer("residual_unshuffle", o.residual_unshuffle, IntRange::between(1, 64)));
  // ResShift's class takes lq_size and adds the 3 lq channels itself when lq_size == image_size;
  // any other lq_size builds a feature extractor with weights of its own.
  if (r.has("lq_size")) {
    const int64_t lq_size = r.integer("lq_size", 0, size);
    if (!o.cond_lq || lq_size != o.image_size)
      r.fail("lq_size",
             std::to_string(lq_size) + " differs from image_size " + std::to_string(o.image_size) +
                 " (the lq feature extractor is not supported)",
             SINSR_ERR_UNSUPPORTED);
    o.in_channels += 3;
  }
  // Official keys with one supported value.
  if (r.boolean("cond_mask", false)) r.fail("cond_mask", "is not supported", SINSR_ERR_UNSUPPORTED);
  if (r.boolean("resblock_updown", false)) r.fail("resblock_updown", "is not supported", SINSR_ERR_UNSUPPORTED);
  if (r.boolean("patch_norm", false)) r.fail("patch_norm", "is not supported", SINSR_ERR_UNSUPPORTED);
  if (r.integer("dims", 2) != 2) r.fail("dims", "must be 2 (only 2-D is supported)", SINSR_ERR_UNSUPPORTED);
  r.boolean("use_fp16", false);  // precision is chosen at run time
  r.finish();

  if (!(o.num_head_channels == -1 ? o.num_heads > 0 && o.swin_embed_dim % o.num_heads == 0
                                  : o.num_head_channels > 0 && o.swin_embed_dim % o.num_head_channels == 0))
    r.fail("swin_embed_dim", "must split evenly into heads (num_head_channels, or num_heads when it is -1)");
  if (o.num_res_blocks.size() != o.channel_mult.size())
    r.fail("num_res_blocks", "needs one entry per channel_mult level");
  if (o.swin_embed_dim % 32 != 0) r.fail("swin_embed_dim", "must be a multiple of 32");
  if (o.model_channels % 32 != 0) r.fail("model_channels", "must be a multiple of 32 (GroupNorm has 32 groups)");
  if (o.residual_upscale != 0 && !(o.cond_lq && o.out_channels == 3 * o.residual_unshuffle * o.residual_unshuffle))
    r.fail("residual_upscale", "needs cond_lq and out_channels = 3 * residual_unshuffle^2");
  return o;
}

namespace {

// GroupNorm in float32 whatever the working dtype, as the official GroupNorm32.
at::Tensor gn(const nn::GroupNorm& norm, const at::Tensor& x) {
  const auto& opt = norm->options;
  return at::group_norm(x.to(at::kFloat), opt.num_groups(), norm->weight, norm->bias, opt.eps()).to(x.scalar_type());
}

nn::GroupNorm group_norm32(int64_t c) { return nn::GroupNorm(nn::GroupNormOptions(32, c).eps(1e-5)); }
sdk::Layer conv(int64_t in, int64_t out, int64_t k, int64_t stride = 1) {
  return sdk::conv2d(in, out, k, stride, k / 2);
}
// A keyless container giving children numeric names, as nn.Sequential does.
std::shared_ptr<nn::Module> holder() { return std::make_shared<nn::Module>(); }

struct Layer : nn::Module {
  virtual at::Tensor run(const at::Tensor& h, const at::Tensor& emb) = 0;
};

struct ResBlock : Layer {
  nn::GroupNorm in_norm{nullptr}, out_norm{nullptr};
  sdk::Layer in_conv, out_conv, skip;
  sdk::Layer emb_linear;
  bool scale_shift;
  double dropout;

  ResBlock(int64_t c_in, int64_t c_out, int64_t emb_dim, bool scale_shift_, double dropout_)
      : scale_shift(scale_shift_), dropout(dropout_) {
    auto in_layers = holder(), emb_layers = holder(), out_layers = holder();
    in_norm = in_layers->register_module("0", group_norm32(c_in));
    in_conv = in_layers->register_module("2", conv(c_in, c_out, 3));
    emb_linear = emb_layers->register_module("1", sdk::linear(emb_dim, scale_shift ? 2 * c_out : c_out));
    out_norm = out_layers->register_module("0", group_norm32(c_out));
    out_conv = out_layers->register_module("3", conv(c_out, c_out, 3));
    register_module("in_layers", in_layers);
    register_module("emb_layers", emb_layers);
    register_module("out_layers", out_layers);
    if (c_in != c_out) skip = register_module("skip_connection", conv(c_in, c_out, 1));
    // Official initialisation: each ResBlock starts as its skip path.
    if (sdk::initialise_parameters()) {
      at::NoGradGuard no_grad;
      out_conv->weight.zero_();
      out_conv->bias.zero_();
    }
  }
  at::Tensor run(const at::Tensor& x, const at::Tensor& emb) override {
    at::Tensor h = in_conv->forward(at::silu(gn(in_norm, x)));
    at::Tensor e = emb_linear->forward(at::silu(emb)).to(h.scalar_type()).unsqueeze(-1).unsqueeze(-1);
    if (scale_shift) {
      auto ss = e.chunk(2, 1);
      h = gn(out_norm, h) * (1 + ss[0]) + ss[1];
    } else {
      h = gn(out_norm, h + e);
    }
    h = at::silu(h);
    if (dropout > 0 && is_training()) h = at::dropout(h, dropout, true);
    h = out_conv->forward(h);
    return (skip ? skip->forward(x) : x) + h;
  }
};

struct Downsample : Layer {
  sdk::Layer op;
  bool use_conv;
  Downsample(int64_t c, bool use_conv_) : use_conv(use_conv_) {
    if (use_conv) op = register_module("op", conv(c, c, 3, 2));
  }
  at::Tensor run(const at::Tensor& h, const at::Tensor&) override {
    return use_conv ? op->forward(h) : at::avg_pool2d(h, {2, 2}, {2, 2});
  }
};

struct Upsample : Layer {
  sdk::Layer c;
  explicit Upsample(int64_t ch, bool use_conv) {
    if (use_conv) c = register_module("conv", conv(ch, ch, 3));
  }
  at::Tensor run(const at::Tensor& h, const at::Tensor&) override {
    at::Tensor u = at::upsample_nearest2d(h, {h.size(2) * 2, h.size(3) * 2}, 2.0, 2.0);
    return c ? c->forward(u) : u;
  }
};

struct SwinBlock : nn::Module {
  int64_t dim, heads, window, shift, nominal;
  nn::GroupNorm norm1{nullptr}, norm2{nullptr};
  sdk::Layer qkv, proj;
  sdk::Layer fc1, fc2;
  at::Tensor table, index, mask;

  SwinBlock(int64_t dim_, int64_t heads_, int64_t ds, int64_t window_, int64_t shift_, double mlp_ratio)
      : dim(dim_), heads(heads_), nominal(ds) {
    // Window and shift are fixed from the nominal size, as officially.
    window = ds <= window_ ? ds : window_;
    shift = ds <= window_ ? 0 : shift_;
    if (shift > 0) mask = register_buffer("attn_mask", shifted_window_mask(ds, ds, window, shift));
    norm1 = register_module("norm1", group_norm32(dim));
    auto attn = holder();
    // Official init: truncated normal, std 0.02, cut at +-2 (absolute).
    const int64_t offsets = (2 * window - 1) * (2 * window - 1);
    table = attn->register_parameter("relative_position_bias_table",
                                     sdk::initialise_parameters() ? at::randn({offsets, heads}).mul_(0.02).clamp_(-2, 2)
                                                                  : sdk::empty_parameter({offsets, heads}));
    at::Tensor r = at::arange(window * window, at::kLong).div(window, "floor"),
               c = at::arange(window * window, at::kLong).remainder(window);
    index = attn->register_buffer("relative_position_index",
                                  (r.unsqueeze(1) - r.unsqueeze(0) + window - 1) * (2 * window - 1) +
                                      (c.unsqueeze(1) - c.unsqueeze(0) + window - 1));
    qkv = attn->register_module("qkv", sdk::linear(dim, 3 * dim));
    proj = attn->register_module("proj", sdk::linear(dim, dim));
    register_module("attn", attn);
    norm2 = register_module("norm2", group_norm32(dim));
    auto mlp = holder();
    const int64_t hidden = int64_t(double(dim) * mlp_ratio);
    fc1 = mlp->register_module("fc1", conv(dim, hidden, 1));
    fc2 = mlp->register_module("fc2", conv(hidden, dim, 1));
    register_module("mlp", mlp);
  }

  at::Tensor forward(const at::Tensor& t) {
    const int64_t n = t.size(0), H = t.size(2), W = t.size(3), w = window, d = dim / heads;
    require(H % w == 0 && W % w == 0, SINSR_ERR_INVALID_ARGUMENT,
            "feature size " + std::to_string(H) + "x" + std::to_string(W) + " is not a multiple of the Swin window " +
                std::to_string(w) + " (pad the input)");
    at::Tensor u = gn(norm1, t);
    if (shift > 0) u = u.roll({-shift, -shift}, {2, 3});
    const int64_t nh = H / w, nw = W / w, nW = nh * nw, N = w * w;
    at::Tensor win =
        u.permute({0, 2, 3, 1}).reshape({n, nh, w, nw, w, dim}).permute({0, 1, 3, 2, 4, 5}).reshape({n * nW, N, dim});
    // Contiguous heads and k^T, as officially (measured neutral here; the per-window products then
    // read the same memory layout as the reference's).
    at::Tensor q3 = qkv->forward(win).reshape({n * nW, N, 3, heads, d}).permute({2, 0, 3, 1, 4}).contiguous();
    at::Tensor q = q3[0] * std::pow(double(d), -0.5), k = q3[1], v = q3[2];
    at::Tensor a = at::matmul(q, k.transpose(-2, -1).contiguous());
    at::Tensor bias = table.index_select(0, index.reshape({-1})).reshape({N, N, heads}).permute({2, 0, 1});
    a = a + bias.to(a.scalar_type()).unsqueeze(0);
    if (shift > 0) {
      at::Tensor m =
          (H == nominal && W == nominal ? mask : shifted_window_mask(H, W, w, shift)).to(a.device(), a.scalar_type());
      a = (a.view({n, nW, heads, N, N}) + m.unsqueeze(1).unsqueeze(0)).view({n * nW, heads, N, N});
    }
    at::Tensor o = at::matmul(at::softmax(a, -1), v).transpose(1, 2).reshape({n * nW, N, dim});
    o = proj->forward(o);
    u = o.reshape({n, nh, nw, w, w, dim}).permute({0, 1, 3, 2, 4, 5}).reshape({n, H, W, dim}).permute({0, 3, 1, 2});
    if (shift > 0) u = u.roll({shift, shift}, {2, 3});
    at::Tensor x = t + u;
    return x + fc2->forward(at::gelu(fc1->forward(gn(norm2, x))));
  }
};

struct SwinLayer : Layer {
  sdk::Layer embed, unembed;
  std::vector<std::shared_ptr<SwinBlock>> blocks;
  SwinLayer(int64_t c, const Options& o, int64_t ds) {
    const int64_t D = o.swin_embed_dim;
    const int64_t heads = o.num_head_channels == -1 ? o.num_heads : D / o.num_head_channels;
    auto pe = holder(), pu = holder(), list = holder();
    embed = pe->register_module("proj", conv(c, D, 1));
    unembed = pu->register_module("proj", conv(D, c, 1));
    register_module("patch_embed", pe);
    register_module("patch_unembed", pu);
    for (int k = 0; k < o.swin_depth; ++k)
      blocks.push_back(list->register_module(
          std::to_string(k),
          std::make_shared<SwinBlock>(D, heads, ds, o.window_size, k % 2 ? o.window_size / 2 : 0, o.mlp_ratio)));
    register_module("blocks", list);
  }
  at::Tensor run(const at::Tensor& h, const at::Tensor&) override {
    at::Tensor t = embed->forward(h);
    for (auto& b : blocks) t = b->forward(t);
    return unembed->forward(t);  // no outer residual, as officially
  }
};

}  // namespace

struct UNetModelSwin::Block : nn::Module {
  std::vector<std::function<at::Tensor(const at::Tensor&, const at::Tensor&)>> layers;
  template <class L>
  void add(std::shared_ptr<L> l) {
    auto m = register_module(std::to_string(layers.size()), l);
    layers.push_back([m](const at::Tensor& h, const at::Tensor& emb) { return m->run(h, emb); });
  }
  void add_conv(sdk::Layer c) {
    auto m = register_module(std::to_string(layers.size()), c);
    layers.push_back([m](const at::Tensor& h, const at::Tensor&) { return m->forward(h); });
  }
  at::Tensor run(at::Tensor h, const at::Tensor& emb) {
    for (auto& l : layers) h = l(h, emb);
    return h;
  }
};

at::Tensor timestep_embedding(const at::Tensor& t, int64_t dim) {
  const int64_t half = dim / 2;
  at::Tensor freqs = at::exp(-std::log(10000.0) *
                             at::arange(half, at::TensorOptions().dtype(at::kFloat).device(t.device())) / double(half));
  at::Tensor args = t.to(at::kFloat).unsqueeze(1) * freqs.unsqueeze(0);
  at::Tensor emb = at::cat({args.cos(), args.sin()}, 1);
  if (dim % 2) emb = at::cat({emb, at::zeros_like(emb.narrow(1, 0, 1))}, 1);
  return emb;
}

at::Tensor shifted_window_mask(int64_t H, int64_t W, int64_t w, int64_t s) {
  const int64_t nh = H / w, nw = W / w, N = w * w;
  at::Tensor col = at::arange(N, at::kLong).remainder(w);
  at::Tensor split = (col >= (w - s)).to(at::kLong) + 1;  // 1 | 2 by local column
  at::Tensor groups = at::zeros({nh * nw, N}, at::kLong);
  groups.narrow(0, (nh - 1) * nw, nw).copy_(split.unsqueeze(0).expand({nw, N}));
  return (groups.unsqueeze(2) != groups.unsqueeze(1)).to(at::kFloat) * -100.0;
}

UNetModelSwin::UNetModelSwin(const Options& o) : o_(o) {
  const int64_t C = o.model_channels, E = 4 * C;
  auto has_attn = [&](int64_t ds) {
    return std::find(o.attention_resolutions.begin(), o.attention_resolutions.end(), ds) !=
           o.attention_resolutions.end();
  };
  time_embed_ = holder();
  time_embed_->register_module("0", sdk::linear(C, E));
  time_embed_->register_module("2", sdk::linear(E, E));
  register_module("time_embed", time_embed_);

  auto inputs = holder();
  auto new_block = [&](std::shared_ptr<nn::Module> parent, std::vector<std::shared_ptr<Block>>& list) {
    auto b = std::make_shared<Block>();
    list.push_back(parent->register_module(std::to_string(list.size()), b));
    return b;
  };
  int64_t ch = C * o.channel_mult[0], ds = o.image_size;
  new_block(inputs, input_blocks_)->add_conv(conv(o.in_channels, ch, 3));
  std::vector<int64_t> chans = {ch};
  const size_t L = o.channel_mult.size();
  for (size_t level = 0; level < L; ++level) {
    for (int j = 0; j < o.num_res_blocks[level]; ++j) {
      auto b = new_block(inputs, input_blocks_);
      b->add(std::make_shared<ResBlock>(ch, C * o.channel_mult[level], E, o.use_scale_shift_norm, o.dropout));
      ch = C * o.channel_mult[level];
      if (has_attn(ds) && j == 0) b->add(std::make_shared<SwinLayer>(ch, o, ds));
      chans.push_back(ch);
    }
    if (level + 1 < L) {
      new_block(inputs, input_blocks_)->add(std::make_shared<Downsample>(ch, o.conv_resample));
      chans.push_back(ch);
      ds /= 2;
    }
  }
  register_module("input_blocks", inputs);
  middle_ = register_module("middle_block", std::make_shared<Block>());
  middle_->add(std::make_shared<ResBlock>(ch, ch, E, o.use_scale_shift_norm, o.dropout));
  middle_->add(std::make_shared<SwinLayer>(ch, o, ds));
  middle_->add(std::make_shared<ResBlock>(ch, ch, E, o.use_scale_shift_norm, o.dropout));
  auto outputs = holder();
  for (size_t level = L; level-- > 0;) {
    for (int i = 0; i <= o.num_res_blocks[level]; ++i) {
      auto b = new_block(outputs, output_blocks_);
      int64_t skip = chans.back();
      chans.pop_back();
      b->add(std::make_shared<ResBlock>(ch + skip, C * o.channel_mult[level], E, o.use_scale_shift_norm, o.dropout));
      ch = C * o.channel_mult[level];
      if (has_attn(ds) && i == 0) b->add(std::make_shared<SwinLayer>(ch, o, ds));
      if (level > 0 && i == o.num_res_blocks[level]) {
        b->add(std::make_shared<Upsample>(ch, o.conv_resample));
        ds *= 2;
      }
    }
  }
  register_module("output_blocks", outputs);
  out_ = holder();
  out_->register_module("0", group_norm32(ch));
  out_->register_module("2", conv(C * o.channel_mult[0], o.out_channels, 3));
  register_module("out", out_);
  if (o.residual_upscale > 0 && sdk::initialise_parameters()) {  // start as the bicubic residual's base: f = 0
    at::NoGradGuard no_grad;
    for (auto& p : out_->named_children()["2"]->parameters()) p.zero_();
  }
}

at::Tensor UNetModelSwin::forward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& lq) {
  require(x.defined() && x.dim() == 4, SINSR_ERR_INVALID_ARGUMENT, "x must be [N,C,H,W]");
  require(t.defined() && t.dim() == 1 && t.size(0) == x.size(0), SINSR_ERR_INVALID_ARGUMENT,
          "t must hold one step per batch item");
  require(!lq.defined() || o_.cond_lq, SINSR_ERR_INVALID_ARGUMENT, "lq given but the model has cond_lq false");
  require(!lq.defined() || (lq.dim() == 4 && lq.size(0) == x.size(0)), SINSR_ERR_INVALID_ARGUMENT,
          "lq must be [N,3,h,w] with the batch size of x");
  const int64_t down = int64_t(1) << (o_.channel_mult.size() - 1);
  require(x.size(2) % down == 0 && x.size(3) % down == 0, SINSR_ERR_INVALID_ARGUMENT,
          "x is " + std::to_string(x.size(2)) + "x" + std::to_string(x.size(3)) + ", not a multiple of " +
              std::to_string(down) + " (the UNet's downsampling; pad the input)");
  auto te0 = std::dynamic_pointer_cast<sdk::LayerImpl>(time_embed_->named_children()["0"]);
  auto te2 = std::dynamic_pointer_cast<sdk::LayerImpl>(time_embed_->named_children()["2"]);
  at::Tensor emb = te2->forward(at::silu(te0->forward(timestep_embedding(t, o_.model_channels)))).to(torso_);
  at::Tensor h = x;
  if (lq.defined()) {
    at::Tensor c = lq.to(x.scalar_type());
    if (c.size(2) != x.size(2) || c.size(3) != x.size(3)) {
      if (c.size(2) > x.size(2))
        c = at::pixel_unshuffle(c, 2);
      else  // officially nearest x4 (x = 4 lq); to x's size so a space_to_depth latent of any factor fits
        c = at::upsample_nearest2d(c, {x.size(2), x.size(3)}, double(x.size(2)) / double(c.size(2)),
                                   double(x.size(3)) / double(c.size(3)));
    }
    h = at::cat({x, c}, 1);
  }
  require(h.size(1) == o_.in_channels, SINSR_ERR_INVALID_ARGUMENT,
          "the network input (x plus lq) has " + std::to_string(h.size(1)) + " channels, in_channels is " +
              std::to_string(o_.in_channels) + (lq.defined() ? "" : " (lq missing?)"));
  h = h.to(torso_);
  std::vector<at::Tensor> skips;
  for (auto& b : input_blocks_) {
    h = b->run(h, emb);
    skips.push_back(h);
  }
  h = middle_->run(h, emb);
  for (auto& b : output_blocks_) {
    h = b->run(at::cat({h, skips.back()}, 1), emb);
    skips.pop_back();
  }
  // The head keeps fp32 weights in every mode; callers get their own dtype back.
  h = h.to(at::kFloat);
  auto norm = std::dynamic_pointer_cast<nn::GroupNormImpl>(out_->named_children()["0"]);
  auto head = std::dynamic_pointer_cast<sdk::LayerImpl>(out_->named_children()["2"]);
  at::Tensor out = head->forward(at::silu(gn(nn::GroupNorm(norm), h)));
  if (o_.residual_upscale > 0) {
    require(lq.defined(), SINSR_ERR_INVALID_ARGUMENT, "residual_upscale needs lq");
    const double s = o_.residual_upscale;
    at::Tensor c = lq.to(at::kFloat);
    at::Tensor up = at::upsample_bicubic2d(c, {c.size(2) * o_.residual_upscale, c.size(3) * o_.residual_upscale},
                                           /*align_corners=*/false, s, s);
    at::Tensor base = o_.residual_unshuffle > 1 ? at::pixel_unshuffle(up, o_.residual_unshuffle) : up;
    require(base.sizes() == out.sizes(), SINSR_ERR_INVALID_ARGUMENT,
            "residual_upscale: the folded bicubic lq does not match the output shape");
    out = out + base;
  }
  return out.to(x.scalar_type());
}

void UNetModelSwin::set_precision(c10::Device device, at::ScalarType torso) {
  require(torso == at::kFloat || torso == at::kHalf || torso == at::kBFloat16, SINSR_ERR_UNSUPPORTED,
          std::string("unet_swin runs in float32, float16 or bfloat16, not ") + c10::toString(torso));
  at::NoGradGuard no_grad;
  for (auto& p : parameters()) p.set_data(p.to(device, at::kFloat));
  for (auto& b : buffers()) b.set_data(b.is_floating_point() ? b.to(device, at::kFloat) : b.to(device));
  torso_ = torso;
  if (torso == at::kFloat) return;
  // The official fp16 mode: conv and linear weights inside the three block lists only.
  for (auto* list : {&input_blocks_, &output_blocks_}) {
    for (auto& b : *list)
      for (auto& m : b->modules())
        if (dynamic_cast<sdk::LayerImpl*>(m.get()))
          for (auto& p : m->parameters(false)) p.set_data(p.to(torso));
  }
  for (auto& m : middle_->modules())
    if (dynamic_cast<sdk::LayerImpl*>(m.get()))
      for (auto& p : m->parameters(false)) p.set_data(p.to(torso));
}

}  // namespace unet_swin
}  // namespace sinsr
