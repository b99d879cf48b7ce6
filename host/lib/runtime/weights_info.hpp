// What a weights file says about the network it holds, so that it loads without a config:
//  (a) the component configs `train` / `distill` store in their checkpoints (key
//      "sinsr_components" beside the state dict; `__metadata__` of a safetensors file), else
//  (b) the answer of the first loaded component of the kind that recognises the state dict's
//      names and shapes (ABI 1.2 detect_config), with the keys the shapes cannot tell.
#pragma once

#include "runtime/runtime.hpp"

#include <sinsr/checkpoint.hpp>
#include <sinsr/config.hpp>

#include <string>
#include <vector>

namespace sinsr {
namespace host {

// The checkpoint key (and safetensors __metadata__ key) holding the stored components, as JSON
// text: {"backbone": {"name", "config"}, "codec": {"name", "config"} | null,
//        "sampler": {"name", "config"[, "steps"]}[, "scale"]}.
constexpr const char* kComponentsKey = "sinsr_components";

struct WeightsInfo {
  // "stored" (a), "detected" (b), or "" when neither (summary then says why).
  std::string source;
  // The component of the asked kind that builds the network, and its config. Stored: the
  // entry of that kind ("" when the checkpoint says none, e.g. no codec: pixel space).
  std::string component;
  json config = json::object();
  // Detected: the config keys the shapes cannot tell, and where their values come from.
  std::vector<std::string> assumed;
  std::string assumed_from;
  // Stored: the whole stored object (backbone, codec, sampler, ...); null otherwise.
  json components;
  // One line: "detected: unet_swin model_channels=160 channel_mult=[1,2,2,4] ... (assumed from
  // the official SinSR.yaml: image_size=64 ...)", "stored: backbone unet_swin, codec vq_f4,
  // sampler deterministic (1 step)", or why nothing was found.
  std::string summary;

  bool found() const { return !source.empty(); }
};

// kind: SINSR_KIND_BACKBONE or SINSR_KIND_CODEC. Only an unreadable file throws (sdk::Error from
// sinsr::ckpt); a file nothing recognises comes back with found() false.
WeightsInfo weights_info(const Runtime& runtime, int32_t kind, const std::string& path);

// A state dict's names and shapes, and the stored components when the file has them (null
// otherwise). Safetensors: from the header alone; other files are read whole (sinsr::ckpt).
sdk::ShapeMap read_shapes(const std::string& path, json* stored_components = nullptr);

// What train / distill store for one part: {"name", "config"} where config is what the
// component is created with (its default_config under `config`), with a "config_file" replaced
// by the params it selects (config::official) so that no path is stored. A shipped model is
// stored as its base with the model's config, plus "model": its name.
json stored_component(const Runtime& runtime, int32_t kind, const std::string& name, const json& config);

// Writes a state dict that describes itself: {"state_dict": ..., "sinsr_components": JSON text}
// (what official loaders and torch.load(weights_only=True) read), or the bare state dict when
// `components` is null. Atomic, as sinsr::ckpt writes.
void save_weights(const std::string& path, const ckpt::StateDict& state, const json& components);

// ESRGAN's network interpolation, in place: each floating tensor of `mine` becomes alpha * mine
// + (1 - alpha) * the tensor of the same name in `theirs` (in float32, stored in mine's dtype);
// integer buffers stay mine's. Two trainings of one network (one a fine-tune of the other) blend
// so; other networks are refused (SINSR_ERR_FORMAT, "<theirs_name> differs from <mine_name> at
// 'key' (not the same network)"). `export --interpolate` and the pipeline's `strength` use it.
void blend_weights(const ckpt::StateDict& mine, const ckpt::StateDict& theirs, double alpha,
                   const std::string& mine_name, const std::string& theirs_name);

}  // namespace host
}  // namespace sinsr
