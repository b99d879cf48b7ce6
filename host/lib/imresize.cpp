#include "imresize.hpp"

#include <sinsr/sdk.hpp>

#include <cmath>

namespace sinsr {
namespace imaging {

namespace {

at::Tensor cubic(const at::Tensor& x) {
  at::Tensor a = x.abs(), a2 = a * a, a3 = a2 * a;
  return (1.5 * a3 - 2.5 * a2 + 1) * a.le(1).to(x.scalar_type()) +
         (-0.5 * a3 + 2.5 * a2 - 4 * a + 2) * (a.gt(1) & a.le(2)).to(x.scalar_type());
}

struct Taps {
  at::Tensor weights;  // [out, K]
  at::Tensor index;    // [out, K] into the symmetrically padded axis
  int64_t pad_start, pad_end;
};

// The weights and source indices of one axis, in float32 as the reference computes them.
Taps taps(int64_t in_len, int64_t out_len, double scale, bool antialias) {
  double width = 4.0;
  if (scale < 1 && antialias) width /= scale;
  at::Tensor x = at::linspace(1, double(out_len), out_len, at::kFloat);
  at::Tensor u = x / scale + 0.5 * (1 - 1 / scale);
  at::Tensor left = at::floor(u - width / 2);
  const int64_t p = int64_t(std::ceil(width)) + 2;
  at::Tensor idx = left.view({out_len, 1}) + at::linspace(0, double(p - 1), p, at::kFloat).view({1, p});
  at::Tensor dist = u.view({out_len, 1}) - idx;
  at::Tensor w = (scale < 1 && antialias) ? scale * cubic(dist * scale) : cubic(dist);
  w = w / w.sum(1, true);
  at::Tensor zeros = w.eq(0).sum(0);
  if (zeros[0].item<int64_t>() != 0) {
    idx = idx.narrow(1, 1, idx.size(1) - 1);
    w = w.narrow(1, 1, w.size(1) - 1);
  }
  if (zeros[p - 1].item<int64_t>() != 0) {
    idx = idx.narrow(1, 0, idx.size(1) - 1);
    w = w.narrow(1, 0, w.size(1) - 1);
  }
  Taps t;
  t.pad_start = int64_t(-idx.min().item<float>()) + 1;
  t.pad_end = std::max<int64_t>(int64_t(idx.max().item<float>()) - in_len, 0);
  t.index = (idx + double(t.pad_start - 1)).to(at::kLong);
  t.weights = w.contiguous();
  return t;
}

// Resizes dimension `dim` of x (float) with mirrored (edge included) padding.
at::Tensor resize_axis(const at::Tensor& x, int64_t dim, int64_t out_len, double scale, bool antialias) {
  const int64_t in_len = x.size(dim);
  Taps t = taps(in_len, out_len, scale, antialias);
  std::vector<at::Tensor> parts;
  if (t.pad_start > 0) parts.push_back(x.narrow(dim, 0, std::min(t.pad_start, in_len)).flip({dim}));
  parts.push_back(x);
  if (t.pad_end > 0) parts.push_back(x.narrow(dim, in_len - std::min(t.pad_end, in_len), std::min(t.pad_end, in_len)).flip({dim}));
  at::Tensor aug = at::cat(parts, dim);
  const int64_t K = t.weights.size(1);
  at::Tensor g = aug.index_select(dim, t.index.reshape({-1}).clamp(0, aug.size(dim) - 1));
  std::vector<int64_t> shape = g.sizes().vec();
  shape[dim] = out_len;
  shape.insert(shape.begin() + dim + 1, K);
  g = g.view(shape);
  std::vector<int64_t> wshape(shape.size(), 1);
  wshape[dim] = out_len;
  wshape[dim + 1] = K;
  return (g * t.weights.to(g.scalar_type()).view(wshape)).sum(dim + 1);
}

}  // namespace

at::Tensor imresize(const at::Tensor& image, double scale, bool antialias) {
  sdk::require(scale > 0, SINSR_ERR_INVALID_ARGUMENT, "imresize: scale must be > 0");
  sdk::require(image.dim() == 3 || image.dim() == 4, SINSR_ERR_INVALID_ARGUMENT, "imresize: expected [C,H,W] or [N,C,H,W]");
  at::Tensor x = image.is_floating_point() ? image : image.to(at::kFloat);
  const int64_t hd = x.dim() - 2, wd = x.dim() - 1;
  const int64_t out_h = int64_t(std::ceil(x.size(hd) * scale)), out_w = int64_t(std::ceil(x.size(wd) * scale));
  at::Tensor h = resize_axis(x, hd, out_h, scale, antialias);
  return resize_axis(h, wd, out_w, scale, antialias);
}

}  // namespace imaging
}  // namespace sinsr
