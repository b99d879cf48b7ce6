// sinsr_pipeline_*: the inference pipeline for applications and other languages.
#include "capi/c_api.hpp"
#include "io/upscale_file.hpp"
#include "pipeline/pipeline.hpp"

#include <sinsr/config.hpp>

#include <functional>
#include <string>

using sinsr::host::c_guard;
using sinsr::sdk::require;

struct sinsr_pipeline {
  std::unique_ptr<sinsr::host::Pipeline> impl;
  int threads = 0;       // applied around each run (ThreadScope)
  std::string settings;  // sinsr_pipeline_settings' JSON, made once
};

namespace {

nlohmann::json part_json(const sinsr::host::PipelinePart& p) {
  return {{"name", p.name}, {"config", p.config}, {"weights", p.weights}};
}

// What the pipeline runs with, in the spec's own keys.
std::string settings_of(const sinsr::host::PipelineOptions& o, int threads, const std::string& input) {
  nlohmann::json j = {{"backbone", part_json(o.backbone)},
                      {"codec", part_json(o.codec)},
                      {"sampler", part_json(o.sampler)},
                      {"steps", o.steps},
                      {"scale", o.scale},
                      {"seed", o.seed},
                      {"device", o.device},
                      {"precision", o.precision},
                      {"pad_multiple", o.pad_multiple},
                      {"chop_size", o.chop_size},
                      {"chop_stride", o.chop_stride},
                      {"chop_batch", o.chop_batch},
                      {"strength", o.strength},
                      {"self_ensemble", o.self_ensemble},
                      {"threads", threads},
                      {"blend_with", o.blend_with},
                      {"input", input},
                      {"described", o.described}};
  return j.dump();
}

// Progress over a whole run: each image's tile batches, counted on.
struct RunProgress {
  // options may be NULL; a struct too small for its first fields is refused.
  explicit RunProgress(const sinsr_run_options* o) : options(o) {
    require(o == nullptr || o->struct_size >= offsetof(sinsr_run_options, progress) + sizeof(void*), SINSR_ERR_ABI,
            "sinsr_run_options.struct_size too small");
  }
  const sinsr_run_options* options;
  int32_t images = 1, image = 0;
  std::function<bool(int, int)> for_image() {
    if (!options || !SINSR_HAS_FIELD(options, sinsr_run_options, user) || !options->progress) return {};
    return [this](int done, int total) {
      const int32_t all = total * images, now = image * total + done;
      return options->progress(options->user, now, all) != 0;
    };
  }
};

}  // namespace

