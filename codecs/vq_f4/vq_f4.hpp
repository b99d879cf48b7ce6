// VQModelTorch ("VQ-f4"), the latent autoencoder of ResShift / SinSR, with the official
// state_dict names. encode() does not quantise; decode() quantises unless told not to.
#pragma once

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <nlohmann/json.hpp>

#include <memory>
#include <vector>

namespace sinsr {
namespace vq_f4 {

// The official `autoencoder.params` keys (ddconfig nested); defaults are SinSR.yaml's.
struct Options {
  int embed_dim = 3;
  int n_embed = 8192;
  int z_channels = 3;
  int resolution = 256;
  int in_channels = 3;
  int out_ch = 3;
  int ch = 128;
  std::vector<int> ch_mult = {1, 2, 4};
  std::vector<int> num_res_blocks = {2, 2, 2};
  std::vector<int> attn_resolutions = {};
  double scale_factor = 1.0;       // latent = encode(x) * scale_factor
  int64_t attention_chunk = 1024;  // attention queries per chunk: memory chunk x pixels, not pixels^2
  bool quantize_on_decode = true;  // the codec's decode(): nearest codes first (the official decode)
  static Options from_json(const nlohmann::json& params);
};

struct Quantized {
  at::Tensor quant;     // [N,C,H,W]
  at::Tensor indices;   // [N,H,W] int64
  at::Tensor margin;    // [N,H,W] second-best minus best squared distance
  at::Tensor emb_loss;  // the quantiser's training loss (legacy form, beta 0.25); unused at inference
};

class VQModel : public torch::nn::Module {
 public:
  explicit VQModel(const Options& options);
  // Inputs must already be in dtype() on the module's device.
  at::Tensor encode(const at::Tensor& image);  // quant_conv(encoder(x)), no quantisation, no scale_factor
  // Nearest codes in the module dtype; the gradient passes straight through to z.
  Quantized quantize(const at::Tensor& z);
  at::Tensor decode(const at::Tensor& z, bool quantize_first = true);
  // The official half mode converts the whole autoencoder (GroupNorm and codebook included).
  void set_precision(c10::Device device, at::ScalarType dtype);
  at::ScalarType dtype() const { return codebook_.scalar_type(); }
  c10::Device device() const { return codebook_.device(); }
  const Options& options() const { return o_; }
  void set_attention_chunk(int64_t n);

  struct Coder;

 private:
  Options o_;
  std::shared_ptr<Coder> encoder_, decoder_;
  at::Tensor codebook_;
  std::shared_ptr<torch::nn::Module> quant_conv_, post_quant_conv_;
};

}  // namespace vq_f4
}  // namespace sinsr
