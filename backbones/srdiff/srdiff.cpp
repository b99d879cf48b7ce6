#include "srdiff.hpp"

#include <sinsr/checkpoint.hpp>
#include <sinsr/config.hpp>
#include <sinsr/sdk.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <sstream>

namespace sinsr {
namespace srdiff {

namespace nn = torch::nn;
using sdk::require;

// ---- config ------------------------------------------------------------------------------

const char* const kConfigSchema = R"json({
  "hidden_size": {"type": "integer", "default": 64,
    "doc": "Unet dim: channels of the first level and width of the time embedding; even, >= 4"},
  "unet_dim_mults": {"type": ["array", "string"], "default": [1, 2, 2, 4],
    "doc": "multiplier per Unet level, a list or \"1|2|2|4\"; starts with 1; HR H, W multiples of 2^(L-1)"},
  "dim_mults": {"type": ["array", "string"], "doc": "alias of unet_dim_mults"},
  "rrdb_num_feat": {"type": "integer", "default": 32, "doc": "RRDB channels nf (also the Unet's cond_dim)"},
  "rrdb_num_block": {"type": "integer", "default": 8,
    "doc": "RRDB blocks nb (>= 2); the Unet takes features 2, 5, 8, ... of the nb + 1"},
  "rrdb_num_grow_ch": {"type": "integer", "default": 16,
    "doc": "RRDB growth channels gc; absent or null: rrdb_num_feat / 2, as the reference"},
  "sr_scale": {"type": "integer", "default": 4, "enum": [4, 8],
    "doc": "HR = sr_scale x LR; cond_proj kernel 2s, stride s, padding s/2; RRDB head upconv3 for 8"},
  "out_dim": {"type": "integer", "default": 3, "enum": [3], "doc": "Unet output channels"},
  "output": {"type": "string", "default": "eps", "enum": ["eps", "rrdb"],
    "doc": "eps: the Unet's noise; rrdb: the RRDB's SR image from the LR (x, t unused), to pre-train it"},
  "fix_rrdb": {"type": "boolean", "default": true,
    "doc": "eps: rrdb.* frozen (non-parameters, run without autograd); false trains them through the Unet"}
})json";

