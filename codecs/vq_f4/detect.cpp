// VQModelTorch hyper-parameters from a state dict's names and shapes: widths from the
// convolutions, levels and blocks from the decoder's key layout, attention levels from the
// per-level AttnBlocks, the codebook from quantize.embedding. The result is checked by rebuilding
// the whole name -> shape map from it, so a config is only returned when the weights load strictly.
#include "vq_f4_detect.hpp"

#include <sinsr/detect.hpp>

#include <algorithm>
#include <string>
#include <vector>

namespace sinsr {
namespace vq_f4 {
namespace {

using sdk::Error;
using sdk::ShapeMap;
using Shape = std::vector<int64_t>;

// Messages carry no component name: the host puts it in front.
const char* kCannot = "a VQModelTorch this codec cannot build";

const Shape* find(const ShapeMap& m, const std::string& key) { return sdk::find_shape(m, key); }

[[noreturn]] void unsupported(const std::string& why) { sdk::refuse_variant(kCannot, why); }

// A missing signature key means "not ours", a missing later key UNSUPPORTED (sinsr/detect.hpp).
const Shape& need(const ShapeMap& m, const std::string& key, size_t ndim, bool signature = false) {
  return sdk::need_shape(m, key, ndim, signature, "VQModelTorch", kCannot);
}

}  // namespace

ShapeMap expected_shapes(const Options& o) {
  ShapeMap m;
  auto conv = [&](const std::string& p, int64_t out, int64_t in, int64_t k) {
    m[p + ".weight"] = {out, in, k, k};
    m[p + ".bias"] = {out};
  };
  auto norm = [&](const std::string& p, int64_t c) {
    m[p + ".weight"] = {c};
    m[p + ".bias"] = {c};
  };
  auto resnet = [&](const std::string& p, int64_t in, int64_t out) {
    norm(p + ".norm1", in);
    conv(p + ".conv1", out, in, 3);
    norm(p + ".norm2", out);
    conv(p + ".conv2", out, out, 3);
    if (in != out) conv(p + ".nin_shortcut", out, in, 1);
  };
  auto attn = [&](const std::string& p, int64_t c) {
    norm(p + ".norm", c);
    for (const char* k : {".q", ".k", ".v", ".proj_out"}) conv(p + k, c, c, 1);
  };
  auto attn_at = [&](int64_t res) {
    return std::find(o.attn_resolutions.begin(), o.attn_resolutions.end(), res) != o.attn_resolutions.end();
  };
  auto mid = [&](const std::string& p, int64_t c) {
    resnet(p + ".mid.block_1", c, c);
    attn(p + ".mid.attn_1", c);
    resnet(p + ".mid.block_2", c, c);
  };
  const size_t L = o.ch_mult.size();
  int64_t block_in = o.ch, res = o.resolution;
  conv("encoder.conv_in", o.ch, o.in_channels, 3);
  for (size_t l = 0; l < L; ++l) {
    const std::string p = "encoder.down." + std::to_string(l);
    const int64_t block_out = o.ch * o.ch_mult[l];
    for (int b = 0; b < o.num_res_blocks[l]; ++b) {
      resnet(p + ".block." + std::to_string(b), block_in, block_out);
      block_in = block_out;
      if (attn_at(res)) attn(p + ".attn." + std::to_string(b), block_in);
    }
    if (l + 1 < L) {
      conv(p + ".downsample.conv", block_in, block_in, 3);
      res /= 2;
    }
  }
  mid("encoder", block_in);
  norm("encoder.norm_out", block_in);
  conv("encoder.conv_out", o.z_channels, block_in, 3);

  block_in = o.ch * o.ch_mult[L - 1];
  res = o.resolution >> (L - 1);
  conv("decoder.conv_in", block_in, o.z_channels, 3);
  mid("decoder", block_in);
  for (size_t l = L; l-- > 0;) {
    const std::string p = "decoder.up." + std::to_string(l);
    const int64_t block_out = o.ch * o.ch_mult[l];
    for (int b = 0; b <= o.num_res_blocks[l]; ++b) {
      resnet(p + ".block." + std::to_string(b), block_in, block_out);
      block_in = block_out;
      if (attn_at(res)) attn(p + ".attn." + std::to_string(b), block_in);
    }
    if (l != 0) {
      conv(p + ".upsample.conv", block_in, block_in, 3);
      res *= 2;
    }
  }
  norm("decoder.norm_out", block_in);
  conv("decoder.conv_out", o.out_ch, block_in, 3);
  m["quantize.embedding.weight"] = {o.n_embed, o.embed_dim};
  conv("quant_conv", o.embed_dim, o.z_channels, 1);
  conv("post_quant_conv", o.z_channels, o.embed_dim, 1);
  return m;
}

sdk::Detection detect(const ShapeMap& m) {
  // What every VQModelTorch has: both coders' input convs, the codebook and the 1x1 convs around
  // it. A KL autoencoder (no codebook) or a denoiser is not ours.
  const Shape& enc_in = need(m, "encoder.conv_in.weight", 4, true);
  const Shape& enc_out = need(m, "encoder.conv_out.weight", 4, true);
  const Shape& dec_in = need(m, "decoder.conv_in.weight", 4, true);
  const Shape& dec_out = need(m, "decoder.conv_out.weight", 4, true);
  const Shape& codebook = need(m, "quantize.embedding.weight", 2, true);
  const Shape& quant = need(m, "quant_conv.weight", 4, true);
  need(m, "post_quant_conv.weight", 4, true);

  Options o;  // defaults: the official SinSR.yaml
  o.ch = int(enc_in[0]);
  o.in_channels = int(enc_in[1]);
  o.z_channels = int(dec_in[1]);
  o.out_ch = int(dec_out[0]);
  o.embed_dim = int(quant[0]);
  o.n_embed = int(codebook[0]);
  if (enc_out[0] == 2 * o.z_channels) unsupported("the encoder outputs 2 x z_channels (double_z)");
  if (o.ch <= 0) unsupported("ch " + std::to_string(o.ch));

  // Levels and blocks from the decoder (num_res_blocks + 1 blocks per level, so every level has
  // one), per-level attention from its AttnBlocks.
  size_t L = 0;
  while (find(m, "decoder.up." + std::to_string(L) + ".block.0.conv2.weight")) ++L;
  if (L == 0) unsupported("no 'decoder.up.0.block.0.conv2.weight'");
  o.ch_mult.assign(L, 1);
  o.num_res_blocks.assign(L, 0);
  std::vector<bool> attn(L, false);
  for (size_t l = 0; l < L; ++l) {
    const std::string p = "decoder.up." + std::to_string(l) + ".";
    const int64_t out = need(m, p + "block.0.conv2.weight", 4)[0];
    if (out % o.ch != 0)
      unsupported("'" + p + "block.0' has " + std::to_string(out) + " channels, not a multiple of " +
                  std::to_string(o.ch));
    o.ch_mult[l] = int(out / o.ch);
    int blocks = 0;
    while (find(m, p + "block." + std::to_string(blocks) + ".conv1.weight")) ++blocks;
    o.num_res_blocks[l] = blocks - 1;
    attn[l] = find(m, p + "attn.0.q.weight") != nullptr;
  }
  // resolution only places attention (levels at resolution / 2^l): not in the weights.
  o.attn_resolutions.clear();
  for (size_t l = 0; l < L; ++l)
    if (attn[l]) o.attn_resolutions.push_back(o.resolution >> l);

  sdk::Detection d;
  d.assumed_from = "the official SinSR.yaml";
  auto& c = d.config;
  c["embed_dim"] = o.embed_dim;
  c["n_embed"] = o.n_embed;
  auto& dd = c["ddconfig"];
  dd = nlohmann::ordered_json::object();
  dd["ch"] = o.ch;
  dd["ch_mult"] = o.ch_mult;
  // The official form is one number for every level; a list only when they differ.
  const bool same =
      std::all_of(o.num_res_blocks.begin(), o.num_res_blocks.end(), [&](int n) { return n == o.num_res_blocks[0]; });
  if (same)
    dd["num_res_blocks"] = o.num_res_blocks[0];
  else
    dd["num_res_blocks"] = o.num_res_blocks;
  dd["attn_resolutions"] = o.attn_resolutions;
  dd["z_channels"] = o.z_channels;
  dd["double_z"] = false;
  dd["in_channels"] = o.in_channels;
  dd["out_ch"] = o.out_ch;
  dd["resolution"] = o.resolution;
  dd["dropout"] = 0.0;
  // The latent scale of the diffusion (diffusion.params.scale_factor): not in the weights.
  c["scale_factor"] = o.scale_factor;
  for (const char* k : {"ddconfig.resolution", "ddconfig.dropout", "scale_factor"}) d.assumed.push_back(k);

  Options built;
  try {
    built = Options::from_json(nlohmann::json::parse(c.dump()));
  } catch (const Error& e) {
    unsupported(e.what());
  }
  sdk::check_detected(m, expected_shapes(built), kCannot);
  return d;
}

}  // namespace vq_f4
}  // namespace sinsr
