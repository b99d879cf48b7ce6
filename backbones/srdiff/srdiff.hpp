// SRDiff (LeiaLi/SRDiff): the RRDB LR encoder and the conditional noise-predicting Unet, as
// LibTorch modules whose state-dict names are GaussianDiffusion's (`rrdb.*`, `denoise_fn.*`), so
// reference checkpoints load unchanged. No norm layers, no attention (the reference defaults).
#pragma once

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <nlohmann/json.hpp>
#include <sinsr/layers.hpp>

#include <memory>
#include <string>
#include <vector>

namespace sinsr {
namespace srdiff {

// The component's config; names follow the reference hparams (configs/diffsr_base.yaml).
struct Options {
  int hidden_size = 64;                       // Unet dim
  std::vector<int> dim_mults = {1, 2, 2, 4};  // key unet_dim_mults (alias dim_mults)
  int rrdb_num_feat = 32;                     // nf, also the Unet's cond_dim
  int rrdb_num_block = 8;                     // nb
  int rrdb_num_grow_ch = 16;                  // gc; the reference uses nf / 2
  int sr_scale = 4;                           // 4 or 8
  int out_dim = 3;
  std::string output = "eps";  // "eps" (the Unet) or "rrdb" (the RRDB's own SR image)
  bool fix_rrdb = true;

  // Strict (sinsr::config::Reader): unknown keys, wrong types and out-of-range values are refused
  // naming the key (sinsr::sdk::Error, SINSR_ERR_INVALID_ARGUMENT).
  static Options from_json(const nlohmann::json& config);

  bool rrdb_trainable() const { return output == "rrdb" || !fix_rrdb; }
  bool unet_trainable() const { return output == "eps"; }
  // Number of RRDB features the Unet takes (entries 2, 5, 8, ... of the nb + 1).
  int cond_features() const { return (rrdb_num_block + 1) / 3; }
};

// The config schema (key -> {type, default, description}) the plugin publishes.
extern const char* const kConfigSchema;

// RRDBNet(3, 3, nf, nb, gc). Input: LR in [-1, 1].
class RRDBNet : public torch::nn::Module {
 public:
  // trainable false: the weights are registered as buffers (same names), see srdiff.cpp.
  RRDBNet(const Options& options, bool trainable);
  // The nb RRDB outputs, then conv_first + trunk_conv(last): nb + 1 tensors [N, nf, h, w].
  std::vector<at::Tensor> features(const at::Tensor& lr);
  // The SR head on the last feature: image in [-1, 1] at sr_scale times the LR size.
  at::Tensor image(const at::Tensor& last_feature);
  at::Tensor forward(const at::Tensor& lr) { return image(features(lr).back()); }
  at::ScalarType dtype() const;  // of the weights

  struct RRDB;

 private:
  Options o_;
  sdk::Layer conv_first_, trunk_conv_, hr_conv_, conv_last_;
  std::vector<sdk::Layer> upconvs_;
  std::vector<std::shared_ptr<RRDB>> trunk_;
};

// Unet(dim, out_dim, dim_mults, cond_dim = nf): predicts the noise of the residual image.
class Unet : public torch::nn::Module {
 public:
  Unet(const Options& options, bool trainable);
  // mlp(SinusoidalPosEmb(t)): [N, dim] from the integer steps t [N].
  at::Tensor time_embedding(const at::Tensor& t);
  // x: [N, 3, H, W] residual-space x_t; t: [N] steps; rrdb_features: RRDBNet::features(lr).
  at::Tensor forward(const at::Tensor& x, const at::Tensor& t, const std::vector<at::Tensor>& rrdb_features);

  struct Block;
  struct ResnetBlock;
  struct Stage;

 private:
  Options o_;
  sdk::Layer cond_proj_, mlp0_, mlp2_, final_out_;
  std::shared_ptr<Block> final_block_;
  std::shared_ptr<ResnetBlock> mid1_, mid2_;
  std::vector<std::shared_ptr<Stage>> downs_, ups_;
};

// The backbone f(x, cond, t): children `denoise_fn` and `rrdb`, in GaussianDiffusion's order.
class SRDiff : public torch::nn::Module {
 public:
  explicit SRDiff(const Options& options);
  // output "eps": x = residual-space x_t [N, 3, H, W], cond = LR in [-1, 1] [N, 3, H/s, W/s],
  // t = [N] steps -> predicted noise. output "rrdb": the RRDB image from cond (x, t unused).
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cond, const at::Tensor& t);
  const Options& options() const { return o_; }
  RRDBNet& rrdb() { return *rrdb_; }
  Unet& denoise_fn() { return *unet_; }

 private:
  Options o_;
  std::shared_ptr<Unet> unet_;
  std::shared_ptr<RRDBNet> rrdb_;
};

// Strict loading of a GaussianDiffusion state dict into net: the plain dict, the usual nestings
// (sinsr::ckpt::read_state_dict), or the reference trainer's {"state_dict": {"model": ...}}; the
// diffusion schedule buffers (betas, alphas_cumprod, ...) are skipped, the sampler owns them.
// options: "key" (force a nesting key), "strict" (default true), "module": "rrdb" or
// "denoise_fn" to load a file holding that sub-network alone (the reference's rrdb_ckpt).
void load_weights(SRDiff& net, const std::string& path, const nlohmann::json& options);

}  // namespace srdiff
}  // namespace sinsr