namespace {

using config::IntRange;

// unet_dim_mults: a list, or the reference's "1|2|2|4".
std::vector<int> read_mults(config::Reader& r, const std::string& key) {
  std::vector<int> out;
  const nlohmann::json v = r.raw(key);
  if (v.is_string()) {
    std::stringstream ss(v.get<std::string>());
    std::string item;
    while (std::getline(ss, item, '|')) {
      size_t used = 0;
      int m = 0;
      try {
        m = std::stoi(item, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used == 0 || used != item.size() || m < 1)
        r.fail(key, "must be positive integers separated by |, got " + v.dump());
      out.push_back(m);
    }
    if (out.empty()) r.fail(key, "must hold at least one multiplier, got " + v.dump());
  } else {
    for (int64_t m : r.integers(key, {}, IntRange::between(1, 1024), 1)) out.push_back(int(m));
  }
  // final_conv is Block(dim, dim) on the first level's output.
  if (out[0] != 1) r.fail(key, "must start with 1 (the last block is Block(dim, dim)), got " + v.dump());
  return out;
}

}  // namespace

Options Options::from_json(const nlohmann::json& c) {
  config::Reader r("backbone 'srdiff'", c);
  Options o;
  o.hidden_size = int(r.integer("hidden_size", o.hidden_size, IntRange::at_least(4)));
  // The sinusoidal embedding is 2 * (dim / 2) wide and must be exactly dim.
  if (o.hidden_size % 2 != 0) r.fail("hidden_size", "must be even, got " + std::to_string(o.hidden_size));
  const bool mults = r.has("unet_dim_mults"), alias = r.has("dim_mults");
  if (mults && alias) r.fail("dim_mults", "is an alias of unet_dim_mults: give one of them, not both");
  if (mults || alias) o.dim_mults = read_mults(r, mults ? "unet_dim_mults" : "dim_mults");
  o.rrdb_num_feat = int(r.integer("rrdb_num_feat", o.rrdb_num_feat, IntRange::at_least(1)));
  // Fewer than 2 blocks leaves no feature at index 2 for the condition.
  o.rrdb_num_block = int(r.integer("rrdb_num_block", o.rrdb_num_block, IntRange::at_least(2)));
  o.rrdb_num_grow_ch = int(r.integer("rrdb_num_grow_ch", std::max(1, o.rrdb_num_feat / 2), IntRange::at_least(1)));
  // The RRDB head always up-samples x4 (upconv1, upconv2), plus x2 (upconv3) for 8.
  o.sr_scale = int(r.integer("sr_scale", o.sr_scale, IntRange::between(4, 8)));
  if (o.sr_scale != 4 && o.sr_scale != 8) r.fail("sr_scale", "must be 4 or 8, got " + std::to_string(o.sr_scale));
  o.out_dim = int(r.integer("out_dim", o.out_dim, IntRange::between(3, 3)));
  o.output = r.string("output", o.output, {"eps", "rrdb"});
  o.fix_rrdb = r.boolean("fix_rrdb", o.fix_rrdb);
  r.finish();
  return o;
}

// ---- layers --------------------------------------------------------------------------------

namespace {

// Every weighted layer is the SDK's (torch.nn's names and initialisation). Frozen ones hold
// their weights as buffers under the same names: checkpoints are unchanged while the SDK lists
// them as non-parameters, so the host neither asks for their gradient nor updates them
// (requires_grad alone would still list them, and weight decay would move them).
using LayerPtr = sdk::Layer;

LayerPtr conv(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t pad, bool trainable) {
  return sdk::conv2d(in, out, k, stride, pad, trainable);
}
LayerPtr conv_transpose(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t pad, bool trainable) {
  return sdk::conv_transpose2d(in, out, k, stride, pad, trainable);
}
LayerPtr linear(int64_t in, int64_t out, bool trainable) { return sdk::linear(in, out, trainable); }
// A keyless container giving children numeric names, as nn.Sequential / nn.ModuleList do.
std::shared_ptr<nn::Module> holder() { return std::make_shared<nn::Module>(); }

at::Tensor lrelu(const at::Tensor& x) { return at::leaky_relu(x, 0.2); }
at::Tensor reflect1(const at::Tensor& x) { return at::reflection_pad2d(x, {1, 1, 1, 1}); }
// x * tanh(softplus(x)), with ATen's fused kernel and backward.
at::Tensor mish_act(const at::Tensor& x) { return at::mish(x); }

std::string size_str(const at::Tensor& t) { return std::to_string(t.size(-2)) + "x" + std::to_string(t.size(-1)); }

}  // namespace

// ---- RRDBNet -------------------------------------------------------------------------------

namespace {
// ResidualDenseBlock_5C: five dense 3x3 convs, LeakyReLU 0.2 after the first four.
struct DenseBlock : nn::Module {
  std::vector<LayerPtr> convs;
  DenseBlock(int64_t nf, int64_t gc, bool trainable) {
    for (int64_t k = 0; k < 5; ++k)
      convs.push_back(
          register_module("conv" + std::to_string(k + 1), conv(nf + k * gc, k == 4 ? nf : gc, 3, 1, 1, trainable)));
  }
  at::Tensor forward(const at::Tensor& x) {
    std::vector<at::Tensor> dense{x};
    for (size_t k = 0; k < 4; ++k) dense.push_back(lrelu(convs[k]->forward(k == 0 ? x : at::cat(dense, 1))));
    return convs[4]->forward(at::cat(dense, 1)) * 0.2 + x;
  }
};
}  // namespace

struct RRDBNet::RRDB : nn::Module {
  std::shared_ptr<DenseBlock> rdb[3];
  RRDB(int64_t nf, int64_t gc, bool trainable) {
    for (int k = 0; k < 3; ++k)
      rdb[k] = register_module("RDB" + std::to_string(k + 1), std::make_shared<DenseBlock>(nf, gc, trainable));
  }
  at::Tensor forward(const at::Tensor& x) { return rdb[2]->forward(rdb[1]->forward(rdb[0]->forward(x))) * 0.2 + x; }
};

RRDBNet::RRDBNet(const Options& o, bool trainable) : o_(o) {
  const int64_t nf = o.rrdb_num_feat, gc = o.rrdb_num_grow_ch;
  conv_first_ = register_module("conv_first", conv(3, nf, 3, 1, 1, trainable));
  auto trunk = register_module("RRDB_trunk", holder());
  for (int i = 0; i < o.rrdb_num_block; ++i)
    trunk_.push_back(trunk->register_module(std::to_string(i), std::make_shared<RRDB>(nf, gc, trainable)));
  trunk_conv_ = register_module("trunk_conv", conv(nf, nf, 3, 1, 1, trainable));
  const int ups = o.sr_scale == 8 ? 3 : 2;
  for (int i = 0; i < ups; ++i)
    upconvs_.push_back(register_module("upconv" + std::to_string(i + 1), conv(nf, nf, 3, 1, 1, trainable)));
  hr_conv_ = register_module("HRconv", conv(nf, nf, 3, 1, 1, trainable));
  conv_last_ = register_module("conv_last", conv(nf, 3, 3, 1, 1, trainable));
}

std::vector<at::Tensor> RRDBNet::features(const at::Tensor& lr) {
  std::vector<at::Tensor> feas;
  const at::Tensor first = conv_first_->forward((lr + 1) / 2);  // the RRDB works on [0, 1]
  at::Tensor fea = first;
  for (auto& block : trunk_) {
    fea = block->forward(fea);
    feas.push_back(fea);
  }
  feas.push_back(first + trunk_conv_->forward(fea));
  return feas;
}

at::ScalarType RRDBNet::dtype() const { return conv_first_->weight.scalar_type(); }

at::Tensor RRDBNet::image(const at::Tensor& last_feature) {
  at::Tensor fea = last_feature;
  for (auto& up : upconvs_) fea = lrelu(up->forward(at::upsample_nearest2d(fea, {fea.size(2) * 2, fea.size(3) * 2})));
  at::Tensor out = conv_last_->forward(lrelu(hr_conv_->forward(fea)));
  return out.clamp(0, 1) * 2 - 1;
}

// ---- Unet ----------------------------------------------------------------------------------

// ReflectionPad(1), Conv3x3, Mish; the conv is `block.1`.
struct Unet::Block : nn::Module {
  LayerPtr conv3;
  Block(int64_t in, int64_t out, bool trainable) {
    conv3 = register_module("block", holder())->register_module("1", conv(in, out, 3, 1, 0, trainable));
  }
  at::Tensor forward(const at::Tensor& x) { return mish_act(conv3->forward(reflect1(x))); }
};

struct Unet::ResnetBlock : nn::Module {
  LayerPtr emb, res_conv;
  std::shared_ptr<Block> block1, block2;
  ResnetBlock(int64_t in, int64_t out, int64_t time_dim, bool trainable) {
    emb = register_module("mlp", holder())->register_module("1", linear(time_dim, out, trainable));
    block1 = register_module("block1", std::make_shared<Block>(in, out, trainable));
    block2 = register_module("block2", std::make_shared<Block>(out, out, trainable));
    if (in != out) res_conv = register_module("res_conv", conv(in, out, 1, 1, 0, trainable));
  }
  at::Tensor forward(const at::Tensor& x, const at::Tensor& t_emb) {
    at::Tensor h = block1->forward(x) + emb->forward(mish_act(t_emb)).unsqueeze(-1).unsqueeze(-1);
    return block2->forward(h) + (res_conv ? res_conv->forward(x) : x);
  }
};

// One entry of downs / ups: two ResnetBlocks and the resampling ("2"; none on the last level).
struct Unet::Stage : nn::Module {
  std::shared_ptr<ResnetBlock> res1, res2;
  LayerPtr resample;
  bool down;
  Stage(int64_t in, int64_t out, int64_t time_dim, bool down_, bool resampled, bool trainable) : down(down_) {
    res1 = register_module("0", std::make_shared<ResnetBlock>(in, out, time_dim, trainable));
    res2 = register_module("1", std::make_shared<ResnetBlock>(out, out, time_dim, trainable));
    if (!resampled) return;
    // Downsample: ReflectionPad(1) then conv3x3 stride 2 (`conv.1`); Upsample: ConvTranspose2d(4, 2, 1) (`conv.0`).
    auto seq = register_module("2", holder())->register_module("conv", holder());
    resample = down ? seq->register_module("1", conv(out, out, 3, 2, 0, trainable))
                    : seq->register_module("0", conv_transpose(out, out, 4, 2, 1, trainable));
  }
  at::Tensor forward(const at::Tensor& x, const at::Tensor& t_emb) {
    return res2->forward(res1->forward(x, t_emb), t_emb);
  }
  at::Tensor resample_step(const at::Tensor& x) {
    if (!resample) return x;
    return resample->forward(down ? reflect1(x) : x);
  }
};

Unet::Unet(const Options& o, bool trainable) : o_(o) {
  const int64_t dim = o.hidden_size, s = o.sr_scale;
  std::vector<int64_t> dims{3};
  for (int m : o.dim_mults) dims.push_back(dim * m);
  const size_t levels = o.dim_mults.size();
  cond_proj_ = register_module(
      "cond_proj", conv_transpose(int64_t(o.rrdb_num_feat) * o.cond_features(), dim, 2 * s, s, s / 2, trainable));
  auto mlp = register_module("mlp", holder());
  mlp0_ = mlp->register_module("0", linear(dim, 4 * dim, trainable));
  mlp2_ = mlp->register_module("2", linear(4 * dim, dim, trainable));
  // The reference creates downs and ups (empty) before mid_block1: state-dict order.
  auto downs = register_module("downs", holder());
  auto ups = register_module("ups", holder());
  for (size_t i = 0; i < levels; ++i)
    downs_.push_back(downs->register_module(
        std::to_string(i), std::make_shared<Stage>(dims[i], dims[i + 1], dim, true, i + 1 < levels, trainable)));
  mid1_ = register_module("mid_block1", std::make_shared<ResnetBlock>(dims.back(), dims.back(), dim, trainable));
  mid2_ = register_module("mid_block2", std::make_shared<ResnetBlock>(dims.back(), dims.back(), dim, trainable));
  // Up stages for levels L-1 .. 1, each up-sampling (the reference's is_last never fires), so the
  // level-0 skip is never used.
  for (size_t j = 0; j + 1 < levels; ++j) {
    const size_t lvl = levels - 1 - j;  // pair (dims[lvl], dims[lvl + 1])
    ups_.push_back(ups->register_module(
        std::to_string(j), std::make_shared<Stage>(2 * dims[lvl + 1], dims[lvl], dim, false, true, trainable)));
  }
  auto final_conv = register_module("final_conv", holder());
  final_block_ = final_conv->register_module("0", std::make_shared<Block>(dim, dim, trainable));
  final_out_ = final_conv->register_module("1", conv(dim, o.out_dim, 1, 1, 0, trainable));
}

at::Tensor Unet::time_embedding(const at::Tensor& t) {
  const int64_t half = o_.hidden_size / 2;
  // Computed in float32 as the reference does, with the integer steps multiplied directly.
  const auto f32 = at::TensorOptions().dtype(at::kFloat).device(t.device());
  at::Tensor freq = at::exp(at::arange(half, f32) * float(-std::log(10000.0) / double(half - 1)));
  at::Tensor arg = t.reshape({-1, 1}).to(at::kFloat) * freq.unsqueeze(0);
  at::Tensor emb = at::cat({arg.sin(), arg.cos()}, -1).to(mlp0_->weight.scalar_type());
  return mlp2_->forward(mish_act(mlp0_->forward(emb)));
}

at::Tensor Unet::forward(const at::Tensor& x_in, const at::Tensor& t, const std::vector<at::Tensor>& rrdb_features) {
  const at::Tensor t_emb = time_embedding(t);
  std::vector<at::Tensor> picked;
  for (size_t i = 2; i < rrdb_features.size(); i += 3) picked.push_back(rrdb_features[i]);
  require(int(picked.size()) == o_.cond_features(), SINSR_ERR_INVALID_ARGUMENT,
          "srdiff: the Unet needs " + std::to_string(o_.rrdb_num_block + 1) + " RRDB features, got " +
              std::to_string(rrdb_features.size()));
  const at::Tensor cond = cond_proj_->forward(at::cat(picked, 1));
  std::vector<at::Tensor> skips;
  at::Tensor x = x_in;
  for (size_t i = 0; i < downs_.size(); ++i) {
    x = downs_[i]->forward(x, t_emb);
    if (i == 0) x = x + cond;  // the LR condition joins after the first level
    skips.push_back(x);
    x = downs_[i]->resample_step(x);
  }
  x = mid2_->forward(mid1_->forward(x, t_emb), t_emb);
  for (auto& stage : ups_) {
    x = at::cat({x, skips.back()}, 1);
    skips.pop_back();
    x = stage->resample_step(stage->forward(x, t_emb));
  }
  return final_out_->forward(final_block_->forward(x));
}

// ---- SRDiff ----------------------------------------------------------------------------------

SRDiff::SRDiff(const Options& o) : o_(o) {
  // GaussianDiffusion registers denoise_fn before rrdb: saved files list keys in that order.
  unet_ = register_module("denoise_fn", std::make_shared<Unet>(o, o.unet_trainable()));
  rrdb_ = register_module("rrdb", std::make_shared<RRDBNet>(o, o.rrdb_trainable()));
}

at::Tensor SRDiff::forward(const at::Tensor& x, const at::Tensor& cond, const at::Tensor& t) {
  require(cond.defined(), SINSR_ERR_INVALID_ARGUMENT, "srdiff: cond (the LR image in [-1, 1]) is missing");
  require(cond.dim() == 4 && cond.size(1) == 3, SINSR_ERR_INVALID_ARGUMENT,
          "srdiff: cond must be [N, 3, h, w], got " + sdk::describe_shape(cond));
  const int64_t s = o_.sr_scale;
  const bool eps = o_.output == "eps";
  if (eps || x.defined()) {
    require(x.defined(), SINSR_ERR_INVALID_ARGUMENT, "srdiff: x (the residual x_t) is missing");
    require(x.dim() == 4 && x.size(1) == 3 && x.size(0) == cond.size(0), SINSR_ERR_INVALID_ARGUMENT,
            "srdiff: x must be [N, 3, H, W] with the batch of cond " + sdk::describe_shape(cond) + ", got " +
                sdk::describe_shape(x));
    require(x.size(2) == s * cond.size(2) && x.size(3) == s * cond.size(3), SINSR_ERR_INVALID_ARGUMENT,
            "srdiff: HR size " + size_str(x) + " is not sr_scale " + std::to_string(s) + " times the LR size " +
                size_str(cond));
  }
  const at::ScalarType wtype = rrdb_->dtype();  // to(device, dtype) may have changed it
  const at::Tensor lr = cond.to(wtype);
  if (!eps) return rrdb_->forward(lr).to(cond.scalar_type());

  const int64_t levels = int64_t(o_.dim_mults.size()), multiple = int64_t(1) << (levels - 1);
  require(x.size(2) % multiple == 0 && x.size(3) % multiple == 0, SINSR_ERR_INVALID_ARGUMENT,
          "srdiff: HR size " + size_str(x) + " must be a multiple of " + std::to_string(multiple) + " (2^(" +
              std::to_string(levels) + "-1) for " + std::to_string(levels) + " Unet levels)");
  // Reflection padding needs at least 2 pixels on the coarsest level.
  require(x.size(2) >= 2 * multiple && x.size(3) >= 2 * multiple, SINSR_ERR_INVALID_ARGUMENT,
          "srdiff: HR size " + size_str(x) + " is too small: at least " + std::to_string(2 * multiple) +
              " pixels a side for " + std::to_string(levels) + " Unet levels");
  require(
      t.defined() && t.numel() == x.size(0), SINSR_ERR_INVALID_ARGUMENT,
      "srdiff: t must hold one step per batch item (" + std::to_string(x.size(0)) + "), got " + sdk::describe_shape(t));
  std::vector<at::Tensor> feas;
  if (o_.rrdb_trainable()) {
    feas = rrdb_->features(lr);
  } else {
    at::NoGradGuard no_grad;  // a frozen encoder: no tape through it
    feas = rrdb_->features(lr);
  }
  return unet_->forward(x.to(wtype), t.to(x.device()), feas).to(x.scalar_type());
}

// ---- checkpoints -----------------------------------------------------------------------------

namespace {

// GaussianDiffusion's registered schedule buffers: in reference checkpoints, owned by the sampler here.
const std::set<std::string> kScheduleBuffers = {"betas",
                                                "alphas_cumprod",
                                                "alphas_cumprod_prev",
                                                "sqrt_alphas_cumprod",
                                                "sqrt_one_minus_alphas_cumprod",
                                                "log_one_minus_alphas_cumprod",
                                                "sqrt_recip_alphas_cumprod",
                                                "sqrt_recipm1_alphas_cumprod",
                                                "posterior_variance",
                                                "posterior_log_variance_clipped",
                                                "posterior_mean_coef1",
                                                "posterior_mean_coef2"};

// The reference trainer's layout {"state_dict": {"model": {name: tensor}}}; empty when not that.
ckpt::StateDict reference_nesting(const std::string& path) {
  ckpt::StateDict out;
  c10::IValue root = ckpt::read_file(path);
  if (!root.isGenericDict()) return out;
  auto find = [](const c10::IValue& d, const char* key) -> c10::IValue {
    auto dict = d.toGenericDict();
    auto it = dict.find(c10::IValue(std::string(key)));
    return it == dict.end() || !it->value().isGenericDict() ? c10::IValue() : it->value();
  };
  c10::IValue sd = find(root, "state_dict");
  if (sd.isNone()) return out;
  c10::IValue model = find(sd, "model");
  if (model.isNone()) return out;
  for (auto& kv : model.toGenericDict()) {
    if (!kv.key().isString() || !kv.value().isTensor()) return {};
    out.emplace_back(kv.key().toStringRef(), kv.value().toTensor());
  }
  return out;
}

}  // namespace

void load_weights(SRDiff& net, const std::string& path, const nlohmann::json& options) {
  const std::string key = options.value("key", std::string());
  const std::string part = options.value("module", std::string());
  require(part.empty() || part == "rrdb" || part == "denoise_fn", SINSR_ERR_INVALID_ARGUMENT,
          "srdiff: load option 'module' must be \"rrdb\" or \"denoise_fn\", got \"" + part + "\"");
  ckpt::StateDict state;
  try {
    state = ckpt::read_state_dict(path, key);
  } catch (const sdk::Error& e) {
    if (!key.empty() || e.code() != SINSR_ERR_FORMAT) throw;
    state = reference_nesting(path);
    if (state.empty()) throw;
  }
  ckpt::StateDict kept;
  for (auto& kv : state)
    if (!kScheduleBuffers.count(kv.first)) kept.push_back(std::move(kv));
  nn::Module& target = part == "rrdb"         ? static_cast<nn::Module&>(net.rrdb())
                       : part == "denoise_fn" ? static_cast<nn::Module&>(net.denoise_fn())
                                              : static_cast<nn::Module&>(net);
  try {
    ckpt::load_into(target, std::move(kept), options.value("strict", true));
  } catch (const sdk::Error& e) {
    throw sdk::Error(e.code(), path + ": " + e.what());
  }
}

}  // namespace srdiff
}  // namespace sinsr
