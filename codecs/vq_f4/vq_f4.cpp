#include "vq_f4.hpp"

#include <sinsr/config.hpp>
#include <sinsr/layers.hpp>
#include <sinsr/sdk.hpp>

#include <torch/nn/modules/normalization.h>

#include <algorithm>
#include <cmath>
#include <functional>

namespace sinsr {
namespace vq_f4 {

namespace nn = torch::nn;
using sdk::require;

// Ranges are generous but bounded: a config is checked before any weight is allocated.
Options Options::from_json(const nlohmann::json& p) {
  using config::IntRange;
  config::Reader r("codec 'vq_f4'", p);
  Options o;
  const IntRange size = IntRange::between(1, 1 << 16);
  o.embed_dim = int(r.integer("embed_dim", o.embed_dim, size));
  o.n_embed = int(r.integer("n_embed", o.n_embed, IntRange::between(1, 1 << 24)));
  o.scale_factor = r.number("scale_factor", o.scale_factor);
  if (o.scale_factor == 0.0) r.fail("scale_factor", "must not be 0");
  o.attention_chunk = r.integer("attention_chunk", o.attention_chunk, IntRange::at_least(1));
  o.quantize_on_decode = r.boolean("quantize_on_decode", o.quantize_on_decode);
  config::Reader dd = r.object("ddconfig");
  if (dd.boolean("double_z", false))
    dd.fail("double_z", "true is not supported (VQModelTorch has a single z)", SINSR_ERR_UNSUPPORTED);
  o.z_channels = int(dd.integer("z_channels", o.z_channels, size));
  o.resolution = int(dd.integer("resolution", o.resolution, size));
  o.in_channels = int(dd.integer("in_channels", o.in_channels, size));
  o.out_ch = int(dd.integer("out_ch", o.out_ch, size));
  o.ch = int(dd.integer("ch", o.ch, size));
  if (o.ch % 32 != 0) dd.fail("ch", "must be a multiple of 32 (GroupNorm has 32 groups), got " + std::to_string(o.ch));
  const auto ch_mult = dd.integers("ch_mult", {1, 2, 4}, IntRange::between(1, 64), 1, 16);
  o.ch_mult.assign(ch_mult.begin(), ch_mult.end());
  // An integer (the official form: the same count per level) or ResShift's per-level list.
  const auto blocks = dd.integers("num_res_blocks", std::vector<int64_t>(o.ch_mult.size(), 2), IntRange::between(0, 64),
                                  1, 16, o.ch_mult.size());
  if (blocks.size() != o.ch_mult.size()) dd.fail("num_res_blocks", "needs one entry per ch_mult level");
  o.num_res_blocks.assign(blocks.begin(), blocks.end());
  const auto attn = dd.integers("attn_resolutions", {}, size, 0, 64);
  o.attn_resolutions.assign(attn.begin(), attn.end());
  dd.number("dropout", 0.0, config::Range{0, 1, false, true});  // the codec is frozen: no dropout
  dd.string("padding_mode", "zeros");                           // ignored by the official Encoder/Decoder
  r.finish();
  return o;
}

namespace {

nn::GroupNorm norm(int64_t c) { return nn::GroupNorm(nn::GroupNormOptions(32, c).eps(1e-6)); }
sdk::Layer conv(int64_t in, int64_t out, int64_t k, int64_t stride = 1, int64_t pad = -1) {
  return sdk::conv2d(in, out, k, stride, pad < 0 ? k / 2 : pad);
}
std::shared_ptr<nn::Module> holder() { return std::make_shared<nn::Module>(); }

// Without a graph to record, activations and residual sums overwrite temporaries of ours: at
// 256² the widest layers' buffers are 33-67 MB each, and every one not allocated is heap the
// first image does not grow and memory every image does not stream through.
bool in_place() { return !at::GradMode::is_enabled(); }
at::Tensor swish(at::Tensor t) { return in_place() ? at::silu_(t) : at::silu(t); }

struct Resnet : nn::Module {
  nn::GroupNorm norm1{nullptr}, norm2{nullptr};
  sdk::Layer conv1, conv2, shortcut;
  Resnet(int64_t in, int64_t out) {
    norm1 = register_module("norm1", norm(in));
    conv1 = register_module("conv1", conv(in, out, 3));
    norm2 = register_module("norm2", norm(out));
    conv2 = register_module("conv2", conv(out, out, 3));
    if (in != out) shortcut = register_module("nin_shortcut", conv(in, out, 1));
  }
  at::Tensor forward(const at::Tensor& x) {
    // One statement per layer: each intermediate is released as soon as the next exists.
    at::Tensor h = swish(norm1->forward(x));
    h = conv1->forward(h);
    h = swish(norm2->forward(h));
    h = conv2->forward(h);
    at::Tensor skip = shortcut ? shortcut->forward(x) : x;
    return in_place() ? h.add_(skip) : skip + h;
  }
};

struct Attn : nn::Module {
  nn::GroupNorm n{nullptr};
  sdk::Layer q, k, v, proj;
  int64_t* chunk;
  Attn(int64_t c, int64_t* chunk_) : chunk(chunk_) {
    n = register_module("norm", norm(c));
    q = register_module("q", conv(c, c, 1));
    k = register_module("k", conv(c, c, 1));
    v = register_module("v", conv(c, c, 1));
    proj = register_module("proj_out", conv(c, c, 1));
  }
  at::Tensor forward(const at::Tensor& x) {
    at::Tensor h = n->forward(x);
    const int64_t b = x.size(0), c = x.size(1), H = x.size(2), W = x.size(3);
    auto positions = [&](const sdk::Layer& l) { return l->forward(h).reshape({b, c, H * W}).transpose(1, 2); };
    sdk::AttentionOptions options;
    options.block = *chunk;
    at::Tensor o = sdk::attention(positions(q), positions(k), positions(v), options);  // [b, HW, c]
    return x + proj->forward(o.transpose(1, 2).reshape({b, c, H, W}));
  }
};

struct Down : nn::Module {
  sdk::Layer c;
  explicit Down(int64_t ch) { c = register_module("conv", conv(ch, ch, 3, 2, 0)); }
  // Asymmetric: zeros on the right and bottom only, then an unpadded stride-2 conv.
  at::Tensor forward(const at::Tensor& x) { return c->forward(at::constant_pad_nd(x, {0, 1, 0, 1}, 0)); }
};

struct Up : nn::Module {
  sdk::Layer c;
  explicit Up(int64_t ch) { c = register_module("conv", conv(ch, ch, 3)); }
  at::Tensor forward(const at::Tensor& x) {
    return c->forward(at::upsample_nearest2d(x, {x.size(2) * 2, x.size(3) * 2}, 2.0, 2.0));
  }
};

}  // namespace

// Encoder or decoder: the same parts in the two orders the official classes use.
struct VQModel::Coder : nn::Module {
  std::vector<std::function<at::Tensor(const at::Tensor&)>> steps;
  int64_t chunk = 1024;

