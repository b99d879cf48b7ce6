// The RealESRGAN degradation: kernels against their closed forms and symmetries, the noise
// statistics, JPEG error against quality, determinism per seed, output sizes, option loading.
#include "parity.hpp"

#include "imaging/degradation.hpp"
#include "io/image_io.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <sinsr/config.hpp>
#include <sinsr/sdk.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <tuple>

namespace dg = sinsr::degrade;

namespace {

// Where the official files keep the degradation keys: the installed defaults.json says (data, not
// code); without those sections an official file's blocks are not found.
std::vector<std::string> official_sections() {
  const auto d = sinsr::config::load_file(std::string(SINSR_PLUGIN_DIR) + "/defaults.json");
  return d.at("degradation").at("sections").get<std::vector<std::string>>();
}

constexpr double kPi = 3.14159265358979323846;

// A deterministic test picture with smooth areas, edges and fine texture.
at::Tensor test_image(int64_t h, int64_t w, int64_t c = 3) {
  at::Tensor y = at::arange(h, at::kFloat).view({1, h, 1}).expand({c, h, w});
  at::Tensor x = at::arange(w, at::kFloat).view({1, 1, w}).expand({c, h, w});
  at::Tensor ch = at::arange(c, at::kFloat).view({c, 1, 1}).expand({c, h, w});
  at::Tensor img = 0.5 + 0.25 * at::sin(x * 0.07 + ch) * at::cos(y * 0.05) + 0.15 * at::sin(x * 1.3 + y * 0.9);
  img = img + 0.1 * ((x.div(17, "floor") + y.div(13, "floor")).remainder(2) - 0.5);
  return img.clamp(0, 1).contiguous();
}

void expect_normalised(const at::Tensor& k) { EXPECT_NEAR(k.sum().item<double>(), 1.0, 1e-5); }

void expect_isotropic(const at::Tensor& k) {
  EXPECT_TRUE(sinsr_test::all_close(k, k.t(), 1e-7));
  EXPECT_TRUE(sinsr_test::all_close(k, k.flip({0}), 1e-7));
  EXPECT_TRUE(sinsr_test::all_close(k, k.flip({1}), 1e-7));
}

bool same_bytes(const at::Tensor& a, const at::Tensor& b) {
  return a.sizes() == b.sizes() && a.scalar_type() == b.scalar_type() &&
         std::memcmp(a.contiguous().data_ptr(), b.contiguous().data_ptr(), a.numel() * a.element_size()) == 0;
}

}  // namespace

// ---------------------------------------------------------------- kernels

TEST(Kernels, IsotropicGaussianIsTheClosedForm) {
  for (int k : {3, 7, 21}) {
    for (double s : {0.2, 1.0, 3.0}) {
      at::Tensor got = dg::gaussian_kernel(k, s, s, 0.7);  // rotation is irrelevant when isotropic
      ASSERT_EQ(got.sizes(), (at::IntArrayRef{k, k}));
      at::Tensor ax = at::arange(-(k / 2), k / 2 + 1, at::kDouble);
      at::Tensor ref = at::exp(-(ax.view({-1, 1}).pow(2) + ax.view({1, -1}).pow(2)) / (2 * s * s));
      ref = ref / ref.sum();
      EXPECT_TRUE(sinsr_test::all_close(got, ref.to(at::kFloat), 1e-6)) << "k=" << k << " sigma=" << s;
      expect_normalised(got);
      expect_isotropic(got);
    }
  }
}

