// Test components written with the SDK: a trainable conv net and a backbone that throws.
#include <sinsr/sdk.hpp>

#include "tiny_convnet.hpp"

#include <cmath>
#include <stdexcept>

namespace {

class ConvNetBackbone : public sinsr::sdk::Backbone {
 public:
  explicit ConvNetBackbone(const nlohmann::json& config) : net_(config.value("seed", 0)) {}
  torch::nn::Module& module() override { return *net_; }
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cond, const at::Tensor& t) override {
    // Pixel-space pipelines condition on the LR image: bring it to x's size.
    at::Tensor c = cond.size(2) == x.size(2) ? cond : at::upsample_nearest2d(cond, {x.size(2), x.size(3)});
    return net_->forward(x, c, t);
  }

 private:
  TinyConvNet net_;
};

class Thrower : public sinsr::sdk::Backbone {
 public:
  explicit Thrower(const nlohmann::json&) {}
  torch::nn::Module& module() override { return module_; }
  at::Tensor forward(const at::Tensor&, const at::Tensor&, const at::Tensor&) override {
    throw std::runtime_error("boom in forward");
  }

 private:
  torch::nn::Module module_;
};

// A local, noise-independent "denoiser" for tiling tests: a 3x3 box blur of the nearest-
// upsampled conditioning image. Tiled and untiled runs must agree away from tile borders.
class LocalBlur : public sinsr::sdk::Backbone {
 public:
  explicit LocalBlur(const nlohmann::json&) {}
  torch::nn::Module& module() override { return module_; }
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cond, const at::Tensor&) override {
    auto up = at::upsample_nearest2d(cond, {x.size(2), x.size(3)});
    return at::avg_pool2d(up, {3, 3}, {1, 1}, {1, 1}, false, /*count_include_pad=*/false);
  }

 private:
  torch::nn::Module module_;
};

// LocalBlur with one NaN sample: what an overflowing network (fp16, a huge weight) returns.
class NanSpot : public LocalBlur {
 public:
  using LocalBlur::LocalBlur;
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cond, const at::Tensor& t) override {
    at::Tensor out = LocalBlur::forward(x, cond, t).clone();
    out.index_put_({0, 0, 0, 0}, std::nan(""));
    return out;
  }
};

}  // namespace

SINSR_PLUGIN("test_components", "1.0.0") {
  plugin.add_backbone<ConvNetBackbone>({"tiny_convnet", "1.0.0", "two-layer conv net for ABI training tests",
                                        R"({"seed": {"type": "integer", "default": 0}})"});
  plugin.add_backbone<LocalBlur>({"local_blur", "1.0.0", "3x3 blur of the upsampled condition (tiling tests)"});
  plugin.add_backbone<NanSpot>({"nan_spot", "1.0.0", "local_blur with one NaN sample (non-finite output tests)"});
  plugin.add_backbone<Thrower>({"thrower", "1.0.0", "a backbone whose forward always throws"});
}
