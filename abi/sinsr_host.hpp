/*
 * sinsr_host.hpp - a thin, header-only C++17 wrapper over the C API (sinsr_host.h), as ONNX
 * Runtime's C++ header is over its C API: handles that release themselves, failures thrown as
 * sinsr::Error on the caller's side (no exception crosses the library's boundary: the library
 * returns statuses, this header turns them into exceptions), strings and vectors for lists.
 * It links against libsinsr_host only; the C API's threading and ownership rules hold unchanged.
 *
 *   sinsr::Runtime runtime;                           // the default plugin paths, all cores
 *   sinsr::Pipeline pipeline(runtime);                // "{}": the default model
 *   pipeline.upscale_file("photo.jpg", "photo_x4.png");
 *   sinsr::Tensor sr = pipeline.run(sinsr::Tensor::copy_of(pixels, {h, w, 3}));
 */
#ifndef SINSR_HOST_HPP
#define SINSR_HOST_HPP

#include "sinsr_host.h"

#include <cstdint>
#include <exception>
#include <functional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace sinsr {

/* A failed call: the status's code (sinsr_code) and message. */
class Error : public std::runtime_error {
 public:
  Error(int32_t code, const std::string& message) : std::runtime_error(message), code_(code) {}
  int32_t code() const noexcept { return code_; }

 private:
  int32_t code_;
};

/* Releases a status, throwing it as Error unless it is NULL (success). */
inline void check(sinsr_status* status) {
  if (!status) return;
  Error error(sinsr_status_code(status), sinsr_status_message(status));
  sinsr_status_release(status);
  throw error;
}

inline std::string version() { return sinsr_version(); }

/* The extensions this build writes, its default first (sinsr_image_formats). */
inline std::vector<std::string> image_formats() {
  std::vector<std::string> out;
  const std::string all = sinsr_image_formats();
  for (size_t at = 0; at < all.size();) {
    const size_t end = all.find(' ', at);
    const size_t stop = end == std::string::npos ? all.size() : end;
    if (stop > at) out.push_back(all.substr(at, stop - at));
    at = stop + 1;
  }
  return out;
}

namespace detail {

template <class T>
struct dtype_of;
template <>
struct dtype_of<uint8_t> {
  static DLDataType get() { return DLDataType{static_cast<uint8_t>(kDLUInt), 8, 1}; }
};
template <>
struct dtype_of<uint16_t> {
  static DLDataType get() { return DLDataType{static_cast<uint8_t>(kDLUInt), 16, 1}; }
};
template <>
struct dtype_of<float> {
  static DLDataType get() { return DLDataType{static_cast<uint8_t>(kDLFloat), 32, 1}; }
};

/* A tensor's storage when this header made it: freed by its deleter. */
template <class T>
struct Owned {
  DLManagedTensor managed{};
  std::vector<T> data;
  std::vector<int64_t> shape;
};

}  // namespace detail

/* A DLPack tensor owned here: its deleter runs once, when the Tensor goes. Calls that consume a
   tensor (as the C API's do, on failure too) take it by value: pass std::move(t). */
