// The SR3 UNet (novwaul/SR3, UNet/model.py) as a LibTorch module whose state_dict names and
// shapes are the reference's, so its checkpoints load unchanged. It predicts the noise eps from
// cat(x_t, bicubic-upsampled LR) and the continuous noise level gamma = sqrt(alpha_bar).
#pragma once

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

namespace sinsr {
namespace sr3_unet {

// The component's native config; defaults are the reference constructor's (C = 64).
struct Options {
  int model_channels = 64;  // C
  std::vector<int> channel_expansions = {1, 2, 4, 4, 8, 8};
  int emb_expansion = 4;
  int resblock_per_down_stage = 3;
  double dropout = 0;
  int in_channels = 6;
  int out_channels = 3;
  // "corrected": real single-head attention x + proj(softmax(q k^T / sqrt(c)) v), as the reference
  // computes it since commit e764e22 (and at f19c45d, the parity vectors' source). "faithful": the
  // block of the first upload (6b99b8c), which discards the attention: x + proj(GN(x)). Same
  // parameters either way.
  std::string attention = "corrected";

  // Strict (config::Reader): unknown keys, wrong types and out-of-range values throw
  // SINSR_ERR_INVALID_ARGUMENT naming the key. null reads as {}.
  static Options from_json(const nlohmann::json& config);
  nlohmann::json to_json() const;
};

class SR3UNet : public torch::nn::Module {
 public:
  explicit SR3UNet(const Options& options);

  // The backbone contract: x_t [N,3,H,W]; cond the LR image in [-1,1], [N,3,h,w] (upsampled here)
  // or already [N,3,H,W]; gamma [N] noise levels sqrt(alpha_bar). Returns eps [N,out_channels,H,W]
  // in x's dtype.
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cond, const at::Tensor& gamma);
  // The reference UNet.forward: the network input already concatenated, [N,in_channels,H,W].
  at::Tensor forward_input(const at::Tensor& input, const at::Tensor& gamma);
  // The gamma-embedding MLP (float32), [N, emb_expansion*C].
  at::Tensor embed(const at::Tensor& gamma);

  // Conv/linear weights of the down/mid/up lists in float16/bfloat16; the embedding, GroupNorm,
  // first conv and head stay float32. float32 moves everything back.
  void set_precision(c10::Device device, at::ScalarType torso);
  const Options& options() const { return o_; }

  struct Layer;  // one entry of down / mid / up

 private:
  Options o_;
  at::ScalarType torso_ = at::kFloat;
  std::shared_ptr<torch::nn::Module> emb_, conv1_, gn_, conv2_;
  std::vector<std::shared_ptr<Layer>> down_, mid_, up_;
};

// cond (LR in [-1,1]) at the size height x width: torch bicubic (align_corners false, scale =
// size ratio) when smaller, as is when equal, then clamped to [-1,1].
at::Tensor upsample_condition(const at::Tensor& cond, int64_t height, int64_t width);

// The reference frequencies exp(-i ln(5000) / (C/2 - 1)), i < C/2, as [1, C/2] float32.
at::Tensor gamma_frequencies(int64_t channels);

}  // namespace sr3_unet
}  // namespace sinsr
