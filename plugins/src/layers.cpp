#include "sinsr/layers.hpp"

#include "sinsr/sdk.hpp"

#include <torch/nn/init.h>

#if defined(__unix__)
#include <sys/mman.h>
#endif

#include <algorithm>
#include <cmath>
#include <vector>

namespace sinsr {
namespace sdk {
namespace {
thread_local bool g_initialise = true;
}  // namespace

bool initialise_parameters() { return g_initialise; }

at::Tensor empty_parameter(at::IntArrayRef shape) {
#if defined(__unix__)
  // Small ones share pages with the heap's other blocks anyway.
  const size_t bytes = size_t(c10::multiply_integers(shape)) * sizeof(float);
  if (!initialise_parameters() && bytes >= (size_t(256) << 10)) {
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p != MAP_FAILED)
      return at::from_blob(
          p, shape, [bytes](void* q) { ::munmap(q, bytes); }, at::kFloat);
  }
#endif
  return at::empty(shape);
}

ParameterInitScope::ParameterInitScope(bool initialise) : previous_(g_initialise) { g_initialise = initialise; }
ParameterInitScope::~ParameterInitScope() { g_initialise = previous_; }

LayerImpl::LayerImpl(Kind kind_, std::vector<int64_t> shape, int64_t stride_, int64_t padding_, bool trainable)
    : kind(kind_), stride(stride_), padding(padding_) {
  const int64_t out = kind == Kind::kConvTranspose2d ? shape[1] : shape[0];
  at::Tensor w = empty_parameter(shape), b = empty_parameter({out});
  if (initialise_parameters()) {
    // torch.nn's reset_parameters, in its order (the same draws, so the same values under a
    // seed): kaiming_uniform_(a = sqrt(5)) for the weight, U(+-1/sqrt(fan_in)) for the bias.
    at::NoGradGuard no_grad;
    torch::nn::init::kaiming_uniform_(w, std::sqrt(5.0));
    const int64_t fan_in = std::get<0>(torch::nn::init::_calculate_fan_in_and_fan_out(w));
    const double bound = 1 / std::sqrt(double(fan_in));
    torch::nn::init::uniform_(b, -bound, bound);
  }
  if (trainable) {
    weight = register_parameter("weight", w);
    bias = register_parameter("bias", b);
  } else {
    weight = register_buffer("weight", w);
    bias = register_buffer("bias", b);
  }
}

at::Tensor LayerImpl::forward(const at::Tensor& x) const {
  switch (kind) {
    case Kind::kConv2d: return at::conv2d(x, weight, bias, stride, padding);
    case Kind::kConvTranspose2d: return at::conv_transpose2d(x, weight, bias, stride, padding);
    case Kind::kLinear: break;
  }
  return at::linear(x, weight, bias);
}

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const AttentionOptions& o) {
  require(q.dim() == 3 && k.dim() == 3 && v.dim() == 3 && q.size(2) == k.size(2) && k.size(1) == v.size(1) &&
              q.size(0) == k.size(0) && k.size(0) == v.size(0),
          SINSR_ERR_INVALID_ARGUMENT, "attention: q [B,n,c], k [B,m,c] and v [B,m,d] do not match");
  require(o.block > 0, SINSR_ERR_INVALID_ARGUMENT, "attention: the block of queries must be > 0");
  const int64_t n = q.size(1);
  const double c = double(q.size(2));
  const at::Tensor kt = k.transpose(1, 2);
  std::vector<at::Tensor> parts;
  for (int64_t from = 0; from < n; from += o.block) {
    at::Tensor w = at::bmm(q.narrow(1, from, std::min(o.block, n - from)), kt);
    if (o.float32_softmax) w = w.to(at::kFloat);
    w = o.divide ? w / std::sqrt(c) : w.mul_(std::pow(c, -0.5));
    parts.push_back(at::bmm(at::softmax(w, -1).to(v.scalar_type()), v));
  }
  return parts.size() == 1 ? parts[0] : at::cat(parts, 1);
}

Layer conv2d(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t padding, bool trainable) {
  return std::make_shared<LayerImpl>(LayerImpl::Kind::kConv2d, std::vector<int64_t>{out, in, k, k}, stride, padding,
                                     trainable);
}
Layer conv_transpose2d(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t padding, bool trainable) {
  return std::make_shared<LayerImpl>(LayerImpl::Kind::kConvTranspose2d, std::vector<int64_t>{in, out, k, k}, stride,
                                     padding, trainable);
}
Layer linear(int64_t in, int64_t out, bool trainable) {
  return std::make_shared<LayerImpl>(LayerImpl::Kind::kLinear, std::vector<int64_t>{out, in}, 1, 0, trainable);
}

}  // namespace sdk
}  // namespace sinsr