TEST(Kernels, AnisotropicGaussianRotates) {
  // sigma_x acts along columns (x): a wide-x kernel has larger spread across columns.
  at::Tensor k0 = dg::gaussian_kernel(15, 3.0, 0.8, 0.0);
  expect_normalised(k0);
  at::Tensor col_profile = k0.sum(0), row_profile = k0.sum(1);
  EXPECT_GT(col_profile[0].item<float>(), row_profile[0].item<float>());
  EXPECT_FALSE(sinsr_test::all_close(k0, k0.t(), 1e-4));
  // Rotating by 90 degrees swaps the axes.
  EXPECT_TRUE(sinsr_test::all_close(dg::gaussian_kernel(15, 3.0, 0.8, kPi / 2), k0.t(), 1e-6));
  // Any rotation keeps point symmetry about the centre.
  at::Tensor kr = dg::gaussian_kernel(15, 2.5, 0.6, 0.6);
  expect_normalised(kr);
  EXPECT_TRUE(sinsr_test::all_close(kr, kr.flip({0, 1}), 1e-7));
  EXPECT_FALSE(sinsr_test::all_close(kr, kr.flip({0}), 1e-4));
  // Swapping the sigmas equals rotating by 90 degrees.
  EXPECT_TRUE(sinsr_test::all_close(dg::gaussian_kernel(15, 0.8, 2.5, 0.6),
                                    dg::gaussian_kernel(15, 2.5, 0.8, 0.6 + kPi / 2), 1e-6));
}

TEST(Kernels, GeneralizedAndPlateau) {
  // beta = 1 makes the generalised Gaussian the plain one.
  EXPECT_TRUE(sinsr_test::all_close(dg::generalized_gaussian_kernel(11, 1.7, 0.9, 0.3, 1.0),
                                    dg::gaussian_kernel(11, 1.7, 0.9, 0.3), 1e-7));
  for (double beta : {0.5, 1.0, 2.0, 4.0}) {
    at::Tensor g = dg::generalized_gaussian_kernel(13, 1.5, 1.5, 0, beta);
    expect_normalised(g);
    expect_isotropic(g);
    at::Tensor p = dg::plateau_kernel(13, 1.5, 1.5, 0, beta);
    expect_normalised(p);
    expect_isotropic(p);
    // Plateau value at (0, 2): 1 / ((4 / s^2)^beta + 1), relative to the centre 1.
    const double d = 4 / (1.5 * 1.5);
    EXPECT_NEAR(p[6][8].item<double>() / p[6][6].item<double>(), 1 / (std::pow(d, beta) + 1), 1e-6);
    EXPECT_NEAR(g[6][8].item<double>() / g[6][6].item<double>(), std::exp(-0.5 * std::pow(d, beta)), 1e-6);
  }
  // A larger beta gives a flatter top for the generalised Gaussian.
  at::Tensor g1 = dg::generalized_gaussian_kernel(13, 2, 2, 0, 1), g4 = dg::generalized_gaussian_kernel(13, 2, 2, 0, 4);
  EXPECT_GT(g4[6][7].item<double>() / g4[6][6].item<double>(), g1[6][7].item<double>() / g1[6][6].item<double>());
}

TEST(Kernels, SincIsACircularLowPass) {
  for (int k : {3, 7, 13, 21}) {
    const double omega = kPi / 3 + 0.1 * k;
    at::Tensor s = dg::sinc_kernel(k, omega);
    ASSERT_EQ(s.sizes(), (at::IntArrayRef{k, k}));
    expect_normalised(s);
    expect_isotropic(s);
    if (k >= 3) {
      // Ratio of an off-centre tap to the centre: J1(w r) / (w r / 2).
      const double r = 1.0;
      EXPECT_NEAR(s[k / 2][k / 2 + 1].item<double>() / s[k / 2][k / 2].item<double>(),
                  std::cyl_bessel_j(1.0, omega * r) / (omega * r / 2), 1e-5);
    }
  }
  // Its frequency response passes DC and cuts the Nyquist corner for a low cutoff.
  at::Tensor s = dg::sinc_kernel(21, kPi / 4).to(at::kDouble);
  at::Tensor sign = at::ones({21}, at::kDouble);
  sign.slice(0, 1, 21, 2).fill_(-1);
  const double nyquist = (s * sign.view({-1, 1}) * sign.view({1, -1})).sum().item<double>();
  EXPECT_LT(std::abs(nyquist), 0.1);
  // Padding keeps the values and centres them.
  at::Tensor padded = dg::sinc_kernel(7, 2.0, 15);
  ASSERT_EQ(padded.sizes(), (at::IntArrayRef{15, 15}));
  EXPECT_TRUE(sinsr_test::all_close(padded.slice(0, 4, 11).slice(1, 4, 11), dg::sinc_kernel(7, 2.0), 0));
  EXPECT_EQ(padded.abs().sum().item<double>(), padded.slice(0, 4, 11).slice(1, 4, 11).abs().sum().item<double>());
}

