#include "sinsr/sdk.hpp"

#include "sinsr/checkpoint.hpp"
#include "sinsr/config.hpp"

#include <c10/util/Exception.h>
#include <torch/nn/module.h>

#include <atomic>
#include <cstdio>
#include <deque>
#include <mutex>
#include <new>

#if defined(SINSR_WITH_CUDA)
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace sinsr {
namespace sdk {

// ---- statuses --------------------------------------------------------------------------

namespace {

// Until a host installs its table (plugin entry, or libsinsr_host at start-up), statuses are
// made by this one, so SDK code also works standalone (e.g. a plugin's core in a unit test).
struct LocalStatus {
  int32_t code;
  std::string message;
};
sinsr_status* local_create(int32_t code, const char* message) {
  return reinterpret_cast<sinsr_status*>(new LocalStatus{code, message ? message : ""});
}
int32_t local_code(const sinsr_status* s) { return s ? reinterpret_cast<const LocalStatus*>(s)->code : SINSR_OK; }
const char* local_message(const sinsr_status* s) {
  return s ? reinterpret_cast<const LocalStatus*>(s)->message.c_str() : "";
}
void local_release(sinsr_status* s) { delete reinterpret_cast<LocalStatus*>(s); }
void local_log(int32_t, const char* source, const char* message) {
  std::fprintf(stderr, "%s: %s\n", source ? source : "sinsr", message ? message : "");
}
const sinsr_host_api kLocalHost = {sizeof(sinsr_host_api), SINSR_ABI_VERSION, &local_create, &local_code,
                                   &local_message, &local_release, &local_log};

std::atomic<const sinsr_host_api*> g_host{&kLocalHost};

}  // namespace

const sinsr_host_api* host() noexcept { return g_host.load(); }
void set_host(const sinsr_host_api* api) noexcept { g_host.store(api); }

sinsr_status* make_status(sinsr_code code, const std::string& message) noexcept {
  const sinsr_host_api* h = host();
  if (h == nullptr || h->status_create == nullptr) return nullptr;  // no host: nothing can carry it
  try {
    return h->status_create(code, message.c_str());
  } catch (...) {
    return h->status_create(code, "error (message lost: out of memory)");
  }
}

sinsr_status* status_from_current_exception(const char* where) noexcept {
  std::string prefix = where && *where ? std::string(where) + ": " : std::string();
  try {
    throw;
  } catch (const Error& e) {
    return make_status(e.code(), prefix + e.what());
  } catch (const c10::Error& e) {
    return make_status(SINSR_ERR_RUNTIME, prefix + e.what_without_backtrace());
  } catch (const std::bad_alloc&) {
    return make_status(SINSR_ERR_OUT_OF_MEMORY, prefix + "out of memory");
  } catch (const nlohmann::json::exception& e) {
    return make_status(SINSR_ERR_INVALID_ARGUMENT, prefix + "config: " + e.what());
  } catch (const std::exception& e) {
    return make_status(SINSR_ERR_RUNTIME, prefix + e.what());
  } catch (...) {
    return make_status(SINSR_ERR_RUNTIME, prefix + "unknown exception");
  }
}

void throw_if_error(sinsr_status* status, const std::string& context) {
  if (status == nullptr) return;
  const sinsr_host_api* h = host();
  sinsr_code code = static_cast<sinsr_code>(h->status_code(status));
  std::string message = h->status_message(status);
  h->status_release(status);
  throw Error(code, context.empty() ? message : context + ": " + message);
}

void require(bool condition, sinsr_code code, const std::string& message) {
  if (!condition) throw Error(code, message);
}

// ---- tensors ---------------------------------------------------------------------------

at::Tensor from_dlpack(DLManagedTensor* m) {
  if (m == nullptr) return at::Tensor();
  if (m->dl_tensor.data == nullptr && m->dl_tensor.ndim > 0) {
    int64_t numel = 1;
    for (int i = 0; i < m->dl_tensor.ndim; ++i) numel *= m->dl_tensor.shape[i];
    if (numel != 0) {
      release(m);
      throw Error(SINSR_ERR_INVALID_ARGUMENT, "DLPack tensor with null data");
    }
  }
  try {
    return at::fromDLPack(m);
  } catch (...) {
    // fromDLPack refused it (e.g. an unsupported dtype) without taking ownership.
    release(m);
    throw;
  }
}

DLManagedTensor* to_dlpack(const at::Tensor& t) {
  if (!t.defined()) return nullptr;
  return at::toDLPack(t);
}

void release(DLManagedTensor* m) noexcept {
  if (m != nullptr && m->deleter != nullptr) m->deleter(m);
}

at::ScalarType scalar_type_of(DLDataType dtype) {
  if (dtype.lanes != 1) throw Error(SINSR_ERR_INVALID_ARGUMENT, "vector dtypes are not supported");
  switch (dtype.code) {
    case kDLFloat:
      if (dtype.bits == 16) return at::kHalf;
      if (dtype.bits == 32) return at::kFloat;
      if (dtype.bits == 64) return at::kDouble;
      break;
    case kDLBfloat:
      if (dtype.bits == 16) return at::kBFloat16;
      break;
    case kDLInt:
      if (dtype.bits == 64) return at::kLong;
      if (dtype.bits == 32) return at::kInt;
      break;
    default:
      break;
  }
  throw Error(SINSR_ERR_INVALID_ARGUMENT, "unsupported dtype (code " + std::to_string(dtype.code) + ", " +
                                              std::to_string(dtype.bits) + " bits)");
}

c10::Device device_of(DLDevice device) {
  switch (device.device_type) {
    case kDLCPU:
      return c10::Device(c10::kCPU);
    case kDLCUDA:
      return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(device.device_id));
    default:
      throw Error(SINSR_ERR_UNSUPPORTED, "unsupported device type " + std::to_string(device.device_type));
  }
}

void with_stream(const sinsr_call_options* options, const c10::Device& device, const std::function<void()>& body) {
#if defined(SINSR_WITH_CUDA)
  if (device.is_cuda() && SINSR_HAS_FIELD(options, sinsr_call_options, cuda_stream) && options->cuda_stream) {
    auto stream = c10::cuda::getStreamFromExternal(static_cast<cudaStream_t>(options->cuda_stream), device.index());
    c10::cuda::CUDAStreamGuard guard(stream);
    body();
    return;
  }
#else
  (void)options;
  (void)device;
#endif
  body();
}

namespace {

// Adopts every input up front so each deleter runs exactly once, whatever fails later.
std::vector<at::Tensor> adopt(std::initializer_list<DLManagedTensor*> inputs) {
  std::vector<DLManagedTensor*> pending(inputs);
  std::vector<at::Tensor> out;
  out.reserve(pending.size());
  for (size_t i = 0; i < pending.size(); ++i) {
    try {
      out.push_back(from_dlpack(pending[i]));
    } catch (...) {
      for (size_t j = i + 1; j < pending.size(); ++j) release(pending[j]);
      throw;
    }
  }
  return out;
}

c10::Device device_for(const at::Tensor& t) { return t.defined() ? t.device() : c10::Device(c10::kCPU); }

// ---- backbone --------------------------------------------------------------------------

struct BackboneTape {
  at::Tensor out, x, cond;
};

struct StateCache {
  std::vector<std::string> names;
  std::vector<at::Tensor> tensors;
  std::vector<bool> is_param;
};

void fill_state(torch::nn::Module& m, StateCache& cache) {
  cache = StateCache();
  for (const auto& p : m.named_parameters(true)) {
    cache.names.push_back(p.key());
    cache.tensors.push_back(p.value());
    cache.is_param.push_back(true);
  }
  for (const auto& b : m.named_buffers(true)) {
    cache.names.push_back(b.key());
    cache.tensors.push_back(b.value());
    cache.is_param.push_back(false);
  }
}

sinsr_status* state_entry(torch::nn::Module& m, StateCache& cache, size_t index, sinsr_named_tensor* out) {
  require(out != nullptr, SINSR_ERR_INVALID_ARGUMENT, "out is null");
  require(out->struct_size >= offsetof(sinsr_named_tensor, grad) + sizeof(out->grad), SINSR_ERR_ABI,
          "sinsr_named_tensor.struct_size too small");
  if (cache.names.empty() || index == 0) fill_state(m, cache);
  require(index < cache.names.size(), SINSR_ERR_INVALID_ARGUMENT,
          "state index " + std::to_string(index) + " out of range (" + std::to_string(cache.names.size()) + ")");
  at::Tensor t = cache.tensors[index];
  out->name = cache.names[index].c_str();
  out->is_parameter = cache.is_param[index] ? 1 : 0;
  out->value = to_dlpack(t.detach());
  out->grad = nullptr;
  if (cache.is_param[index]) {
    if (!t.grad().defined()) t.mutable_grad() = at::zeros_like(t);
    out->grad = to_dlpack(t.grad());
  }
  return nullptr;
}

struct BackboneBox {
  std::unique_ptr<Backbone> impl;
  StateCache state;
};

BackboneBox* bb(sinsr_backbone* s) {
  require(s != nullptr, SINSR_ERR_INVALID_ARGUMENT, "backbone handle is null");
  return reinterpret_cast<BackboneBox*>(s);
}

void bb_destroy(sinsr_backbone* s) { delete reinterpret_cast<BackboneBox*>(s); }

sinsr_status* bb_load(sinsr_backbone* s, const char* path, const char* options) {
  return guard("load_weights", [&] {
    require(path != nullptr, SINSR_ERR_INVALID_ARGUMENT, "path is null");
    bb(s)->impl->load_weights(path, config::parse_optional(options, "load options"));
  });
}

sinsr_status* bb_save(sinsr_backbone* s, const char* path) {
  return guard("save_weights", [&] {
    require(path != nullptr, SINSR_ERR_INVALID_ARGUMENT, "path is null");
    bb(s)->impl->save_weights(path);
  });
}

sinsr_status* bb_forward(sinsr_backbone* s, const sinsr_call_options* o, DLManagedTensor* x, DLManagedTensor* cond,
                         DLManagedTensor* t, DLManagedTensor** out, sinsr_tape** tape) {
  return guard("backbone forward", [&] {
    auto in = adopt({x, cond, t});
    require(s != nullptr && out != nullptr, SINSR_ERR_INVALID_ARGUMENT, "null handle or output pointer");
    require(in[0].defined() && in[2].defined(), SINSR_ERR_INVALID_ARGUMENT, "x and t are required");
    *out = nullptr;
    if (tape) *tape = nullptr;
    Backbone& impl = *bb(s)->impl;
    with_stream(o, in[0].device(), [&] {
      if (tape == nullptr) {
        at::NoGradGuard no_grad;
        *out = to_dlpack(impl.forward(in[0], in[1], in[2]));
        return;
      }
      at::AutoGradMode grad_mode(true);
      auto rec = std::make_unique<BackboneTape>();
      rec->x = in[0].is_floating_point() ? in[0].detach().requires_grad_(true) : in[0];
      if (in[1].defined()) rec->cond = in[1].is_floating_point() ? in[1].detach().requires_grad_(true) : in[1];
      rec->out = impl.forward(rec->x, rec->cond, in[2]);
      *out = to_dlpack(rec->out.detach());
      *tape = reinterpret_cast<sinsr_tape*>(rec.release());
    });
  });
}

sinsr_status* bb_backward(sinsr_backbone* s, const sinsr_call_options* o, sinsr_tape* tape, DLManagedTensor* grad_out,
                          DLManagedTensor** grad_x, DLManagedTensor** grad_cond) {
  std::unique_ptr<BackboneTape> rec(reinterpret_cast<BackboneTape*>(tape));
  return guard("backbone backward", [&] {
    auto in = adopt({grad_out});
    require(s != nullptr && rec != nullptr, SINSR_ERR_INVALID_ARGUMENT, "null handle or tape");
    require(in[0].defined(), SINSR_ERR_INVALID_ARGUMENT, "grad_out is required");
    require(in[0].sizes() == rec->out.sizes(), SINSR_ERR_INVALID_ARGUMENT, "grad_out shape differs from the output");
    with_stream(o, rec->out.device(), [&] {
      rec->out.backward(in[0].to(rec->out.scalar_type()));
      if (grad_x) *grad_x = rec->x.requires_grad() && rec->x.grad().defined() ? to_dlpack(rec->x.grad()) : nullptr;
      if (grad_cond)
        *grad_cond = rec->cond.defined() && rec->cond.requires_grad() && rec->cond.grad().defined()
                         ? to_dlpack(rec->cond.grad())
                         : nullptr;
    });
  });
}

void bb_tape_release(sinsr_backbone*, sinsr_tape* tape) { delete reinterpret_cast<BackboneTape*>(tape); }

sinsr_status* bb_state_count(sinsr_backbone* s, size_t* count) {
  return guard("state_count", [&] {
    require(count != nullptr, SINSR_ERR_INVALID_ARGUMENT, "count is null");
    BackboneBox* b = bb(s);
    fill_state(b->impl->module(), b->state);
    *count = b->state.names.size();
  });
}

sinsr_status* bb_state_get(sinsr_backbone* s, size_t index, sinsr_named_tensor* out) {
  return guard("state_get", [&] {
    BackboneBox* b = bb(s);
    state_entry(b->impl->module(), b->state, index, out);
  });
}

sinsr_status* bb_zero_grad(sinsr_backbone* s) {
  return guard("zero_grad", [&] {
    for (auto& p : bb(s)->impl->module().parameters(true))
      if (p.grad().defined()) p.mutable_grad().zero_();
  });
}

sinsr_status* bb_set_training(sinsr_backbone* s, int32_t training) {
  return guard("set_training", [&] { bb(s)->impl->module().train(training != 0); });
}

sinsr_status* bb_to(sinsr_backbone* s, DLDevice device, DLDataType dtype) {
  return guard("to", [&] {
    BackboneBox* b = bb(s);
    b->impl->to(device_of(device), scalar_type_of(dtype));
    b->state = StateCache();
  });
}

// ---- codec -----------------------------------------------------------------------------

struct CodecBox {
  std::unique_ptr<Codec> impl;
};

Codec& cd(sinsr_codec* s) {
  require(s != nullptr, SINSR_ERR_INVALID_ARGUMENT, "codec handle is null");
  return *reinterpret_cast<CodecBox*>(s)->impl;
}

void cd_destroy(sinsr_codec* s) { delete reinterpret_cast<CodecBox*>(s); }

sinsr_status* cd_load(sinsr_codec* s, const char* path, const char* options) {
  return guard("load_weights", [&] {
    require(path != nullptr, SINSR_ERR_INVALID_ARGUMENT, "path is null");
    cd(s).load_weights(path, config::parse_optional(options, "load options"));
  });
}

sinsr_status* cd_info(sinsr_codec* s, sinsr_codec_info* out) {
  return guard("codec info", [&] {
    require(out != nullptr, SINSR_ERR_INVALID_ARGUMENT, "out is null");
    require(out->struct_size >= offsetof(sinsr_codec_info, image_channels) + sizeof(int32_t), SINSR_ERR_ABI,
            "sinsr_codec_info.struct_size too small");
    sinsr_codec_info info = cd(s).info();
    out->downscale = info.downscale;
    out->latent_channels = info.latent_channels;
    out->image_channels = info.image_channels;
  });
}

template <class Fn>
sinsr_status* cd_apply(const char* what, sinsr_codec* s, const sinsr_call_options* o, DLManagedTensor* in,
                       DLManagedTensor** out, Fn fn) {
  return guard(what, [&] {
    auto t = adopt({in});
    require(out != nullptr && t[0].defined(), SINSR_ERR_INVALID_ARGUMENT, "null input or output pointer");
    Codec& c = cd(s);
    with_stream(o, t[0].device(), [&] {
      at::NoGradGuard no_grad;
      *out = to_dlpack(fn(c, t[0]));
    });
  });
}

sinsr_status* cd_encode(sinsr_codec* s, const sinsr_call_options* o, DLManagedTensor* image, DLManagedTensor** latent) {
  return cd_apply("encode", s, o, image, latent, [](Codec& c, const at::Tensor& x) { return c.encode(x); });
}

sinsr_status* cd_decode(sinsr_codec* s, const sinsr_call_options* o, DLManagedTensor* latent, DLManagedTensor** image) {
  return cd_apply("decode", s, o, latent, image, [](Codec& c, const at::Tensor& z) { return c.decode(z); });
}

sinsr_status* cd_to(sinsr_codec* s, DLDevice device, DLDataType dtype) {
  return guard("to", [&] { cd(s).to(device_of(device), scalar_type_of(dtype)); });
}

// ---- sampler ---------------------------------------------------------------------------

struct SamplerBox {
  std::unique_ptr<Sampler> impl;
};

Sampler& sp(sinsr_sampler* s) {
  require(s != nullptr, SINSR_ERR_INVALID_ARGUMENT, "sampler handle is null");
  return *reinterpret_cast<SamplerBox*>(s)->impl;
}

void sp_destroy(sinsr_sampler* s) { delete reinterpret_cast<SamplerBox*>(s); }

sinsr_status* sp_num_steps(sinsr_sampler* s, int32_t* out) {
  return guard("num_steps", [&] {
    require(out != nullptr, SINSR_ERR_INVALID_ARGUMENT, "out is null");
    *out = sp(s).num_steps();
  });
}

sinsr_status* sp_schedule(sinsr_sampler* s, const char* key, DLManagedTensor** out) {
  return guard("schedule", [&] {
    require(key != nullptr && out != nullptr, SINSR_ERR_INVALID_ARGUMENT, "null key or output pointer");
    *out = to_dlpack(sp(s).schedule(key).contiguous());
  });
}

sinsr_status* sp_prior(sinsr_sampler* s, const sinsr_call_options* o, DLManagedTensor* y, DLManagedTensor* noise,
                       DLManagedTensor** x_T) {
  return guard("prior", [&] {
    auto in = adopt({y, noise});
    require(x_T != nullptr && in[0].defined() && in[1].defined(), SINSR_ERR_INVALID_ARGUMENT, "null argument");
    Sampler& impl = sp(s);
    with_stream(o, in[0].device(), [&] { *x_T = to_dlpack(impl.prior(in[0], in[1])); });
  });
}

sinsr_status* sp_sample(sinsr_sampler* s, const sinsr_call_options* o, DLManagedTensor* y, DLManagedTensor* x_T,
                        const sinsr_sample_callbacks* cb, DLManagedTensor** x0) {
  return guard("sample", [&] {
    auto in = adopt({y, x_T});
    require(x0 != nullptr && in[0].defined() && in[1].defined(), SINSR_ERR_INVALID_ARGUMENT, "null argument");
    require(cb != nullptr && SINSR_HAS_FIELD(cb, sinsr_sample_callbacks, noise) && cb->denoise != nullptr,
            SINSR_ERR_INVALID_ARGUMENT, "sample callbacks missing or too small");
    SampleCallbacks callbacks;
    callbacks.denoise = [cb](const at::Tensor& x_in, const at::Tensor& t) {
      DLManagedTensor* result = nullptr;
      throw_if_error(cb->denoise(cb->user, to_dlpack(x_in), to_dlpack(t), &result), "denoise callback");
      require(result != nullptr, SINSR_ERR_RUNTIME, "denoise callback returned no tensor");
      return from_dlpack(result);
    };
    callbacks.noise = [cb](const at::Tensor& like) {
      require(cb->noise != nullptr, SINSR_ERR_INVALID_ARGUMENT, "this sampler needs a noise callback");
      DLManagedTensor* view = to_dlpack(like);
      DLManagedTensor* result = nullptr;
      sinsr_status* st = cb->noise(cb->user, &view->dl_tensor, &result);
      release(view);
      throw_if_error(st, "noise callback");
      require(result != nullptr, SINSR_ERR_RUNTIME, "noise callback returned no tensor");
      at::Tensor n = from_dlpack(result);
      require(n.sizes() == like.sizes(), SINSR_ERR_RUNTIME, "noise callback returned the wrong shape");
      return n;
    };
    callbacks.progress = [cb](int step, int total) {
      bool has = SINSR_HAS_FIELD(cb, sinsr_sample_callbacks, progress) && cb->progress != nullptr;
      return !has || cb->progress(cb->user, step, total) == 0;
    };
    Sampler& impl = sp(s);
    with_stream(o, in[0].device(), [&] {
      at::NoGradGuard no_grad;
      *x0 = to_dlpack(impl.sample(in[0], in[1], callbacks));
    });
  });
}

sinsr_status* sp_q_sample(sinsr_sampler* s, const sinsr_call_options* o, DLManagedTensor* x0, DLManagedTensor* y,
                          DLManagedTensor* t, DLManagedTensor* noise, DLManagedTensor** x_t) {
  return guard("q_sample", [&] {
    auto in = adopt({x0, y, t, noise});
    require(x_t != nullptr && in[0].defined() && in[1].defined() && in[2].defined() && in[3].defined(),
            SINSR_ERR_INVALID_ARGUMENT, "null argument");
    Sampler& impl = sp(s);
    with_stream(o, in[0].device(), [&] { *x_t = to_dlpack(impl.q_sample(in[0], in[1], in[2], in[3])); });
  });
}

sinsr_status* sp_scale_input(sinsr_sampler* s, const sinsr_call_options* o, DLManagedTensor* x_t, DLManagedTensor* t,
                             DLManagedTensor** x_in) {
  return guard("scale_input", [&] {
    auto in = adopt({x_t, t});
    require(x_in != nullptr && in[0].defined() && in[1].defined(), SINSR_ERR_INVALID_ARGUMENT, "null argument");
    Sampler& impl = sp(s);
    with_stream(o, in[0].device(), [&] { *x_in = to_dlpack(impl.scale_input(in[0], in[1])); });
  });
}

// ---- loss ------------------------------------------------------------------------------

struct LossBox {
  std::unique_ptr<Loss> impl;
};

struct LossTape {
  at::Tensor loss, pred;
};

Loss& ls(sinsr_loss* s) {
  require(s != nullptr, SINSR_ERR_INVALID_ARGUMENT, "loss handle is null");
  return *reinterpret_cast<LossBox*>(s)->impl;
}

void ls_destroy(sinsr_loss* s) { delete reinterpret_cast<LossBox*>(s); }

sinsr_status* ls_forward(sinsr_loss* s, const sinsr_call_options* o, DLManagedTensor* pred, DLManagedTensor* target,
                         DLManagedTensor** loss, sinsr_tape** tape) {
  return guard("loss forward", [&] {
    auto in = adopt({pred, target});
    require(loss != nullptr && in[0].defined() && in[1].defined(), SINSR_ERR_INVALID_ARGUMENT, "null argument");
    require(in[0].sizes() == in[1].sizes(), SINSR_ERR_INVALID_ARGUMENT, "pred and target shapes differ");
    Loss& impl = ls(s);
    if (tape) *tape = nullptr;
    with_stream(o, in[0].device(), [&] {
      if (tape == nullptr) {
        at::NoGradGuard no_grad;
        *loss = to_dlpack(impl.forward(in[0], in[1]));
        return;
      }
      at::AutoGradMode grad_mode(true);
      auto rec = std::make_unique<LossTape>();
      rec->pred = in[0].detach().requires_grad_(true);
      rec->loss = impl.forward(rec->pred, in[1].detach());
      *loss = to_dlpack(rec->loss.detach());
      *tape = reinterpret_cast<sinsr_tape*>(rec.release());
    });
  });
}

sinsr_status* ls_backward(sinsr_loss* s, const sinsr_call_options* o, sinsr_tape* tape, DLManagedTensor* grad_loss,
                          DLManagedTensor** grad_pred) {
  std::unique_ptr<LossTape> rec(reinterpret_cast<LossTape*>(tape));
  return guard("loss backward", [&] {
    auto in = adopt({grad_loss});
    require(s != nullptr && rec != nullptr && grad_pred != nullptr, SINSR_ERR_INVALID_ARGUMENT, "null argument");
    at::Tensor g = in[0].defined() ? in[0].to(rec->loss.scalar_type()).reshape(rec->loss.sizes())
                                   : at::ones_like(rec->loss);
    with_stream(o, rec->loss.device(), [&] {
      rec->loss.backward(g);
      *grad_pred = to_dlpack(rec->pred.grad());
    });
  });
}

void ls_tape_release(sinsr_loss*, sinsr_tape* tape) { delete reinterpret_cast<LossTape*>(tape); }

// Tables live as long as the library; a deque never moves its elements.
template <class T>
T* keep(const T& table) {
  static std::mutex mutex;
  static std::deque<T> tables;
  std::lock_guard<std::mutex> lock(mutex);
  tables.push_back(table);
  return &tables.back();
}

}  // namespace

// ---- default implementations of the C++ interfaces --------------------------------------

namespace {
void load_module_weights(torch::nn::Module& module, const std::string& path, const json& options) {
  auto state = ckpt::read_state_dict(path, options.value("key", std::string()));
  try {
    ckpt::load_into(module, state, options.value("strict", true));
  } catch (const Error& e) {
    throw Error(e.code(), path + ": " + e.what());
  }
}

// Integer buffers (index tables) keep their dtype; only floating tensors change precision.
void move_module(torch::nn::Module& module, c10::Device device, at::ScalarType dtype) {
  at::NoGradGuard no_grad;
  for (auto& p : module.parameters()) p.set_data(p.is_floating_point() ? p.to(device, dtype) : p.to(device));
  for (auto& b : module.buffers()) b.set_data(b.is_floating_point() ? b.to(device, dtype) : b.to(device));
}
}  // namespace

void Backbone::load_weights(const std::string& path, const json& options) { load_module_weights(module(), path, options); }

void Backbone::save_weights(const std::string& path) { ckpt::save_state_dict(path, ckpt::state_of(module())); }

void Backbone::to(c10::Device device, at::ScalarType dtype) { move_module(module(), device, dtype); }

void Codec::load_weights(const std::string& path, const json& options) { load_module_weights(module(), path, options); }

void Codec::to(c10::Device device, at::ScalarType dtype) { move_module(module(), device, dtype); }

// ---- creation and registration -------------------------------------------------------

namespace detail {

template <class Box, class Base, class Handle>
sinsr_status* create_boxed(Base* (*factory)(const json&), const char* config, Handle** out) noexcept {
  return guard("create", [&] {
    require(out != nullptr, SINSR_ERR_INVALID_ARGUMENT, "out is null");
    *out = nullptr;
    json cfg = config::parse_optional(config, "component config");
    auto box = std::make_unique<Box>();
    box->impl.reset(factory(cfg));
    *out = reinterpret_cast<Handle*>(box.release());
  });
}

sinsr_status* create_backbone(Backbone* (*f)(const json&), const char* c, sinsr_backbone** out) noexcept {
  return create_boxed<BackboneBox>(f, c, out);
}
sinsr_status* create_codec(Codec* (*f)(const json&), const char* c, sinsr_codec** out) noexcept {
  return create_boxed<CodecBox>(f, c, out);
}
sinsr_status* create_sampler(Sampler* (*f)(const json&), const char* c, sinsr_sampler** out) noexcept {
  return create_boxed<SamplerBox>(f, c, out);
}
sinsr_status* create_loss(Loss* (*f)(const json&), const char* c, sinsr_loss** out) noexcept {
  return create_boxed<LossBox>(f, c, out);
}

}  // namespace detail

const void* PluginBuilder::backbone_vtable(sinsr_status* (*create)(const char*, sinsr_backbone**)) {
  sinsr_backbone_vtable v{};
  v.struct_size = sizeof(v);
  v.create = create;
  v.destroy = bb_destroy;
  v.load_weights = bb_load;
  v.save_weights = bb_save;
  v.forward = bb_forward;
  v.backward = bb_backward;
  v.tape_release = bb_tape_release;
  v.state_count = bb_state_count;
  v.state_get = bb_state_get;
  v.zero_grad = bb_zero_grad;
  v.set_training = bb_set_training;
  v.to = bb_to;
  return keep(v);
}

const void* PluginBuilder::codec_vtable(sinsr_status* (*create)(const char*, sinsr_codec**)) {
  sinsr_codec_vtable v{};
  v.struct_size = sizeof(v);
  v.create = create;
  v.destroy = cd_destroy;
  v.load_weights = cd_load;
  v.info = cd_info;
  v.encode = cd_encode;
  v.decode = cd_decode;
  v.to = cd_to;
  return keep(v);
}

const void* PluginBuilder::sampler_vtable(sinsr_status* (*create)(const char*, sinsr_sampler**)) {
  sinsr_sampler_vtable v{};
  v.struct_size = sizeof(v);
  v.create = create;
  v.destroy = sp_destroy;
  v.num_steps = sp_num_steps;
  v.schedule = sp_schedule;
  v.prior = sp_prior;
  v.sample = sp_sample;
  v.q_sample = sp_q_sample;
  v.scale_input = sp_scale_input;
  return keep(v);
}

const void* PluginBuilder::loss_vtable(sinsr_status* (*create)(const char*, sinsr_loss**)) {
  sinsr_loss_vtable v{};
  v.struct_size = sizeof(v);
  v.create = create;
  v.destroy = ls_destroy;
  v.forward = ls_forward;
  v.backward = ls_backward;
  v.tape_release = ls_tape_release;
  return keep(v);
}

PluginBuilder& PluginBuilder::add(int32_t kind, ComponentMeta meta, const void* vtable) {
  require(!meta.name.empty(), SINSR_ERR_INVALID_ARGUMENT, "component without a name");
  require(vtable != nullptr || !meta.base.empty(), SINSR_ERR_INVALID_ARGUMENT,
          "component '" + meta.name + "': a model (no function table) must name its base");
  entries_.push_back(Entry{std::move(meta), kind, vtable});
  return *this;
}

namespace {
struct BuiltPlugin {
  std::string name, version;
  std::vector<ComponentMeta> metas;  // owns the strings the descriptor points into
  std::vector<sinsr_component> components;
  std::vector<const sinsr_component*> pointers;
  sinsr_plugin_info info{};
};
}  // namespace

const sinsr_plugin_info* PluginBuilder::finish(const char* plugin_name, const char* plugin_version) {
  auto* built = new BuiltPlugin();  // lives as long as the library
  built->name = plugin_name ? plugin_name : "";
  built->version = plugin_version ? plugin_version : "";
  built->components.resize(entries_.size());
  for (const Entry& e : entries_) built->metas.push_back(e.meta);  // sized once: c_str() stays valid
  for (size_t i = 0; i < entries_.size(); ++i) {
    const Entry& e = entries_[i];
    const ComponentMeta& m = built->metas[i];
    sinsr_component& c = built->components[i];
    c.struct_size = sizeof(sinsr_component);
    c.kind = e.kind;
    c.thread_safety = m.thread_safety;
    c.name = m.name.c_str();
    c.version = m.version.c_str();
    c.summary = m.summary.c_str();
    c.config_schema = m.config_schema.c_str();
    c.default_config = m.default_config.empty() ? nullptr : m.default_config.c_str();
    c.default_weights = m.default_weights.empty() ? nullptr : m.default_weights.c_str();
    c.vtable = e.vtable;
    c.base = m.base.empty() ? nullptr : m.base.c_str();
    c.preferred_pipeline = m.preferred_pipeline.empty() ? nullptr : m.preferred_pipeline.c_str();
    c.flags = m.flags;
  }
  for (auto& c : built->components) built->pointers.push_back(&c);
  built->info.struct_size = sizeof(sinsr_plugin_info);
  built->info.abi_version = SINSR_ABI_VERSION;
  // A model means nothing to a 1.0 host (it would see a component without a function table).
  bool needs_1_1 = false;
  for (const Entry& e : entries_) needs_1_1 = needs_1_1 || !e.meta.base.empty();
  built->info.min_abi_version = SINSR_MAKE_VERSION(SINSR_ABI_VERSION_MAJOR, needs_1_1 ? 1 : 0);
  built->info.name = built->name.c_str();
  built->info.version = built->version.c_str();
  built->info.num_components = built->pointers.size();
  built->info.components = built->pointers.data();
  return &built->info;
}

sinsr_status* plugin_entry(const sinsr_host_api* host_api, const sinsr_plugin_info** out, const char* name,
                           const char* version, void (*register_fn)(PluginBuilder&)) noexcept {
  if (host_api == nullptr || host_api->struct_size < offsetof(sinsr_host_api, log) ||
      host_api->status_create == nullptr)
    return nullptr;  // cannot even report; the host treats a missing descriptor as a refusal
  if (SINSR_VERSION_GET_MAJOR(host_api->abi_version) != SINSR_ABI_VERSION_MAJOR) {
    std::string msg = std::string("plugin '") + (name ? name : "?") + "' needs ABI " +
                      std::to_string(SINSR_ABI_VERSION_MAJOR) + ".x, host has " +
                      std::to_string(SINSR_VERSION_GET_MAJOR(host_api->abi_version)) + "." +
                      std::to_string(SINSR_VERSION_GET_MINOR(host_api->abi_version));
    return host_api->status_create(SINSR_ERR_ABI, msg.c_str());
  }
  set_host(host_api);
  static std::mutex mutex;
  static const sinsr_plugin_info* info = nullptr;
  return guard("plugin registration", [&] {
    require(out != nullptr, SINSR_ERR_INVALID_ARGUMENT, "out is null");
    std::lock_guard<std::mutex> lock(mutex);
    if (info == nullptr) {
      PluginBuilder builder;
      register_fn(builder);
      info = builder.finish(name, version);
    }
    *out = info;
  });
}

}  // namespace sdk
}  // namespace sinsr
