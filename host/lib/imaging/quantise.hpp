// Float pixels to integer levels: the one rounding rule the metrics, the training data, the
// degradation and the image writer share.
#pragma once

#include <ATen/ATen.h>

namespace sinsr {
namespace imaging {

// Any shape of floating values in [0,1] -> uint8 of the same shape: float32, NaN -> 0, clamped
// to [0,1], x*255 rounded half to even (numpy's and the official tensor2img / img_as_ubyte's).
at::Tensor to_uint8(const at::Tensor& x01);
// The same rule to any top level (255, 65535), as float32 integers.
at::Tensor quantise(const at::Tensor& x01, double top);
// Integer levels (any integer type) -> float32 in [0, 1], as the image reader (OpenImageIO)
// scales 8- and 16-bit samples: times the float32 1/top.
at::Tensor from_levels(const at::Tensor& levels, double top);

}  // namespace imaging
}  // namespace sinsr
