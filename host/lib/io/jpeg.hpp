// A JPEG round trip in memory through a real codec (libjpeg, in every build): what the
// degradation's compression step applies.
#pragma once

#include <ATen/ATen.h>

namespace sinsr {
namespace io {

// chw01: [C,H,W], C = 1 or 3, values clamped to [0,1] and quantised to 8 bits; encoded at
// `quality` (1..100) with 4:2:0 chroma, decoded again. Returns [C,H,W] of chw01's dtype in [0,1].
at::Tensor jpeg_round_trip(const at::Tensor& chw01, int quality);

}  // namespace io
}  // namespace sinsr
