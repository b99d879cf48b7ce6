// The RealESRGAN second-order degradation used to make SinSR / ResShift training pairs (the
// official RealESRGANDataset and its degradation step): random blur kernels, resizes,
// Gaussian/Poisson noise and JPEG, applied to one image. Every draw comes from one seed, so
// (image, scale, seed, options) fixes the result. The options and their parsing:
// degradation_options.hpp.
#pragma once

#include "imaging/degradation_options.hpp"

#include <ATen/ATen.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace sinsr {
namespace degrade {

// Random source for the scalar draws and the noise tensors. One seed -> one stream.
class Rng {
 public:
  explicit Rng(uint64_t seed);
  double uniform(double lo, double hi);  // [lo, hi)
  double uniform() { return uniform(0.0, 1.0); }
  int randint(int lo, int hi);  // inclusive
  size_t choice(const double* weights, size_t n);
  at::Generator& gen() { return gen_; }

 private:
  std::mt19937_64 eng_;
  at::Generator gen_;
};

// ---- Kernels: float32 [k, k], odd k, summing to 1. Grid offsets -(k/2)..k/2; x along columns. ----
// Bivariate Gaussian exp(-d/2), d = [x y] S^-1 [x y]^T, S = R(theta) diag(sx^2, sy^2) R(theta)^T.
at::Tensor gaussian_kernel(int k, double sigma_x, double sigma_y, double theta);
// Generalised Gaussian exp(-0.5 d^beta).
at::Tensor generalized_gaussian_kernel(int k, double sigma_x, double sigma_y, double theta, double beta);
// Plateau 1 / (d^beta + 1).
at::Tensor plateau_kernel(int k, double sigma_x, double sigma_y, double theta, double beta);
// Circular low-pass (2-D sinc) with cutoff omega_c, zero-padded to pad_to when pad_to > k.
at::Tensor sinc_kernel(int k, double omega_c, int pad_to = 0);
// Zero-pads a k x k kernel to size x size (size >= k, same parity).
at::Tensor pad_kernel(const at::Tensor& kernel, int size);
// One kernel of a type drawn from list/prob ("iso", "aniso", "generalized_iso", "generalized_aniso",
// "plateau_iso", "plateau_aniso"); sigmas ~ U(sigma), theta ~ U(-pi, pi) for aniso types; beta with
// prob 0.5 ~ U(beta_min, 1), else ~ U(1, beta_max).
at::Tensor random_mixed_kernel(Rng& rng, const std::vector<std::string>& list, const std::vector<double>& prob, int k,
                               Range sigma, Range betag, Range betap);

struct Kernels {
  at::Tensor kernel1;      // [blur_kernel_size]^2
  at::Tensor kernel2;      // [blur_kernel_size2]^2
  at::Tensor sinc_kernel;  // [blur_kernel_size2]^2, a centred pulse when no final sinc is drawn
};
// The dataset stage's three kernels (spec 1.4-1.6).
Kernels random_kernels(Rng& rng, const Options& o);

// ---- Steps on [C,H,W] float images (C = 1 or 3). ----
// Correlation with a k x k kernel, reflect padding k/2 (replicate where the image is too small
// to reflect).
at::Tensor filter2d(const at::Tensor& chw, const at::Tensor& kernel);
// mode: "area", "bilinear", "bicubic" (torch.nn.functional.interpolate, align_corners False).
// scale > 0 gives interpolate(scale_factor=scale); otherwise size (h, w) is used.
at::Tensor resize(const at::Tensor& chw, const std::string& mode, double scale, int64_t h = 0, int64_t w = 0);
// Adds N(0, (sigma/255)^2) noise; gray: one noise plane for all channels. Not clipped.
at::Tensor add_gaussian_noise(const at::Tensor& chw, double sigma, bool gray, at::Generator& gen);
// Poisson noise on the image quantised to 8 bits, at 2^ceil(log2(#levels)) levels, times scale;
// gray: computed on the luma and shared by all channels. Not clipped.
at::Tensor add_poisson_noise(const at::Tensor& chw, double scale, bool gray, at::Generator& gen);
// A real JPEG round trip (8-bit, 4:2:0) at quality 1..100; input clamped to [0,1].
at::Tensor jpeg(const at::Tensor& chw, int quality);

// The LR image of hr_chw01 ([C,H,W], C 1 or 3, values in [0,1]): the full second-order pipeline,
// H/scale x W/scale (or the input size with resize_back), quantised to 8-bit levels, on the CPU.
at::Tensor degrade(const at::Tensor& hr_chw01, int scale, uint64_t seed, const Options& options = Options());

}  // namespace degrade
}  // namespace sinsr