extern "C" {

SINSR_API sinsr_status* sinsr_pipeline_create(sinsr_runtime* runtime, const char* spec_json, sinsr_pipeline** out) {
  return c_guard("sinsr_pipeline_create", [&] {
    require(out != nullptr, SINSR_ERR_INVALID_ARGUMENT, "out is null");
    *out = nullptr;
    auto& rt = runtime_of(runtime);
    auto spec = sinsr::config::parse_optional(spec_json, "pipeline spec");
    auto p = std::make_unique<sinsr_pipeline>();
    // "threads": this pipeline's CPU thread count (0 or absent: the runtime's), a C API key.
    p->threads = rt.threads();
    if (spec.is_object() && spec.contains("threads")) {
      require(spec["threads"].is_number_integer() && spec["threads"].get<int64_t>() >= 0 &&
                  spec["threads"].get<int64_t>() <= 4096,
              SINSR_ERR_INVALID_ARGUMENT, "pipeline spec: 'threads' must be an integer in [0, 4096]");
      if (const int n = spec["threads"].get<int>(); n > 0) p->threads = n;
      spec.erase("threads");
    }
    sinsr::host::ThreadScope threads(p->threads);
    p->impl = std::make_unique<sinsr::host::Pipeline>(rt, sinsr::host::PipelineOptions::from_json(spec));
    // What the model declares it is for ("real-world", "bicubic"), from its preferred pipeline.
    const auto preferred = rt.find(SINSR_KIND_BACKBONE, p->impl->options().backbone.name)->preferred_pipeline();
    const auto input = preferred.value("input", nlohmann::json());
    p->settings = settings_of(p->impl->options(), p->threads, input.is_string() ? input.get<std::string>() : "");
    *out = p.release();
  });
}

SINSR_API sinsr_status* sinsr_pipeline_run(sinsr_pipeline* pipeline, DLManagedTensor* image, DLManagedTensor** out) {
  return sinsr_pipeline_run_with(pipeline, image, nullptr, out);
}

SINSR_API sinsr_status* sinsr_pipeline_settings(const sinsr_pipeline* pipeline, const char** json) {
  return c_guard("sinsr_pipeline_settings", [&] {
    require(pipeline != nullptr && json != nullptr, SINSR_ERR_INVALID_ARGUMENT, "null pipeline or json");
    *json = pipeline->settings.c_str();
  });
}

SINSR_API sinsr_status* sinsr_pipeline_run_with(sinsr_pipeline* pipeline, DLManagedTensor* image,
                                                const sinsr_run_options* options, DLManagedTensor** out) {
  // Take ownership first, so the input's deleter runs on every path.
  sinsr::host::Samples samples;
  sinsr_status* st = c_guard("sinsr_pipeline_run", [&] { samples = sinsr::host::take_samples(image); });
  if (st) return st;
  return c_guard("sinsr_pipeline_run", [&] {
    RunProgress progress(options);
    require(pipeline != nullptr && out != nullptr, SINSR_ERR_INVALID_ARGUMENT, "null pipeline or out");
    *out = nullptr;
    const at::Tensor& in = samples.pixels;
    require(in.defined(), SINSR_ERR_INVALID_ARGUMENT, "image is null");
    sinsr::host::ThreadScope threads(pipeline->threads);
    at::Tensor result;
    if (in.dim() == 3) {  // [H,W,C]
      result = pipeline->impl->upscale_any(in.permute({2, 0, 1}), progress.for_image()).permute({1, 2, 0});
    } else {
      require(in.dim() == 4, SINSR_ERR_INVALID_ARGUMENT, "image must be [H,W,C] or [N,C,H,W]");
      std::vector<at::Tensor> outs;
      progress.images = int32_t(in.size(0));
      for (int64_t i = 0; i < in.size(0); ++i, ++progress.image)
        outs.push_back(pipeline->impl->upscale_any(in[i], progress.for_image()));
      result = at::stack(outs, 0);
    }
    *out = sinsr::host::give_samples(result, samples.bits, samples.dtype);
  });
}

SINSR_API sinsr_file_options sinsr_file_default_options(void) {
  sinsr_file_options o{};
  o.struct_size = sizeof o;
  const sinsr::io::UpscaleFileOptions d;
  o.max_pixels = d.max_pixels;
  o.outscale = d.outscale;
  o.bits = d.bits;
  return o;
}

SINSR_API sinsr_status* sinsr_pipeline_upscale_file(sinsr_pipeline* pipeline, const char* input, const char* output,
                                                    const sinsr_file_options* options, const sinsr_run_options* run) {
  return c_guard("sinsr_pipeline_upscale_file", [&] {
    require(pipeline != nullptr, SINSR_ERR_INVALID_ARGUMENT, "pipeline is null");
    require(input && *input && output && *output, SINSR_ERR_INVALID_ARGUMENT, "input or output path is null or empty");
    sinsr::io::UpscaleFileOptions o;
    if (options) {
      require(options->struct_size >= offsetof(sinsr_file_options, bits) + sizeof(int32_t), SINSR_ERR_ABI,
              "sinsr_file_options.struct_size too small");
      o.max_pixels = options->max_pixels;
      o.outscale = options->outscale;
      o.bits = options->bits;
    }
    require(o.max_pixels >= 1, SINSR_ERR_INVALID_ARGUMENT, "max_pixels must be at least 1");
    RunProgress progress(run);
    sinsr::host::ThreadScope threads(pipeline->threads);
    sinsr::io::upscale_file(*pipeline->impl, input, output, o, progress.for_image());
  });
}

SINSR_API void sinsr_pipeline_destroy(sinsr_pipeline* pipeline) { delete pipeline; }

}  // extern "C"
