#include "runtime/handles.hpp"

#if defined(SINSR_WITH_CUDA)
#include <c10/cuda/CUDAStream.h>
#endif

namespace sinsr {
namespace host {

using sdk::Error;
using sdk::from_dlpack;
using sdk::require;
using sdk::to_dlpack;

// ---- shared pieces ----------------------------------------------------------------------

CallLock::CallLock(const Component& c) {
  if (c.desc->thread_safety == SINSR_THREAD_SERIAL)
    mutex_ = c.serial;
  else if (c.desc->thread_safety == SINSR_THREAD_PER_INSTANCE)
    mutex_ = std::make_shared<std::mutex>();
}

std::unique_lock<std::mutex> CallLock::lock() const {
  return mutex_ ? std::unique_lock<std::mutex>(*mutex_) : std::unique_lock<std::mutex>();
}

Tape::~Tape() {
  if (tape_ && release_) release_(tape_);
}

sinsr_call_options call_options_for(const at::Tensor& t) {
  sinsr_call_options o{};
  o.struct_size = sizeof(o);
  o.cuda_stream = nullptr;
#if defined(SINSR_WITH_CUDA)
  // The ABI never assumes a stream: a plugin runs on the one the host is using.
  if (t.defined() && t.is_cuda()) o.cuda_stream = c10::cuda::getCurrentCUDAStream(t.device().index()).stream();
#else
  (void)t;
#endif
  return o;
}

std::string TimestepKind::describe() const {
  if (kind == SINSR_TIMESTEP_INDEX) return "int64 step indices";
  if (kind == SINSR_TIMESTEP_NOISE_LEVEL) return "noise levels in '" + unit + "'";
  return "timesteps of unknown kind " + std::to_string(kind);
}

namespace detail {

const void* table_of(const Component& c, int32_t kind) {
  require(c.kind() == kind, SINSR_ERR_INVALID_ARGUMENT,
          "component '" + c.name() + "' is a " + sinsr_kind_name(c.kind()) + ", not a " + sinsr_kind_name(kind));
  return c.desc->vtable;
}

std::string context(const Component& c, const char* what) { return c.name() + " " + what; }

DLDevice dl_device(c10::Device d) {
  DLDevice out;
  out.device_type = d.is_cuda() ? kDLCUDA : kDLCPU;
  out.device_id = d.has_index() ? d.index() : 0;
  return out;
}

DLDataType dl_dtype(at::ScalarType t) {
  DLDataType d;
  d.lanes = 1;
  switch (t) {
    case at::kHalf:
      d.code = kDLFloat;
      d.bits = 16;
      break;
    case at::kBFloat16:
      d.code = kDLBfloat;
      d.bits = 16;
      break;
    case at::kDouble:
      d.code = kDLFloat;
      d.bits = 64;
      break;
    case at::kFloat:
      d.code = kDLFloat;
      d.bits = 32;
      break;
    default:
      throw Error(SINSR_ERR_INVALID_ARGUMENT,
                  std::string("models run in float16, bfloat16, float32 or float64, not ") + c10::toString(t));
  }
  return d;
}

sinsr_timestep_info empty_timestep_info() {
  sinsr_timestep_info info{};
  info.struct_size = sizeof(info);
  info.kind = SINSR_TIMESTEP_INDEX;
  info.unit = nullptr;
  return info;
}

TimestepKind timestep_kind_of(const Component& c, const sinsr_timestep_info& info) {
  const std::string who = std::string(sinsr_kind_name(c.kind())) + " '" + c.name() + "'";
  TimestepKind k;
  k.kind = info.kind;
  if (info.kind == SINSR_TIMESTEP_INDEX) return k;
  require(info.kind == SINSR_TIMESTEP_NOISE_LEVEL, SINSR_ERR_FORMAT,
          who + " declares an unknown timestep kind " + std::to_string(info.kind));
  require(info.unit != nullptr && *info.unit != '\0', SINSR_ERR_FORMAT,
          who + " declares noise-level timesteps without naming their unit");
  k.unit = info.unit;
  return k;
}

}  // namespace detail

// ---- backbone --------------------------------------------------------------------------

void BackboneHandle::save_weights(const std::string& path) {
  call("save_weights", [&] { return vt_->save_weights(self_, path.c_str()); });
}

at::Tensor BackboneHandle::forward(const at::Tensor& x, const at::Tensor& cond, const at::Tensor& t) {
  const sinsr_call_options opts = call_options_for(x);
  return call_tensor("forward", [&](DLManagedTensor** out) {
    return vt_->forward(self_, &opts, to_dlpack(x), to_dlpack(cond), to_dlpack(t), out, nullptr);
  });
}

std::pair<at::Tensor, std::unique_ptr<Tape>> BackboneHandle::forward_train(const at::Tensor& x, const at::Tensor& cond,
                                                                           const at::Tensor& t) {
  sinsr_tape* tape = nullptr;
  const sinsr_call_options opts = call_options_for(x);
  at::Tensor out = call_tensor("forward", [&](DLManagedTensor** o) {
    return vt_->forward(self_, &opts, to_dlpack(x), to_dlpack(cond), to_dlpack(t), o, &tape);
  });
  return {out, make_tape(tape)};
}

std::pair<at::Tensor, at::Tensor> BackboneHandle::backward(std::unique_ptr<Tape> tape, const at::Tensor& grad_out,
                                                           bool want_input_grads) {
  require(tape != nullptr, SINSR_ERR_INVALID_ARGUMENT, "backward without a tape");
  DLManagedTensor* gx = nullptr;
  DLManagedTensor* gc = nullptr;
  const sinsr_call_options opts = call_options_for(grad_out);
  call("backward", [&] {
    return vt_->backward(self_, &opts, take(*tape), to_dlpack(grad_out), want_input_grads ? &gx : nullptr,
                         want_input_grads ? &gc : nullptr);
  });
  return {from_dlpack(gx), from_dlpack(gc)};
}

std::vector<NamedTensor> BackboneHandle::state() {
  size_t n = 0;
  call("state_count", [&] { return vt_->state_count(self_, &n); });
  std::vector<NamedTensor> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    sinsr_named_tensor nt{};
    nt.struct_size = sizeof(nt);
    call("state_get", [&] { return vt_->state_get(self_, i, &nt); });
    NamedTensor e;
    e.name = nt.name ? nt.name : "";
    e.is_parameter = nt.is_parameter != 0;
    e.value = from_dlpack(nt.value);
    e.grad = from_dlpack(nt.grad);
    out.push_back(std::move(e));
  }
  return out;
}

void BackboneHandle::zero_grad() {
  call("zero_grad", [&] { return vt_->zero_grad(self_); });
}

void BackboneHandle::set_training(bool training) {
  call("set_training", [&] { return vt_->set_training(self_, training ? 1 : 0); });
}

// ---- codec -----------------------------------------------------------------------------

sinsr_codec_info CodecHandle::info() {
  sinsr_codec_info info{};
  info.struct_size = sizeof(info);
  call("info", [&] { return vt_->info(self_, &info); });
  return info;
}

at::Tensor CodecHandle::encode(const at::Tensor& image) {
  const sinsr_call_options opts = call_options_for(image);
  return call_tensor("encode", [&](DLManagedTensor** out) { return vt_->encode(self_, &opts, to_dlpack(image), out); });
}

at::Tensor CodecHandle::decode(const at::Tensor& latent) {
  const sinsr_call_options opts = call_options_for(latent);
  return call_tensor("decode",
                     [&](DLManagedTensor** out) { return vt_->decode(self_, &opts, to_dlpack(latent), out); });
}

// ---- loss ------------------------------------------------------------------------------

at::Tensor LossHandle::forward(const at::Tensor& pred, const at::Tensor& target) {
  const sinsr_call_options opts = call_options_for(pred);
  return call_tensor("forward", [&](DLManagedTensor** out) {
    return vt_->forward(self_, &opts, to_dlpack(pred), to_dlpack(target), out, nullptr);
  });
}

std::pair<at::Tensor, std::unique_ptr<Tape>> LossHandle::forward_train(const at::Tensor& pred,
                                                                       const at::Tensor& target) {
  sinsr_tape* tape = nullptr;
  const sinsr_call_options opts = call_options_for(pred);
  at::Tensor out = call_tensor("forward", [&](DLManagedTensor** o) {
    return vt_->forward(self_, &opts, to_dlpack(pred), to_dlpack(target), o, &tape);
  });
  return {out, make_tape(tape)};
}

at::Tensor LossHandle::backward(std::unique_ptr<Tape> tape, const at::Tensor& grad_loss) {
  require(tape != nullptr, SINSR_ERR_INVALID_ARGUMENT, "backward without a tape");
  const sinsr_call_options opts = call_options_for(grad_loss);
  return call_tensor("backward", [&](DLManagedTensor** out) {
    return vt_->backward(self_, &opts, take(*tape), to_dlpack(grad_loss), out);
  });
}

// ---- weights ---------------------------------------------------------------------------

MissingWeights::MissingWeights(const std::string& part, const std::string& component)
    : Error(SINSR_ERR_INVALID_ARGUMENT,
            part + " '" + component + "' has no weights: give a weights file, or \"none\" to run it untrained"),
      part_(part),
      component_(component) {}

std::string resolve_weights(const Component& c, const std::string& weights, const std::string& part, bool required) {
  if (weights == "none") return "";
  if (!weights.empty()) return weights;
  if (!c.needs_weights()) return "";
  std::string shipped = c.default_weights_path();
  if (shipped.empty() && required) throw MissingWeights(part, c.name());
  return shipped;
}

}  // namespace host
}  // namespace sinsr
