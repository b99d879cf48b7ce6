#include "imaging/imresize.hpp"

#include <sinsr/sdk.hpp>

#include <cmath>
#include <string>

namespace sinsr {
namespace imaging {

namespace {

at::Tensor cubic(const at::Tensor& x) {
  at::Tensor a = x.abs(), a2 = a * a, a3 = a2 * a;
  return (1.5 * a3 - 2.5 * a2 + 1) * a.le(1).to(x.scalar_type()) +
         (-0.5 * a3 + 2.5 * a2 - 4 * a + 2) * (a.gt(1) & a.le(2)).to(x.scalar_type());
}

struct Taps {
  at::Tensor weights;  // [out, K] float32
  at::Tensor index;    // [out, K] 0-based sample indices, boundary already folded in
};

// The weights and source samples of one axis, in float32 as the reference computes them.
Taps taps(int64_t in_len, int64_t out_len, double scale, bool antialias) {
  const bool stretch = scale < 1 && antialias;
  const double width = stretch ? 4.0 / scale : 4.0;
  at::Tensor x = at::linspace(1, double(out_len), out_len, at::kFloat);
  at::Tensor u = x / scale + 0.5 * (1 - 1 / scale);
  at::Tensor left = at::floor(u - width / 2);
  const int64_t p = int64_t(std::ceil(width)) + 2;
  at::Tensor idx = left.view({out_len, 1}) + at::linspace(0, double(p - 1), p, at::kFloat).view({1, p});
  at::Tensor dist = u.view({out_len, 1}) - idx;
  at::Tensor w = stretch ? scale * cubic(dist * scale) : cubic(dist);
  w = w / w.sum(1, true);
  // An all-zero first or last tap column is dropped, as the reference does.
  at::Tensor zero_cols = w.eq(0).sum(0);
  int64_t first = 0, count = p;
  if (zero_cols[0].item<int64_t>() != 0) first = 1, --count;
  if (zero_cols[p - 1].item<int64_t>() != 0) --count;
  idx = idx.narrow(1, first, count);
  w = w.narrow(1, first, count);
  // MATLAB's symmetric boundary on 1-based indices: period 2L, mirror with the edge repeated
  // (0 -> 1, -1 -> 2, L+1 -> L). Equals basicsr's flipped padding wherever that one fits.
  at::Tensor i0 = idx.to(at::kLong) - 1;
  at::Tensor m = at::remainder(i0, 2 * in_len);
  Taps t;
  t.index = at::where(m.ge(in_len), 2 * in_len - 1 - m, m).contiguous();
  t.weights = w.contiguous();
  return t;
}

// Resizes dimension `dim` of x: out = sum_k w[:,k] * x[idx[:,k]], tap by tap so that memory
// stays at the size of the output.
at::Tensor resize_axis(const at::Tensor& x, int64_t dim, int64_t out_len, double scale, bool antialias) {
  Taps t = taps(x.size(dim), out_len, scale, antialias);
  at::Tensor index = t.index.to(x.device());
  at::Tensor weights = t.weights.to(x.device(), x.scalar_type());
  std::vector<int64_t> wshape(size_t(x.dim()), 1);
  wshape[size_t(dim)] = out_len;
  at::Tensor out;
  for (int64_t k = 0; k < index.size(1); ++k) {
    at::Tensor term = x.index_select(dim, index.select(1, k)) * weights.select(1, k).view(wshape);
    out = k == 0 ? term : out.add_(term);
  }
  return out;
}

int64_t out_size(int64_t in, double scale) {
  // ceil of the float product, as the reference; guards the exact cases against 1e-16 noise.
  double v = double(in) * scale;
  double r = std::round(v);
  return std::abs(v - r) < 1e-9 ? int64_t(r) : int64_t(std::ceil(v));
}

}  // namespace

at::Tensor imresize(const at::Tensor& image, double scale, bool antialias) {
  sdk::require(std::isfinite(scale) && scale > 0, SINSR_ERR_INVALID_ARGUMENT,
               "imresize: scale must be a positive number, got " + std::to_string(scale));
  sdk::require(image.defined() && (image.dim() == 3 || image.dim() == 4), SINSR_ERR_INVALID_ARGUMENT,
               "imresize: expected a [C,H,W] or [N,C,H,W] image");
  sdk::require(image.is_floating_point(), SINSR_ERR_INVALID_ARGUMENT,
               "imresize: expected floating-point pixels (use imresize_uint8 for uint8 images)");
  const int64_t hd = image.dim() - 2, wd = image.dim() - 1;
  sdk::require(image.size(hd) > 0 && image.size(wd) > 0, SINSR_ERR_INVALID_ARGUMENT, "imresize: empty image");
  at::Tensor h = resize_axis(image, hd, out_size(image.size(hd), scale), scale, antialias);
  return resize_axis(h, wd, out_size(image.size(wd), scale), scale, antialias);
}

at::Tensor imresize_line_by_line(const at::Tensor& chw, double scale, bool antialias) {
  sdk::require(chw.defined() && chw.dim() == 3 && chw.scalar_type() == at::kFloat && chw.size(1) > 0 && chw.size(2) > 0,
               SINSR_ERR_INVALID_ARGUMENT, "imresize_line_by_line: expected a float32 [C,H,W] image");
  const int64_t c = chw.size(0), h = chw.size(1), w = chw.size(2);
  const int64_t oh = out_size(h, scale), ow = out_size(w, scale);
  const Taps th = taps(h, oh, scale, antialias), tw = taps(w, ow, scale, antialias);
  at::Tensor x = chw.contiguous(), mid = at::empty({c, oh, w}, at::kFloat), out = at::empty({c, oh, ow}, at::kFloat);
  for (int64_t ch = 0; ch < c; ++ch) {
    // Rows: the taps' rows as a [K, W] block, transposed, times the weights (basicsr's H pass).
    for (int64_t i = 0; i < oh; ++i) mid[ch][i].copy_(x[ch].index_select(0, th.index[i]).t().mv(th.weights[i]));
    for (int64_t i = 0; i < ow; ++i) out[ch].select(1, i).copy_(mid[ch].index_select(1, tw.index[i]).mv(tw.weights[i]));
  }
  return out;
}

at::Tensor imresize_uint8(const at::Tensor& image, double scale, bool antialias) {
  sdk::require(image.defined() && image.scalar_type() == at::kByte, SINSR_ERR_INVALID_ARGUMENT,
               "imresize_uint8: expected a uint8 image");
  return imresize(image.to(at::kFloat), scale, antialias).clamp(0, 255).round().to(at::kByte);
}

}  // namespace imaging
}  // namespace sinsr