  template <class M>
  std::shared_ptr<M> add(nn::Module& parent, const std::string& name, std::shared_ptr<M> m) {
    parent.register_module(name, m);
    steps.push_back([m](const at::Tensor& x) { return m->forward(x); });
    return m;
  }

  void mid(int64_t c) {
    auto m = holder();
    add(*m, "block_1", std::make_shared<Resnet>(c, c));
    add(*m, "attn_1", std::make_shared<Attn>(c, &chunk));
    add(*m, "block_2", std::make_shared<Resnet>(c, c));
    register_module("mid", m);
  }
  void head(int64_t c, int64_t out) {
    auto n = register_module("norm_out", norm(c));
    auto o = register_module("conv_out", conv(c, out, 3));
    steps.push_back([n, o](const at::Tensor& x) { return o->forward(swish(n->forward(x))); });
  }
  void conv_in(int64_t in, int64_t out) {
    auto c = register_module("conv_in", conv(in, out, 3));
    steps.push_back([c](const at::Tensor& x) { return c->forward(x); });
  }

  Coder(const Options& o, bool encoder) {
    const size_t L = o.ch_mult.size();
    auto attn_at = [&](int64_t res) {
      return std::find(o.attn_resolutions.begin(), o.attn_resolutions.end(), res) != o.attn_resolutions.end();
    };
    auto levels = holder();
    if (encoder) {
      conv_in(o.in_channels, o.ch);
      int64_t res = o.resolution, block_in = o.ch;
      for (size_t l = 0; l < L; ++l) {
        auto level = holder(), blocks = holder(), attns = holder();
        level->register_module("block", blocks);
        level->register_module("attn", attns);
        int64_t block_out = o.ch * o.ch_mult[l];
        for (int b = 0; b < o.num_res_blocks[l]; ++b) {
          add(*blocks, std::to_string(b), std::make_shared<Resnet>(block_in, block_out));
          block_in = block_out;
          if (attn_at(res)) add(*attns, std::to_string(b), std::make_shared<Attn>(block_in, &chunk));
        }
        if (l + 1 < L) {
          add(*level, "downsample", std::make_shared<Down>(block_in));
          res /= 2;
        }
        levels->register_module(std::to_string(l), level);
      }
      register_module("down", levels);
      mid(block_in);
      head(block_in, o.z_channels);
    } else {
      int64_t block_in = o.ch * o.ch_mult[L - 1];
      int64_t res = o.resolution >> (L - 1);
      conv_in(o.z_channels, block_in);
      mid(block_in);
      // Built coarse to fine, registered by level index (up.0 is the finest).
      std::vector<std::shared_ptr<nn::Module>> built(L);
      for (size_t l = L; l-- > 0;) {
        auto level = holder(), blocks = holder(), attns = holder();
        level->register_module("block", blocks);
        level->register_module("attn", attns);
        int64_t block_out = o.ch * o.ch_mult[l];
        for (int b = 0; b <= o.num_res_blocks[l]; ++b) {
          add(*blocks, std::to_string(b), std::make_shared<Resnet>(block_in, block_out));
          block_in = block_out;
          if (attn_at(res)) add(*attns, std::to_string(b), std::make_shared<Attn>(block_in, &chunk));
        }
        if (l != 0) {
          add(*level, "upsample", std::make_shared<Up>(block_in));
          res *= 2;
        }
        built[l] = level;
      }
      for (size_t l = 0; l < L; ++l) levels->register_module(std::to_string(l), built[l]);
      register_module("up", levels);
      head(block_in, o.out_ch);
    }
  }