TEST(Kernels, RandomKernelsFollowTheOptions) {
  dg::Options o;
  for (uint64_t seed = 0; seed < 40; ++seed) {
    dg::Rng rng(seed);
    dg::Kernels k = dg::random_kernels(rng, o);
    ASSERT_EQ(k.kernel1.sizes(), (at::IntArrayRef{21, 21}));
    ASSERT_EQ(k.kernel2.sizes(), (at::IntArrayRef{15, 15}));
    ASSERT_EQ(k.sinc_kernel.sizes(), (at::IntArrayRef{15, 15}));
    expect_normalised(k.kernel1);
    expect_normalised(k.kernel2);
    expect_normalised(k.sinc_kernel);
    // Every kernel is point symmetric (Gaussians under any rotation, sinc, pulse).
    EXPECT_TRUE(sinsr_test::all_close(k.kernel1, k.kernel1.flip({0, 1}), 1e-6));
    EXPECT_TRUE(sinsr_test::all_close(k.kernel2, k.kernel2.flip({0, 1}), 1e-6));
    // Sizes come from range(3, 21, 2): the outer ring of kernel1 is always zero.
    EXPECT_EQ(k.kernel1[0].abs().sum().item<double>(), 0.0);
    EXPECT_EQ(k.kernel2[0].abs().sum().item<double>(), 0.0);
  }
  // Only iso kernels, no sinc: every kernel is symmetric under transposition.
  o.kernel_list = {"iso", "generalized_iso", "plateau_iso"};
  o.kernel_prob = {1, 1, 1};
  o.sinc_prob = 0;
  o.final_sinc_prob = 0;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    dg::Rng rng(seed);
    dg::Kernels k = dg::random_kernels(rng, o);
    expect_isotropic(k.kernel1);
    at::Tensor pulse = at::zeros({15, 15});
    pulse[7][7] = 1;
    EXPECT_TRUE(sinsr_test::all_close(k.sinc_kernel, pulse, 0));
  }
  // Anisotropic only: asymmetric under transposition for most draws.
  o.kernel_list = {"aniso"};
  o.kernel_prob = {1};
  int asymmetric = 0;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    dg::Rng rng(seed);
    at::Tensor k1 = dg::random_kernels(rng, o).kernel1;
    asymmetric += !sinsr_test::all_close(k1, k1.t(), 1e-4);
  }
  EXPECT_GE(asymmetric, 15);
}

TEST(Kernels, BadArgumentsThrow) {
  EXPECT_THROW(dg::gaussian_kernel(4, 1, 1, 0), sinsr::sdk::Error);
  EXPECT_THROW(dg::gaussian_kernel(5, 0, 1, 0), sinsr::sdk::Error);
  EXPECT_THROW(dg::sinc_kernel(5, 0), sinsr::sdk::Error);
  EXPECT_THROW(dg::pad_kernel(at::ones({5, 5}), 8), sinsr::sdk::Error);
}

// ---------------------------------------------------------------- filters and resizes

