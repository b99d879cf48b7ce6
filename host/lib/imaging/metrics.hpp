// PSNR and SSIM.
// - The default is the official utils/util_image.py calculate_psnr / calculate_ssim: uint8 images,
//   optionally on the MATLAB Y channel rounded to uint8, a border crop, float64.
// - Mode::pyiqa is what the official evaluate.py reports (pyiqa, color_space='ycbcr'): Y from
//   [0,1] pixels, not rounded, on the 0..255 scale; PSNR in float32 with eps 1e-8; SSIM in float64
//   with the contrast-structure map through ReLU.
// - detail(): a blur measure beside PSNR/SSIM, the ratio of mean Sobel gradient magnitudes.
// A one-channel image is replicated to RGB before the Y conversion, so gray and colour images
// compare; an alpha channel is not part of any metric (callers drop it).
#pragma once

#include <ATen/ATen.h>
#include <sinsr/image_math.hpp>

#include <string>

namespace sinsr {
namespace metrics {

enum class Mode { y, rgb, pyiqa };
Mode parse_mode(const std::string& name);  // "y" | "rgb" | "pyiqa"; SINSR_ERR_INVALID_ARGUMENT otherwise
const char* mode_name(Mode m);

// The one Y-channel formula of every mode: sdk::bt601_y (sinsr/image_math.hpp), which the image
// losses share.
using sdk::bt601_y;

// [H,W,3] uint8 RGB or [H,W] / [H,W,1] gray -> [H,W] uint8 Y = round(16 + (65.481 R + 128.553 G +
// 24.966 B) / 255), the official rgb2ycbcr(only_y=True).
at::Tensor rgb_to_y_uint8(const at::Tensor& hwc);

// calculate_psnr / calculate_ssim on uint8 [H,W,C] (or [H,W]) images of the same height and width;
// y_channel false compares all channels (the mean over channels for SSIM). PSNR is +inf when equal.
double psnr(const at::Tensor& a, const at::Tensor& b, int border = 0, bool y_channel = true);
double ssim(const at::Tensor& a, const at::Tensor& b, int border = 0, bool y_channel = true);

// pyiqa's PSNR / SSIM (test_y_channel=True, color_space='ycbcr') on the same uint8 inputs
// (taken as x/255 like the official evaluation reloading its PNGs); border as pyiqa's crop_border.
double psnr_pyiqa(const at::Tensor& a, const at::Tensor& b, int border = 0);
double ssim_pyiqa(const at::Tensor& a, const at::Tensor& b, int border = 0);

// Mean Sobel gradient magnitude of one image: the official Y (rgb_to_y_uint8, 0..255), border
// cropped, the 3x3 Sobel pair applied 'valid' (no padding: (H-2)x(W-2) responses), magnitude
// sqrt(gx^2 + gy^2) with the unnormalised kernels [-1 0 1; -2 0 2; -1 0 1] and its transpose,
// averaged in float64. SINSR_ERR_INVALID_ARGUMENT when the crop leaves less than 3x3.
double mean_gradient(const at::Tensor& img, int border = 0);

// The detail ratio mean_gradient(sr) / mean_gradient(hr), same border (eval: border = scale).
// 1 = as much gradient energy as the ground truth; < 1 blurrier; > 1 sharper or noisier (read it
// beside PSNR). NaN when the HR image has no gradient at all (a constant crop): there is no
// reference to compare with. The images must have the same height and width.
double detail(const at::Tensor& sr, const at::Tensor& hr, int border = 0);

struct Scores {
  double psnr = 0, ssim = 0;
};
// Dispatch on the mode: y = psnr/ssim(y_channel true), rgb = (y_channel false), pyiqa = *_pyiqa.
Scores evaluate(const at::Tensor& a, const at::Tensor& b, int border, Mode mode);

// The trainer's batch_PSNR / batch_SSIM: [N,3,H,W] (or [N,1,H,W]) float in [0,1]; the SUM over
// the batch, as the official functions return.
double batch_psnr(const at::Tensor& img, const at::Tensor& ref, bool y_channel = true);
double batch_ssim(const at::Tensor& img, const at::Tensor& ref, bool y_channel = true);

}  // namespace metrics
}  // namespace sinsr
