// NIQE, the no-reference "naturalness" score (Mittal, Soundararajan, Bovik 2013), computed as
// BasicSR's calculate_niqe(img, crop_border=0, input_order='HWC', convert_to='y') does: the MATLAB
// Y channel rounded to integers, MSCN coefficients with the 7x7 window (borders replicated), 18
// AGGD features per 96x96 block at full and half size (MATLAB-style bicubic x1/2), the distance of
// their Gaussian fit to the pristine model shipped beside this file (niqe_pris_params.json).
// Lower is more natural. It is blind to fidelity: a sharp hallucination can score well, so read
// it beside PSNR/SSIM wherever a ground truth exists, never instead of them.
#pragma once

#include <ATen/ATen.h>

namespace sinsr {
namespace metrics {

constexpr int kNiqeBlock = 96;  // NIQE's block side

// uint8 [H,W,3] RGB or [H,W] / [H,W,1] gray (replicated to RGB, as OpenCV reads a gray PNG).
// NaN when the image holds no whole 96x96 block, or no block gives finite features (a flat
// image): there is nothing to fit. With one block it follows the reference's quirk: np.cov then
// returns the variance of that block's 36 features, added to every entry of the pristine
// covariance.
double niqe(const at::Tensor& img);

}  // namespace metrics
}  // namespace sinsr
