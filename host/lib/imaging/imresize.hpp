// MATLAB-style bicubic resize (MATLAB imresize 'bicubic', as basicsr's `imresize` ports it):
// cubic kernel a = -0.5, antialiased (stretched kernel) when downscaling, symmetric boundary,
// H pass then W pass, weights computed in float32 as the reference does. The one routine used
// to make LR images for training, evaluation and `sinsr-host degrade`.
#pragma once

#include <ATen/ATen.h>

namespace sinsr {
namespace imaging {

// Floating [C,H,W] or [N,C,H,W] (any range) -> ceil(H*scale) x ceil(W*scale), same dtype and
// device; values are not rounded or clamped. Any size works, 1x1 included (the symmetric
// boundary repeats as MATLAB's does where basicsr's padding would run out).
at::Tensor imresize(const at::Tensor& image, double scale, bool antialias = true);

// The same resize (same taps) with every output line computed as basicsr's loop computes it: one
// LibTorch matrix-vector product per output row, then per output column, float32 [C,H,W] only.
// Its float32 roundings are the reference's wherever LibTorch and its BLAS are the same; the
// tap-by-tap sum above differs by an ulp here and there. NIQE's second scale needs the former: its
// shape fit snaps to a grid, so an ulp can move a feature a whole grid step.
at::Tensor imresize_line_by_line(const at::Tensor& chw, double scale, bool antialias = true);

// uint8 convenience (MATLAB's imresize on a uint8 image): uint8 [C,H,W] or [N,C,H,W] in, resized
// in float32, clamped to [0,255] and rounded half to even, uint8 out.
at::Tensor imresize_uint8(const at::Tensor& image, double scale, bool antialias = true);

}  // namespace imaging
}  // namespace sinsr
