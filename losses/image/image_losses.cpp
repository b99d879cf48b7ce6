#include "image_losses.hpp"

#include <sinsr/image_math.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

namespace sinsr {
namespace losses {

namespace {

at::Tensor taps(double sigma, int64_t radius, const at::TensorOptions& options) {
  return at::tensor(sdk::gaussian_taps(sigma, int(radius)), at::kDouble).to(options);
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
  const at::Tensor g = taps(1.5, 5, a.options());
  return sdk::ssim_map(a, b, [&](const at::Tensor& x) { return gaussian_filter(x, g); });
}

at::Tensor highpass(const at::Tensor& x, double sigma) {
  // Reflection needs the pad below the size; a tiny image gets a shorter window.
  const int64_t radius = std::min<int64_t>(int64_t(std::ceil(3 * sigma)), std::min(x.size(2), x.size(3)) - 1);
  at::Tensor padded = at::reflection_pad2d(x, {radius, radius, radius, radius});
  return x - gaussian_filter(padded, taps(sigma, radius, x.options()));
}

at::Tensor bt601_y(const at::Tensor& rgb255) { return sdk::bt601_y(rgb255.movedim(1, -1), 255.0).unsqueeze(1); }

}  // namespace losses
}  // namespace sinsr