TEST(Steps, Filter2dIsReflectPaddedCorrelation) {
  at::Tensor img = test_image(20, 24);
  at::Tensor pulse = at::zeros({7, 7});
  pulse[3][3] = 1;
  EXPECT_TRUE(sinsr_test::all_close(dg::filter2d(img, pulse), img, 1e-6));
  // A one-tap shift kernel: correlation reads the right neighbour; at the border reflection
  // reads the left one.
  at::Tensor shift = at::zeros({3, 3});
  shift[1][2] = 1;
  at::Tensor out = dg::filter2d(img, shift);
  EXPECT_TRUE(sinsr_test::all_close(out.slice(2, 0, 23), img.slice(2, 1, 24), 1e-6));
  EXPECT_TRUE(sinsr_test::all_close(out.select(2, 23), img.select(2, 22), 1e-6));
  // Too small to reflect a 21-kernel: still works, same size.
  EXPECT_EQ(dg::filter2d(test_image(6, 9), dg::gaussian_kernel(21, 2, 2, 0)).sizes(), (at::IntArrayRef{3, 6, 9}));
}

TEST(Steps, ResizeModesAndSizes) {
  at::Tensor img = test_image(37, 50);
  for (std::string mode : {"area", "bilinear", "bicubic"}) {
    EXPECT_EQ(dg::resize(img, mode, 0.5).sizes(), (at::IntArrayRef{3, 18, 25})) << mode;
    EXPECT_EQ(dg::resize(img, mode, 1.37).sizes(), (at::IntArrayRef{3, 50, 68})) << mode;
    EXPECT_EQ(dg::resize(img, mode, 0, 9, 12).sizes(), (at::IntArrayRef{3, 9, 12})) << mode;
    EXPECT_TRUE(sinsr_test::all_close(dg::resize(img, mode, 1.0), img, 1e-5)) << mode;
  }
  // area at an integer factor is the block mean.
  at::Tensor a = test_image(16, 16);
  EXPECT_TRUE(sinsr_test::all_close(dg::resize(a, "area", 0.25), at::avg_pool2d(a.unsqueeze(0), 4).squeeze(0), 1e-6));
  EXPECT_THROW(dg::resize(img, "nearest", 0.5), sinsr::sdk::Error);
}

// ---------------------------------------------------------------- noise

TEST(Noise, GaussianStdMatchesSigma) {
  at::Tensor img = at::full({3, 256, 256}, 0.5);
  for (double sigma : {1.0, 12.0, 30.0}) {
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(7);
    at::Tensor noise = dg::add_gaussian_noise(img, sigma, false, gen) - img;
    EXPECT_NEAR(noise.std().item<double>(), sigma / 255, 0.02 * sigma / 255) << sigma;
    EXPECT_NEAR(noise.mean().item<double>(), 0, 0.02 * sigma / 255);
    // Colour noise: channels independent.
    EXPECT_LT(std::abs(at::corrcoef(at::stack({noise[0].flatten(), noise[1].flatten()}))[0][1].item<double>()), 0.02);
    at::Tensor gray = dg::add_gaussian_noise(img, sigma, true, gen) - img;
    EXPECT_NEAR(gray.std().item<double>(), sigma / 255, 0.02 * sigma / 255);
    EXPECT_TRUE(sinsr_test::all_close(gray[0], gray[1], 0));
    EXPECT_TRUE(sinsr_test::all_close(gray[0], gray[2], 0));
  }
}

TEST(Noise, PoissonVarianceFollowsTheLevels) {
  // All 256 levels present -> 256 Poisson levels: Var(noise) = q / 256 * scale^2 per pixel.
  at::Tensor q = at::arange(256, at::kFloat).repeat({3, 256, 1}).div(255.0);
  q = q.index_select(2, at::randperm(256, at::make_generator<at::CPUGeneratorImpl>(1), at::kLong));
  for (double scale : {0.5, 1.0, 3.0}) {
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(11);
    at::Tensor noise = dg::add_poisson_noise(q, scale, false, gen) - q;
    const double expected = (q / 256.0).mean().item<double>() * scale * scale;
    EXPECT_NEAR(noise.pow(2).mean().item<double>(), expected, 0.03 * expected) << scale;
    EXPECT_NEAR(noise.mean().item<double>(), 0, 0.05 * std::sqrt(expected));
    // Noise is signal dependent: black pixels get none.
    EXPECT_EQ(noise.masked_select(q.eq(0)).abs().max().item<double>(), 0.0);
  }
  // A constant image has one level -> 1 Poisson level: Var = q * scale^2.
  at::Tensor flat = at::full({3, 128, 128}, 128 / 255.0);
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(3);
  at::Tensor n = dg::add_poisson_noise(flat, 0.1, false, gen) - flat;
  EXPECT_NEAR(n.pow(2).mean().item<double>(), 128 / 255.0 * 0.01, 0.03 * 128 / 255.0 * 0.01);
  // Gray: one noise plane for all channels.
  at::Tensor g = dg::add_poisson_noise(q, 1.0, true, gen) - q;
  EXPECT_TRUE(sinsr_test::all_close(g[0], g[1], 0));
  EXPECT_TRUE(sinsr_test::all_close(g[0], g[2], 0));
  EXPECT_GT(g.abs().max().item<double>(), 0);
}

