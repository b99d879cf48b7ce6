// Losses that look at the decoded image, in autograd-friendly LibTorch ops for training:
// - SSIM as `sinsr-host eval` reports it (Gaussian 11x11 window, sigma 1.5, the 'valid' region,
//   C1 = (0.01 L)^2, C2 = (0.03 L)^2 on the 0..255 scale, BT.601 Y);
// - a Gaussian high-pass, to compare only what lies above a spatial frequency.
#pragma once

#include <ATen/ATen.h>

namespace sinsr {
namespace losses {

// [N,C,H,W] on the 0..255 scale -> the per-pixel SSIM map of each channel, [N,C,H-10,W-10].
at::Tensor ssim_map(const at::Tensor& a, const at::Tensor& b);

// x minus its Gaussian blur (sigma in pixels, taps out to 3 sigma, reflected borders), per channel.
at::Tensor highpass(const at::Tensor& x, double sigma);

// [N,3,H,W] on the 0..255 scale -> [N,1,H,W] BT.601 Y (studio range, not rounded).
at::Tensor bt601_y(const at::Tensor& rgb255);

}  // namespace losses
}  // namespace sinsr
