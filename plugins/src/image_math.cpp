#include "sinsr/image_math.hpp"

#include "sinsr/sdk.hpp"

#include <cmath>

namespace sinsr {
namespace sdk {

at::Tensor bt601_y(const at::Tensor& rgb, double rgb_max) {
  require(rgb.is_floating_point() && rgb.dim() >= 1 && rgb.size(-1) == 3, SINSR_ERR_INVALID_ARGUMENT,
          "bt601_y: expected floating RGB along the last dimension");
  at::Tensor w = at::tensor({65.481, 128.553, 24.966}, rgb.options().requires_grad(false));
  if (rgb_max != 1.0) w = w / rgb_max;
  return at::matmul(rgb, w) + 16.0;
}

std::vector<double> gaussian_taps(double sigma, int radius) {
  require(sigma > 0 && radius >= 0, SINSR_ERR_INVALID_ARGUMENT, "gaussian_taps: sigma must be positive");
  std::vector<double> g(size_t(2 * radius + 1));
  double sum = 0;
  for (int i = -radius; i <= radius; ++i) sum += g[size_t(i + radius)] = std::exp(-double(i * i) / (2 * sigma * sigma));
  for (double& v : g) v /= sum;
  return g;
}

at::Tensor ssim_map(const at::Tensor& a, const at::Tensor& b,
                    const std::function<at::Tensor(const at::Tensor&)>& filter, bool relu_cs) {
  const double C1 = std::pow(0.01 * 255, 2), C2 = std::pow(0.03 * 255, 2);
  at::Tensor mu1 = filter(a), mu2 = filter(b);
  at::Tensor mu1_sq = mu1 * mu1, mu2_sq = mu2 * mu2, mu12 = mu1 * mu2;
  at::Tensor s1 = filter(a * a) - mu1_sq, s2 = filter(b * b) - mu2_sq, s12 = filter(a * b) - mu12;
  if (relu_cs) return ((2 * mu12 + C1) / (mu1_sq + mu2_sq + C1)) * at::relu((2 * s12 + C2) / (s1 + s2 + C2));
  return ((2 * mu12 + C1) * (2 * s12 + C2)) / ((mu1_sq + mu2_sq + C1) * (s1 + s2 + C2));
}

}  // namespace sdk
}  // namespace sinsr
