// MATLAB bicubic and the official PSNR/SSIM against imresize_cases.pth / metrics_cases.pth, plus
// properties that hold for any input (no image files needed: this runs without OpenImageIO).
#include "parity.hpp"

#include "imaging/imresize.hpp"
#include "imaging/metrics.hpp"

#include <sinsr/sdk.hpp>

#include <cmath>

namespace {

using namespace sinsr;

template <class F>
sinsr_code code_of(F&& f) {
  try {
    f();
  } catch (const sdk::Error& e) {
    return e.code();
  }
  return SINSR_OK;
}

TEST(Imresize, MatchesBasicsr) {
  auto c = sinsr_test::load("imresize_cases.pth");
  for (std::string name : {"rand", "real"}) {
    at::Tensor x = sinsr_test::tensor(c, name == "real" ? "real_patch" : name);
    at::Tensor down = sinsr_test::tensor(c, name + "_down4_aa"), up = sinsr_test::tensor(c, name + "_up4");
    EXPECT_TRUE(sinsr_test::all_close(imaging::imresize(x, 0.25), down, 1e-6)) << name;
    EXPECT_TRUE(sinsr_test::all_close(imaging::imresize(x, 4.0), up, 1e-6)) << name;
    // The HWC numpy twin holds the same numbers.
    EXPECT_TRUE(sinsr_test::all_close(imaging::imresize(x, 0.25),
                                      sinsr_test::tensor(c, name + "_down4_aa_np_hwc").permute({2, 0, 1}), 1e-6));
    // NCHW batches resize each image alone; float64 in gives float64 out with the same numbers.
    at::Tensor batch = imaging::imresize(at::stack({x, x.flip({1})}), 4.0);
    EXPECT_TRUE(sinsr_test::all_close(batch[0], up, 1e-6)) << name;
    EXPECT_TRUE(sinsr_test::all_close(batch[1], imaging::imresize(x.flip({1}), 4.0), 1e-6)) << name;
    at::Tensor d64 = imaging::imresize(x.to(at::kDouble), 0.25);
    EXPECT_EQ(d64.scalar_type(), at::kDouble);
    EXPECT_TRUE(sinsr_test::all_close(d64, down, 1e-6)) << name;
  }
}

TEST(Imresize, OutputSizeIsCeilAndScaleOneIsIdentity) {
  at::Tensor x = at::rand({2, 37, 29});
  EXPECT_EQ(imaging::imresize(x, 0.25).sizes(), (at::IntArrayRef{2, 10, 8}));
  EXPECT_EQ(imaging::imresize(x, 3.0).sizes(), (at::IntArrayRef{2, 111, 87}));
  EXPECT_EQ(imaging::imresize(x, 0.5, false).sizes(), (at::IntArrayRef{2, 19, 15}));
  EXPECT_TRUE(sinsr_test::all_close(imaging::imresize(x, 1.0), x, 1e-6));
}

TEST(Imresize, ConstantImagesStayConstantAtAnySize) {
  // Rows of weights sum to one, so a flat image stays flat, also where the symmetric boundary
  // has to repeat (images smaller than the kernel, down to 1x1).
  for (auto hw : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {2, 3}, {5, 4}, {17, 9}})
    for (double s : {0.25, 0.5, 2.0, 4.0}) {
      at::Tensor x = at::full({3, hw.first, hw.second}, 0.37f);
      at::Tensor y = imaging::imresize(x, s);
      EXPECT_EQ(y.size(1), int64_t(std::ceil(hw.first * s)));
      EXPECT_TRUE(sinsr_test::all_close(y, at::full_like(y, 0.37f), 1e-6))
          << hw.first << "x" << hw.second << " s=" << s;
    }
}

