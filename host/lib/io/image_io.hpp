// Image files through OpenImageIO (PNG, JPEG, TIFF, EXR, ...). Pixels cross as float32
// [C,H,W] in [0,1]; C = 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA).
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <vector>

namespace sinsr {
namespace io {

struct Image {
  at::Tensor pixels;
  int bits = 8;  // of the file: 8, 16, or 32 for float formats
};

// Errors: sinsr::sdk::Error naming the file (SINSR_ERR_IO unreadable, SINSR_ERR_FORMAT corrupt).
Image read_image(const std::string& path);
// Clamps to [0,1]; 8/16-bit values are rounded half to even (numpy's rounding). The format
// follows the extension; the file is written beside its target and renamed into place.
void write_image(const std::string& path, const at::Tensor& chw01, int bits = 8);

bool has_image_extension(const std::string& path);
std::vector<std::string> list_images(const std::string& dir);  // sorted, not recursive
// [C,H,W] in [0,1] -> [H,W,C] uint8, the official quantisation.
at::Tensor to_uint8_hwc(const at::Tensor& chw01);

}  // namespace io
}  // namespace sinsr
