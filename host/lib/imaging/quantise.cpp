#include "imaging/quantise.hpp"

namespace sinsr {
namespace imaging {

at::Tensor to_uint8(const at::Tensor& x01) {
  return at::nan_to_num(x01.to(at::kFloat), 0.0).clamp(0.0, 1.0).mul(255.0f).round().to(at::kByte);
}

}  // namespace imaging
}  // namespace sinsr