TEST(Imresize, SymmetricBoundaryRepeatsTheEdge) {
  // MATLAB 'symmetric': sample 0 mirrors to sample 1. Upscaling a 2-sample ramp by 4 with the
  // edge repeated gives the first output 1-based u = 0.625 -> taps at -1,0,1,2 = [b, a, a, b].
  at::Tensor x = at::tensor({0.f, 1.f}).view({1, 1, 2});
  at::Tensor y = imaging::imresize(x, 4.0);
  auto w = [](double d) {
    d = std::abs(d);
    return d <= 1 ? 1.5 * d * d * d - 2.5 * d * d + 1 : d <= 2 ? -0.5 * d * d * d + 2.5 * d * d - 4 * d + 2 : 0.0;
  };
  const double u = 0.625;  // taps at 1-based -1, 0, 1, 2 hold 1, 0, 0, 1 after mirroring
  double num = w(u + 1) * 1 + w(u) * 0 + w(u - 1) * 0 + w(u - 2) * 1, den = w(u + 1) + w(u) + w(u - 1) + w(u - 2);
  EXPECT_NEAR(y[0][0][0].item<double>(), num / den, 1e-6);
  EXPECT_EQ(y.size(2), 8);
}

TEST(Imresize, Uint8ConvenienceRoundsTheFloatResult) {
  at::Tensor u8 = at::randint(0, 256, {3, 23, 19}, at::kByte);
  at::Tensor want = imaging::imresize(u8.to(at::kFloat), 0.25).clamp(0, 255).round().to(at::kByte);
  EXPECT_TRUE(at::equal(imaging::imresize_uint8(u8, 0.25), want));
  at::Tensor up = imaging::imresize_uint8(u8, 4.0);
  EXPECT_EQ(up.scalar_type(), at::kByte);
  EXPECT_EQ(up.sizes(), (at::IntArrayRef{3, 92, 76}));
}