// ---------------------------------------------------------------- JPEG

// libjpeg in every build: the degradation needs no OpenImageIO.
TEST(Jpeg, LowerQualityMeansLargerError) {
  std::vector<at::Tensor> images{test_image(96, 128)};
#if SINSR_WITH_IMAGE_IO  // a photo, where PNG can be read
  const std::string baby = sinsr_test::data_dir() + "/set5/hr/baby.png";
  if (std::filesystem::exists(baby))
    images.push_back(sinsr::io::read_image(baby).pixels.slice(1, 0, 200).slice(2, 0, 200));
#endif
  for (const auto& img : images) {
    double previous = 0;
    for (int q : {100, 95, 70, 50, 30, 10}) {
      at::Tensor out = dg::jpeg(img, q);
      ASSERT_EQ(out.sizes(), img.sizes());
      EXPECT_EQ(out.scalar_type(), img.scalar_type());
      const double mse = (out - img).pow(2).mean().item<double>();
      EXPECT_GT(mse, previous) << "quality " << q;
      previous = mse;
      // 8-bit levels come back.
      EXPECT_TRUE(sinsr_test::all_close(out * 255, at::round(out * 255), 1e-3));
    }
    EXPECT_LT((dg::jpeg(img, 100) - img).abs().mean().item<double>(), 2.0 / 255);
  }
  // Gray stays gray.
  EXPECT_EQ(dg::jpeg(test_image(33, 17, 1), 50).sizes(), (at::IntArrayRef{1, 33, 17}));
  EXPECT_THROW(dg::jpeg(test_image(8, 8), 0), sinsr::sdk::Error);
}

// ---------------------------------------------------------------- the pipeline

TEST(Degrade, SameSeedSameBytesOtherSeedsDiffer) {
  at::Tensor hr = test_image(128, 96);
  at::Tensor a = dg::degrade(hr, 4, 42);
  at::Tensor b = dg::degrade(hr, 4, 42);
  EXPECT_TRUE(same_bytes(a, b));
  int differing = 0;
  for (uint64_t s = 43; s < 48; ++s) differing += !same_bytes(a, dg::degrade(hr, 4, s));
  EXPECT_EQ(differing, 5);
}

TEST(Degrade, OutputSizeIsInputOverScale) {
  for (auto [h, w, scale] :
       {std::tuple<int, int, int>{256, 256, 4}, {67, 90, 4}, {64, 48, 2}, {50, 50, 1}, {17, 23, 8}}) {
    at::Tensor lr = dg::degrade(test_image(h, w), scale, 5);
    EXPECT_EQ(lr.sizes(), (at::IntArrayRef{3, h / scale, w / scale})) << h << "x" << w << " /" << scale;
    EXPECT_GE(lr.min().item<float>(), 0);
    EXPECT_LE(lr.max().item<float>(), 1);
    EXPECT_TRUE(sinsr_test::all_close(lr * 255, at::round(lr * 255), 1e-3));  // 8-bit levels
  }
  at::Tensor gray = dg::degrade(test_image(40, 44, 1), 4, 1);
  EXPECT_EQ(gray.sizes(), (at::IntArrayRef{1, 10, 11}));
  dg::Options back;
  back.resize_back = true;
  EXPECT_EQ(dg::degrade(test_image(40, 44), 4, 1, back).sizes(), (at::IntArrayRef{3, 40, 44}));
  EXPECT_THROW(dg::degrade(test_image(3, 40), 4, 1), sinsr::sdk::Error);
  EXPECT_THROW(dg::degrade(test_image(8, 8, 2), 4, 1), sinsr::sdk::Error);
}

