#include "io/upscale_file.hpp"

#include "imaging/imresize.hpp"
#include "io/image_io.hpp"

namespace sinsr {
namespace io {

void upscale_file(host::Pipeline& pipeline, const std::string& input, const std::string& output,
                  const UpscaleFileOptions& options, const std::function<bool(int, int)>& progress) {
  sdk::require(options.bits == 0 || options.bits == 8 || options.bits == 16, SINSR_ERR_INVALID_ARGUMENT,
               "bits must be 0, 8 or 16");
  sdk::require(options.outscale == 0 || (options.outscale > 0 && options.outscale <= 64), SINSR_ERR_INVALID_ARGUMENT,
               "outscale must be 0 (off) or a factor up to 64");
  // The header's size is checked before anything is decoded.
  Image img = read_image(input, {options.max_pixels, options.raise_hint});
  at::Tensor sr = pipeline.upscale_any(img.pixels, progress);
  const int scale = pipeline.options().scale;
  if (options.outscale > 0 && options.outscale != double(scale))
    sr = imaging::imresize(sr, options.outscale / double(scale), true).clamp_(0, 1);
  write_image(output, sr, options.bits ? options.bits : (img.bits >= 16 ? 16 : 8), img);
}

}  // namespace io
}  // namespace sinsr
