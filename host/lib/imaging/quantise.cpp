#include "imaging/quantise.hpp"

namespace sinsr {
namespace imaging {

at::Tensor quantise(const at::Tensor& x01, double top) {
  return at::nan_to_num(x01.to(at::kFloat), 0.0).clamp(0.0, 1.0).mul(float(top)).round();
}

at::Tensor to_uint8(const at::Tensor& x01) { return quantise(x01, 255.0).to(at::kByte); }

at::Tensor from_levels(const at::Tensor& levels, double top) {
  return levels.to(at::kFloat).mul_(1.0f / static_cast<float>(top));
}

}  // namespace imaging
}  // namespace sinsr
