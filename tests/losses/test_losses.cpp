// Loss plugins across the ABI: values and gradients equal LibTorch autograd on the formula.
#include "parity.hpp"

#include "runtime.hpp"

namespace {

using sinsr::host::LossHandle;
using nlohmann::json;

sinsr::host::Runtime& runtime() {
  static auto* rt = [] {
    auto* r = new sinsr::host::Runtime(1);
    r->load_dir(SINSR_PLUGIN_DIR);
    return r;
  }();
  return *rt;
}

at::Tensor reference(const std::string& name, const at::Tensor& d, double eps) {
  if (name == "mse") return d * d;
  if (name == "l1") return d.abs();
  return (d * d + eps * eps).sqrt();
}

class LossAbi : public ::testing::TestWithParam<std::string> {};

TEST_P(LossAbi, ForwardAndBackwardMatchAutograd) {
  const std::string name = GetParam();
  at::manual_seed(1);
  at::Tensor pred = at::randn({3, 2, 5, 4}), target = at::randn({3, 2, 5, 4});
  for (std::string reduction : {"mean", "sum", "per_sample"}) {
    LossHandle loss(runtime().find(SINSR_KIND_LOSS, name), json{{"reduction", reduction}, {"eps", 0.1}, {"weight", 0.5}});
    auto [value, tape] = loss.forward_train(pred, target);
    at::Tensor g = at::rand(value.sizes());
    at::Tensor grad = loss.backward(std::move(tape), g);

    at::Tensor p = pred.clone().set_requires_grad(true);
    at::Tensor r = reference(name, p - target, 0.1);
    r = reduction == "sum" ? r.sum() : reduction == "mean" ? r.mean() : r.reshape({3, -1}).mean(1);
    r = r * 0.5;
    r.backward(g);
    EXPECT_TRUE(sinsr_test::all_close(value, r.detach(), 1e-6, 1e-6)) << name << " " << reduction;
    EXPECT_TRUE(sinsr_test::all_close(grad, p.grad(), 1e-6, 1e-6)) << name << " " << reduction;
    EXPECT_TRUE(loss.forward(pred, target).equal(value));
  }
}

INSTANTIATE_TEST_SUITE_P(Pointwise, LossAbi, ::testing::Values("mse", "l1", "charbonnier"));

TEST(Losses, BadConfigAndShapesAreErrors) {
  EXPECT_THROW(LossHandle(runtime().find(SINSR_KIND_LOSS, "mse"), json{{"reduction", "median"}}), sinsr::sdk::Error);
  EXPECT_THROW(LossHandle(runtime().find(SINSR_KIND_LOSS, "l1"), json{{"epsilon", 1}}), sinsr::sdk::Error);
  LossHandle mse(runtime().find(SINSR_KIND_LOSS, "mse"), json::object());
  EXPECT_THROW(mse.forward(at::zeros({2, 3}), at::zeros({3, 2})), sinsr::sdk::Error);
}

}  // namespace
