// MATLAB bicubic and the official PSNR/SSIM against imresize_cases.pth / metrics_cases.pth.
#include "parity.hpp"

#include "imresize.hpp"
#include "metrics.hpp"

namespace {

using namespace sinsr;

TEST(Imresize, MatchesBasicsr) {
  auto c = sinsr_test::load("imresize_cases.pth");
  for (std::string name : {"rand", "real"}) {
    at::Tensor x = sinsr_test::tensor(c, name == "real" ? "real_patch" : name);
    EXPECT_TRUE(sinsr_test::all_close(imaging::imresize(x, 0.25), sinsr_test::tensor(c, name + "_down4_aa"), 1e-6)) << name;
    EXPECT_TRUE(sinsr_test::all_close(imaging::imresize(x, 4.0), sinsr_test::tensor(c, name + "_up4"), 1e-6)) << name;
    EXPECT_TRUE(sinsr_test::all_close(imaging::imresize(x.unsqueeze(0), 0.25).squeeze(0),
                                      sinsr_test::tensor(c, name + "_down4_aa_np_hwc").permute({2, 0, 1}), 1e-6));
  }
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

}  // namespace
