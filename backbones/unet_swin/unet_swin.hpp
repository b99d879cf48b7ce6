// UNetModelSwin (ResShift / SinSR denoiser) as a LibTorch module whose state_dict names,
// shapes and dtypes are the official ones, so official checkpoints load unchanged.
#pragma once

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <nlohmann/json.hpp>

#include <memory>
#include <vector>

namespace sinsr {
namespace unet_swin {

// The official `model.params` keys; defaults are configs/SinSR.yaml's.
struct Options {
  int image_size = 64;
  int in_channels = 6;
  int model_channels = 160;
  int out_channels = 3;
  std::vector<int> num_res_blocks = {2, 2, 2, 2};
  std::vector<int> attention_resolutions = {64, 32, 16, 8};
  bool cond_lq = true;
  double dropout = 0;
  std::vector<int> channel_mult = {1, 2, 2, 4};
  bool conv_resample = true;
  int num_heads = 1;
  int num_head_channels = 32;
  bool use_scale_shift_norm = true;
  int swin_depth = 2;
  int swin_embed_dim = 192;
  int window_size = 8;
  double mlp_ratio = 4;
  // Not an official key: when > 0 the output is a residual over the bicubic-upsampled lq,
  // folded as a space_to_depth codec folds it (x0 = f(...) + unshuffle(bicubic(lq, up), fold)).
  // With the out conv zero-initialised, an untrained network starts at bicubic.
  int residual_upscale = 0;
  int residual_unshuffle = 1;

  static Options from_json(const nlohmann::json& params);
};

class UNetModelSwin : public torch::nn::Module {
 public:
  explicit UNetModelSwin(const Options& options);
  // x: [N,3,H,W] (already scaled), t: [N] int64 step indices, lq: [N,3,h,w] in [-1,1] or undefined.
  at::Tensor forward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& lq);
  // fp16/bf16 for the torso's convolutions and linears (the official fp16 mode); fp32 elsewhere.
  void set_precision(c10::Device device, at::ScalarType torso);
  const Options& options() const { return o_; }

  struct Block;  // one entry of input_blocks / output_blocks / middle_block

 private:
  Options o_;
  at::ScalarType torso_ = at::kFloat;
  std::shared_ptr<torch::nn::Module> time_embed_, out_;
  std::vector<std::shared_ptr<Block>> input_blocks_, output_blocks_;
  std::shared_ptr<Block> middle_;
};

// The sinusoidal timestep embedding, [cos | sin], of the raw integer steps.
at::Tensor timestep_embedding(const at::Tensor& t, int64_t dim);
// The official shifted-window mask (see spec: depends on the local column in the last window row).
at::Tensor shifted_window_mask(int64_t height, int64_t width, int64_t window, int64_t shift);

}  // namespace unet_swin
}  // namespace sinsr
