// MATLAB-style bicubic resize (basicsr `imresize`): cubic kernel a = -0.5, antialiased when
// downscaling, symmetric padding, H pass then W pass. The one routine used to make LR images
// for training, evaluation and `sinsr-host degrade`.
#pragma once

#include <ATen/ATen.h>

namespace sinsr {
namespace imaging {

// [C,H,W] or [N,C,H,W] float in [0,1] -> ceil(H*scale) x ceil(W*scale); no rounding or clamping.
at::Tensor imresize(const at::Tensor& image, double scale, bool antialias = true);

}  // namespace imaging
}  // namespace sinsr
