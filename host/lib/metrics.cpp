#include "metrics.hpp"

#include <sinsr/sdk.hpp>

#include <cmath>
#include <limits>

namespace sinsr {
namespace metrics {

namespace {

at::Tensor as_rgb(const at::Tensor& x) {
  at::Tensor hwc = x.dim() == 2 ? x.unsqueeze(2) : x;
  if (hwc.size(2) == 1) hwc = hwc.expand({-1, -1, 3});
  return hwc;
}

// The metric input: Y (rounded) or all channels, border-cropped, float64 [H,W,C].
at::Tensor prepare(const at::Tensor& x, int border, bool y_channel) {
  sdk::require(x.scalar_type() == at::kByte, SINSR_ERR_INVALID_ARGUMENT, "metrics expect uint8 images");
  at::Tensor t = y_channel ? rgb_to_y_uint8(x).unsqueeze(2) : (x.dim() == 2 ? x.unsqueeze(2) : x);
  const int64_t h = t.size(0), w = t.size(1);
  sdk::require(2 * border < h && 2 * border < w, SINSR_ERR_INVALID_ARGUMENT, "border crop larger than the image");
  return t.narrow(0, border, h - 2 * border).narrow(1, border, w - 2 * border).to(at::kDouble);
}

at::Tensor gaussian_window() {
  // cv2.getGaussianKernel(11, 1.5) outer product.
  at::Tensor i = at::arange(11, at::kDouble) - 5;
  at::Tensor g = at::exp(-(i * i) / (2 * 1.5 * 1.5));
  g = g / g.sum();
  return g.view({11, 1}) * g.view({1, 11});
}

double ssim_plane(const at::Tensor& a, const at::Tensor& b) {
  const double C1 = std::pow(0.01 * 255, 2), C2 = std::pow(0.03 * 255, 2);
  static const at::Tensor win = gaussian_window().view({1, 1, 11, 11});
  auto filt = [&](const at::Tensor& x) { return at::conv2d(x.view({1, 1, x.size(0), x.size(1)}), win).squeeze(); };
  at::Tensor mu1 = filt(a), mu2 = filt(b);
  at::Tensor mu1_sq = mu1 * mu1, mu2_sq = mu2 * mu2, mu12 = mu1 * mu2;
  at::Tensor s1 = filt(a * a) - mu1_sq, s2 = filt(b * b) - mu2_sq, s12 = filt(a * b) - mu12;
  at::Tensor map = ((2 * mu12 + C1) * (2 * s12 + C2)) / ((mu1_sq + mu2_sq + C1) * (s1 + s2 + C2));
  return map.mean().item<double>();
}

at::Tensor float_to_uint8_y(const at::Tensor& nchw01, bool y_channel) {
  // rgb2ycbcrTorch in float32, clamp, then img_as_ubyte (round half to even).
  at::Tensor x = nchw01.to(at::kFloat);
  if (y_channel) {
    at::Tensor w = at::tensor({65.481f, 128.553f, 24.966f}).view({1, 3, 1, 1});
    x = ((x * 255.0f * w).sum(1, true) / 255.0f + 16.0f) / 255.0f;
    x = x.clamp(0.0, 1.0);
  }
  return x.mul(255.0f).round().to(at::kByte);
}

}  // namespace

at::Tensor rgb_to_y_uint8(const at::Tensor& x) {
  at::Tensor rgb = as_rgb(x).to(at::kDouble);
  at::Tensor w = at::tensor({65.481, 128.553, 24.966}, at::kDouble) / 255.0;
  return (at::matmul(rgb, w) + 16.0).round().to(at::kByte);
}

double psnr(const at::Tensor& a, const at::Tensor& b, int border, bool y_channel) {
  sdk::require(a.sizes() == b.sizes(), SINSR_ERR_INVALID_ARGUMENT, "psnr: images differ in size");
  at::Tensor x = prepare(a, border, y_channel), y = prepare(b, border, y_channel);
  double mse = (x - y).pow(2).mean().item<double>();
  if (mse == 0) return std::numeric_limits<double>::infinity();
  return 20 * std::log10(255.0 / std::sqrt(mse));
}

double ssim(const at::Tensor& a, const at::Tensor& b, int border, bool y_channel) {
  sdk::require(a.sizes() == b.sizes(), SINSR_ERR_INVALID_ARGUMENT, "ssim: images differ in size");
  at::Tensor x = prepare(a, border, y_channel), y = prepare(b, border, y_channel);
  double sum = 0;
  for (int64_t c = 0; c < x.size(2); ++c) sum += ssim_plane(x.select(2, c), y.select(2, c));
  return sum / double(x.size(2));
}

double batch_psnr(const at::Tensor& img, const at::Tensor& ref, bool y_channel) {
  at::Tensor a = float_to_uint8_y(img, y_channel), b = float_to_uint8_y(ref, y_channel);
  double sum = 0;
  for (int64_t i = 0; i < a.size(0); ++i) sum += psnr(b[i].permute({1, 2, 0}), a[i].permute({1, 2, 0}), 0, false);
  return sum;
}

double batch_ssim(const at::Tensor& img, const at::Tensor& ref, bool y_channel) {
  at::Tensor a = float_to_uint8_y(img, y_channel), b = float_to_uint8_y(ref, y_channel);
  double sum = 0;
  for (int64_t i = 0; i < a.size(0); ++i) sum += ssim(b[i].permute({1, 2, 0}), a[i].permute({1, 2, 0}), 0, false);
  return sum;
}

}  // namespace metrics
}  // namespace sinsr
