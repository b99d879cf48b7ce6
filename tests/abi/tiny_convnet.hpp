// A small conv net shared by the test plugin and the tests that train it directly with
// LibTorch, so both sides run the very same module.
#pragma once

#include <torch/nn/functional/activation.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>

struct TinyConvNetImpl : torch::nn::Module {
  explicit TinyConvNetImpl(int64_t seed) {
    torch::manual_seed(seed);
    conv1 = register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(6, 8, 3).padding(1)));
    conv2 = register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(8, 3, 3).padding(1)));
    register_buffer("step_scale", torch::full({1}, 0.05));
  }
  // f(x, cond, t) = conv2(silu(conv1([x, cond]) + 0.05 t))
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cond, const torch::Tensor& t) {
    auto h = conv1->forward(torch::cat({x, cond}, 1));
    h = h + named_buffers()["step_scale"] * t.to(h.scalar_type()).view({-1, 1, 1, 1});
    return conv2->forward(torch::nn::functional::silu(h));
  }
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
};
TORCH_MODULE(TinyConvNet);