TEST(Degrade, ResemblesTheBicubicLowResolution) {
  // The LR keeps the picture: closer to a plain downscale of the same image than to another.
  at::Tensor hr = test_image(128, 128);
  at::Tensor other = test_image(128, 128).flip({2});
  at::Tensor plain = at::avg_pool2d(hr.unsqueeze(0), 4).squeeze(0);
  at::Tensor plain_other = at::avg_pool2d(other.unsqueeze(0), 4).squeeze(0);
  for (uint64_t s = 0; s < 4; ++s) {
    at::Tensor lr = dg::degrade(hr, 4, s);
    EXPECT_LT((lr - plain).pow(2).mean().item<double>(), (lr - plain_other).pow(2).mean().item<double>()) << s;
  }
}

TEST(Degrade, MilderSettingsDegradeLess) {
  // ResShift's testing settings (weak noise, JPEG >= 70, no second order) stay nearer the clean LR.
  dg::Options mild = dg::options_from_json(sinsr::config::parse(R"(
    {"opts": {"blur_kernel_size": 13, "kernel_prob": [0.6, 0.4, 0, 0, 0, 0], "blur_sigma": [0.2, 0.8],
              "betag_range": [1.0, 1.5], "betap_range": [1, 1.2], "blur_kernel_size2": 7,
              "kernel_prob2": [0.6, 0.4, 0, 0, 0, 0], "sinc_prob2": 0.0, "blur_sigma2": [0.2, 0.5],
              "betag_range2": [0.5, 1.0], "betap_range2": [1, 1.2], "final_sinc_prob": 0.2},
     "degradation": {"sf": 4, "resize_range": [0.5, 1.5], "noise_range": [1, 15], "poisson_scale_range": [0.05, 0.3],
                     "jpeg_range": [70, 95], "second_order_prob": 0.0, "jpeg_range2": [80, 100]}})"),
                                           official_sections());
  at::Tensor hr = test_image(128, 128);
  at::Tensor plain = at::avg_pool2d(hr.unsqueeze(0), 4).squeeze(0);
  double err_mild = 0, err_default = 0;
  for (uint64_t s = 0; s < 6; ++s) {
    err_mild += (dg::degrade(hr, 4, s, mild) - plain).pow(2).mean().item<double>();
    err_default += (dg::degrade(hr, 4, s) - plain).pow(2).mean().item<double>();
  }
  EXPECT_LT(err_mild, err_default);
}

// ---------------------------------------------------------------- options

