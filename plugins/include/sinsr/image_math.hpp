// Image numerics that the host's metrics (`sinsr-host eval`, validation) and the image losses
// share, so that a loss trains toward exactly what `eval` reports: the BT.601 Y channel, the
// Gaussian taps, and the SSIM map built from a window's moments.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <vector>

namespace sinsr {
namespace sdk {

// The official rgb2ycbcr's Y (ITU-R BT.601 studio range) on the 0..255 scale, not rounded:
// 16 + 65.481 R' + 128.553 G' + 24.966 B', R' = R / rgb_max. rgb: floating, RGB along the last
// dimension in [0, rgb_max]; the weights are divided by rgb_max before the product, as the
// official code does; rgb's dtype; autograd passes through.
at::Tensor bt601_y(const at::Tensor& rgb, double rgb_max);

// Normalised 1-D Gaussian taps, 2 radius + 1 of them, in float64 (cv2.getGaussianKernel for
// radius 5 and sigma 1.5: SSIM's window).
std::vector<double> gaussian_taps(double sigma, int radius);

// The SSIM map of a and b (any shape `filter` takes) on the 0..255 scale: C1 = (0.01 * 255)^2,
// C2 = (0.03 * 255)^2; `filter` applies the 11x11 Gaussian window (sigma 1.5) over the 'valid'
// region. relu_cs: the contrast-structure term through ReLU (pyiqa's variant).
at::Tensor ssim_map(const at::Tensor& a, const at::Tensor& b,
                    const std::function<at::Tensor(const at::Tensor&)>& filter, bool relu_cs = false);

}  // namespace sdk
}  // namespace sinsr
