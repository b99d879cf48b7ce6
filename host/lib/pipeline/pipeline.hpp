// Inference: LR image -> [-1,1] -> reflect-pad -> bicubic x scale -> codec encode -> sampler
// with the backbone as denoiser -> codec decode -> crop -> clamp -> SR image, tile by tile.
// Any backbone, codec and sampler plugins combine; without a codec it runs in pixel space.
#pragma once

#include "runtime/runtime.hpp"

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace sinsr {
namespace host {

struct PipelinePart {
  std::string name;              // component name; for the codec, empty = pixel space
  json config = json::object();  // component JSON; {"config_file": "x.yaml"} reads an official YAML
  std::string weights;           // empty: the component's default weights, if it names any
};

struct PipelineOptions {
  PipelinePart backbone, codec, sampler;
  int steps = 0;                   // > 0: respace the sampler to this many steps (ABI respace)
  int scale = 4;                   // LR -> SR factor
  uint64_t seed = 12345;           // noise of every image and tile starts from this seed
  std::string device = "cpu";      // "cpu", "cuda", "cuda:1"
  std::string precision = "fp32";  // "fp32", "fp16", "bf16" (networks; schedules stay fp32/64)
  int pad_multiple = 64;           // the LR tile is reflect-padded to a multiple of this
  int chop_size = 512;             // LR tile size; 0 = never tile
  int chop_stride = 0;             // 0: chop_size * 7 / 8 (448 for 512, the official choice)
  int chop_batch = 1;              // tiles per network call
  // Real-ESRGAN's -dn: 1 runs the model as it is; s in [0, 1) blends its weights with those of
  // the partner it names (preferred pipeline key "blend_with", same network): s * own +
  // (1 - s) * partner's, so 0 is the partner itself.
  double strength = 1.0;
  std::string blend_with;  // from the model's preferred pipeline
  // EDSR's self-ensemble (x8): the image is run in its 8 flips and rotations and the outputs,
  // turned back, are averaged. 8x the time for more PSNR/SSIM; invented texture averages away.
  bool self_ensemble = false;
  // Keys of from_json's spec the caller chose; the backbone's preferred pipeline (a shipped
  // model's) fills every other one of preferred_keys().
  std::set<std::string> explicit_keys;
  // The settings a preferred pipeline may fill (codec, sampler, steps, ...): the one list, for
  // front ends that map their own flags onto explicit_keys.
  static const std::vector<std::string>& preferred_keys();
  // Filled by Pipeline: one line per weights file that supplied what the caller left out
  // (weights_info: "stored: ..." / "detected: ..."), for the caller to show.
  std::vector<std::string> described;
  bool names_resolved = false;  // set by resolve_names

  // The JSON form the C API takes (see abi/sinsr_host.h).
  static PipelineOptions from_json(const json& spec);
  // Takes the preferred pipeline's values for the keys not in explicit_keys, and the preferred
  // config of a codec or sampler the caller named as the preference but gave no config. Refuses
  // (check_scale) an explicit scale the preference fixes otherwise. `who` names the component
  // in errors ("model 'student'").
  void apply_preferred(const json& preferred, const std::string& who);
  // The factor a preferred pipeline fixes; 0 when it fixes none.
  static int fixed_scale(const json& preferred);
  // SINSR_ERR_INVALID_ARGUMENT "<who> upscales xN only, not xM" when "scale" is explicit and the
  // preference fixes another factor.
  void check_scale(const json& preferred, const std::string& who) const;
  // Self-describing weights: a backbone (or codec) with weights but no config takes the config
  // its file stores or its plugin detects (host::weights_info); a backbone without a name takes
  // the stored or detected component. Stored components also fill codec, sampler, steps and
  // scale where the caller left them (as a preferred pipeline does). A backbone with weights
  // nobody recognises and no name is refused, naming the file.
  void apply_weights_info(const Runtime& runtime);
  // Names every part the caller left unnamed, in this order: the codec and sampler from the
  // runtime's defaults ("infer"; a model's preferred or a file's stored pipeline still wins over
  // them, as a non-explicit key); the backbone from a library the caller loaded, else from what
  // its weights store or its plugin detects (apply_weights_info), else the default model. A
  // backbone config without weights, or weights "none" without a name, is refused. Pipeline calls
  // it; a caller may call it first to see what will run (calling it again changes nothing).
  void resolve_names(const Runtime& runtime);
  // A file that stores its backbone's options, run as that backbone under other options: refused,
  // naming the keys.
  // `name`: the backbone it runs as (the file's own when the caller named none).
  void refuse_contradiction(const Runtime& runtime, const struct WeightsInfo& info, const std::string& name) const;
};

// PyTorch-style bicubic (A = -0.75, align_corners false, no antialias), as the official code
// upsamples the LR image before encoding it; not the MATLAB resize used to make LR images.
at::Tensor upsample_bicubic(const at::Tensor& x, int64_t scale);

// Start positions of tiles along one axis, as the official ImageSpliterTh places them.
std::vector<int64_t> tile_starts(int64_t length, int64_t tile, int64_t stride);

// Blending weights of one SR tile: 1 inside, a raised-cosine ramp across each side that
// overlaps a neighbour (sides on the image border stay 1), so seams fade instead of stepping.
at::Tensor tile_window(int64_t height, int64_t width, int64_t ramp, bool top, bool bottom, bool left, bool right);

class Pipeline {
 public:
  Pipeline(Runtime& runtime, PipelineOptions options);
  // Over components someone else owns (the trainer's live student, for validation); the
  // parts' names, configs and weights in `options` are ignored. codec may be null.
  Pipeline(BackboneHandle& backbone, CodecHandle* codec, SamplerHandle& sampler, PipelineOptions options);
  ~Pipeline();

  // [1,C,h,w] float in [0,1], C = 3 -> [1,3,h*scale,w*scale] in [0,1]. progress(done, total)
  // is called per batch of tiles; returning false cancels.
  at::Tensor upscale(const at::Tensor& image01, const std::function<bool(int, int)>& progress = {});

  // Any image: C = 1 (gray in, gray out), 2 (gray+alpha), 3, 4 (RGBA). The alpha channel is
  // upscaled with bicubic interpolation and re-attached. [C,h,w] in [0,1].
  at::Tensor upscale_any(const at::Tensor& chw01, const std::function<bool(int, int)>& progress = {});

  // The untiled core on a batch of equally sized LR tiles in [-1,1]; returns SR in [-1,1]
  // (clamped). `noise` supplies N(0,1) draws in order (the prior first).
  at::Tensor run_batch(const at::Tensor& y0, const std::function<at::Tensor(const at::Tensor&)>& noise);

  const PipelineOptions& options() const { return options_; }

 private:
  // One pass over the tiles; progress counts this pass's batches after those of the `pass`
  // passes before it, out of `passes` times one pass's.
  at::Tensor upscale_tiles(const at::Tensor& image01, const std::function<bool(int, int)>& progress, int pass,
                           int passes);

  struct Impl;
  std::unique_ptr<Impl> impl_;
  PipelineOptions options_;
};

}  // namespace host
}  // namespace sinsr
