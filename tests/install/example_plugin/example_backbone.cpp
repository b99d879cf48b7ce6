// A backbone that trains, in one file: the smallest network the runtime can diffuse with. The
// SDK gives it the C tables, autograd tapes, state listing (its parameter names are its
// checkpoint keys), weight loading and error handling; it only says what forward() computes.
#include <sinsr/sdk.hpp>

#include <torch/torch.h>

namespace {

struct TinyNet : torch::nn::Module {
  explicit TinyNet(int64_t width) {
    // x_t (3 channels), the LR brought to x_t's size (3) and the timestep as a plane (1).
    head = register_module("head", torch::nn::Conv2d(torch::nn::Conv2dOptions(7, width, 3).padding(1)));
    body = register_module("body", torch::nn::Conv2d(torch::nn::Conv2dOptions(width, width, 3).padding(1)));
    tail = register_module("tail", torch::nn::Conv2d(torch::nn::Conv2dOptions(width, 3, 3).padding(1)));
  }
  torch::nn::Conv2d head{nullptr}, body{nullptr}, tail{nullptr};
};

class ExampleBackbone : public sinsr::sdk::Backbone {
 public:
  explicit ExampleBackbone(const nlohmann::json& config)
      : net_(std::make_shared<TinyNet>(config.value("width", 16))), steps_(config.value("steps", 15)) {}
  torch::nn::Module& module() override { return *net_; }
  // x: [N,3,H,W] (pixel space: no codec); cond: the LR image in [-1, 1] at LR size; t: int64 [N].
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cond, const at::Tensor& t) override {
    namespace F = torch::nn::functional;
    at::Tensor lq = F::interpolate(
        cond, F::InterpolateFuncOptions().size(std::vector<int64_t>{x.size(2), x.size(3)}).mode(torch::kNearest));
    at::Tensor plane =
        (t.to(x.scalar_type()) / double(steps_)).view({-1, 1, 1, 1}).expand({x.size(0), 1, x.size(2), x.size(3)});
    at::Tensor h = torch::relu(net_->head(at::cat({x, lq, plane}, 1)));
    h = h + torch::relu(net_->body(h));
    return lq + net_->tail(h);  // x0 prediction: the LR plus a learned correction
  }

 private:
  std::shared_ptr<TinyNet> net_;
  int steps_;
};

}  // namespace

SINSR_PLUGIN("example_backbone", "0.1.0") {
  plugin.add_backbone<ExampleBackbone>({"example_convnet", "0.1.0",
                                        "three convolutions predicting x0 in pixel space (an out-of-tree example)",
                                        R"json({"width": {"type": "integer", "default": 16, "doc": "feature channels"},
           "steps": {"type": "integer", "default": 15, "doc": "the sampler's chain length (scales t)"}})json"});
}