TEST(Imresize, RefusesBadArguments) {
  EXPECT_EQ(code_of([] { imaging::imresize(at::rand({3, 8, 8}), 0.0); }), SINSR_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(code_of([] { imaging::imresize(at::rand({3, 8, 8}), std::nan("")); }), SINSR_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(code_of([] { imaging::imresize(at::rand({8, 8}), 2.0); }), SINSR_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(code_of([] { imaging::imresize(at::zeros({3, 8, 8}, at::kByte), 2.0); }), SINSR_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(code_of([] { imaging::imresize_uint8(at::rand({3, 8, 8}), 2.0); }), SINSR_ERR_INVALID_ARGUMENT);
}

TEST(Metrics, MatchTheOfficialFunctions) {
  auto c = sinsr_test::load("metrics_cases.pth");
  auto pairs = sinsr_test::at_key(c, "pairs").toList();
  ASSERT_GT(pairs.size(), 0u);
  for (size_t i = 0; i < pairs.size(); ++i) {
    c10::IValue p = pairs.get(i);
    at::Tensor a = sinsr_test::tensor(p, "im1"), b = sinsr_test::tensor(p, "im2");
    for (int y : {0, 1})
      for (int border : {0, 4}) {
        std::string sfx = "_ycbcr" + std::to_string(y) + "_border" + std::to_string(border);
        double want_p = sinsr_test::at_key(p, "psnr" + sfx).toDouble();
        double want_s = sinsr_test::at_key(p, "ssim" + sfx).toDouble();
        EXPECT_NEAR(metrics::psnr(a, b, border, y), want_p, 1e-6) << i << sfx;
        EXPECT_NEAR(metrics::ssim(a, b, border, y), want_s, 1e-7) << i << sfx;
        metrics::Scores s = metrics::evaluate(a, b, border, y ? metrics::Mode::y : metrics::Mode::rgb);
        EXPECT_NEAR(s.psnr, want_p, 1e-6) << i << sfx;
        EXPECT_NEAR(s.ssim, want_s, 1e-7) << i << sfx;
      }
    EXPECT_NEAR(metrics::batch_psnr(sinsr_test::tensor(p, "t_im1"), sinsr_test::tensor(p, "t_im2")),
                sinsr_test::at_key(p, "batch_psnr_ycbcr").toDouble(), 1e-6);
    EXPECT_NEAR(metrics::batch_ssim(sinsr_test::tensor(p, "t_im1"), sinsr_test::tensor(p, "t_im2")),
                sinsr_test::at_key(p, "batch_ssim_ycbcr").toDouble(), 1e-7);
  }
  auto bf = sinsr_test::at_key(c, "batch_float");
  at::Tensor im = sinsr_test::tensor(bf, "im"), ref = sinsr_test::tensor(bf, "ref");
  EXPECT_NEAR(metrics::batch_psnr(im, ref), sinsr_test::at_key(bf, "batch_psnr_ycbcr_sum").toDouble(), 1e-6);
  EXPECT_NEAR(metrics::batch_ssim(im, ref), sinsr_test::at_key(bf, "batch_ssim_ycbcr_sum").toDouble(), 1e-7);
  EXPECT_NEAR(metrics::batch_psnr(im, ref, false), sinsr_test::at_key(bf, "batch_psnr_rgb_sum").toDouble(), 1e-6);
}

TEST(Metrics, YChannelOfGrayIsTheReplicatedRgb) {
  at::Tensor g = at::randint(0, 256, {20, 24}, at::kByte), h = at::randint(0, 256, {20, 24}, at::kByte);
  at::Tensor rg = g.unsqueeze(2).expand({-1, -1, 3}).contiguous(), rh = h.unsqueeze(2).expand({-1, -1, 3}).contiguous();
  EXPECT_TRUE(at::equal(metrics::rgb_to_y_uint8(g), metrics::rgb_to_y_uint8(rg)));
  // Y of gray v is round(16 + 219 v / 255): 0 -> 16, 255 -> 235.
  EXPECT_EQ(metrics::rgb_to_y_uint8(at::full({1, 1}, 255, at::kByte)).item<int>(), 235);
  EXPECT_EQ(metrics::rgb_to_y_uint8(at::zeros({1, 1}, at::kByte)).item<int>(), 16);
  EXPECT_DOUBLE_EQ(metrics::psnr(g, h, 2, true), metrics::psnr(rg, rh, 2, true));
  EXPECT_DOUBLE_EQ(metrics::ssim(g, h, 2, true), metrics::ssim(rg, rh, 2, true));
  // A gray image against a colour one: the gray side is replicated.
  EXPECT_DOUBLE_EQ(metrics::psnr(g.unsqueeze(2), rh, 0, true), metrics::psnr(rg, rh, 0, true));
  EXPECT_DOUBLE_EQ(metrics::psnr_pyiqa(g, rh, 0), metrics::psnr_pyiqa(rg, rh, 0));
}

TEST(Metrics, PyiqaUsesTheUnroundedY) {
  // +1 on every channel moves the unrounded Y by exactly 219/255; the rounded Y of the
  // official functions moves by 0 or 1, so the two PSNRs differ.
  at::Tensor a = at::randint(0, 255, {32, 40, 3}, at::kByte), b = a + 1;
  const double dy = 219.0 / 255.0;
  EXPECT_NEAR(metrics::psnr_pyiqa(a, b), 10 * std::log10(255.0 * 255.0 / (dy * dy + 1e-8)), 1e-3);
  EXPECT_NEAR(metrics::psnr_pyiqa(a, b, 4), 10 * std::log10(255.0 * 255.0 / (dy * dy + 1e-8)), 1e-3);
  EXPECT_GT(std::abs(metrics::psnr(a, b, 0, true) - metrics::psnr_pyiqa(a, b)), 0.1);
  // eps keeps identical images finite: 10 log10(255^2 / 1e-8).
  EXPECT_NEAR(metrics::psnr_pyiqa(a, a), 10 * std::log10(255.0 * 255.0 / 1e-8), 1e-2);
  EXPECT_TRUE(std::isinf(metrics::psnr(a, a)));
  EXPECT_NEAR(metrics::ssim_pyiqa(a, a), 1.0, 1e-12);
  EXPECT_EQ(metrics::parse_mode("pyiqa"), metrics::Mode::pyiqa);
  metrics::Scores s = metrics::evaluate(a, b, 0, metrics::Mode::pyiqa);
  EXPECT_DOUBLE_EQ(s.psnr, metrics::psnr_pyiqa(a, b));
}

TEST(Metrics, PyiqaSsimClipsNegativeStructure) {
  // A checkerboard against its inverse: the structure term is negative, so the official SSIM is
  // negative while pyiqa's ReLU makes its map (and mean) zero.
  at::Tensor idx = at::arange(32);
  at::Tensor board = ((idx.view({32, 1}) + idx.view({1, 32})) % 2).to(at::kByte) * 200 + 20;
  at::Tensor inv = (at::full_like(board, 240) - board).to(at::kByte) + 20;
  at::Tensor a = board.unsqueeze(2).expand({-1, -1, 3}).contiguous(),
             b = inv.unsqueeze(2).expand({-1, -1, 3}).contiguous();
  EXPECT_LT(metrics::ssim(a, b, 0, true), 0.0);
  EXPECT_NEAR(metrics::ssim_pyiqa(a, b), 0.0, 1e-12);
}

// A textured uint8 image: bicubic upscale of random 12x10 pixels, so it has edges at several scales.
at::Tensor textured(int64_t seed) {
  at::manual_seed(seed);
  at::Tensor small = at::rand({3, 12, 10}) * 160.0 + 48.0;
  return imaging::imresize(small, 4.0).clamp(0, 255).round().to(at::kByte).permute({1, 2, 0}).contiguous();
}

TEST(Detail, IsExactlyOneAgainstItself) {
  at::Tensor x = textured(1);
  for (int border : {0, 4}) EXPECT_EQ(metrics::detail(x, x, border), 1.0) << border;
  EXPECT_EQ(metrics::detail(x.select(2, 1), x.select(2, 1), 0), 1.0);  // gray
}

TEST(Detail, BlurLowersItAndNoiseRaisesIt) {
  at::Tensor x = textured(2);
  // Gaussian blur, sigma 1.5, 7x7 window, reflect padding, applied per channel.
  at::Tensor g = at::arange(-3, 4, at::kFloat);
  g = at::exp(-g * g / (2 * 1.5 * 1.5));
  g = g / g.sum();
  at::Tensor k = (g.view({7, 1}) * g.view({1, 7})).view({1, 1, 7, 7}).expand({3, 1, 7, 7}).contiguous();
  at::Tensor nchw = x.permute({2, 0, 1}).unsqueeze(0).to(at::kFloat);
  at::Tensor blurred = at::conv2d(at::reflection_pad2d(nchw, {3, 3, 3, 3}), k, at::Tensor(), at::IntArrayRef{1},
                                  at::IntArrayRef{0}, at::IntArrayRef{1}, 3);
  at::Tensor b8 = blurred[0].permute({1, 2, 0}).clamp(0, 255).round().to(at::kByte).contiguous();
  const double db = metrics::detail(b8, x, 4);
  EXPECT_LT(db, 0.9);
  EXPECT_GT(db, 0.0);
  // Noise adds gradient, the more the stronger it is.
  at::manual_seed(3);
  at::Tensor n = at::randn(x.sizes());
  auto noisy = [&](float sigma) { return (x.to(at::kFloat) + sigma * n).clamp(0, 255).round().to(at::kByte); };
  const double d5 = metrics::detail(noisy(5), x, 4), d20 = metrics::detail(noisy(20), x, 4);
  EXPECT_GT(d5, 1.0) << d5;
  EXPECT_GT(d20, d5 + 0.05) << d5 << " " << d20;
  RecordProperty("detail_blur_noise5_noise20",
                 std::to_string(db) + " " + std::to_string(d5) + " " + std::to_string(d20));
  // Swapping the roles inverts the ratio.
  EXPECT_NEAR(metrics::detail(x, b8, 4), 1.0 / db, 1e-12);
}

TEST(Detail, FlatGroundTruthIsNan) {
  at::Tensor flat = at::full({20, 20, 3}, 128, at::kByte);
  EXPECT_EQ(metrics::mean_gradient(flat), 0.0);
  EXPECT_TRUE(std::isnan(metrics::detail(textured(4).narrow(0, 0, 20).narrow(1, 0, 20), flat, 2)));
  EXPECT_TRUE(std::isnan(metrics::detail(flat, flat, 0)));
  // A flat prediction against a textured ground truth is a plain 0.
  EXPECT_EQ(metrics::detail(flat, textured(4).narrow(0, 0, 20).narrow(1, 0, 20), 2), 0.0);
}

TEST(Detail, HandComputedFiveByFive) {
  // Gray 0/255 images: Y is 16/235, a step of d = 219 (Sobel ignores the offset 16).
  // HR: a vertical edge between columns 1 and 2. On the 3x3 valid responses gx = 4d in the
  // columns centred on 1 and 2, 0 in column 3, gy = 0: mean |grad| = (6 * 4d) / 9 = 8d/3 = 584.
  // SR: one bright pixel in the centre: the 4 corner responses have |(d, d)| = sqrt(2) d, the 4
  // edge ones 2d, the centre 0: mean = (4 sqrt(2) + 8) d / 9.
  // detail = ((4 sqrt(2) + 8) / 9) / (8 / 3) = (2 + sqrt(2)) / 6 = 0.569036...
  at::Tensor hr = at::zeros({5, 5}, at::kByte), sr = at::zeros({5, 5}, at::kByte);
  hr.narrow(1, 2, 3).fill_(255);
  sr[2][2] = 255;
  EXPECT_DOUBLE_EQ(metrics::mean_gradient(hr), 584.0);
  EXPECT_NEAR(metrics::mean_gradient(sr), (4 * std::sqrt(2.0) + 8) * 219 / 9, 1e-9);
  EXPECT_NEAR(metrics::detail(sr, hr), (2 + std::sqrt(2.0)) / 6, 1e-12);
  EXPECT_NEAR(metrics::detail(sr.unsqueeze(2).expand({-1, -1, 3}), hr), (2 + std::sqrt(2.0)) / 6,
              1e-12);  // RGB == gray
  // The border crop is that of PSNR: a 2-pixel frame of anything around both is cut away.
  at::Tensor hr9 = at::randint(0, 256, {9, 9}, at::kByte), sr9 = at::randint(0, 256, {9, 9}, at::kByte);
  hr9.narrow(0, 2, 5).narrow(1, 2, 5).copy_(hr);
  sr9.narrow(0, 2, 5).narrow(1, 2, 5).copy_(sr);
  EXPECT_NEAR(metrics::detail(sr9, hr9, 2), (2 + std::sqrt(2.0)) / 6, 1e-12);
  // Less than 3x3 left after the crop is refused.
  EXPECT_EQ(code_of([&] { metrics::detail(sr9, hr9, 4); }), SINSR_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(code_of([&] { metrics::detail(sr, hr9); }), SINSR_ERR_INVALID_ARGUMENT);
}

TEST(Metrics, RefuseMismatchedOrTooSmallInputs) {
  at::Tensor a = at::zeros({16, 16, 3}, at::kByte);
  EXPECT_EQ(code_of([&] { metrics::psnr(a, at::zeros({16, 15, 3}, at::kByte)); }), SINSR_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(code_of([&] { metrics::psnr(a, a.to(at::kFloat)); }), SINSR_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(code_of([&] { metrics::psnr(a, a, 8); }), SINSR_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(code_of([&] {
              metrics::ssim(at::zeros({8, 8, 3}, at::kByte), at::zeros({8, 8, 3}, at::kByte));
            }),
            SINSR_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(code_of([] { metrics::parse_mode("ycbcr"); }), SINSR_ERR_INVALID_ARGUMENT);
}

}  // namespace
