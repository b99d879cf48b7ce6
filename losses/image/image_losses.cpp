#include "image_losses.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace sinsr {
namespace losses {

namespace {

// Normalised 1-D Gaussian taps of length 2 radius + 1.
at::Tensor gaussian_taps(double sigma, int64_t radius, const at::TensorOptions& options) {
  at::Tensor g = at::arange(-radius, radius + 1, options).pow(2).div(-2 * sigma * sigma).exp();
  return g / g.sum();
}

// The separable window as two depthwise convolutions; pad 0 keeps the 'valid' region.
at::Tensor gaussian_filter(const at::Tensor& x, const at::Tensor& g) {
  const int64_t c = x.size(1), k = g.numel();
  at::Tensor gh = g.view({1, 1, 1, k}).expand({c, 1, 1, k}).contiguous();
  at::Tensor gv = g.view({1, 1, k, 1}).expand({c, 1, k, 1}).contiguous();
  const std::vector<int64_t> one{1, 1}, none{0, 0};
  return at::conv2d(at::conv2d(x, gv, at::Tensor(), one, none, one, c), gh, at::Tensor(), one, none, one, c);
}

}  // namespace

at::Tensor ssim_map(const at::Tensor& a, const at::Tensor& b) {
  const at::Tensor g = gaussian_taps(1.5, 5, a.options());
  auto filt = [&](const at::Tensor& x) { return gaussian_filter(x, g); };
  const double C1 = std::pow(0.01 * 255, 2), C2 = std::pow(0.03 * 255, 2);
  at::Tensor mu1 = filt(a), mu2 = filt(b);
  at::Tensor mu1_sq = mu1 * mu1, mu2_sq = mu2 * mu2, mu12 = mu1 * mu2;
  at::Tensor s1 = filt(a * a) - mu1_sq, s2 = filt(b * b) - mu2_sq, s12 = filt(a * b) - mu12;
  return ((2 * mu12 + C1) * (2 * s12 + C2)) / ((mu1_sq + mu2_sq + C1) * (s1 + s2 + C2));
}

at::Tensor highpass(const at::Tensor& x, double sigma) {
  // Reflection needs the pad below the size; a tiny image gets a shorter window.
  const int64_t radius = std::min<int64_t>(int64_t(std::ceil(3 * sigma)), std::min(x.size(2), x.size(3)) - 1);
  at::Tensor padded = at::reflection_pad2d(x, {radius, radius, radius, radius});
  return x - gaussian_filter(padded, gaussian_taps(sigma, radius, x.options()));
}

at::Tensor bt601_y(const at::Tensor& rgb255) {
  return (16.0 + (65.481 * rgb255.select(1, 0) + 128.553 * rgb255.select(1, 1) + 24.966 * rgb255.select(1, 2)) / 255.0)
      .unsqueeze(1);
}

}  // namespace losses
}  // namespace sinsr
