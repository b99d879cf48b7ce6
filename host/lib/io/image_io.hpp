// Image files: netpbm (PPM/PGM/PBM) in every build, everything else (PNG, JPEG, TIFF, EXR, BMP,
// WebP, ...) through OpenImageIO where the build has it (SINSR_WITH_IMAGE_IO). Pixels cross as
// float32 [C,H,W] in [0,1]; C = 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA).
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <string>
#include <vector>

namespace sinsr {
namespace io {

struct Image {
  at::Tensor pixels;  // float32 [C,H,W]; 8/16-bit files land in [0,1], float files are not clamped
  int bits = 8;       // of the file: 8, 16, or 32 for float formats (EXR, float TIFF, half)
  // The file's metadata that describes the picture, not its encoding (EXIF, GPS, IPTC, XMP, ICC
  // profile, Make/Model, DateTime, ...): opaque here, handed to write_image to carry it over.
  // The EXIF orientation is applied to the pixels when read (as OpenCV and Real-ESRGAN do) and
  // written as 1 (upright).
  std::shared_ptr<const void> metadata;
  int orientation = 1;  // the file's EXIF Orientation (1..8) before it was applied
};

// Errors are sinsr::sdk::Error with a message "<path>: <what is wrong>": SINSR_ERR_IO when the
// file is missing or cannot be opened, SINSR_ERR_FORMAT when its content is not a readable image
// (corrupt, truncated, unknown format). Extra channels beyond RGBA (e.g. EXR depth) are dropped.
Image read_image(const std::string& path);

// The same with a pixel limit of the caller's (a CLI's --max-pixels), checked against the header
// before anything is decoded; `raise_hint` ends the refusal ("--max-pixels raises it").
struct ReadLimits {
  int64_t max_pixels = 0;  // 0: the default limit (2^26, or SINSR_MAX_IMAGE_PIXELS)
  std::string raise_hint;
};
Image read_image(const std::string& path, const ReadLimits& limits);

// chw01: floating [C,H,W], C in 1..4 (2 and 4 carry alpha last). Clamped to [0,1] (NaN -> 0);
// 8/16-bit values are rounded half to even (numpy's rounding); bits = 32 writes float where the
// format has it. The format follows the extension; JPEG and netpbm have no alpha, so it is
// dropped there.
// The file is written beside its target under a temporary name and renamed into place, so a
// reader never sees half a file. No folder is created.
void write_image(const std::string& path, const at::Tensor& chw01, int bits = 8);
// The same, carrying `source`'s metadata where the format can hold it (PNG, JPEG, TIFF, WebP hold
// EXIF and ICC; the pixel size and the orientation are those of the new image).
void write_image(const std::string& path, const at::Tensor& chw01, int bits, const Image& source);

// The extensions this build writes, space-separated, the default first (what a command writes
// where no format is named): "png jpg tif exr webp bmp ppm", or "ppm" in a build without
// OpenImageIO. (.pgm is written as well, but holds gray only: the writer writes colour as P6.)
const char* formats();
// The first of formats(): "png", or "ppm" without OpenImageIO.
const char* default_format();

// png jpg jpeg tif tiff exr bmp webp, and the netpbm ppm pgm pnm pbm (any case).
bool has_image_extension(const std::string& path);
// The images (by extension) directly inside dir, sorted by path; SINSR_ERR_IO if dir cannot be read.
std::vector<std::string> list_images(const std::string& dir);

// [C,H,W] in [0,1] -> [H,W,C] uint8 the way the official tensor2img does it: float32, clamp,
// x*255, round half to even.
at::Tensor to_uint8_hwc(const at::Tensor& chw01);
// The same without an alpha channel (gray+alpha -> gray, RGBA -> RGB): what the metrics see.
at::Tensor color_uint8_hwc(const at::Tensor& chw01);

}  // namespace io
}  // namespace sinsr