class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(DLManagedTensor* managed) noexcept : m_(managed) {}
  Tensor(Tensor&& other) noexcept : m_(std::exchange(other.m_, nullptr)) {}
  Tensor& operator=(Tensor&& other) noexcept {
    if (this != &other) {
      reset();
      m_ = std::exchange(other.m_, nullptr);
    }
    return *this;
  }
  Tensor(const Tensor&) = delete;
  Tensor& operator=(const Tensor&) = delete;
  ~Tensor() { reset(); }

  /* A copy of row-major `data` of `shape` (uint8_t, uint16_t or float samples) on the CPU. */
  template <class T>
  static Tensor copy_of(const T* data, std::vector<int64_t> shape) {
    auto* owned = new detail::Owned<T>();
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    owned->data.assign(data, data + n);
    owned->shape = std::move(shape);
    DLTensor& t = owned->managed.dl_tensor;
    t.data = owned->data.data();
    t.device.device_type = kDLCPU;
    t.ndim = static_cast<int32_t>(owned->shape.size());
    t.dtype = detail::dtype_of<T>::get();
    t.shape = owned->shape.data();
    owned->managed.manager_ctx = owned;
    owned->managed.deleter = [](DLManagedTensor* self) { delete static_cast<detail::Owned<T>*>(self->manager_ctx); };
    return Tensor(&owned->managed);
  }

  DLManagedTensor* get() const noexcept { return m_; }
  /* Gives up ownership: the caller runs the deleter (or hands it to a call that consumes it). */
  DLManagedTensor* release() noexcept { return std::exchange(m_, nullptr); }
  explicit operator bool() const noexcept { return m_ != nullptr; }

  std::vector<int64_t> shape() const {
    if (!m_) return {};
    return std::vector<int64_t>(m_->dl_tensor.shape, m_->dl_tensor.shape + m_->dl_tensor.ndim);
  }
  int64_t numel() const {
    if (!m_) return 0;
    int64_t n = 1;
    for (int32_t i = 0; i < m_->dl_tensor.ndim; ++i) n *= m_->dl_tensor.shape[i];
    return n;
  }
  DLDataType dtype() const { return m_ ? m_->dl_tensor.dtype : DLDataType{0, 0, 0}; }
  /* The samples (contiguous, as the library returns them); T must match dtype(). */
  template <class T>
  const T* data() const {
    if (!m_) return nullptr;
    const DLDataType want = detail::dtype_of<T>::get(), have = m_->dl_tensor.dtype;
    if (want.code != have.code || want.bits != have.bits || want.lanes != have.lanes)
      throw Error(SINSR_ERR_INVALID_ARGUMENT, "Tensor::data: the tensor holds another sample type");
    return reinterpret_cast<const T*>(static_cast<const char*>(m_->dl_tensor.data) + m_->dl_tensor.byte_offset);
  }

 private:
  void reset() noexcept {
    if (m_ && m_->deleter) m_->deleter(m_);
    m_ = nullptr;
  }
  DLManagedTensor* m_ = nullptr;
};

namespace detail {

/* A C object owned here: destroyed once, by its C API destructor (which takes NULL). */
template <class T, void (*Destroy)(T*)>
class Handle {
 public:
  Handle() = default;
  Handle(Handle&& other) noexcept : p_(std::exchange(other.p_, nullptr)) {}
  Handle& operator=(Handle&& other) noexcept {
    if (this != &other) {
      Destroy(p_);
      p_ = std::exchange(other.p_, nullptr);
    }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() { Destroy(p_); }
  T* get() const noexcept { return p_; }
  T** out() noexcept { return &p_; }

 private:
  T* p_ = nullptr;
};

}  // namespace detail

/* One component the runtime loaded (sinsr_component_info), its strings copied. */
struct Component {
  int32_t kind = 0;
  std::string kind_name, name, version, summary, config_schema, file, plugin;
  int32_t thread_safety = 0;
  uint32_t abi_version = 0;
};

/* sinsr_runtime_options as C++ defaults: all cores, the default plugin paths loaded. */
struct RuntimeOptions {
  int32_t threads = 0;
  bool default_paths = true;
};

class Runtime {
 public:
  explicit Runtime(const RuntimeOptions& options = RuntimeOptions()) {
    sinsr_runtime_options o = sinsr_runtime_default_options();
    o.num_threads = options.threads;
    o.load_default_paths = options.default_paths ? 1 : 0;
    check(sinsr_runtime_create(&o, r_.out()));
  }
  /* Destroyed (or moved from) after every pipeline made from it. */

  /* A plugin library, a model manifest, a defaults.json, or a folder of them. */
  void load(const std::string& path) { check(sinsr_runtime_load(r_.get(), path.c_str())); }

  std::vector<Component> components() const {
    size_t count = 0;
    check(sinsr_runtime_component_count(r_.get(), &count));
    std::vector<Component> out;
    for (size_t i = 0; i < count; ++i) {
      sinsr_component_info info{};
      info.struct_size = sizeof info;
      check(sinsr_runtime_component_info(r_.get(), i, &info));
      auto text = [](const char* s) { return std::string(s ? s : ""); };
      Component c;
      c.kind = info.kind;
      c.kind_name = text(sinsr_kind_name(info.kind));
      c.name = text(info.name);
      c.version = text(info.version);
      c.summary = text(info.summary);
      c.config_schema = text(info.config_schema);
      c.file = text(info.file);
      c.plugin = text(info.plugin_name);
      c.thread_safety = info.thread_safety;
      c.abi_version = info.abi_version;
      out.push_back(std::move(c));
    }
    return out;
  }

