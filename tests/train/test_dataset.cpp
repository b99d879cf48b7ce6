// The training reader: batches are pure functions of (seed, rank, step), LR images come from the
// chosen degradation at HR/scale, and an unknown degradation is refused by name.
#include "host_run.hpp"
#include "parity.hpp"

#include "imaging/imresize.hpp"
#include "io/image_io.hpp"
#include "train/dataset.hpp"

#include <sinsr/sdk.hpp>

#include <filesystem>

namespace {

using sinsr::train::Dataset;
using sinsr::train::DatasetOptions;

DatasetOptions options(const std::string& degradation) {
  DatasetOptions o;
  o.folders = {sinsr_test::data_dir() + "/set5/hr"};
  o.gt_size = 32;
  o.batch_size = 3;
  o.degradation = degradation;
  o.seed = 7;
  return o;
}

class DatasetTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(sinsr_test::data_dir() + "/set5/hr")) GTEST_SKIP();
  }
};

TEST_P(DatasetTest, BatchesAreShapedRangedAndReproducible) {
  Dataset a(options(GetParam())), b(options(GetParam()));
  ASSERT_EQ(a.size(), 5u);
  auto x = a.batch(3), y = b.batch(3), z = a.batch(4);
  ASSERT_EQ(x.hr.sizes(), (at::IntArrayRef{3, 3, 32, 32}));
  ASSERT_EQ(x.lr.sizes(), (at::IntArrayRef{3, 3, 8, 8}));
  EXPECT_GE(x.lr.min().item<float>(), -1.f);
  EXPECT_LE(x.lr.max().item<float>(), 1.f);
  EXPECT_TRUE(x.hr.equal(y.hr));
  EXPECT_TRUE(x.lr.equal(y.lr));
  EXPECT_FALSE(x.hr.equal(z.hr));
}

INSTANTIATE_TEST_SUITE_P(Degradations, DatasetTest, ::testing::Values("bicubic", "realesrgan"));

TEST(Dataset, RealEsrganDiffersFromBicubicOnTheSameCrops) {
  if (!std::filesystem::exists(sinsr_test::data_dir() + "/set5/hr")) GTEST_SKIP();
  Dataset bic(options("bicubic")), real(options("realesrgan"));
  auto p = bic.batch(0), q = real.batch(0);
  EXPECT_TRUE(p.hr.equal(q.hr));  // the degradation does not move the crops
  EXPECT_GT((p.lr - q.lr).abs().mean().item<float>(), 1e-3f);
}

TEST(Dataset, RefusesUnknownDegradationsAndBadOptions) {
  if (!std::filesystem::exists(sinsr_test::data_dir() + "/set5/hr")) GTEST_SKIP();
  try {
    Dataset d(options("gaussian"));
    FAIL() << "accepted an unknown degradation";
  } catch (const sinsr::sdk::Error& e) {
    EXPECT_EQ(e.code(), SINSR_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find("gaussian"), std::string::npos);
  }
  auto o = options("realesrgan");
  o.degradation_options.sinc_prob = 2.0;
  EXPECT_THROW(Dataset{o}, sinsr::sdk::Error);
}

TEST(Dataset, MaxSideShrinksLargePhotosOnceAtLoad) {
  // A 96x128 photo with max_side 64 becomes 48x64; 48x48 crops then span its whole height, so
  // one of the 17 column offsets must match the shrunk photo exactly.
  auto dir = sinsr_test::fresh_dir("dataset_max_side");
  at::manual_seed(3);
  at::Tensor photo = at::rand({3, 96, 128});
  sinsr::io::write_image((dir / "photo.png").string(), photo);
  photo = sinsr::io::read_image((dir / "photo.png").string()).pixels;  // as quantised on disk

  DatasetOptions o;
  o.folders = {dir.string()};
  o.gt_size = 48;
  o.batch_size = 1;
  o.flips = false;
  o.max_sides = {64};
  auto b = Dataset(o).batch(0);
  at::Tensor want = sinsr::imaging::imresize(photo, 0.5).clamp(0, 1).mul(255).round().div(255);
  ASSERT_EQ(b.hr.sizes(), (at::IntArrayRef{1, 3, 48, 48}));
  double best = 1e9;
  for (int64_t x = 0; x <= 16; ++x)
    best = std::min(best, (b.hr[0].add(1).div(2) - want.narrow(2, x, 48)).abs().max().item<double>());
  EXPECT_LT(best, 1e-5);

  o.max_sides = {0};  // as they are: crops of the full-size photo differ from every shrunk one
  auto full = Dataset(o).batch(0);
  EXPECT_FALSE(full.hr.equal(b.hr));
  o.max_sides = {32};  // below the crop size
  EXPECT_THROW(Dataset{o}, sinsr::sdk::Error);
  o.max_sides = {};
  EXPECT_THROW(Dataset{o}, sinsr::sdk::Error);
}

TEST(Dataset, SeveralMaxSidesKeepOneCopyPerSize) {
  auto dir = sinsr_test::fresh_dir("dataset_max_sides");
  at::manual_seed(4);
  sinsr::io::write_image((dir / "photo.png").string(), at::rand({3, 96, 128}));
  at::Tensor photo = sinsr::io::read_image((dir / "photo.png").string()).pixels;
  DatasetOptions o;
  o.folders = {dir.string()};
  o.gt_size = 48;
  o.batch_size = 1;
  o.flips = false;
  o.max_sides = {64, 0};
  EXPECT_EQ(Dataset(o).size(), 2u);
  o.max_sides = {64, 64, 128, 500};  // 128 and 500 both leave the photo as it is: one copy
  EXPECT_EQ(Dataset(o).size(), 2u);

  // Draws visit every copy. The photo is noise, so each copy has its own roughness (mean
  // |horizontal difference|): shrinking averages neighbours away.
  o.max_sides = {64, 96, 0};
  Dataset three(o);
  ASSERT_EQ(three.size(), 3u);
  auto roughness = [](const at::Tensor& img) {
    return (img.narrow(-1, 1, img.size(-1) - 1) - img.narrow(-1, 0, img.size(-1) - 1)).abs().mean().item<double>();
  };
  const double copies[] = {roughness(sinsr::imaging::imresize(photo, 0.5).clamp(0, 1)),
                           roughness(sinsr::imaging::imresize(photo, 0.75).clamp(0, 1)), roughness(photo)};
  std::vector<int> drawn(3, 0);
  for (int64_t step = 0; step < 60; ++step) {
    const double r = roughness(three.batch(step).hr.add(1).div(2));
    int nearest = 0;
    for (int c = 1; c < 3; ++c)
      if (std::abs(r - copies[c]) < std::abs(r - copies[nearest])) nearest = c;
    EXPECT_LT(std::abs(r - copies[nearest]), 0.25 * std::abs(copies[2] - copies[0])) << "step " << step;
    ++drawn[nearest];
  }
  for (int c = 0; c < 3; ++c) EXPECT_GT(drawn[c], 5) << "copy " << c;
  o.max_sides = {64, 32};
  EXPECT_THROW(Dataset{o}, sinsr::sdk::Error);
}

}  // namespace
