// The SDK's common part: statuses, logging, DLPack conversion, streams, and what the
// per-kind adapters (sdk_<kind>.cpp) and the registration (sdk_plugin.cpp) share.
#include "sdk_internal.hpp"

#include "sinsr/checkpoint.hpp"

#include <ATen/Context.h>
#include <c10/util/Exception.h>
#include <torch/nn/module.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
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
                                   &local_message,         &local_release,    &local_log};

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
  if (context.empty()) throw Error(code, message);
  // One prefix per operation: "sr3_unet create" over a plugin's "create: ..." says create once.
  const std::string verb = context.substr(context.rfind(' ') + 1) + ": ";
  if (message.compare(0, verb.size(), verb) == 0) message.erase(0, verb.size());
  throw Error(code, context + ": " + message);
}

void require(bool condition, sinsr_code code, const std::string& message) {
  if (!condition) throw Error(code, message);
}

// ---- tensors ---------------------------------------------------------------------------

namespace {
[[noreturn]] void refuse_dlpack(DLManagedTensor* m, const std::string& why) {
  release(m);
  throw Error(SINSR_ERR_INVALID_ARGUMENT, "DLPack tensor: " + why);
}

// fromDLPack may run the deleter before it throws (from_blob failing after taking the
// storage): the producer's tensor goes in behind a wrapper that records whether it ran.
struct DlpackGuard {
  DLManagedTensor* inner;
  std::shared_ptr<bool> released;
};

DLManagedTensor* guarded(DLManagedTensor* m, const std::shared_ptr<bool>& released) {
  auto* outer = new DLManagedTensor(*m);
  outer->manager_ctx = new DlpackGuard{m, released};
  outer->deleter = [](DLManagedTensor* self) {
    auto* g = static_cast<DlpackGuard*>(self->manager_ctx);
    *g->released = true;
    release(g->inner);
    delete g;
    delete self;
  };
  return outer;
}
}  // namespace

at::Tensor from_dlpack(DLManagedTensor* m) {
  if (m == nullptr) return at::Tensor();
  // Everything the importer would read through is checked first: a refusal is an sdk::Error
  // (never a c10::Error, never signed overflow) and releases the input exactly once.
  const DLTensor& t = m->dl_tensor;
  if (t.ndim < 0) refuse_dlpack(m, "negative ndim " + std::to_string(t.ndim));
  if (t.ndim > 0 && t.shape == nullptr) refuse_dlpack(m, "ndim " + std::to_string(t.ndim) + " with a null shape");
  if (t.dtype.lanes != 1) refuse_dlpack(m, std::to_string(t.dtype.lanes) + " lanes (only scalar dtypes)");
  // LibTorch's contiguous strides multiply the sizes with zeros counted as one: that product
  // must fit in 64 bits even when the tensor is empty.
  int64_t numel = 1, dense = 1;
  for (int i = 0; i < t.ndim; ++i) {
    if (t.shape[i] > 0 && __builtin_mul_overflow(dense, t.shape[i], &dense))
      refuse_dlpack(m, "sizes beyond 64 bits (contiguous strides overflow)");
    if (t.shape[i] < 0)
      refuse_dlpack(m, "negative size " + std::to_string(t.shape[i]) + " in dimension " + std::to_string(i));
    numel *= t.shape[i];  // at most `dense`: no overflow
  }
  // LibTorch tensors have no negative strides, and the bytes they address (from the offset to
  // the last element) must fit in 64 bits.
  int64_t extent = numel == 0 ? 0 : numel - 1;  // contiguous
  if (t.strides != nullptr) {
    extent = 0;
    for (int i = 0; i < t.ndim; ++i) {
      if (t.strides[i] < 0)
        refuse_dlpack(m, "negative stride " + std::to_string(t.strides[i]) + " in dimension " + std::to_string(i) +
                             " (LibTorch tensors have none)");
      int64_t span = 0;
      if (numel != 0 && (__builtin_mul_overflow(t.shape[i] - 1, t.strides[i], &span) ||
                         __builtin_add_overflow(extent, span, &extent)))
        refuse_dlpack(m, "strides address beyond 64 bits");
    }
  }
  const int64_t item = std::max<int64_t>(1, (int64_t(t.dtype.bits) + 7) / 8);
  int64_t bytes = 0;
  if (t.byte_offset > uint64_t(INT64_MAX) || __builtin_add_overflow(extent, 1, &bytes) ||
      __builtin_mul_overflow(bytes, item, &bytes) || __builtin_add_overflow(bytes, int64_t(t.byte_offset), &bytes))
    refuse_dlpack(m, "strides address beyond 64 bits");
  if (t.data == nullptr) {
    if (numel != 0) refuse_dlpack(m, "null data for " + std::to_string(numel) + " elements");
    // Nothing to borrow: an empty tensor of the type, and the producer's memory given back now.
    at::ScalarType type = at::kFloat;
    try {
      type = scalar_type_of(t.dtype);
    } catch (const Error& e) {
      refuse_dlpack(m, e.what());
    }
    std::vector<int64_t> sizes(t.shape, t.shape + t.ndim);
    release(m);
    return at::empty(sizes, at::TensorOptions().dtype(type));
  }
  // A C caller can put any number in the enum: read it as the integer it is.
  int32_t device = 0;
  static_assert(sizeof(t.device.device_type) == sizeof(device), "DLDeviceType is 32 bits");
  std::memcpy(&device, &t.device.device_type, sizeof(device));
  const bool cuda = device == kDLCUDA || device == kDLCUDAHost;
  if (device != kDLCPU && !(cuda && at::hasCUDA()))
    refuse_dlpack(m, "device type " + std::to_string(device) + " (CPU, or CUDA where present)");
  auto released = std::make_shared<bool>(false);
  DLManagedTensor* outer = guarded(m, released);
  std::string why;
  try {
    return at::fromDLPack(outer);
  } catch (const c10::Error& e) {
    why = e.what_without_backtrace();
  } catch (const std::exception& e) {
    why = e.what();
  } catch (...) {
    why = "refused by the importer";
  }
  if (!*released) release(outer);  // the wrapper releases the producer's tensor once
  throw Error(SINSR_ERR_INVALID_ARGUMENT, "DLPack tensor: " + why);
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
    default: break;
  }
  throw Error(SINSR_ERR_INVALID_ARGUMENT,
              "unsupported dtype (code " + std::to_string(dtype.code) + ", " + std::to_string(dtype.bits) + " bits)");
}