  sinsr_runtime* get() const noexcept { return r_.get(); }

 private:
  detail::Handle<sinsr_runtime, sinsr_runtime_destroy> r_;
};

namespace detail {

/* The C progress callback in front of a std::function: what it throws cancels the run and is
   rethrown by the call that ran it, on this side of the library. */
struct ProgressCall {
  const std::function<bool(int32_t, int32_t)>* progress;
  std::exception_ptr error;
};

inline int32_t progress_trampoline(void* user, int32_t done, int32_t total) noexcept {
  auto* call = static_cast<ProgressCall*>(user);
  try {
    return (*call->progress)(done, total) ? 1 : 0;
  } catch (...) {
    call->error = std::current_exception();
    return 0;
  }
}

}  // namespace detail

class Pipeline {
 public:
  /* progress(done, total) after each batch of tiles, over the whole run; false cancels it
     (Error with SINSR_ERR_CANCELLED), and so does an exception, which the run rethrows. */
  using Progress = std::function<bool(int32_t done, int32_t total)>;

  /* spec_json as sinsr_pipeline_create takes it; "{}" is the default model. The runtime must
     outlive the pipeline. */
  explicit Pipeline(Runtime& runtime, const std::string& spec_json = "{}") {
    check(sinsr_pipeline_create(runtime.get(), spec_json.c_str(), p_.out()));
  }

  /* image (consumed): [H,W,C] or [N,C,H,W], as sinsr_pipeline_run takes it. */
  Tensor run(Tensor image, const Progress& progress = Progress()) {
    detail::ProgressCall call{&progress, nullptr};
    sinsr_run_options options{};
    options.struct_size = sizeof options;
    options.progress = progress ? &detail::progress_trampoline : nullptr;
    options.user = &call;
    DLManagedTensor* out = nullptr;
    sinsr_status* status = sinsr_pipeline_run_with(p_.get(), image.release(), &options, &out);
    return finish(status, call, out);
  }

  /* One file into another, as `sinsr-host infer` writes it (sinsr_pipeline_upscale_file). */
  void upscale_file(const std::string& input, const std::string& output,
                    const sinsr_file_options& options = sinsr_file_default_options(),
                    const Progress& progress = Progress()) {
    detail::ProgressCall call{&progress, nullptr};
    sinsr_run_options run{};
    run.struct_size = sizeof run;
    run.progress = progress ? &detail::progress_trampoline : nullptr;
    run.user = &call;
    sinsr_status* status = sinsr_pipeline_upscale_file(p_.get(), input.c_str(), output.c_str(), &options, &run);
    finish(status, call, nullptr);
  }

  /* What the pipeline resolved, as JSON (sinsr_pipeline_settings). */
  std::string settings() const {
    const char* json = nullptr;
    check(sinsr_pipeline_settings(p_.get(), &json));
    return json ? json : "";
  }

  sinsr_pipeline* get() const noexcept { return p_.get(); }

 private:
  static Tensor finish(sinsr_status* status, detail::ProgressCall& call, DLManagedTensor* out) {
    Tensor result(out);
    if (call.error) {
      sinsr_status_release(status);
      std::rethrow_exception(call.error);
    }
    check(status);
    return result;
  }
  detail::Handle<sinsr_pipeline, sinsr_pipeline_destroy> p_;
};

/* Image files as `sinsr-host infer` reads and writes them. read: float32 [H,W,C] in [0, 1];
   read_samples: in the file's own samples (uint8, uint16, float32); *bits the file's depth. */
inline Tensor image_read(const std::string& path, int32_t* bits = nullptr) {
  DLManagedTensor* out = nullptr;
  check(sinsr_image_read(path.c_str(), &out, bits));
  return Tensor(out);
}
inline Tensor image_read_samples(const std::string& path, int32_t* bits = nullptr) {
  DLManagedTensor* out = nullptr;
  check(sinsr_image_read_samples(path.c_str(), &out, bits));
  return Tensor(out);
}
/* image (consumed): [H,W,C]; bits 8, 16, 32 (float where the format has it) or 0 (its own). */
inline void image_write(const std::string& path, Tensor image, int32_t bits = 0) {
  check(sinsr_image_write(path.c_str(), image.release(), bits));
}

}  // namespace sinsr

#endif /* SINSR_HOST_HPP */
