// The "direct" sampler through the plugin's C function table: one denoise call on y at t = 0,
// its result returned unchanged, nothing drawn, one step only, and the regression pair as the
// training example.
#include <gtest/gtest.h>

#include "plugin_runtime.hpp"

#include <sinsr/sdk.hpp>

namespace {

using json = nlohmann::json;
using sinsr::host::SamplerHandle;

SamplerHandle handle(int steps = 0) {
  return SamplerHandle(sinsr_test::plugin_runtime().find(SINSR_KIND_SAMPLER, "direct"), json::object(), steps);
}

TEST(Direct, OneCallOnYAtStepZero) {
  SamplerHandle h = handle();
  EXPECT_EQ(h.num_steps(), 1);
  const at::Tensor y = at::randn({2, 3, 5, 7});
  int calls = 0, progress = 0, draws = 0;
  sinsr::sdk::SampleCallbacks cb;
  cb.denoise = [&](const at::Tensor& x, const at::Tensor& t) {
    ++calls;
    EXPECT_TRUE(at::equal(x, y));
    EXPECT_EQ(t.scalar_type(), at::kLong);
    EXPECT_TRUE(at::equal(t, at::zeros({2}, at::kLong)));
    return x.tanh() * 0.5;
  };
  cb.noise = [&](const at::Tensor& like) {
    ++draws;
    return at::randn_like(like);
  };
  cb.progress = [&](int step, int total) {
    EXPECT_EQ(step, 1);
    EXPECT_EQ(total, 1);
    ++progress;
    return true;
  };
  const at::Tensor prior = h.prior(y, at::randn_like(y));
  EXPECT_TRUE(at::equal(prior, y)) << "the prior is the condition, no noise added";
  const at::Tensor out = h.sample(y, prior, cb);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(progress, 1);
  EXPECT_EQ(draws, 0);
  EXPECT_TRUE(at::allclose(out, y.tanh() * 0.5));
}

TEST(Direct, WrongShapedDenoiseResultIsRefused) {
  SamplerHandle h = handle();
  const at::Tensor y = at::randn({1, 3, 4, 4});
  sinsr::sdk::SampleCallbacks cb;
  cb.denoise = [](const at::Tensor& x, const at::Tensor&) { return x.narrow(1, 0, 1); };
  cb.noise = [](const at::Tensor& like) { return at::randn_like(like); };
  try {
    h.sample(y, y, cb);
    FAIL() << "a [1, 1, 4, 4] result for a [1, 3, 4, 4] input was taken";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("denoise"), std::string::npos) << e.what();
  }
}

TEST(Direct, RunsExactlyOneStep) {
  EXPECT_NO_THROW(handle(1));
  try {
    handle(4);
    FAIL() << "respacing to 4 steps was taken";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("one step"), std::string::npos) << e.what();
  }
}

TEST(Direct, TrainingExampleIsTheRegressionPair) {
  SamplerHandle h = handle();
  const at::Tensor x0 = at::randn({3, 3, 4, 4}), y = at::randn({3, 3, 4, 4});
  sinsr::sdk::SampleCallbacks cb;
  cb.noise = [](const at::Tensor& like) { return at::randn_like(like); };
  cb.uniform = [](int64_t n) { return at::rand({n}, at::kDouble); };
  const auto ex = h.training_example(x0, y, cb);
  EXPECT_TRUE(at::equal(ex.x_in, y));
  EXPECT_TRUE(at::equal(ex.target, x0));
  EXPECT_TRUE(at::equal(ex.t, at::zeros({3}, at::kLong)));
}

}  // namespace
