#include "pipeline/pipeline.hpp"
#include "runtime/seed.hpp"
#include "runtime/weights_info.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <set>
#include <type_traits>

namespace sinsr {
namespace host {

using sdk::Error;
using sdk::require;

namespace {

PipelinePart part_from_json(const json& j, const char* what) {
  PipelinePart p;
  if (j.is_null()) return p;
  if (j.is_string()) {
    p.name = j.get<std::string>();
    return p;
  }
  require(j.is_object(), SINSR_ERR_INVALID_ARGUMENT, std::string("pipeline spec: '") + what + "' must be an object");
  for (auto& [k, v] : j.items())
    require(k == "name" || k == "config" || k == "config_file" || k == "weights", SINSR_ERR_INVALID_ARGUMENT,
            std::string("pipeline spec: unknown key '") + k + "' in '" + what + "'");
  p.name = j.value("name", std::string());
  if (j.contains("config")) p.config = j["config"];
  if (j.contains("config_file")) p.config["config_file"] = j["config_file"];
  p.weights = j.value("weights", std::string());
  return p;
}

at::ScalarType precision_dtype(const std::string& p) {
  if (p == "fp32" || p == "float32") return at::kFloat;
  if (p == "fp16" || p == "float16" || p == "half") return at::kHalf;
  if (p == "bf16" || p == "bfloat16") return at::kBFloat16;
  throw Error(SINSR_ERR_INVALID_ARGUMENT, "unknown precision '" + p + "' (fp32, fp16 or bf16)");
}

// Reflect padding at the bottom/right; repeated when the pad exceeds what one reflection
// can give (tiny images), which the official code would reject.
at::Tensor pad_reflect(at::Tensor x, int64_t pad_h, int64_t pad_w) {
  while (pad_h > 0 || pad_w > 0) {
    int64_t h = x.size(2), w = x.size(3);
    int64_t ph = std::min(pad_h, h - 1), pw = std::min(pad_w, w - 1);
    if (ph == 0 && pw == 0) {  // a single row or column: nothing to mirror
      return at::replication_pad2d(x, {0, pad_w, 0, pad_h});
    }
    x = at::reflection_pad2d(x, {0, pw, 0, ph});
    pad_h -= ph;
    pad_w -= pw;
  }
  return x;
}

// Index 0 keeps the seed itself, so an untiled image uses it.
uint64_t tile_seed(uint64_t seed, int64_t index) { return index == 0 ? seed : mix_seed(seed, uint64_t(index)); }

}  // namespace

PipelineOptions PipelineOptions::from_json(const json& spec) {
  require(spec.is_object(), SINSR_ERR_INVALID_ARGUMENT, "pipeline spec must be a JSON object");
  static const std::set<std::string> known = {"backbone",    "codec",      "sampler",   "steps",        "scale",
                                              "seed",        "device",     "precision", "pad_multiple", "chop_size",
                                              "chop_stride", "chop_batch", "strength",  "self_ensemble"};
  for (auto& [k, v] : spec.items())
    require(known.count(k) > 0, SINSR_ERR_INVALID_ARGUMENT, "pipeline spec: unknown key '" + k + "'");
  PipelineOptions o;
  o.backbone = part_from_json(spec.value("backbone", json()), "backbone");
  o.codec = part_from_json(spec.value("codec", json()), "codec");
  if (o.codec.name == "none") o.codec = {};  // as null: pixel space, as the CLI's --codec none
  json sampler = spec.value("sampler", json());
  // Two places for one number (a model's pipeline.json writes it in the sampler): one is enough.
  if (sampler.is_object() && sampler.contains("steps")) {
    require(!spec.contains("steps"), SINSR_ERR_INVALID_ARGUMENT,
            "pipeline spec: 'steps' is given twice, at the top and in 'sampler'; give one");
    o.steps = sampler["steps"].get<int>();
    sampler.erase("steps");
  }
  o.sampler = part_from_json(sampler, "sampler");
  // A value of the wrong JSON type is named by its key, not by nlohmann's type_error alone.
  auto take = [&](const char* key, auto& field) {
    if (!spec.contains(key)) return;
    try {
      field = spec[key].get<std::decay_t<decltype(field)>>();
    } catch (const json::exception&) {
      throw Error(SINSR_ERR_INVALID_ARGUMENT,
                  std::string("pipeline spec: '") + key + "' must be a " +
                      (std::is_same_v<std::decay_t<decltype(field)>, bool>          ? "boolean"
                       : std::is_same_v<std::decay_t<decltype(field)>, std::string> ? "string"
                                                                                    : "number") +
                      ", not " + spec[key].type_name());
    }
  };
  take("steps", o.steps);
  take("scale", o.scale);
  take("seed", o.seed);
  take("device", o.device);
  take("precision", o.precision);
  take("pad_multiple", o.pad_multiple);
  take("chop_size", o.chop_size);
  take("chop_stride", o.chop_stride);
  take("chop_batch", o.chop_batch);
  take("strength", o.strength);
  take("self_ensemble", o.self_ensemble);
  for (auto& [k, v] : spec.items()) o.explicit_keys.insert(k);
  if (sampler.is_object() && spec["sampler"].contains("steps")) o.explicit_keys.insert("steps");
  return o;
}

int PipelineOptions::fixed_scale(const json& preferred) {
  if (!preferred.is_object() || !preferred.contains("scale") || !preferred["scale"].is_number_integer()) return 0;
  return preferred["scale"].get<int>();
}

void PipelineOptions::check_scale(const json& preferred, const std::string& who) const {
  // A model was trained for its factor, and its codec fixes it: another one is the caller's mistake.
  const int fixed = fixed_scale(preferred);
  if (fixed == 0 || fixed == scale || !explicit_keys.count("scale")) return;
  throw Error(SINSR_ERR_INVALID_ARGUMENT,
              who + " upscales x" + std::to_string(fixed) + " only, not x" + std::to_string(scale));
}

const std::vector<std::string>& PipelineOptions::preferred_keys() {
  static const std::vector<std::string> keys = {"codec", "sampler", "steps", "scale", "pad_multiple", "chop_size"};
  return keys;
}

void PipelineOptions::apply_preferred(const json& preferred, const std::string& who) {
  if (preferred.is_null() || preferred.empty()) return;
  const std::string where = who + ": preferred pipeline";
  require(preferred.is_object(), SINSR_ERR_FORMAT, where + " is not a JSON object");
  // Besides the settings: "blend_with" (the partner of --strength) and "input" (what the model is
  // for: real-world, bicubic; listed by `models`, not a setting).
  const auto& keys = preferred_keys();
  for (auto& [k, v] : preferred.items()) {
    require(std::find(keys.begin(), keys.end(), k) != keys.end() || k == "blend_with" || k == "input", SINSR_ERR_FORMAT,
            where + ": unknown key '" + k + "'");
  }
  check_scale(preferred, who);
  auto take = [&](const char* key) { return preferred.contains(key) && !explicit_keys.count(key); };
  auto integer = [&](const char* key, int& dst) {
    require(preferred[key].is_number_integer(), SINSR_ERR_FORMAT, where + ": '" + key + "' must be an integer");
    dst = preferred[key].get<int>();
  };
  try {
    // A part taken from the preference keeps weights the caller named for it. A part the caller
    // named as the preference does, without a config of its own, takes the preferred config:
    // naming the model's own sampler must not drop the settings it was trained with.
    auto part = [&](const char* key, PipelinePart& dst) {
      if (!preferred.contains(key)) return;
      PipelinePart p = part_from_json(preferred[key], key);
      const bool unset = !explicit_keys.count(key);
      const bool same_without_config = p.name == dst.name && (dst.config.is_null() || dst.config.empty());
      if (!unset && !same_without_config) return;
      if (p.weights.empty()) p.weights = dst.weights;
      // A config given without naming the part (--sampler-config alone) adjusts the preferred
      // part: its keys over the preferred config, never a silent drop.
      if (unset && dst.config.is_object() && p.config.is_object())
        for (auto it = dst.config.begin(); it != dst.config.end(); ++it) p.config[it.key()] = it.value();
      dst = p;
    };
    part("codec", codec);
    part("sampler", sampler);
  } catch (const Error& e) {
    throw Error(SINSR_ERR_FORMAT, where + ": " + e.what());
  }
  if (take("steps")) integer("steps", steps);
  if (take("scale")) integer("scale", scale);
  if (take("pad_multiple")) integer("pad_multiple", pad_multiple);
  if (take("chop_size")) integer("chop_size", chop_size);
  if (preferred.contains("blend_with")) {
    require(preferred["blend_with"].is_string(), SINSR_ERR_FORMAT, where + ": 'blend_with' must be a model name");
    blend_with = preferred["blend_with"].get<std::string>();
  }
}

// Weights that store the options they were trained with are refused under other options for the
// same network (a residual over bicubic cannot be read from the tensors: run without it, such a
// network paints a flat image and exits 0).
void PipelineOptions::refuse_contradiction(const Runtime& runtime, const WeightsInfo& info,
                                           const std::string& name) const {
  const json stored = info.components.value("backbone", json());
  if (!stored.is_object() || !stored.contains("config")) return;
  const json mine = stored_component(runtime, SINSR_KIND_BACKBONE, name, backbone.config);
  if (mine.value("name", std::string()) != stored.value("name", std::string())) return;  // the load decides
  std::vector<std::string> differ;
  const json &a = mine["config"], &b = stored["config"];
  for (auto it = b.begin(); it != b.end(); ++it)
    if (!a.contains(it.key()) || a[it.key()] != it.value())
      differ.push_back(it.key() + "=" + it.value().dump() + " (here " +
                       (a.contains(it.key()) ? a[it.key()].dump() : std::string("unset")) + ")");
  if (differ.empty()) return;
  std::string list;
  for (size_t k = 0; k < differ.size() && k < 4; ++k) list += (k ? ", " : "") + differ[k];
  if (differ.size() > 4) list += ", ...";
  throw Error(SINSR_ERR_INVALID_ARGUMENT, backbone.weights + " was made with " + list + " for '" + name +
                                              "': drop the config (and -n) to run it as stored");
}

void PipelineOptions::resolve_names(const Runtime& runtime) {
  if (names_resolved) return;  // a part cleared on purpose (a file's "codec": null) stays cleared
  names_resolved = true;
  auto unnamed = [&](const PipelinePart& p, const char* key) { return p.name.empty() && !explicit_keys.count(key); };
  if (unnamed(codec, "codec")) {
    codec.name = runtime.default_name("infer", "codec", SINSR_KIND_CODEC);
    if (codec.name == "none") codec.name.clear();  // a pixel-space default
  }
  if (unnamed(sampler, "sampler")) sampler.name = runtime.default_name("infer", "sampler", SINSR_KIND_SAMPLER);
  if (backbone.name.empty()) backbone.name = runtime.chosen_backbone();
  // Without a weights file to name it, the default model; named before the weights are read, so
  // that a codec file is checked against the codec that model runs.
  if (backbone.name.empty() && (backbone.weights.empty() || backbone.weights == "none")) {
    require(backbone.weights != "none", SINSR_ERR_INVALID_ARGUMENT,
            "backbone weights 'none' (random weights): name the network to initialise");
    const bool configured = backbone.config.is_object() ? !backbone.config.empty() : !backbone.config.is_null();
    require(!configured, SINSR_ERR_INVALID_ARGUMENT,
            "a backbone config describes a network but no weights were given: give its weights "
            "(or weights 'none' and the network's name, for random weights)");
    backbone.name = runtime.default_backbone();
  }
  apply_weights_info(runtime);
}

void PipelineOptions::apply_weights_info(const Runtime& runtime) {
  auto no_config = [](const json& c) { return c.is_null() || (c.is_object() && c.empty()); };
  auto has_file = [](const std::string& w) { return !w.empty() && w != "none"; };
  if (has_file(backbone.weights) && (no_config(backbone.config) || backbone.name.empty())) {
    const WeightsInfo info = weights_info(runtime, SINSR_KIND_BACKBONE, backbone.weights);
    // Options the file does not supply (a config given, or a model's own under another name)
    // must agree with the ones it stores.
    const bool own_options = !no_config(backbone.config) || (!backbone.name.empty() && backbone.name != info.component);
    if (info.found() && info.source == "stored" && own_options)
      refuse_contradiction(runtime, info, backbone.name.empty() ? info.component : backbone.name);
    if (!info.found()) {
      require(!backbone.name.empty(), SINSR_ERR_NOT_FOUND,
              info.summary + "; name its backbone and give that backbone's config");
    } else if (!info.component.empty() && (backbone.name.empty() || backbone.name == info.component)) {
      // A name that differs (a shipped model, another network) is the caller's choice and keeps
      // its own config; the load then says whether the weights fit it. A config given with the
      // weights is the caller's too: the file names the network, the config wins.
      backbone.name = info.component;
      if (no_config(backbone.config)) {
        backbone.config = info.config;
        described.push_back(backbone.weights + ": " + info.summary);
      } else {
        described.push_back(backbone.weights + ": " + info.component + " (named by the file; its config as given)");
      }
      if (info.source == "stored") {
        json preferred = json::object();
        for (const char* key : {"codec", "sampler"})
          if (info.components.contains(key)) {
            const json& part = info.components[key];
            preferred[key] = part.is_object() ? json{{"name", part.value("name", std::string())},
                                                     {"config", part.value("config", json::object())}}
                                              : json(nullptr);
          }
        const json& sampler_part = info.components.value("sampler", json());
        if (sampler_part.is_object() && sampler_part.contains("steps")) preferred["steps"] = sampler_part["steps"];
        if (info.components.contains("scale")) preferred["scale"] = info.components["scale"];
        apply_preferred(preferred, backbone.weights);
      }
    }
  }
  if (!codec.name.empty() && has_file(codec.weights) && no_config(codec.config)) {
    const WeightsInfo info = weights_info(runtime, SINSR_KIND_CODEC, codec.weights);
    if (info.found() && info.source == "detected" && info.component == codec.name) {
      codec.config = info.config;
      described.push_back(codec.weights + ": " + info.summary);
    }
    // The codec this pipeline will run: the caller's, or the one the backbone (a model) prefers.
    std::string runs = codec.name;
    if (!explicit_keys.count("codec") && !backbone.name.empty())
      if (auto bc = runtime.find_or_null(SINSR_KIND_BACKBONE, backbone.name)) {
        const json pref = bc->preferred_pipeline();
        if (pref.is_object() && pref.contains("codec")) runs = part_from_json(pref["codec"], "codec").name;
      }
    require(!info.found() || info.source != "detected" || info.component.empty() || info.component == runs,
            SINSR_ERR_INVALID_ARGUMENT,
            codec.weights + " holds a '" + info.component + "' codec, but this pipeline runs codec '" +
                (runs.empty() ? std::string("none") : runs) + "'" +
                (backbone.name.empty() ? "" : " (for backbone '" + backbone.name + "')") +
                ": give the network it belongs with (-w, -n) or --codec " + info.component);
  }
}

at::Tensor upsample_bicubic(const at::Tensor& x, int64_t scale) {
  if (scale == 1) return x;
  return at::upsample_bicubic2d(x, {x.size(-2) * scale, x.size(-1) * scale}, /*align_corners=*/false, double(scale),
                                double(scale));
}

std::vector<int64_t> tile_starts(int64_t length, int64_t tile, int64_t stride) {
  if (length <= tile) return {0};
  std::vector<int64_t> out;
  for (int64_t s = 0; s < length; s += stride) {
    int64_t start = s + tile > length ? length - tile : s;
    if (std::find(out.begin(), out.end(), start) == out.end()) out.push_back(start);
  }
  return out;
}

at::Tensor tile_window(int64_t height, int64_t width, int64_t ramp, bool top, bool bottom, bool left, bool right) {
  auto axis = [&](int64_t n, bool lo, bool hi) {
    auto w = at::ones({n}, at::kFloat);
    int64_t r = std::min(ramp, n / 2);
    if (r <= 0) return w;
    // Raised cosine sampled at pixel centres: strictly positive, reaches 1 after r pixels.
    auto i = at::arange(r, at::kFloat).add_(0.5).mul_(M_PI / double(r));
    auto rise = i.cos().neg_().add_(1.0).mul_(0.5);
    if (lo) w.narrow(0, 0, r).copy_(rise);
    if (hi) w.narrow(0, n - r, r).copy_(rise.flip({0}));
    return w;
  };
  return axis(height, top, bottom).view({height, 1}) * axis(width, left, right).view({1, width});
}

struct Pipeline::Impl {
  std::unique_ptr<BackboneHandle> own_backbone;
  std::unique_ptr<CodecHandle> own_codec;
  std::unique_ptr<SamplerHandle> own_sampler;
  BackboneHandle* backbone = nullptr;
  CodecHandle* codec = nullptr;
  SamplerHandle* sampler = nullptr;
  c10::Device device = c10::Device(c10::kCPU);
  at::ScalarType dtype = at::kFloat;
};

namespace {
// Bytes a run may still take: $SINSR_MEMORY_LIMIT_MB when set, else the machine's MemAvailable;
// 0 when unknown (no check).
int64_t memory_budget() {
  if (const char* env = std::getenv("SINSR_MEMORY_LIMIT_MB")) {
    char* end = nullptr;
    const long long mb = std::strtoll(env, &end, 10);
    if (end && *end == '\0' && mb > 0) return int64_t(mb) << 20;
  }
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  int64_t kb = 0;
  while (meminfo >> key >> kb) {
    if (key == "MemAvailable:") return kb << 10;
    meminfo.ignore(64, '\n');
  }
  return 0;
}

// The output's buffers (colour and weight sums, the result, the file's samples: 21 bytes a
// pixel measured, 24 counted) are taken before any tile runs: an image whose x4 output cannot fit is refused then,
// instead of failing or being killed after the work.
void check_output_memory(int64_t out_h, int64_t out_w) {
  const int64_t budget = memory_budget();
  const int64_t need = out_h * out_w * 24;  // 21 B a pixel measured (4096^2 x4: 5.6 GB peak)
  if (budget > 0 && need > budget) {
    auto mb = [](int64_t b) { return std::to_string((b + (1 << 20) - 1) >> 20) + " MB"; };
    throw Error(SINSR_ERR_OUT_OF_MEMORY,
                "the " + std::to_string(out_w) + "x" + std::to_string(out_h) + " output needs about " + mb(need) +
                    " of buffers and " + mb(budget) +
                    " are free (SINSR_MEMORY_LIMIT_MB sets the budget): upscale a smaller image");
  }
}

void check_options(PipelineOptions& o) {
  require(o.scale >= 1, SINSR_ERR_INVALID_ARGUMENT, "scale must be >= 1");
  // Each tile is padded up to it: 1024 (16 times the official 64) already makes a 1024^2 LR tile.
  require(o.pad_multiple >= 1 && o.pad_multiple <= 1024, SINSR_ERR_INVALID_ARGUMENT,
          "pad_multiple must be in [1, 1024], got " + std::to_string(o.pad_multiple));
  require(o.steps >= 0, SINSR_ERR_INVALID_ARGUMENT, "steps must be >= 0 (0: the sampler's own count)");
  require(o.chop_size >= 0 && o.chop_stride >= 0 && o.chop_batch >= 1, SINSR_ERR_INVALID_ARGUMENT,
          "chop_size and chop_stride must be >= 0 and chop_batch >= 1");
  if (o.chop_size > 0 && o.chop_stride == 0) o.chop_stride = std::max(1, o.chop_size * 7 / 8);
  require(o.chop_size == 0 || o.chop_stride <= o.chop_size, SINSR_ERR_INVALID_ARGUMENT,
          "chop_stride must not exceed chop_size (tiles would leave gaps)");
  // Each tile is padded up to pad_multiple: tiles of 1 pixel took 52 s on a 64x64 image.
  require(o.chop_size == 0 || o.chop_size >= o.pad_multiple, SINSR_ERR_INVALID_ARGUMENT,
          "chop_size " + std::to_string(o.chop_size) + " is below pad_multiple " + std::to_string(o.pad_multiple) +
              ": every tile would be padded to " + std::to_string(o.pad_multiple) +
              " (use 0 for no tiles, or at least " + std::to_string(o.pad_multiple) + ")");
  require(o.strength >= 0 && o.strength <= 1, SINSR_ERR_INVALID_ARGUMENT, "strength must be in [0, 1]");
}

// strength < 1: the weights become strength * own + (1 - strength) * the partner model's. Both
// are one network (same base, same config), so the blend is a plain sum of state dicts.
void blend_with_partner(Runtime& runtime, const PipelineOptions& o, const Component& own, BackboneHandle& net) {
  const std::string who = "strength " + std::to_string(o.strength).substr(0, 4) + ": model '" + o.backbone.name + "'";
  require(!o.blend_with.empty(), SINSR_ERR_INVALID_ARGUMENT,
          who + " names no partner to blend with (a model's preferred pipeline names one as \"blend_with\")");
  auto pc = runtime.find(SINSR_KIND_BACKBONE, o.blend_with);
  require(pc->base() == own.base() && pc->default_config() == own.default_config(), SINSR_ERR_INVALID_ARGUMENT,
          who + ": its partner '" + o.blend_with + "' is another network; weights blend within one network only");
  const std::string file = pc->default_weights_path();
  require(!file.empty(), SINSR_ERR_NOT_FOUND, who + ": its partner '" + o.blend_with + "' has no weights");
  BackboneHandle partner(pc, json::object(), true);
  partner.load_weights(file);
  auto pairs = [](const std::vector<NamedTensor>& state) {
    ckpt::StateDict out;
    for (const auto& s : state) out.emplace_back(s.name, s.value);  // views of the parameters
    return out;
  };
  blend_weights(pairs(net.state()), pairs(partner.state()), o.strength, who, "its partner '" + o.blend_with + "'");
}
}  // namespace

Pipeline::Pipeline(BackboneHandle& backbone, CodecHandle* codec, SamplerHandle& sampler, PipelineOptions options)
    : impl_(new Impl), options_(std::move(options)) {
  check_options(options_);
  check_pairing(sampler, backbone);
  impl_->backbone = &backbone;
  impl_->codec = codec;
  impl_->sampler = &sampler;
  impl_->device = c10::Device(options_.device);
  impl_->dtype = precision_dtype(options_.precision);
}

Pipeline::Pipeline(Runtime& runtime, PipelineOptions options) : impl_(new Impl), options_(std::move(options)) {
  auto& o = options_;
  o.resolve_names(runtime);
  // A shipped model's preferred pipeline fills what the caller left unset, before any check.
  auto bc = runtime.find(SINSR_KIND_BACKBONE, o.backbone.name);
  o.apply_preferred(bc->preferred_pipeline(), "model '" + bc->name() + "'");
  check_options(o);
  require(!o.sampler.name.empty(), SINSR_ERR_INVALID_ARGUMENT, "no sampler given");

  try {
    impl_->device = c10::Device(o.device);
  } catch (const std::exception&) {
    throw Error(SINSR_ERR_INVALID_ARGUMENT, "unknown device '" + o.device + "' (cpu, cuda, cuda:N)");
  }
  if (impl_->device.is_cuda())
    require(at::hasCUDA(), SINSR_ERR_UNSUPPORTED,
            "device '" + o.device + "' requested, but this build or machine has no CUDA");
  impl_->dtype = precision_dtype(o.precision);
  require(impl_->dtype != at::kHalf || impl_->device.is_cuda(), SINSR_ERR_UNSUPPORTED,
          "fp16 runs on CUDA only; use fp32 or bf16 on the CPU");

  // The files are known before the networks are built: a network whose weights follow skips
  // drawing initial values (most of a full-size pipeline's start-up).
  const std::string backbone_file = resolve_weights(*bc, o.backbone.weights, "backbone");
  impl_->own_backbone = std::make_unique<BackboneHandle>(bc, o.backbone.config, !backbone_file.empty());
  impl_->backbone = impl_->own_backbone.get();
  // The sampler next: a step count it cannot serve, or timesteps the backbone does not take,
  // are refused before any weights are read.
  impl_->own_sampler =
      std::make_unique<SamplerHandle>(runtime.find(SINSR_KIND_SAMPLER, o.sampler.name), o.sampler.config, o.steps);
  impl_->sampler = impl_->own_sampler.get();
  check_pairing(*impl_->sampler, *impl_->backbone);
  if (!backbone_file.empty()) impl_->backbone->load_weights(backbone_file);
  if (o.strength != 1.0) blend_with_partner(runtime, o, *bc, *impl_->backbone);
  impl_->backbone->set_training(false);

  if (!o.codec.name.empty()) {
    auto cc = runtime.find(SINSR_KIND_CODEC, o.codec.name);
    const std::string codec_file = resolve_weights(*cc, o.codec.weights, "codec");
    impl_->own_codec = std::make_unique<CodecHandle>(cc, o.codec.config, !codec_file.empty());
    impl_->codec = impl_->own_codec.get();
    if (!codec_file.empty()) impl_->codec->load_weights(codec_file);
  }

  if (impl_->device != c10::Device(c10::kCPU) || impl_->dtype != at::kFloat) {
    impl_->backbone->to(impl_->device, impl_->dtype);
    if (impl_->codec) impl_->codec->to(impl_->device, impl_->dtype);
  }
}

Pipeline::~Pipeline() = default;

at::Tensor Pipeline::run_batch(const at::Tensor& y0, const std::function<at::Tensor(const at::Tensor&)>& noise) {
  at::NoGradGuard no_grad;
  auto& im = *impl_;
  const int64_t s = options_.scale, m = options_.pad_multiple;
  const int64_t h = y0.size(2), w = y0.size(3);
  at::Tensor x = y0.to(im.device, at::kFloat);
  at::Tensor lq = pad_reflect(x, (h + m - 1) / m * m - h, (w + m - 1) / m * m - w);
  at::Tensor up = upsample_bicubic(lq, s);
  // Networks see their own precision; everything between them stays float32.
  auto in = [&](const at::Tensor& t) { return t.to(im.dtype); };
  auto out = [&](const at::Tensor& t) { return t.to(at::kFloat); };
  at::Tensor z_y = im.codec ? out(im.codec->encode(in(up))) : up;
  at::Tensor x_T = im.sampler->prior(z_y, noise(z_y));
  at::Tensor lq_in = in(lq);
  sdk::SampleCallbacks cb;
  cb.denoise = [&](const at::Tensor& x_in, const at::Tensor& t) {
    return out(im.backbone->forward(in(x_in), lq_in, t));
  };
  cb.noise = noise;
  cb.progress = [](int, int) { return true; };
  at::Tensor z0 = im.sampler->sample(z_y, x_T, cb);
  at::Tensor img = im.codec ? out(im.codec->decode(in(z0))) : z0;
  require(img.size(2) >= h * s && img.size(3) >= w * s, SINSR_ERR_RUNTIME,
          "decoded image is smaller than the LR size times the scale: check the codec's downscale against the scale");
  img = img.narrow(2, 0, h * s).narrow(3, 0, w * s);
  // NaN survives the clamp and became black pixels with exit 0.
  require(at::isfinite(img).all().item<bool>(), SINSR_ERR_RUNTIME,
          "the network's output holds NaN or infinite values" +
              std::string(im.dtype == at::kFloat ? "" : " (an overflow in reduced precision? try fp32)"));
  return img.clamp(-1.0, 1.0);
}

at::Tensor Pipeline::upscale(const at::Tensor& image01, const std::function<bool(int, int)>& progress) {
  require(image01.dim() == 4 && image01.size(0) == 1 && image01.size(1) == 3, SINSR_ERR_INVALID_ARGUMENT,
          "upscale expects a [1,3,H,W] image");
  if (!options_.self_ensemble) return upscale_tiles(image01, progress, 0, 1);
  // Pass k: flipped left-right when k >= 4, then turned k quarter turns; undone in reverse order.
  at::Tensor sum;
  for (int k = 0; k < 8; ++k) {
    at::Tensor in = k >= 4 ? image01.flip({3}) : image01;
    at::Tensor out = upscale_tiles(at::rot90(in, k % 4, {2, 3}).contiguous(), progress, k, 8);
    out = at::rot90(out, -(k % 4), {2, 3});
    if (k >= 4) out = out.flip({3});
    sum = k == 0 ? out : sum.add_(out);  // rot90 and flip return new tensors: pass 0's is ours
  }
  return sum.div_(8.0);
}

at::Tensor Pipeline::upscale_tiles(const at::Tensor& image01, const std::function<bool(int, int)>& progress, int pass,
                                   int passes) {
  const auto& o = options_;
  const int64_t s = o.scale, h = image01.size(2), w = image01.size(3);
  at::Tensor y0 = image01.to(at::kFloat).sub(0.5).div(0.5);

  const int64_t P = o.chop_size > 0 ? o.chop_size : std::max(h, w);
  const int64_t th = std::min(P, h), tw = std::min(P, w);
  auto rows = tile_starts(h, P, o.chop_stride > 0 ? o.chop_stride : P);
  auto cols = tile_starts(w, P, o.chop_stride > 0 ? o.chop_stride : P);
  struct Tile {
    int64_t index, r, c;
  };
  std::vector<Tile> tiles;
  for (auto r : rows)
    for (auto c : cols) tiles.push_back({int64_t(tiles.size()), r, c});

  check_output_memory(h * s, w * s);
  at::Tensor acc = at::zeros({1, 3, h * s, w * s}, at::kFloat);
  at::Tensor wsum = at::zeros({1, 1, h * s, w * s}, at::kFloat);
  const int64_t ramp = (P - (o.chop_stride > 0 ? o.chop_stride : P)) * s;
  const int total = int((tiles.size() + o.chop_batch - 1) / o.chop_batch);
  for (size_t first = 0, done = 0; first < tiles.size(); first += o.chop_batch, ++done) {
    size_t n = std::min(tiles.size() - first, size_t(o.chop_batch));
    std::vector<at::Tensor> crops;
    std::vector<at::Generator> gens;
    for (size_t k = 0; k < n; ++k) {
      const Tile& t = tiles[first + k];
      crops.push_back(y0.narrow(2, t.r, th).narrow(3, t.c, tw));
      gens.push_back(at::make_generator<at::CPUGeneratorImpl>(tile_seed(o.seed, t.index)));
    }
    // Each tile draws from its own generator, on the CPU: the image does not depend on the
    // batch size, the tile order or the device.
    auto noise = [&](const at::Tensor& like) {
      std::vector<at::Tensor> parts;
      for (size_t k = 0; k < n; ++k) {
        auto shape = like.sizes().vec();
        shape[0] = like.size(0) / int64_t(n);
        parts.push_back(at::randn(shape, gens[k], at::TensorOptions().dtype(at::kFloat)));
      }
      return at::cat(parts, 0).to(like.device(), like.scalar_type());
    };
    at::Tensor sr = run_batch(at::cat(crops, 0), noise).to(at::kCPU, at::kFloat);
    for (size_t k = 0; k < n; ++k) {
      const Tile& t = tiles[first + k];
      bool single = tiles.size() == 1;
      at::Tensor win = single ? at::ones({th * s, tw * s}, at::kFloat)
                              : tile_window(th * s, tw * s, ramp, t.r > 0, t.r + th<h, t.c> 0, t.c + tw < w);
      acc.narrow(2, t.r * s, th * s).narrow(3, t.c * s, tw * s).add_(sr.narrow(0, int64_t(k), 1) * win);
      wsum.narrow(2, t.r * s, th * s).narrow(3, t.c * s, tw * s).add_(win);
    }
    if (progress && !progress(pass * total + int(done + 1), passes * total))
      throw Error(SINSR_ERR_CANCELLED, "cancelled");
  }
  return acc.div_(wsum).mul_(0.5).add_(0.5).clamp_(0.0, 1.0);
}

at::Tensor Pipeline::upscale_any(const at::Tensor& chw01, const std::function<bool(int, int)>& progress) {
  require(chw01.dim() == 3 && chw01.size(0) >= 1 && chw01.size(0) <= 4, SINSR_ERR_INVALID_ARGUMENT,
          "expected a [C,H,W] image with 1 to 4 channels");
  const int64_t c = chw01.size(0), s = options_.scale;
  const bool gray = c <= 2, alpha = c == 2 || c == 4;
  // The networks were trained on [0, 1]; a float file's 3e38 would overflow them into NaN.
  at::Tensor color = chw01.narrow(0, 0, gray ? 1 : 3).unsqueeze(0).to(at::kFloat).clamp(0.0, 1.0);
  if (gray) color = color.expand({1, 3, -1, -1}).contiguous();
  at::Tensor sr = upscale(color, progress);
  if (gray) sr = sr.mean(1, /*keepdim=*/true);
  if (alpha) {
    at::Tensor a = chw01.narrow(0, c - 1, 1).unsqueeze(0).to(at::kFloat).clamp(0.0, 1.0);
    a = upsample_bicubic(a, s).clamp_(0.0, 1.0);
    sr = at::cat({sr, a}, 1);
  }
  return sr.squeeze(0);
}

}  // namespace host
}  // namespace sinsr
