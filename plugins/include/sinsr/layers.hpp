// Layers with parameters for networks built on the SDK: 2-D convolution, transposed convolution
// and linear, with torch.nn's state-dict names ("weight", "bias") so official checkpoints load,
// initialised as torch.nn initialises them -- unless the host said a checkpoint follows.
#pragma once

#include <torch/nn/module.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace sinsr {
namespace sdk {

// False while a component is created for a checkpoint that is loaded next (create_with
// {"init": "none"}, ABI 1.3): parameters are then allocated but not drawn. Drawing a full-size
// UNet's 118 M initial values costs more than reading its weights. Code that initialises
// parameters of its own checks it too.
bool initialise_parameters();

// Storage for a parameter (float32): at::empty while initialise_parameters(), else address
// space that nothing touches before the checkpoint's tensor replaces it. at::empty writes the
// allocator's bookkeeping into every block, and on a heap of 2 MiB pages that faulted in (and
// had the kernel zero) most of a full-size UNet's 470 MB before its weights replaced them.
at::Tensor empty_parameter(at::IntArrayRef shape);

// Sets initialise_parameters() for this thread while it lives (the SDK's create_with uses it).
class ParameterInitScope {
 public:
  explicit ParameterInitScope(bool initialise);
  ~ParameterInitScope();
  ParameterInitScope(const ParameterInitScope&) = delete;
  ParameterInitScope& operator=(const ParameterInitScope&) = delete;

 private:
  bool previous_;
};

class LayerImpl : public torch::nn::Module {
 public:
  enum class Kind { kConv2d, kConvTranspose2d, kLinear };
  // weight_shape as torch.nn has it: [out, in, k, k], [in, out, k, k] (transposed), [out, in].
  // Not trainable: weight and bias are buffers under the same names, so checkpoints are
  // unchanged while the host neither asks for their gradient nor updates them.
  LayerImpl(Kind kind, std::vector<int64_t> weight_shape, int64_t stride, int64_t padding, bool trainable);
  at::Tensor forward(const at::Tensor& x) const;

  const Kind kind;
  const int64_t stride, padding;
  at::Tensor weight, bias;
};
using Layer = std::shared_ptr<LayerImpl>;

// torch.nn.Conv2d(in, out, kernel, stride, padding), ConvTranspose2d, Linear (all with bias).
Layer conv2d(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1, int64_t padding = 0, bool trainable = true);
Layer conv_transpose2d(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1, int64_t padding = 0,
                       bool trainable = true);
Layer linear(int64_t in, int64_t out, bool trainable = true);

// Single-head dot-product attention over all positions: softmax(q k^T / sqrt(c)) v for q [B,n,c],
// k [B,m,c], v [B,m,d], giving [B,n,d]. At most `block` queries at a time: a large grid's whole
// weight matrix is n x m (1 GiB for 16 k positions); rows are independent, so blocks change no
// value. How the logits are scaled and in which dtype the softmax runs follow each reference,
// whose rounding parity keeps.
struct AttentionOptions {
  int64_t block = 1024;
  bool divide = false;           // logits / sqrt(c) (SR3), else logits * c^-0.5 (the VQ autoencoder)
  bool float32_softmax = false;  // logits and softmax in float32, cast back to v's dtype (SR3)
};
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const AttentionOptions& options);

}  // namespace sdk
}  // namespace sinsr