c10::Device device_of(DLDevice device) {
  switch (device.device_type) {
    case kDLCPU: return c10::Device(c10::kCPU);
    case kDLCUDA: return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(device.device_id));
    default: throw Error(SINSR_ERR_UNSUPPORTED, "unsupported device type " + std::to_string(device.device_type));
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

// ---- logging ---------------------------------------------------------------------------

namespace {
std::atomic<const char*> g_log_source{"sinsr"};
}  // namespace

void internal::set_log_source(const char* source) noexcept { g_log_source.store(source && *source ? source : "sinsr"); }

void log(sinsr_log_level level, const std::string& message) noexcept {
  const sinsr_host_api* h = host();
  // host->log is part of the 1.0 table, but a host may hand over a table that stops before it.
  if (h != nullptr && SINSR_HAS_FIELD(h, sinsr_host_api, log) && h->log != nullptr)
    h->log(level, g_log_source.load(), message.c_str());
  else
    std::fprintf(stderr, "%s: %s\n", g_log_source.load(), message.c_str());
}

// ---- shared by the adapters ------------------------------------------------------------

namespace internal {

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

bool initialise_option(const char* options_json) {
  config::Reader r("create_with options", config::parse_optional(options_json, "create_with options"));
  const bool initialise = r.string("init", "default", {"default", "none"}) == "default";
  r.finish();
  return initialise;
}

void load_module_weights(torch::nn::Module& module, const std::string& path, const json& options) {
  auto state = ckpt::read_state_dict(path, options.value("key", std::string()));
  try {
    ckpt::load_into(module, std::move(state), options.value("strict", true));
  } catch (const Error& e) {
    throw Error(e.code(), path + ": " + e.what());
  }
}

void move_module(torch::nn::Module& module, c10::Device device, at::ScalarType dtype) {
  at::NoGradGuard no_grad;
  for (auto& p : module.parameters()) p.set_data(p.is_floating_point() ? p.to(device, dtype) : p.to(device));
  for (auto& b : module.buffers()) b.set_data(b.is_floating_point() ? b.to(device, dtype) : b.to(device));
}

void write_timesteps(const Timesteps& ts, UnitStore& store, sinsr_timestep_info* out) {
  require(out != nullptr, SINSR_ERR_INVALID_ARGUMENT, "out is null");
  require(SINSR_HAS_FIELD(out, sinsr_timestep_info, kind), SINSR_ERR_ABI, "sinsr_timestep_info.struct_size too small");
  require(ts.kind == SINSR_TIMESTEP_INDEX || ts.kind == SINSR_TIMESTEP_NOISE_LEVEL, SINSR_ERR_RUNTIME,
          "unknown timestep kind " + std::to_string(int(ts.kind)));
  require(ts.kind != SINSR_TIMESTEP_NOISE_LEVEL || !ts.unit.empty(), SINSR_ERR_RUNTIME,
          "a noise-level timestep must name its unit");
  out->kind = ts.kind;
  if (!SINSR_HAS_FIELD(out, sinsr_timestep_info, unit)) return;
  out->unit = nullptr;
  if (ts.kind == SINSR_TIMESTEP_NOISE_LEVEL) {
    std::lock_guard<std::mutex> lock(store.mutex);
    out->unit = store.units.insert(ts.unit).first->c_str();
  }
}

}  // namespace internal

}  // namespace sdk
}  // namespace sinsr
