#include "imaging/metrics.hpp"

#include "imaging/quantise.hpp"

#include <sinsr/sdk.hpp>

#include <cmath>
#include <limits>
#include <vector>

namespace sinsr {
namespace metrics {

namespace {

using sdk::require;

// uint8 [H,W] / [H,W,C] -> [H,W,C].
at::Tensor as_hwc(const at::Tensor& x, const char* who) {
  require(x.defined() && x.scalar_type() == at::kByte, SINSR_ERR_INVALID_ARGUMENT,
          std::string(who) + ": expected uint8 images");
  require(x.dim() == 2 || x.dim() == 3, SINSR_ERR_INVALID_ARGUMENT,
          std::string(who) + ": expected [H,W] or [H,W,C] images");
  return x.dim() == 2 ? x.unsqueeze(2) : x;
}

at::Tensor gray_to_rgb(const at::Tensor& hwc) { return hwc.size(2) == 1 ? hwc.expand({-1, -1, 3}) : hwc; }

// Both images as [H,W,C] with the same C: a gray one is replicated to match a colour one.
std::pair<at::Tensor, at::Tensor> pair_hwc(const at::Tensor& a, const at::Tensor& b, const char* who) {
  at::Tensor x = as_hwc(a, who), y = as_hwc(b, who);
  require(x.size(0) == y.size(0) && x.size(1) == y.size(1), SINSR_ERR_INVALID_ARGUMENT,
          std::string(who) + ": images differ in size (" + std::to_string(x.size(1)) + "x" + std::to_string(x.size(0)) +
              " vs " + std::to_string(y.size(1)) + "x" + std::to_string(y.size(0)) + ")");
  if (x.size(2) != y.size(2)) {
    if (x.size(2) == 1) x = x.expand({-1, -1, y.size(2)});
    if (y.size(2) == 1) y = y.expand({-1, -1, x.size(2)});
  }
  require(x.size(2) == y.size(2), SINSR_ERR_INVALID_ARGUMENT, std::string(who) + ": images differ in channel count");
  return {x, y};
}

at::Tensor crop(const at::Tensor& hwc, int border, const char* who) {
  const int64_t h = hwc.size(0), w = hwc.size(1);
  require(border >= 0 && 2 * int64_t(border) < h && 2 * int64_t(border) < w, SINSR_ERR_INVALID_ARGUMENT,
          std::string(who) + ": border crop " + std::to_string(border) + " leaves nothing of a " + std::to_string(w) +
              "x" + std::to_string(h) + " image");
  return hwc.narrow(0, border, h - 2 * border).narrow(1, border, w - 2 * border);
}

// The official metric input: Y (rounded to uint8) or all channels, border-cropped, float64 [H,W,C].
at::Tensor prepare(const at::Tensor& x, int border, bool y_channel, const char* who) {
  at::Tensor t = y_channel ? rgb_to_y_uint8(x).unsqueeze(2) : x;
  return crop(t, border, who).to(at::kDouble);
}

// pyiqa's Y on the 0..255 scale, not rounded, float32 [H,W,1]; border-cropped first as pyiqa does
// (its rgb2ycbcr takes [0,1] pixels and divides by 255, its PSNR multiplies by 255 again).
at::Tensor pyiqa_y(const at::Tensor& x, int border, const char* who) {
  at::Tensor rgb = crop(gray_to_rgb(x), border, who).to(at::kFloat).div(255.0f);
  return (bt601_y(rgb, 1.0) / 255.0f * 255.0f).unsqueeze(2);
}

// cv2.getGaussianKernel(11, 1.5); the 2-D window is its outer product (pyiqa's fspecial is the
// same normalised Gaussian).
const std::vector<double>& ssim_taps() {
  static const std::vector<double> taps = sdk::gaussian_taps(1.5, 5);
  return taps;
}

// 'valid' filtering of a float64 plane with the separable window, as two passes of shifted
// slices: a 2-D conv2d in float64 goes through im2col, 121 copies of the image.
at::Tensor filter_valid(const at::Tensor& x) {
  const auto& g = ssim_taps();
  const int64_t h = x.size(0) - 10, w = x.size(1) - 10;
  at::Tensor rows = x.narrow(0, 0, h) * g[0];
  for (int k = 1; k < 11; ++k) rows.add_(x.narrow(0, k, h), g[size_t(k)]);
  at::Tensor out = rows.narrow(1, 0, w) * g[0];
  for (int k = 1; k < 11; ++k) out.add_(rows.narrow(1, k, w), g[size_t(k)]);
  return out;
}

// Mean SSIM map of two float64 planes; 'valid' filtering (the official code filters with
// reflect-101 borders and crops 5 pixels, which is the same region). relu_cs: pyiqa's variant.
double ssim_plane(const at::Tensor& a, const at::Tensor& b, bool relu_cs) {
  require(a.size(0) >= 11 && a.size(1) >= 11, SINSR_ERR_INVALID_ARGUMENT,
          "ssim: the compared region is smaller than the 11x11 window");
  return sdk::ssim_map(a, b, filter_valid, relu_cs).mean().item<double>();
}

// Mean over the 'valid' region of the Sobel magnitude of a float64 plane, as shifted slices.
double sobel_magnitude_mean(const at::Tensor& y) {
  const int64_t h = y.size(0) - 2, w = y.size(1) - 2;
  auto at_ = [&](int64_t dr, int64_t dc) { return y.narrow(0, dr, h).narrow(1, dc, w); };
  // gx = [-1 0 1; -2 0 2; -1 0 1], gy its transpose (rows: top -1 -2 -1, bottom 1 2 1).
  at::Tensor gx = (at_(0, 2) - at_(0, 0)) + 2 * (at_(1, 2) - at_(1, 0)) + (at_(2, 2) - at_(2, 0));
  at::Tensor gy = (at_(2, 0) - at_(0, 0)) + 2 * (at_(2, 1) - at_(0, 1)) + (at_(2, 2) - at_(0, 2));
  return (gx * gx + gy * gy).sqrt().mean().item<double>();
}

// rgb2ycbcrTorch (float32, on 0..255 values, then /255 and clamped) then img_as_ubyte.
at::Tensor float_to_uint8(const at::Tensor& nchw01, bool y_channel) {
  require(nchw01.dim() == 4 && (nchw01.size(1) == 3 || nchw01.size(1) == 1), SINSR_ERR_INVALID_ARGUMENT,
          "batch metrics: expected [N,3,H,W] or [N,1,H,W] images");
  at::Tensor x = nchw01.to(at::kCPU, at::kFloat);
  if (y_channel) {
    if (x.size(1) == 1) x = x.expand({-1, 3, -1, -1});
    x = (bt601_y(x.permute({0, 2, 3, 1}) * 255.0f, 255.0) / 255.0f).unsqueeze(1);
  }
  return imaging::to_uint8(x);
}

}  // namespace

Mode parse_mode(const std::string& name) {
  if (name == "y") return Mode::y;
  if (name == "rgb") return Mode::rgb;
  if (name == "pyiqa") return Mode::pyiqa;
  throw sdk::Error(SINSR_ERR_INVALID_ARGUMENT, "metric mode '" + name + "': expected y, rgb or pyiqa");
}

const char* mode_name(Mode m) { return m == Mode::y ? "y" : m == Mode::rgb ? "rgb" : "pyiqa"; }

at::Tensor rgb_to_y_uint8(const at::Tensor& x) {
  at::Tensor rgb = gray_to_rgb(as_hwc(x, "rgb_to_y_uint8"));
  require(rgb.size(2) == 3, SINSR_ERR_INVALID_ARGUMENT, "rgb_to_y_uint8: expected 1 or 3 channels");
  return bt601_y(rgb.to(at::kDouble), 255.0).round().to(at::kByte);
}

double psnr(const at::Tensor& a, const at::Tensor& b, int border, bool y_channel) {
  auto [p, q] = pair_hwc(a, b, "psnr");
  at::Tensor x = prepare(p, border, y_channel, "psnr"), y = prepare(q, border, y_channel, "psnr");
  double mse = (x - y).pow(2).mean().item<double>();
  if (mse == 0) return std::numeric_limits<double>::infinity();
  return 20 * std::log10(255.0 / std::sqrt(mse));
}

double ssim(const at::Tensor& a, const at::Tensor& b, int border, bool y_channel) {
  auto [p, q] = pair_hwc(a, b, "ssim");
  at::Tensor x = prepare(p, border, y_channel, "ssim"), y = prepare(q, border, y_channel, "ssim");
  double sum = 0;
  for (int64_t c = 0; c < x.size(2); ++c) sum += ssim_plane(x.select(2, c), y.select(2, c), false);
  return sum / double(x.size(2));
}

double psnr_pyiqa(const at::Tensor& a, const at::Tensor& b, int border) {
  auto [p, q] = pair_hwc(a, b, "psnr");
  at::Tensor x = pyiqa_y(p, border, "psnr"), y = pyiqa_y(q, border, "psnr");
  at::Tensor mse = (x - y).pow(2).mean();
  return (10.0f * at::log10(255.0f * 255.0f / (mse + 1e-8f))).item<double>();
}

double ssim_pyiqa(const at::Tensor& a, const at::Tensor& b, int border) {
  auto [p, q] = pair_hwc(a, b, "ssim");
  at::Tensor x = pyiqa_y(p, border, "ssim").to(at::kDouble), y = pyiqa_y(q, border, "ssim").to(at::kDouble);
  return ssim_plane(x.select(2, 0), y.select(2, 0), true);
}

double mean_gradient(const at::Tensor& img, int border) {
  at::Tensor y = crop(rgb_to_y_uint8(img).unsqueeze(2), border, "detail").select(2, 0).to(at::kDouble);
  require(y.size(0) >= 3 && y.size(1) >= 3, SINSR_ERR_INVALID_ARGUMENT,
          "detail: the compared region is smaller than the 3x3 Sobel window");
  return sobel_magnitude_mean(y);
}

double detail(const at::Tensor& sr, const at::Tensor& hr, int border) {
  auto [p, q] = pair_hwc(sr, hr, "detail");
  const double g_hr = mean_gradient(q, border);
  const double g_sr = mean_gradient(p, border);
  if (g_hr == 0) return std::numeric_limits<double>::quiet_NaN();
  return g_sr / g_hr;
}

Scores evaluate(const at::Tensor& a, const at::Tensor& b, int border, Mode mode) {
  Scores s;
  if (mode == Mode::pyiqa) {
    s.psnr = psnr_pyiqa(a, b, border);
    s.ssim = ssim_pyiqa(a, b, border);
  } else {
    s.psnr = psnr(a, b, border, mode == Mode::y);
    s.ssim = ssim(a, b, border, mode == Mode::y);
  }
  return s;
}

double batch_psnr(const at::Tensor& img, const at::Tensor& ref, bool y_channel) {
  at::Tensor a = float_to_uint8(img, y_channel), b = float_to_uint8(ref, y_channel);
  require(a.sizes() == b.sizes(), SINSR_ERR_INVALID_ARGUMENT, "batch_psnr: batches differ in shape");
  double sum = 0;
  for (int64_t i = 0; i < a.size(0); ++i) sum += psnr(b[i].permute({1, 2, 0}), a[i].permute({1, 2, 0}), 0, false);
  return sum;
}

double batch_ssim(const at::Tensor& img, const at::Tensor& ref, bool y_channel) {
  at::Tensor a = float_to_uint8(img, y_channel), b = float_to_uint8(ref, y_channel);
  require(a.sizes() == b.sizes(), SINSR_ERR_INVALID_ARGUMENT, "batch_ssim: batches differ in shape");
  double sum = 0;
  for (int64_t i = 0; i < a.size(0); ++i) sum += ssim(b[i].permute({1, 2, 0}), a[i].permute({1, 2, 0}), 0, false);
  return sum;
}

}  // namespace metrics
}  // namespace sinsr
