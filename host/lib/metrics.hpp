// PSNR and SSIM as the official code computes them (utils/util_image.py): on uint8 images,
// optionally on the MATLAB Y channel, with a border crop, in float64.
#pragma once

#include <ATen/ATen.h>

namespace sinsr {
namespace metrics {

// [H,W,C] uint8 RGB (C = 3) or [H,W] / [H,W,1] gray -> [H,W] uint8 Y = round(16 + (65.481 R +
// 128.553 G + 24.966 B) / 255). Gray is replicated to RGB first.
at::Tensor rgb_to_y_uint8(const at::Tensor& hwc);

// calculate_psnr / calculate_ssim on uint8 [H,W,C] (or [H,W]) images. PSNR: +inf when equal.
double psnr(const at::Tensor& a, const at::Tensor& b, int border = 0, bool y_channel = true);
double ssim(const at::Tensor& a, const at::Tensor& b, int border = 0, bool y_channel = true);

// The trainer's batch_PSNR / batch_SSIM: [N,3,H,W] float in [0,1]; the SUM over the batch.
double batch_psnr(const at::Tensor& img, const at::Tensor& ref, bool y_channel = true);
double batch_ssim(const at::Tensor& img, const at::Tensor& ref, bool y_channel = true);

}  // namespace metrics
}  // namespace sinsr