TEST(Options, OfficialYamlLoads) {
  const std::string yaml = R"(
model:
  params: {image_size: 64}
degradation:
  sf: 4
  resize_prob: [0.2, 0.7, 0.1]
  resize_range: [0.15, 1.5]
  gaussian_noise_prob: 0.5
  noise_range: [1, 30]
  poisson_scale_range: [0.05, 3.0]
  gray_noise_prob: 0.4
  jpeg_range: [30, 95]
  second_order_prob: 0.25
  second_blur_prob: 0.8
  resize_prob2: [0.3, 0.4, 0.3]
  resize_range2: [0.3, 1.2]
  gaussian_noise_prob2: 0.5
  noise_range2: [1, 25]
  poisson_scale_range2: [0.05, 2.5]
  gray_noise_prob2: 0.4
  jpeg_range2: [40, 95]
  gt_size: 256
  resize_back: False
  use_sharp: False
data:
  train:
    type: realesrgan
    params:
      dir_paths: []
      blur_kernel_size: 13
      kernel_list: ['iso', 'aniso']
      kernel_prob: [0.6, 0.4]
      sinc_prob: 0.0
      blur_sigma: [0.2, 0.8]
      betag_range: [0.5, 4.0]
      betap_range: [1, 2.0]
      blur_kernel_size2: 7
      kernel_list2: ['iso', 'aniso', 'generalized_iso', 'generalized_aniso', 'plateau_iso', 'plateau_aniso']
      kernel_prob2: [0.45, 0.25, 0.12, 0.03, 0.12, 0.03]
      sinc_prob2: 0.1
      blur_sigma2: [0.2, 1.5]
      betag_range2: [0.5, 4.0]
      betap_range2: [1, 2.0]
      final_sinc_prob: 0.8
)";
  dg::Options o = dg::options_from_json(sinsr::config::parse(yaml, "test.yaml"), official_sections());
  EXPECT_EQ(o.second_order_prob, 0.25);
  EXPECT_EQ(o.jpeg_range2[0], 40);
  EXPECT_EQ(o.blur_kernel_size, 13);
  EXPECT_EQ(o.kernel_list.size(), 2u);
  EXPECT_EQ(o.blur_sigma[1], 0.8);
  EXPECT_EQ(o.blur_kernel_size2, 7);
  dg::Rng rng(1);
  dg::Kernels k = dg::random_kernels(rng, o);
  EXPECT_EQ(k.kernel1.size(0), 13);
  EXPECT_EQ(k.kernel2.size(0), 7);

  // Defaults are the official SinSR values; a flat object works too.
  dg::Options d;
  EXPECT_EQ(d.resize_range[0], 0.15);
  EXPECT_EQ(d.blur_kernel_size, 21);
  EXPECT_EQ(d.kernel_prob[0], 0.45);
  EXPECT_EQ(dg::options_from_json({{"noise_range", {2, 3}}}).noise_range[1], 3);
}

TEST(Options, BadValuesNameTheKey) {
  auto message = [](const nlohmann::json& j) -> std::string {
    try {
      dg::options_from_json(j, official_sections());
    } catch (const sinsr::sdk::Error& e) {
      EXPECT_EQ(e.code(), SINSR_ERR_INVALID_ARGUMENT);
      return e.what();
    }
    return "";
  };
  EXPECT_NE(message({{"degradation", {{"noise_range", "high"}}}}).find("noise_range"), std::string::npos);
  EXPECT_NE(message({{"jpeg_range", {30, 120}}}).find("jpeg_range"), std::string::npos);
  EXPECT_NE(message({{"second_order_prob", 1.5}}).find("second_order_prob"), std::string::npos);
  EXPECT_NE(message({{"resize_prob", {0.5, 0.5}}}).find("resize_prob"), std::string::npos);
  EXPECT_NE(message({{"kernel_prob", {1.0}}}).find("kernel_prob"), std::string::npos);
  EXPECT_NE(message({{"kernel_list2", {"iso", "box"}}, {"kernel_prob2", {1, 1}}}).find("box"), std::string::npos);
  EXPECT_NE(message({{"blur_kernel_size", 20}}).find("blur_kernel_size"), std::string::npos);
  // A size beyond the official 21 took minutes per image (4001: > 100 s); refused by name.
  EXPECT_NE(message({{"blur_kernel_size", 4001}}).find("'blur_kernel_size': must be at most 21"), std::string::npos);
  EXPECT_NE(message({{"blur_kernel_size2", 23}}).find("'blur_kernel_size2': must be at most 21"), std::string::npos);
  EXPECT_EQ(message({{"blur_kernel_size", 21}, {"blur_kernel_size2", 21}}), "");
  EXPECT_NE(message({{"sf", 2.5}}).find("sf"), std::string::npos);
  EXPECT_NE(message(nlohmann::json::array()).find("object"), std::string::npos);
}
