#include "ssim.hpp"

#include <cmath>
#include <vector>

namespace sinsr {
namespace losses {

at::Tensor ssim_map(const at::Tensor& a, const at::Tensor& b) {
  const int64_t c = a.size(1);
  at::Tensor g = at::arange(11, a.options()).sub(5).pow(2).div(-2 * 1.5 * 1.5).exp();
  g = g / g.sum();
  at::Tensor gh = g.view({1, 1, 1, 11}).expand({c, 1, 1, 11}).contiguous();
  at::Tensor gv = g.view({1, 1, 11, 1}).expand({c, 1, 11, 1}).contiguous();
  const std::vector<int64_t> one{1, 1}, none{0, 0};
  // The separable window as two depthwise convolutions.
  auto filt = [&](const at::Tensor& x) {
    return at::conv2d(at::conv2d(x, gv, at::Tensor(), one, none, one, c), gh, at::Tensor(), one, none, one, c);
  };
  const double C1 = std::pow(0.01 * 255, 2), C2 = std::pow(0.03 * 255, 2);
  at::Tensor mu1 = filt(a), mu2 = filt(b);
  at::Tensor mu1_sq = mu1 * mu1, mu2_sq = mu2 * mu2, mu12 = mu1 * mu2;
  at::Tensor s1 = filt(a * a) - mu1_sq, s2 = filt(b * b) - mu2_sq, s12 = filt(a * b) - mu12;
  return ((2 * mu12 + C1) * (2 * s12 + C2)) / ((mu1_sq + mu2_sq + C1) * (s1 + s2 + C2));
}

at::Tensor bt601_y(const at::Tensor& rgb255) {
  return (16.0 + (65.481 * rgb255.select(1, 0) + 128.553 * rgb255.select(1, 1) + 24.966 * rgb255.select(1, 2)) / 255.0)
      .unsqueeze(1);
}

}  // namespace losses
}  // namespace sinsr