  at::Tensor forward(at::Tensor x) {
    for (auto& s : steps) x = s(x);
    return x;
  }
};

VQModel::VQModel(const Options& o) : o_(o) {
  encoder_ = register_module("encoder", std::make_shared<Coder>(o, true));
  decoder_ = register_module("decoder", std::make_shared<Coder>(o, false));
  auto q = holder();
  auto emb = holder();
  codebook_ = emb->register_parameter(
      "weight", sdk::initialise_parameters()
                    ? at::rand({o.n_embed, o.embed_dim}).mul_(2.0 / o.n_embed).sub_(1.0 / o.n_embed)
                    : sdk::empty_parameter({o.n_embed, o.embed_dim}));
  q->register_module("embedding", emb);
  register_module("quantize", q);
  quant_conv_ = register_module("quant_conv", conv(o.z_channels, o.embed_dim, 1));
  post_quant_conv_ = register_module("post_quant_conv", conv(o.embed_dim, o.z_channels, 1));
  set_attention_chunk(o.attention_chunk);
}

void VQModel::set_attention_chunk(int64_t n) {
  require(n > 0, SINSR_ERR_INVALID_ARGUMENT, "attention chunk must be > 0");
  o_.attention_chunk = n;
  encoder_->chunk = n;
  decoder_->chunk = n;
}

namespace {
void check_input(const at::Tensor& x, int64_t channels, const VQModel& m, const char* what) {
  require(x.defined() && x.dim() == 4, SINSR_ERR_INVALID_ARGUMENT,
          std::string("vq_f4: ") + what + " must be [N,C,H,W], got " +
              (x.defined() ? std::to_string(x.dim()) + "-D" : "none"));
  require(x.size(1) == channels, SINSR_ERR_INVALID_ARGUMENT,
          std::string("vq_f4: ") + what + " has " + std::to_string(x.size(1)) + " channels, the config says " +
              std::to_string(channels));
  require(x.size(0) > 0 && x.size(2) > 0 && x.size(3) > 0, SINSR_ERR_INVALID_ARGUMENT,
          std::string("vq_f4: ") + what + " is empty");
  require(x.scalar_type() == m.dtype() && x.device() == m.device(), SINSR_ERR_INVALID_ARGUMENT,
          std::string("vq_f4: ") + what + " is " + c10::toString(x.scalar_type()) + " on " + x.device().str() +
              ", the model is " + c10::toString(m.dtype()) + " on " + m.device().str());
}
}  // namespace

at::Tensor VQModel::encode(const at::Tensor& image) {
  check_input(image, o_.in_channels, *this, "image");
  // Each Downsample (pad 1, 3x3 stride 2, no padding) needs at least 2 pixels per side.
  for (int64_t side : {image.size(2), image.size(3)}) {
    for (size_t l = 0; l + 1 < o_.ch_mult.size(); ++l, side = (side - 2) / 2 + 1)
      require(side >= 2, SINSR_ERR_INVALID_ARGUMENT,
              "vq_f4: image " + std::to_string(image.size(2)) + "x" + std::to_string(image.size(3)) +
                  " is too small for " + std::to_string(o_.ch_mult.size() - 1) + " downsamplings");
  }
  return std::dynamic_pointer_cast<sdk::LayerImpl>(quant_conv_)->forward(encoder_->forward(image));
}

Quantized VQModel::quantize(const at::Tensor& z) {
  check_input(z, o_.embed_dim, *this, "latent");
  const int64_t n = z.size(0), c = z.size(1), H = z.size(2), W = z.size(3);
  Quantized q;
  at::Tensor picked;
  {
    at::NoGradGuard no_grad;
    at::Tensor rows = z.detach().permute({0, 2, 3, 1}).reshape({-1, c});
    at::Tensor e = codebook_.detach();
    const at::Tensor e_sq = e.pow(2).sum(1), et = e.t();
    // Distances for a block of rows at a time: all 64x64 latent pixels against 8192 codes at
    // once made four 128 MiB matrices, the largest memory of a whole upscale.
    const int64_t total = rows.size(0), codes = e.size(0), block = std::max<int64_t>(1, (int64_t(1) << 22) / codes);
    std::vector<at::Tensor> indices, margins;
    for (int64_t from = 0; from < total; from += block) {
      const at::Tensor r = rows.narrow(0, from, std::min(block, total - from));
      // The official expression, term by term and in the module dtype: |z|^2 + |e|^2 - 2 z.e
      at::Tensor d = (r.pow(2).sum(1, true) + e_sq).sub_(at::matmul(r, et).mul_(2));
      indices.push_back(d.argmin(1));  // first minimum on exact ties, as torch.argmin
      if (codes > 1) {
        auto two = std::get<0>(d.topk(2, 1, /*largest=*/false, /*sorted=*/true));
        margins.push_back(two.select(1, 1) - two.select(1, 0));
      }
    }
    at::Tensor idx = indices.size() == 1 ? indices[0] : at::cat(indices);
    q.margin = codes > 1 ? (margins.size() == 1 ? margins[0] : at::cat(margins)).reshape({n, H, W})
                         : at::full({n, H, W}, INFINITY, rows.options());
    picked = e.index_select(0, idx).reshape({n, H, W, c}).permute({0, 3, 1, 2});
    q.indices = idx.reshape({n, H, W});
    // Legacy VectorQuantizer2: mean((zq - z)^2) + beta * mean((zq - z)^2), beta = 0.25.
    at::Tensor m = (picked - z.detach()).pow(2).mean();
    q.emb_loss = m + 0.25 * m;
  }
  q.quant = z + (picked - z.detach());  // the straight-through form, evaluated as officially
  return q;
}

at::Tensor VQModel::decode(const at::Tensor& z, bool quantize_first) {
  check_input(z, o_.embed_dim, *this, "latent");
  at::Tensor h = quantize_first ? quantize(z).quant : z;
  return decoder_->forward(std::dynamic_pointer_cast<sdk::LayerImpl>(post_quant_conv_)->forward(h));
}

void VQModel::set_precision(c10::Device device, at::ScalarType dtype) {
  require(dtype == at::kFloat || dtype == at::kHalf || dtype == at::kBFloat16 || dtype == at::kDouble,
          SINSR_ERR_UNSUPPORTED,
          std::string("vq_f4 runs in float32, float16, bfloat16 or float64, not ") + c10::toString(dtype));
  at::NoGradGuard no_grad;
  for (auto& p : parameters()) p.set_data(p.to(device, dtype));
}

}  // namespace vq_f4
}  // namespace sinsr
