// One image file upscaled into another, as `sinsr-host infer` does for each file of a run and
// the C API's sinsr_pipeline_upscale_file (so `serve` too): read with a pixel limit, upscale,
// an optional final bicubic factor, written at the input's depth with its metadata. The one
// implementation, so every front end writes the same bytes.
#pragma once

#include "pipeline/pipeline.hpp"

#include <cstdint>
#include <functional>
#include <string>

namespace sinsr {
namespace io {

struct UpscaleFileOptions {
  int64_t max_pixels = int64_t(4096) * 4096;        // larger inputs are refused from their header
  std::string raise_hint = "max_pixels raises it";  // said when one is refused
  double outscale = 0;                              // > 0: the model's factor, then MATLAB bicubic to this one
  int bits = 0;                                     // 8 or 16; 0: 16 for 16-bit and float inputs, else 8
};

// Throws sdk::Error naming the file on any failure; the output appears whole or not at all.
void upscale_file(host::Pipeline& pipeline, const std::string& input, const std::string& output,
                  const UpscaleFileOptions& options, const std::function<bool(int, int)>& progress = {});

}  // namespace io
}  // namespace sinsr
