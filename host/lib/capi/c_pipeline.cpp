// sinsr_pipeline_*: the inference pipeline for applications and other languages.
#include "capi/c_api.hpp"
#include "pipeline/pipeline.hpp"

#include <sinsr/config.hpp>

#include <functional>
#include <string>

using sinsr::host::c_guard;
using sinsr::sdk::require;

struct sinsr_pipeline {
  std::unique_ptr<sinsr::host::Pipeline> impl;
  std::string settings;  // sinsr_pipeline_settings' JSON, made once
};

namespace {

nlohmann::json part_json(const sinsr::host::PipelinePart& p) {
  return {{"name", p.name}, {"config", p.config}, {"weights", p.weights}};
}

// What the pipeline runs with, in the spec's own keys.
std::string settings_of(const sinsr::host::PipelineOptions& o) {
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
                      {"described", o.described}};
  return j.dump();
}

// Progress over a whole run: each image's tile batches, counted on.
struct RunProgress {
  const sinsr_run_options* options = nullptr;
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
    p->impl = std::make_unique<sinsr::host::Pipeline>(rt, sinsr::host::PipelineOptions::from_json(spec));
    p->settings = settings_of(p->impl->options());
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
  at::Tensor in;
  sinsr_status* st = c_guard("sinsr_pipeline_run", [&] { in = sinsr::sdk::from_dlpack(image); });
  if (st) return st;
  return c_guard("sinsr_pipeline_run", [&] {
    require(options == nullptr || options->struct_size >= offsetof(sinsr_run_options, progress) + sizeof(void*),
            SINSR_ERR_ABI, "sinsr_run_options.struct_size too small");
    RunProgress progress;
    progress.options = options;
    require(pipeline != nullptr && out != nullptr, SINSR_ERR_INVALID_ARGUMENT, "null pipeline or out");
    *out = nullptr;
    require(in.defined(), SINSR_ERR_INVALID_ARGUMENT, "image is null");
    require(in.device().is_cpu() && in.is_floating_point(), SINSR_ERR_INVALID_ARGUMENT,
            "image must be a floating-point CPU tensor in [0, 1]");
    at::Tensor result;
    if (in.dim() == 3) {  // [H,W,C]
      result = pipeline->impl->upscale_any(in.permute({2, 0, 1}), progress.for_image()).permute({1, 2, 0}).contiguous();
    } else {
      require(in.dim() == 4, SINSR_ERR_INVALID_ARGUMENT, "image must be [H,W,C] or [N,C,H,W]");
      std::vector<at::Tensor> outs;
      progress.images = int32_t(in.size(0));
      for (int64_t i = 0; i < in.size(0); ++i, ++progress.image)
        outs.push_back(pipeline->impl->upscale_any(in[i], progress.for_image()));
      result = at::stack(outs, 0);
    }
    *out = sinsr::sdk::to_dlpack(result.to(in.scalar_type()));
  });
}

SINSR_API void sinsr_pipeline_destroy(sinsr_pipeline* pipeline) { delete pipeline; }

}  // extern "C"
