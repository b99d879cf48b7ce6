#include "imaging/niqe.hpp"

#include "imaging/imresize.hpp"

#include <sinsr/sdk.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <vector>

namespace sinsr {
namespace metrics {

extern const char kNiqePristineJson[];  // niqe_pris_params.json, compiled in (host/CMakeLists.txt)

namespace {

using sdk::require;
constexpr int kFeatures = 18;  // per block per scale
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

struct Pristine {
  std::array<double, 2 * kFeatures> mu{};
  at::Tensor cov;  // [36,36] float64
  std::array<double, 49> window{};
};

const Pristine& pristine() {
  static const Pristine p = [] {
    auto j = nlohmann::json::parse(kNiqePristineJson);
    Pristine out;
    auto mu = j.at("mu_pris_param").get<std::vector<double>>();
    auto cov = j.at("cov_pris_param").get<std::vector<std::vector<double>>>();
    auto win = j.at("gaussian_window").get<std::vector<std::vector<double>>>();
    require(mu.size() == out.mu.size() && cov.size() == out.mu.size() && win.size() == 7, SINSR_ERR_FORMAT,
            "niqe: the pristine model has the wrong shape");
    std::copy(mu.begin(), mu.end(), out.mu.begin());
    out.cov = at::empty({36, 36}, at::kDouble);
    auto c = out.cov.accessor<double, 2>();
    for (int i = 0; i < 36; ++i)
      for (int k = 0; k < 36; ++k) c[i][k] = cov[size_t(i)].at(size_t(k));
    for (int i = 0; i < 7; ++i)
      for (int k = 0; k < 7; ++k) out.window[size_t(i * 7 + k)] = win[size_t(i)].at(size_t(k));
    return out;
  }();
  return p;
}

// The AGGD shape grid 0.2:0.001:10 as numpy's arange fills it (start + i * (second - first)) and
// the ratio Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a)) the fit looks up.
struct ShapeGrid {
  std::vector<double> gam, ratio;
  ShapeGrid() {
    const double step = (0.2 + 0.001) - 0.2;
    const size_t n = size_t(std::ceil((10.001 - 0.2) / 0.001));
    gam.resize(n);
    ratio.resize(n);
    for (size_t i = 0; i < n; ++i) {
      gam[i] = 0.2 + double(i) * step;
      const double r = 1.0 / gam[i];
      const double g2 = std::tgamma(r * 2);
      ratio[i] = g2 * g2 / (std::tgamma(r) * std::tgamma(r * 3));
    }
  }
};
const ShapeGrid& shape_grid() {
  static const ShapeGrid g;
  return g;
}

// np.add.reduce over a contiguous float32 vector: float32 pairwise sums (eight accumulators,
// halves above 128 values) of chunks of 8192 values (numpy's buffer), added up from 0 in float32.
// Mirrored exactly because the AGGD fit picks its shape from a grid: one different rounding of
// a mean can move a feature by a grid step.
float pairwise_sum(const float* a, size_t n) {
  if (n < 8) {
    float r = 0;
    for (size_t i = 0; i < n; ++i) r += a[i];
    return r;
  }
  if (n <= 128) {
    float r[8];
    std::copy_n(a, 8, r);
    size_t i = 8;
    for (; i < n - n % 8; i += 8)
      for (int j = 0; j < 8; ++j) r[j] += a[i + size_t(j)];
    float res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += a[i];
    return res;
  }
  size_t n2 = n / 2;
  n2 -= n2 % 8;
  return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
}

// np.mean of float32 values: the float32 sum divided in float64, rounded to float32; NaN when
// empty.
float np_mean(const std::vector<float>& v) {
  if (v.empty()) return std::nanf("");
  float sum = 0;
  for (size_t k = 0; k < v.size(); k += 8192) sum += pairwise_sum(v.data() + k, std::min<size_t>(8192, v.size() - k));
  return float(double(sum) / double(v.size()));
}

struct Aggd {
  double alpha, beta_l, beta_r;
};

// Asymmetric generalised Gaussian fit by moment matching over the shape grid (Eq. 7 of the
// paper), each value in the precision numpy gives it (float32 moments, float64 from the powers on).
Aggd aggd(const std::vector<float>& v) {
  std::vector<float> neg_sq, pos_sq, sq(v.size()), abs_v(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    const float x = v[i], x2 = x * x;
    sq[i] = x2;
    abs_v[i] = std::fabs(x);
    if (x < 0) neg_sq.push_back(x2);
    if (x > 0) pos_sq.push_back(x2);
  }
  const float left = std::sqrt(np_mean(neg_sq)), right = std::sqrt(np_mean(pos_sq));
  const double gammahat = double(left / right);
  const double mean_abs = double(np_mean(abs_v));
  const double rhat = std::pow(mean_abs, 2.0) / double(np_mean(sq));
  const double rhatnorm =
      (rhat * (std::pow(gammahat, 3.0) + 1) * (gammahat + 1)) / std::pow(std::pow(gammahat, 2.0) + 1, 2.0);
  const ShapeGrid& grid = shape_grid();
  size_t best = 0;  // np.argmin over all-NaN differences answers 0
  if (!std::isnan(rhatnorm)) {
    double best_d = std::numeric_limits<double>::infinity();
    for (size_t i = 0; i < grid.ratio.size(); ++i) {
      const double d = (grid.ratio[i] - rhatnorm) * (grid.ratio[i] - rhatnorm);
      if (d < best_d) best_d = d, best = i;
    }
  }
  const double alpha = grid.gam[best];
  const double k = std::sqrt(std::tgamma(1 / alpha) / std::tgamma(3 / alpha));
  return {alpha, double(left) * k, double(right) * k};
}

// The 18 features of one block: the AGGD of the coefficients, then of their products with each
// of four neighbours (np.roll, so the block wraps around).
void block_features(const std::vector<float>& block, int h, int w, double* out) {
  Aggd a = aggd(block);
  out[0] = a.alpha;
  out[1] = (a.beta_l + a.beta_r) / 2;
  const int shifts[4][2] = {{0, 1}, {1, 0}, {1, 1}, {1, -1}};
  std::vector<float> prod(block.size());
  for (int s = 0; s < 4; ++s) {
    for (int i = 0; i < h; ++i) {
      const int si = ((i - shifts[s][0]) % h + h) % h;
      for (int j = 0; j < w; ++j) {
        const int sj = ((j - shifts[s][1]) % w + w) % w;
        prod[size_t(i * w + j)] = block[size_t(i * w + j)] * block[size_t(si * w + sj)];
      }
    }
    a = aggd(prod);
    double* f = out + 2 + 4 * s;
    f[0] = a.alpha;
    f[1] = (a.beta_r - a.beta_l) * (std::tgamma(2 / a.alpha) / std::tgamma(1 / a.alpha));
    f[2] = a.beta_l;
    f[3] = a.beta_r;
  }
}

// scipy.ndimage.convolve(img, window, mode='nearest') on a float32 plane: the window reversed,
// taps summed in float64 in its row-major order (scipy's correlate), a float32 result.
std::vector<float> convolve7(const std::vector<float>& img, int h, int w, const std::array<double, 49>& win) {
  std::vector<float> out(img.size());
  for (int i = 0; i < h; ++i)
    for (int j = 0; j < w; ++j) {
      double acc = 0;
      for (int a = 0; a < 7; ++a) {
        const float* row = img.data() + size_t(std::clamp(i + a - 3, 0, h - 1)) * size_t(w);
        for (int b = 0; b < 7; ++b) acc += double(row[std::clamp(j + b - 3, 0, w - 1)]) * win[size_t(48 - (a * 7 + b))];
      }
      out[size_t(i) * size_t(w) + size_t(j)] = float(acc);
    }
  return out;
}

// Mean-subtracted contrast-normalised coefficients (Eq. 1), in float32 as the reference.
std::vector<float> mscn(const std::vector<float>& img, int h, int w, const std::array<double, 49>& win) {
  std::vector<float> sq(img.size());
  for (size_t i = 0; i < img.size(); ++i) sq[i] = img[i] * img[i];
  const std::vector<float> mu = convolve7(img, h, w, win), mu_sq = convolve7(sq, h, w, win);
  std::vector<float> out(img.size());
  for (size_t i = 0; i < img.size(); ++i) {
    const float sigma = std::sqrt(std::fabs(mu_sq[i] - mu[i] * mu[i]));
    out[i] = (img[i] - mu[i]) / (sigma + 1.0f);
  }
  return out;
}

// The MATLAB Y channel as BasicSR's to_y_channel makes it from an OpenCV (BGR) image: float32
// [0,1] pixels, the BT.601 dot product and offset in float64, back to float32, x255, rounded.
std::vector<float> y_channel(const at::Tensor& hwc_in) {
  at::Tensor hwc = hwc_in.dim() == 2 ? hwc_in.unsqueeze(2) : hwc_in;
  require(hwc.scalar_type() == at::kByte && hwc.dim() == 3 && (hwc.size(2) == 1 || hwc.size(2) >= 3),
          SINSR_ERR_INVALID_ARGUMENT, "niqe: expected a uint8 [H,W], [H,W,1] or [H,W,3] image");
  hwc = hwc.contiguous();
  const int64_t h = hwc.size(0), w = hwc.size(1), c = hwc.size(2);
  const uint8_t* p = hwc.data_ptr<uint8_t>();
  std::vector<float> y(size_t(h * w));
  for (int64_t i = 0; i < h * w; ++i) {
    const uint8_t* px = p + i * c;
    const float r = float(px[0]) / 255.0f, g = float(px[c == 1 ? 0 : 1]) / 255.0f,
                b = float(px[c == 1 ? 0 : 2]) / 255.0f;
    const double v = (double(b) * 24.966 + double(g) * 128.553 + double(r) * 65.481 + 16.0) / 255.0;
    y[size_t(i)] = std::nearbyint(float(v) * 255.0f);
  }
  return y;
}

}  // namespace

double niqe(const at::Tensor& img) {
  const Pristine& pris = pristine();
  std::vector<float> y = y_channel(img);
  const int h0 = int(img.size(0)), w0 = int(img.size(1));
  const int nbh = h0 / kNiqeBlock, nbw = w0 / kNiqeBlock;
  if (nbh * nbw == 0) return kNaN;
  // Whole blocks only (the bottom and right remainders are dropped).
  int h = nbh * kNiqeBlock, w = nbw * kNiqeBlock;
  std::vector<float> plane(size_t(h) * size_t(w));
  for (int i = 0; i < h; ++i) std::copy_n(y.begin() + ptrdiff_t(i) * w0, w, plane.begin() + ptrdiff_t(i) * w);

  const size_t blocks = size_t(nbh) * size_t(nbw);
  std::vector<double> feat(blocks * 2 * kFeatures);
  for (int scale = 1; scale <= 2; ++scale) {
    const std::vector<float> norm = mscn(plane, h, w, pris.window);
    const int bs = kNiqeBlock / scale;
    std::vector<float> block(size_t(bs) * size_t(bs));
    size_t row = 0;  // blocks column by column, as the reference walks them
    for (int bw = 0; bw < nbw; ++bw)
      for (int bh = 0; bh < nbh; ++bh, ++row) {
        for (int i = 0; i < bs; ++i)
          std::copy_n(norm.begin() + ptrdiff_t(bh * bs + i) * w + bw * bs, bs, block.begin() + ptrdiff_t(i) * bs);
        block_features(block, bs, bs, feat.data() + row * 2 * kFeatures + (scale - 1) * kFeatures);
      }
    if (scale == 1) {
      at::Tensor t = at::from_blob(plane.data(), {1, h, w}, at::kFloat).div(255.0f);
      t = imaging::imresize_line_by_line(t, 0.5, true).mul(255.0f).contiguous();
      h = int(t.size(1)), w = int(t.size(2));
      plane.assign(t.data_ptr<float>(), t.data_ptr<float>() + size_t(h) * size_t(w));
    }
  }

  // Multivariate Gaussian fit of the features: NaN-ignoring means, the covariance of the blocks
  // whose features are all finite.
  constexpr int kAll = 2 * kFeatures;
  std::array<double, kAll> mu{};
  for (int f = 0; f < kAll; ++f) {
    double s = 0;
    size_t n = 0;
    for (size_t r = 0; r < blocks; ++r)
      if (double v = feat[r * kAll + size_t(f)]; !std::isnan(v)) s += v, ++n;
    mu[size_t(f)] = n ? s / double(n) : kNaN;
  }
  std::vector<size_t> finite_rows;
  for (size_t r = 0; r < blocks; ++r)
    if (std::none_of(feat.begin() + ptrdiff_t(r * kAll), feat.begin() + ptrdiff_t((r + 1) * kAll),
                     [](double v) { return std::isnan(v); }))
      finite_rows.push_back(r);
  if (finite_rows.empty() || std::any_of(mu.begin(), mu.end(), [](double v) { return std::isnan(v); })) return kNaN;
  at::Tensor x = at::empty({int64_t(finite_rows.size()), kAll}, at::kDouble);
  auto xa = x.accessor<double, 2>();
  for (size_t k = 0; k < finite_rows.size(); ++k)
    for (int f = 0; f < kAll; ++f) xa[int64_t(k)][f] = feat[finite_rows[k] * kAll + size_t(f)];
  at::Tensor cov;
  if (finite_rows.size() == 1) {
    // np.cov(rowvar=False) of a single observation takes the row as 36 observations of one
    // variable: a scalar variance, which the reference then adds to every pristine entry.
    cov = at::full({kAll, kAll}, x.var(1, /*unbiased=*/true).item<double>(), at::kDouble);
  } else {
    at::Tensor centred = x - x.mean(0, true);
    cov = centred.t().mm(centred) / double(finite_rows.size() - 1);
  }
  at::Tensor inv = at::linalg_pinv((pris.cov + cov) / 2, 1e-15, false);
  at::Tensor d = at::empty({1, kAll}, at::kDouble);
  for (int f = 0; f < kAll; ++f) d[0][f] = pris.mu[size_t(f)] - mu[size_t(f)];
  return std::sqrt(d.mm(inv).mm(d.t()).item<double>());
}

}  // namespace metrics
}  // namespace sinsr
