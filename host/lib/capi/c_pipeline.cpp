// sinsr_pipeline_*: the inference pipeline for applications and other languages.
#include "capi/c_api.hpp"
#include "pipeline/pipeline.hpp"

#include <sinsr/config.hpp>

using sinsr::host::c_guard;
using sinsr::sdk::require;

struct sinsr_pipeline {
  std::unique_ptr<sinsr::host::Pipeline> impl;
};

extern "C" {

SINSR_API sinsr_status* sinsr_pipeline_create(sinsr_runtime* runtime, const char* spec_json, sinsr_pipeline** out) {
  return c_guard("sinsr_pipeline_create", [&] {
    require(out != nullptr, SINSR_ERR_INVALID_ARGUMENT, "out is null");
    *out = nullptr;
    auto& rt = runtime_of(runtime);
    auto spec = sinsr::config::parse_optional(spec_json, "pipeline spec");
    auto p = std::make_unique<sinsr_pipeline>();
    p->impl = std::make_unique<sinsr::host::Pipeline>(rt, sinsr::host::PipelineOptions::from_json(spec));
    *out = p.release();
  });
}

SINSR_API sinsr_status* sinsr_pipeline_run(sinsr_pipeline* pipeline, DLManagedTensor* image, DLManagedTensor** out) {
  // Take ownership first, so the input's deleter runs on every path.
  at::Tensor in;
  sinsr_status* st = c_guard("sinsr_pipeline_run", [&] { in = sinsr::sdk::from_dlpack(image); });
  if (st) return st;
  return c_guard("sinsr_pipeline_run", [&] {
    require(pipeline != nullptr && out != nullptr, SINSR_ERR_INVALID_ARGUMENT, "null pipeline or out");
    *out = nullptr;
    require(in.defined(), SINSR_ERR_INVALID_ARGUMENT, "image is null");
    require(in.device().is_cpu() && in.is_floating_point(), SINSR_ERR_INVALID_ARGUMENT,
            "image must be a floating-point CPU tensor in [0, 1]");
    at::Tensor result;
    if (in.dim() == 3) {  // [H,W,C]
      result = pipeline->impl->upscale_any(in.permute({2, 0, 1})).permute({1, 2, 0}).contiguous();
    } else {
      require(in.dim() == 4, SINSR_ERR_INVALID_ARGUMENT, "image must be [H,W,C] or [N,C,H,W]");
      std::vector<at::Tensor> outs;
      for (int64_t i = 0; i < in.size(0); ++i) outs.push_back(pipeline->impl->upscale_any(in[i]));
      result = at::stack(outs, 0);
    }
    *out = sinsr::sdk::to_dlpack(result.to(in.scalar_type()));
  });
}

SINSR_API void sinsr_pipeline_destroy(sinsr_pipeline* pipeline) { delete pipeline; }

}  // extern "C"
