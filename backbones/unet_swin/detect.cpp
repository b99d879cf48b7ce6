// UNetModelSwin hyper-parameters from a state dict's names and shapes. Widths come from the
// convolutions, the level layout from the block sequence, the Swin settings from the middle
// block, window sizes from the relative-position tables ((2w-1)^2 rows) and the nominal
// image_size from the shifted-window masks. The result is checked by rebuilding the whole
// name -> shape map from it, so a config is only returned when the weights load strictly.
#include "unet_swin_detect.hpp"

#include <sinsr/detect.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace sinsr {
namespace unet_swin {
namespace {

using sdk::Error;
using sdk::ShapeMap;
using Shape = std::vector<int64_t>;

// Messages carry no component name: the host puts it in front.
const char* kCannot = "a UNetModelSwin this backbone cannot build";

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

const Shape* find(const ShapeMap& m, const std::string& key) { return sdk::find_shape(m, key); }

bool has_prefix(const ShapeMap& m, const std::string& prefix) {
  auto it = m.lower_bound(prefix);
  return it != m.end() && it->first.compare(0, prefix.size(), prefix) == 0;
}

[[noreturn]] void unsupported(const std::string& why) { sdk::refuse_variant(kCannot, why); }

// The shape of `key` with `ndim` dimensions. Missing or of another rank: before the keys are
// known to be a UNetModelSwin's that means "not ours" (NOT_FOUND), afterwards UNSUPPORTED.
const Shape& need(const ShapeMap& m, const std::string& key, size_t ndim, bool signature = false) {
  return sdk::need_shape(m, key, ndim, signature, "UNetModelSwin", kCannot);
}

// The largest N with keys under "<prefix>N.", or -1.
int last_index(const ShapeMap& m, const std::string& prefix) {
  int last = -1;
  for (auto it = m.lower_bound(prefix); it != m.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
    const std::string rest = it->first.substr(prefix.size());
    const size_t dot = rest.find('.');
    if (dot == 0 || dot == std::string::npos || rest.find_first_not_of("0123456789") != dot) continue;
    last = std::max(last, std::stoi(rest.substr(0, dot)));
  }
  return last;
}

// The window side w of a relative-position table with (2w-1)^2 rows; 0 when it is not one.
int64_t window_of_table(int64_t rows) {
  const int64_t side = std::llround(std::sqrt(double(rows)));
  return side * side == rows && side % 2 == 1 ? (side + 1) / 2 : 0;
}

struct Swin {
  std::string prefix;  // "middle_block.1."
  int level = 0;
  int64_t window = 0;     // from the first block's table
  int64_t masked_ds = 0;  // the nominal feature size from a shifted block's mask; 0 without one
};

Swin read_swin(const ShapeMap& m, const std::string& prefix, int level, int depth) {
  Swin s{prefix, level};
  const Shape& table = need(m, prefix + "blocks.0.attn.relative_position_bias_table", 2);
  s.window = window_of_table(table[0]);
  if (s.window == 0)
    unsupported("'" + prefix + "blocks.0.attn.relative_position_bias_table' has " + std::to_string(table[0]) +
                " rows, not (2w-1)^2");
  for (int k = 1; k < depth; k += 2)
    if (const Shape* mask = find(m, prefix + "blocks." + std::to_string(k) + ".attn_mask")) {
      // [nW, w^2, w^2] with nW = (ds / w)^2 windows at the nominal size.
      const int64_t per_side = std::llround(std::sqrt(double(mask->at(0))));
      if (mask->size() != 3 || per_side * per_side != mask->at(0))
        unsupported("'" + prefix + "blocks." + std::to_string(k) + ".attn_mask' is " + sdk::describe_shape(*mask));
      s.masked_ds = per_side * s.window;
    }
  return s;
}

nlohmann::ordered_json ints(const std::vector<int>& v) { return nlohmann::ordered_json(v); }

}  // namespace

bool is_derived_buffer(const std::string& key) {
  return ends_with(key, ".relative_position_index") || ends_with(key, ".attn_mask");
}

ShapeMap expected_shapes(const Options& o) {
  ShapeMap m;
  const int64_t C = o.model_channels, E = 4 * C, D = o.swin_embed_dim;
  const int64_t heads = o.num_head_channels == -1 ? o.num_heads : D / o.num_head_channels;
  const int64_t hidden = int64_t(double(D) * o.mlp_ratio);
  auto has_attn = [&](int64_t ds) {
    return std::find(o.attention_resolutions.begin(), o.attention_resolutions.end(), ds) !=
           o.attention_resolutions.end();
  };
  auto vec = [&](const std::string& p, int64_t c) {
    m[p + ".weight"] = {c};
    m[p + ".bias"] = {c};
  };
  auto conv = [&](const std::string& p, int64_t out, int64_t in, int64_t k) {
    m[p + ".weight"] = {out, in, k, k};
    m[p + ".bias"] = {out};
  };
  auto linear = [&](const std::string& p, int64_t out, int64_t in) {
    m[p + ".weight"] = {out, in};
    m[p + ".bias"] = {out};
  };
  auto resblock = [&](const std::string& p, int64_t in, int64_t out) {
    vec(p + ".in_layers.0", in);
    conv(p + ".in_layers.2", out, in, 3);
    linear(p + ".emb_layers.1", o.use_scale_shift_norm ? 2 * out : out, E);
    vec(p + ".out_layers.0", out);
    conv(p + ".out_layers.3", out, out, 3);
    if (in != out) conv(p + ".skip_connection", out, in, 1);
  };
  auto swin = [&](const std::string& p, int64_t c, int64_t ds) {
    conv(p + ".patch_embed.proj", D, c, 1);
    conv(p + ".patch_unembed.proj", c, D, 1);
    const int64_t w = ds <= o.window_size ? ds : o.window_size;
    for (int k = 0; k < o.swin_depth; ++k) {
      const std::string b = p + ".blocks." + std::to_string(k);
      const int64_t shift = ds <= o.window_size ? 0 : (k % 2 ? o.window_size / 2 : 0);
      if (shift > 0) m[b + ".attn_mask"] = {(ds / w) * (ds / w), w * w, w * w};
      vec(b + ".norm1", D);
      m[b + ".attn.relative_position_bias_table"] = {(2 * w - 1) * (2 * w - 1), heads};
      m[b + ".attn.relative_position_index"] = {w * w, w * w};
      linear(b + ".attn.qkv", 3 * D, D);
      linear(b + ".attn.proj", D, D);
      vec(b + ".norm2", D);
      conv(b + ".mlp.fc1", hidden, D, 1);
      conv(b + ".mlp.fc2", D, hidden, 1);
    }
  };

  linear("time_embed.0", E, C);
  linear("time_embed.2", E, E);
  int64_t ch = C * o.channel_mult[0], ds = o.image_size;
  conv("input_blocks.0.0", ch, o.in_channels, 3);
  std::vector<int64_t> chans = {ch};
  int index = 1;
  const size_t L = o.channel_mult.size();
  for (size_t level = 0; level < L; ++level) {
    for (int j = 0; j < o.num_res_blocks[level]; ++j, ++index) {
      const std::string p = "input_blocks." + std::to_string(index);
      resblock(p + ".0", ch, C * o.channel_mult[level]);
      ch = C * o.channel_mult[level];
      if (has_attn(ds) && j == 0) swin(p + ".1", ch, ds);
      chans.push_back(ch);
    }
    if (level + 1 < L) {
      if (o.conv_resample) conv("input_blocks." + std::to_string(index) + ".0.op", ch, ch, 3);
      ++index;
      chans.push_back(ch);
      ds /= 2;
    }
  }
  resblock("middle_block.0", ch, ch);
  swin("middle_block.1", ch, ds);
  resblock("middle_block.2", ch, ch);
  index = 0;
  for (size_t level = L; level-- > 0;) {
    for (int i = 0; i <= o.num_res_blocks[level]; ++i, ++index) {
      const std::string p = "output_blocks." + std::to_string(index);
      resblock(p + ".0", ch + chans.back(), C * o.channel_mult[level]);
      chans.pop_back();
      ch = C * o.channel_mult[level];
      int child = 1;
      if (has_attn(ds) && i == 0) swin(p + "." + std::to_string(child++), ch, ds);
      if (level > 0 && i == o.num_res_blocks[level]) {
        if (o.conv_resample) conv(p + "." + std::to_string(child) + ".conv", ch, ch, 3);
        ds *= 2;
      }
    }
  }
  vec("out.0", ch);
  conv("out.2", o.out_channels, C * o.channel_mult[0], 3);
  return m;
}

sdk::Detection detect(const ShapeMap& m) {
  // What every UNetModelSwin has: the time MLP, the input conv, the middle ResBlock-Swin pair
  // and the output head. Anything else (SR3, a guided-diffusion UNet, a VQ) is not ours.
  const Shape& time0 = need(m, "time_embed.0.weight", 2, true);
  const Shape& conv_in = need(m, "input_blocks.0.0.weight", 4, true);
  need(m, "middle_block.0.in_layers.2.weight", 4, true);
  const Shape& mid_embed = need(m, "middle_block.1.patch_embed.proj.weight", 4, true);
  const Shape& head = need(m, "out.2.weight", 4, true);

  Options o;  // defaults: the official SinSR.yaml
  o.model_channels = int(time0[1]);
  o.in_channels = int(conv_in[1]);
  o.out_channels = int(head[0]);
  const int64_t C = o.model_channels;
  if (C <= 0) unsupported("model_channels " + std::to_string(C));

  // Encoder: ResBlocks per level, levels split by Downsample blocks (".0.op", or no keys at
  // all when conv_resample is false).
  std::vector<int> blocks(1, 0);
  bool conv_down = false, keyless_down = false;
  const int last_in = last_index(m, "input_blocks.");
  for (int i = 1; i <= last_in; ++i) {
    const std::string p = "input_blocks." + std::to_string(i) + ".";
    if (find(m, p + "0.op.weight")) {
      conv_down = true;
      blocks.push_back(0);
    } else if (find(m, p + "0.in_layers.2.weight")) {
      ++blocks.back();
    } else if (!has_prefix(m, p)) {
      keyless_down = true;
      blocks.push_back(0);
    } else {
      unsupported("input_blocks." + std::to_string(i) + " is neither a ResBlock nor a Downsample");
    }
  }
  if (conv_down && keyless_down) unsupported("some Downsample blocks have convolutions and some do not");
  const int L = int(blocks.size());
  o.num_res_blocks = blocks;
  o.conv_resample = !keyless_down;

  // Decoder, coarse to fine: each level's first block gives its width and whether it has Swin.
  o.channel_mult.assign(L, 1);
  std::vector<bool> attn(L, false);
  std::vector<Swin> swins;
  int depth = 0;
  while (find(m, "middle_block.1.blocks." + std::to_string(depth) + ".norm1.weight")) ++depth;
  if (depth == 0) unsupported("the middle Swin layer has no blocks");
  int index = 0;
  for (int level = L - 1; level >= 0; --level) {
    const std::string p = "output_blocks." + std::to_string(index) + ".";
    const int64_t out = need(m, p + "0.out_layers.3.weight", 4)[0];
    if (out % C != 0)
      unsupported("'" + p + "0' has " + std::to_string(out) + " channels, not a multiple of " + std::to_string(C));
    o.channel_mult[level] = int(out / C);
    if (find(m, p + "1.patch_embed.proj.weight")) {
      attn[level] = true;
      swins.push_back(read_swin(m, p + "1.", level, depth));
    }
    index += blocks[level] + 1;
  }
  swins.push_back(read_swin(m, "middle_block.1.", L - 1, depth));

  // Swin settings from the middle block: width, depth, heads (the table's columns), MLP width.
  const int64_t D = mid_embed[0];
  const int64_t heads = need(m, "middle_block.1.blocks.0.attn.relative_position_bias_table", 2)[1];
  const int64_t hidden = need(m, "middle_block.1.blocks.0.mlp.fc1.weight", 4)[0];
  if (heads <= 0 || D <= 0)
    unsupported("Swin width " + std::to_string(D) + " with " + std::to_string(heads) + " heads");
  o.swin_embed_dim = int(D);
  o.swin_depth = depth;
  if (D % heads == 0) {
    o.num_head_channels = int(D / heads);
  } else {
    o.num_head_channels = -1;
    o.num_heads = int(heads);
  }

  // Windows and the nominal size. A level whose nominal size ds exceeds window_size has windows
  // of window_size and masked (shifted) odd blocks, nW = (ds / w)^2; a level with ds <= window_size
  // has windows of ds and no shift. So a mask tells ds, and a file with buffers but no mask
  // tells that every Swin level has w = ds.
  const bool has_buffers =
      std::any_of(m.begin(), m.end(), [](const auto& kv) { return ends_with(kv.first, ".relative_position_index"); });
  int64_t window = 0, image_size = 0;
  for (const Swin& s : swins) window = std::max(window, s.window);
  auto agree = [&](int64_t size, const Swin& s) {
    if (image_size != 0 && image_size != size)
      unsupported("the Swin layers disagree on the nominal image size (" + std::to_string(image_size) + " vs " +
                  std::to_string(size) + " from " + s.prefix + ")");
    image_size = size;
  };
  for (const Swin& s : swins)
    if (s.masked_ds > 0) agree(s.masked_ds << s.level, s);
  if (image_size == 0 && has_buffers && depth >= 2)
    for (const Swin& s : swins) agree(s.window << s.level, s);
  const bool size_known = image_size != 0;
  if (size_known) o.image_size = int(image_size);
  o.window_size = int(window);
  o.attention_resolutions.clear();
  for (int level = 0; level < L; ++level)
    if (attn[level]) o.attention_resolutions.push_back(o.image_size >> level);

  const int64_t last = C * o.channel_mult[L - 1];
  const int64_t emb = need(m, "middle_block.0.emb_layers.1.weight", 2)[0];
  if (emb != last && emb != 2 * last)
    unsupported("'middle_block.0.emb_layers.1.weight' has " + std::to_string(emb) + " rows for " +
                std::to_string(last) + " channels");
  o.use_scale_shift_norm = emb == 2 * last;
  // The lq image is concatenated to the latent: more input than output channels.
  o.cond_lq = o.in_channels > o.out_channels;

  sdk::Detection d;
  d.assumed_from = "the official SinSR.yaml";
  auto& c = d.config;
  c["model_channels"] = o.model_channels;
  c["channel_mult"] = ints(o.channel_mult);
  c["num_res_blocks"] = ints(o.num_res_blocks);
  c["attention_resolutions"] = ints(o.attention_resolutions);
  c["swin_depth"] = o.swin_depth;
  c["swin_embed_dim"] = o.swin_embed_dim;
  c["window_size"] = o.window_size;
  if (hidden % D == 0)
    c["mlp_ratio"] = hidden / D;
  else
    c["mlp_ratio"] = double(hidden) / double(D);
  c["num_head_channels"] = o.num_head_channels;
  if (o.num_head_channels == -1) c["num_heads"] = o.num_heads;
  c["in_channels"] = o.in_channels;
  c["out_channels"] = o.out_channels;
  c["cond_lq"] = o.cond_lq;
  c["use_scale_shift_norm"] = o.use_scale_shift_norm;
  c["image_size"] = o.image_size;
  c["conv_resample"] = o.conv_resample;
  // Never in the weights: dropout (training only) and this project's residual over the bicubic
  // lq (no parameters; the official network has none).
  c["dropout"] = 0;
  c["residual_upscale"] = 0;
  c["residual_unshuffle"] = 1;
  if (!size_known) d.assumed.push_back("image_size");
  if (L == 1) d.assumed.push_back("conv_resample");
  for (const char* k : {"dropout", "residual_upscale", "residual_unshuffle"}) d.assumed.push_back(k);

  Options built;
  try {
    built = Options::from_json(nlohmann::json::parse(c.dump()));
  } catch (const Error& e) {
    unsupported(e.what());
  }
  sdk::check_detected(m, expected_shapes(built), kCannot, is_derived_buffer);
  return d;
}

}  // namespace unet_swin
}  // namespace sinsr
