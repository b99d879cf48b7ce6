#include "imaging/degradation.hpp"

#include "imaging/quantise.hpp"
#include "runtime/seed.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <sinsr/sdk.hpp>

#include "io/jpeg.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace sinsr {
namespace degrade {

namespace {

constexpr double kPi = 3.14159265358979323846;

// ---- kernels ----

// Inverse covariance entries (a, b, c) of [[a, b], [b, c]].
std::array<double, 3> inverse_sigma(double sx, double sy, double theta) {
  if (!(sx > 0 && sy > 0)) throw sdk::Error(SINSR_ERR_INVALID_ARGUMENT, "blur kernel: sigmas must be positive");
  const double c = std::cos(theta), s = std::sin(theta), ix = 1 / (sx * sx), iy = 1 / (sy * sy);
  return {c * c * ix + s * s * iy, c * s * (ix - iy), s * s * ix + c * c * iy};
}

void check_size(int k) {
  if (k < 1 || k % 2 == 0)
    throw sdk::Error(SINSR_ERR_INVALID_ARGUMENT, "blur kernel: size must be odd, got " + std::to_string(k));
}

// Evaluates f(d) on the grid and normalises.
template <typename F>
at::Tensor make_kernel(int k, double sx, double sy, double theta, F f) {
  check_size(k);
  const auto inv = inverse_sigma(sx, sy, theta);
  std::vector<double> v(size_t(k) * k);
  double sum = 0;
  const int h = k / 2;
  for (int i = 0; i < k; ++i)
    for (int j = 0; j < k; ++j) {
      const double x = j - h, y = i - h;
      const double d = inv[0] * x * x + 2 * inv[1] * x * y + inv[2] * y * y;
      v[size_t(i) * k + j] = f(d);
      sum += v[size_t(i) * k + j];
    }
  at::Tensor out = at::empty({k, k}, at::kFloat);
  float* p = out.data_ptr<float>();
  for (size_t n = 0; n < v.size(); ++n) p[n] = static_cast<float>(v[n] / sum);
  return out;
}

double draw_beta(Rng& rng, Range r) { return rng.uniform() < 0.5 ? rng.uniform(r[0], 1) : rng.uniform(1, r[1]); }

int draw_kernel_size(Rng& rng, int limit) {
  // Python's range(3, limit, 2).
  const int count = (limit - 3 + 1) / 2;
  return 3 + 2 * rng.randint(0, count - 1);
}

const char* const kModes[] = {"area", "bilinear", "bicubic"};

double draw_resize_scale(Rng& rng, const std::array<double, 3>& prob, Range range) {
  switch (rng.choice(prob.data(), 3)) {
    case 0: return rng.uniform(1, range[1]);
    case 1: return rng.uniform(range[0], 1);
    default: return 1.0;
  }
}

// To the 8-bit levels a saved PNG keeps, as float in [0,1].
at::Tensor quantise8(const at::Tensor& x) { return imaging::to_uint8(x).to(x.scalar_type()).div(255.0); }

// 2^ceil(log2(number of distinct 8-bit levels in q255)).
double poisson_levels(const at::Tensor& q255) {
  const int64_t distinct = at::bincount(q255.reshape({-1}).to(at::kLong), {}, 256).gt(0).sum().item<int64_t>();
  return std::pow(2.0, std::ceil(std::log2(double(std::max<int64_t>(distinct, 1)))));
}

at::Tensor poisson_noise(const at::Tensor& img, at::Generator& gen) {
  at::Tensor q = imaging::to_uint8(img).to(img.scalar_type());
  const double vals = poisson_levels(q);
  q = q / 255.0;
  return at::poisson(q * vals, gen) / vals - q;
}

}  // namespace

// ---- public ----

Rng::Rng(uint64_t seed) : eng_(seed), gen_(at::make_generator<at::CPUGeneratorImpl>(mix_seed(seed, 0x6e6f697365ull))) {}

double Rng::uniform(double lo, double hi) {
  // 53 random bits by hand: std::uniform_real_distribution differs between standard libraries.
  const double u = double(eng_() >> 11) * (1.0 / 9007199254740992.0);
  return lo + (hi - lo) * u;
}

int Rng::randint(int lo, int hi) {
  const uint64_t n = uint64_t(hi - lo) + 1;
  return lo + int(uint64_t(uniform() * double(n)) % n);
}

size_t Rng::choice(const double* w, size_t n) {
  const double total = std::accumulate(w, w + n, 0.0);
  double u = uniform() * total, acc = 0;
  size_t last = 0;
  for (size_t i = 0; i < n; ++i) {
    if (w[i] <= 0) continue;
    acc += w[i];
    last = i;
    if (u < acc) return i;
  }
  return last;
}

at::Tensor gaussian_kernel(int k, double sx, double sy, double theta) {
  return make_kernel(k, sx, sy, theta, [](double d) { return std::exp(-0.5 * d); });
}

at::Tensor generalized_gaussian_kernel(int k, double sx, double sy, double theta, double beta) {
  return make_kernel(k, sx, sy, theta, [beta](double d) { return std::exp(-0.5 * std::pow(d, beta)); });
}

at::Tensor plateau_kernel(int k, double sx, double sy, double theta, double beta) {
  return make_kernel(k, sx, sy, theta, [beta](double d) { return 1.0 / (std::pow(d, beta) + 1.0); });
}

at::Tensor sinc_kernel(int k, double omega_c, int pad_to) {
  check_size(k);
  if (!(omega_c > 0)) throw sdk::Error(SINSR_ERR_INVALID_ARGUMENT, "sinc kernel: cutoff must be positive");
  std::vector<double> v(size_t(k) * k);
  const double c = (k - 1) / 2.0;
  double sum = 0;
  for (int i = 0; i < k; ++i)
    for (int j = 0; j < k; ++j) {
      const double r = std::hypot(i - c, j - c);
      const double val =
          r == 0 ? omega_c * omega_c / (4 * kPi) : omega_c * std::cyl_bessel_j(1.0, omega_c * r) / (2 * kPi * r);
      v[size_t(i) * k + j] = val;
      sum += val;
    }
  at::Tensor out = at::empty({k, k}, at::kFloat);
  float* p = out.data_ptr<float>();
  for (size_t n = 0; n < v.size(); ++n) p[n] = static_cast<float>(v[n] / sum);
  return pad_to > k ? pad_kernel(out, pad_to) : out;
}

at::Tensor pad_kernel(const at::Tensor& kernel, int size) {
  const int64_t k = kernel.size(-1);
  if (size < k || (size - k) % 2 != 0)
    throw sdk::Error(SINSR_ERR_INVALID_ARGUMENT,
                     "pad_kernel: cannot centre a " + std::to_string(k) + "-kernel in " + std::to_string(size));
  const int64_t p = (size - k) / 2;
  return at::constant_pad_nd(kernel, {p, p, p, p}, 0);
}

at::Tensor random_mixed_kernel(Rng& rng, const std::vector<std::string>& list, const std::vector<double>& prob, int k,
                               Range sigma, Range betag, Range betap) {
  if (list.empty() || list.size() != prob.size())
    throw sdk::Error(SINSR_ERR_INVALID_ARGUMENT, "random_mixed_kernel: kernel list and probabilities differ in length");
  const std::string& type = list[rng.choice(prob.data(), prob.size())];
  const bool iso =
      type.size() >= 3 && type.compare(type.size() - 3, 3, "iso") == 0 && type.find("aniso") == std::string::npos;
  const double sx = rng.uniform(sigma[0], sigma[1]);
  double sy = sx, theta = 0;
  if (!iso) {
    sy = rng.uniform(sigma[0], sigma[1]);
    theta = rng.uniform(-kPi, kPi);
  }
  if (type == "iso" || type == "aniso") return gaussian_kernel(k, sx, sy, theta);
  if (type == "generalized_iso" || type == "generalized_aniso")
    return generalized_gaussian_kernel(k, sx, sy, theta, draw_beta(rng, betag));
  if (type == "plateau_iso" || type == "plateau_aniso") return plateau_kernel(k, sx, sy, theta, draw_beta(rng, betap));
  throw sdk::Error(SINSR_ERR_INVALID_ARGUMENT, "random_mixed_kernel: unknown kernel type '" + type + "'");
}

Kernels random_kernels(Rng& rng, const Options& o) {
  auto blur = [&](int size, double sinc_p, const std::vector<std::string>& list, const std::vector<double>& prob,
                  Range sigma, Range bg, Range bp) {
    const int k = draw_kernel_size(rng, size);
    at::Tensor kernel;
    if (rng.uniform() < sinc_p) {
      const double omega = k < 13 ? rng.uniform(kPi / 3, kPi) : rng.uniform(kPi / 5, kPi);
      kernel = sinc_kernel(k, omega);
    } else {
      kernel = random_mixed_kernel(rng, list, prob, k, sigma, bg, bp);
    }
    return pad_kernel(kernel, size);
  };
  Kernels out;
  out.kernel1 =
      blur(o.blur_kernel_size, o.sinc_prob, o.kernel_list, o.kernel_prob, o.blur_sigma, o.betag_range, o.betap_range);
  out.kernel2 = blur(o.blur_kernel_size2, o.sinc_prob2, o.kernel_list2, o.kernel_prob2, o.blur_sigma2, o.betag_range2,
                     o.betap_range2);
  if (rng.uniform() < o.final_sinc_prob) {
    const int k = draw_kernel_size(rng, o.blur_kernel_size2);
    out.sinc_kernel = sinc_kernel(k, rng.uniform(kPi / 3, kPi), o.blur_kernel_size2);
  } else {
    out.sinc_kernel = at::zeros({o.blur_kernel_size2, o.blur_kernel_size2}, at::kFloat);
    out.sinc_kernel[o.blur_kernel_size2 / 2][o.blur_kernel_size2 / 2] = 1.0;
  }
  return out;
}

at::Tensor filter2d(const at::Tensor& chw, const at::Tensor& kernel) {
  if (chw.dim() != 3) throw sdk::Error(SINSR_ERR_INVALID_ARGUMENT, "filter2d: expected a [C,H,W] image");
  const int64_t k = kernel.size(-1);
  if (kernel.dim() != 2 || kernel.size(0) != k || k % 2 == 0)
    throw sdk::Error(SINSR_ERR_INVALID_ARGUMENT, "filter2d: expected an odd square kernel");
  const int64_t p = k / 2;
  at::Tensor x = chw.unsqueeze(1);  // channels as a batch of one-channel images
  // torch's reflect padding needs more pixels than the pad; tiny images fall back to replicate.
  x = (p < chw.size(1) && p < chw.size(2)) ? at::reflection_pad2d(x, {p, p, p, p})
                                           : at::replication_pad2d(x, {p, p, p, p});
  at::Tensor w = kernel.to(chw.scalar_type()).view({1, 1, k, k});
  return at::conv2d(x, w).squeeze(1);
}

at::Tensor resize(const at::Tensor& chw, const std::string& mode, double scale, int64_t h, int64_t w) {
  if (chw.dim() != 3) throw sdk::Error(SINSR_ERR_INVALID_ARGUMENT, "resize: expected a [C,H,W] image");
  c10::optional<double> sh, sw;
  if (scale > 0) {
    // interpolate(scale_factor=s): floor(size * s), and the kernels map coordinates with 1/s.
    h = int64_t(std::floor(double(chw.size(1)) * scale));
    w = int64_t(std::floor(double(chw.size(2)) * scale));
    sh = scale;
    sw = scale;
  }
  if (h < 1 || w < 1) {
    h = std::max<int64_t>(h, 1);
    w = std::max<int64_t>(w, 1);
    sh = sw = c10::nullopt;
  }
  at::Tensor x = chw.unsqueeze(0);
  at::Tensor out;
  if (mode == "area")
    out = at::adaptive_avg_pool2d(x, {h, w});
  else if (mode == "bilinear")
    out = at::upsample_bilinear2d(x, {h, w}, false, sh, sw);
  else if (mode == "bicubic")
    out = at::upsample_bicubic2d(x, {h, w}, false, sh, sw);
  else
    throw sdk::Error(SINSR_ERR_INVALID_ARGUMENT, "resize: unknown mode '" + mode + "' (area, bilinear, bicubic)");
  return out.squeeze(0);
}

at::Tensor add_gaussian_noise(const at::Tensor& chw, double sigma, bool gray, at::Generator& gen) {
  const int64_t c = gray ? 1 : chw.size(0);
  at::Tensor noise = at::randn({c, chw.size(1), chw.size(2)}, gen, chw.options()) * (sigma / 255.0);
  return chw + noise;
}

at::Tensor add_poisson_noise(const at::Tensor& chw, double scale, bool gray, at::Generator& gen) {
  at::Tensor noise;
  if (gray && chw.size(0) == 3) {
    // torchvision rgb_to_grayscale weights.
    at::Tensor luma = (0.2989 * chw[0] + 0.587 * chw[1] + 0.114 * chw[2]).unsqueeze(0);
    noise = poisson_noise(luma, gen);
  } else {
    noise = poisson_noise(chw, gen);
  }
  return chw + noise * scale;
}

at::Tensor jpeg(const at::Tensor& chw, int quality) {
  // The official training uses DiffJPEG, a differentiable tensor approximation of JPEG; offline
  // LR making has no gradient to carry, so a real codec gives the genuine artefacts, including
  // libjpeg's rounding and its 4:2:0 chroma.
  return io::jpeg_round_trip(chw, quality);
}

at::Tensor degrade(const at::Tensor& hr_chw01, int scale, uint64_t seed, const Options& o) {
  validate(o);
  if (scale < 1)
    throw sdk::Error(SINSR_ERR_INVALID_ARGUMENT, "degrade: scale must be >= 1, got " + std::to_string(scale));
  if (hr_chw01.dim() != 3 || (hr_chw01.size(0) != 1 && hr_chw01.size(0) != 3))
    throw sdk::Error(SINSR_ERR_INVALID_ARGUMENT, "degrade: expected a [C,H,W] image with C = 1 or 3");
  const int64_t H = hr_chw01.size(1), W = hr_chw01.size(2);
  if (H / scale < 1 || W / scale < 1)
    throw sdk::Error(SINSR_ERR_INVALID_ARGUMENT, "degrade: a " + std::to_string(H) + "x" + std::to_string(W) +
                                                     " image is too small for scale " + std::to_string(scale));
  at::Tensor x = hr_chw01.to(at::kCPU, at::kFloat).contiguous();
  Rng rng(seed);
  const Kernels K = random_kernels(rng, o);
  auto mode = [&] { return std::string(kModes[rng.randint(0, 2)]); };
  auto noise = [&](at::Tensor img, double gauss_p, Range sigma, Range pscale, double gray_p) {
    const bool gaussian = rng.uniform() < gauss_p;
    const bool gray = rng.uniform() < gray_p;
    img = gaussian ? add_gaussian_noise(img, rng.uniform(sigma[0], sigma[1]), gray, rng.gen())
                   : add_poisson_noise(img, rng.uniform(pscale[0], pscale[1]), gray, rng.gen());
    return at::clamp(img, 0, 1);
  };
  auto compress = [&](const at::Tensor& img, Range q) {
    return jpeg(at::clamp(img, 0, 1), int(std::lround(rng.uniform(q[0], q[1]))));
  };

  // First order.
  at::Tensor out = filter2d(x, K.kernel1);
  const double s1 = draw_resize_scale(rng, o.resize_prob, o.resize_range);
  out = resize(out, mode(), s1);
  out = noise(out, o.gaussian_noise_prob, o.noise_range, o.poisson_scale_range, o.gray_noise_prob);
  out = compress(out, o.jpeg_range);

  // Second order.
  if (rng.uniform() < o.second_order_prob) {
    if (rng.uniform() < o.second_blur_prob) out = filter2d(out, K.kernel2);
    const double s2 = draw_resize_scale(rng, o.resize_prob2, o.resize_range2);
    out = resize(out, mode(), 0, int64_t(double(H) / scale * s2), int64_t(double(W) / scale * s2));
    out = noise(out, o.gaussian_noise_prob2, o.noise_range2, o.poisson_scale_range2, o.gray_noise_prob2);
  }

  // Final: [resize + sinc] and JPEG, in a random order.
  const int64_t lh = H / scale, lw = W / scale;
  if (rng.uniform() < 0.5) {
    out = filter2d(resize(out, mode(), 0, lh, lw), K.sinc_kernel);
    out = compress(out, o.jpeg_range2);
  } else {
    out = compress(out, o.jpeg_range2);
    out = filter2d(resize(out, mode(), 0, lh, lw), K.sinc_kernel);
  }
  if (o.resize_back) out = resize(out, "bicubic", 0, H, W);
  return quantise8(out).to(hr_chw01.device());
}

}  // namespace degrade
}  // namespace sinsr
