// The host runtime in C++: loads plugin libraries, keeps the registry of their components and
// wraps each kind's C function table in an RAII handle that speaks at::Tensor and throws
// sinsr::sdk::Error. Pipelines, the trainer and sinsr-host are written against this layer.
#pragma once

#include "sinsr_host.h"

#include <sinsr/sdk.hpp>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace sinsr {
namespace host {

using json = nlohmann::json;

// The host's own service table (statuses, logging), handed to every plugin.
const sinsr_host_api* host_api();

struct Component {
  const sinsr_component* desc = nullptr;
  std::string file;         // library path
  std::string plugin_name;
  std::string plugin_version;
  uint32_t abi_version = 0;
  std::shared_ptr<void> library;      // keeps the library loaded while handles live
  std::shared_ptr<std::mutex> serial;  // for SINSR_THREAD_SERIAL components
  std::shared_ptr<void> storage;       // a resolved model's host-owned descriptor and strings

  int32_t kind() const { return desc->kind; }
  std::string name() const { return desc->name; }
  std::string default_weights_path() const;  // resolved beside the library, or ""
  json default_config() const;               // {} when none
  // ABI 1.1 fields (empty / {} / false for a 1.0 component).
  std::string base() const;          // a shipped model: the component implementing it
  json preferred_pipeline() const;   // what the model was trained with
  bool needs_weights() const;        // false: SINSR_COMPONENT_NO_WEIGHTS
};

class Runtime {
 public:
  explicit Runtime(int num_threads = 0);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // Loads one library; throws Error with the refusal reason (the registry is unchanged).
  void load_file(const std::string& path);
  // Loads every shared library in a folder; returns the refusal messages (others still load).
  std::vector<std::string> load_dir(const std::string& path);
  // File or folder; a folder's refusals are joined into one Error after the rest loaded.
  void load(const std::string& path);
  // SINSR_PLUGIN_PATH entries, then the plugin folder of this install/build tree. Returns refusals.
  std::vector<std::string> load_default_paths();

  const std::vector<std::shared_ptr<Component>>& components() const { return components_; }
  // Throws SINSR_ERR_NOT_FOUND listing the available names of that kind. A shipped model
  // (ABI 1.1 `base`) comes back resolved: its base's function table with the model's name,
  // merged default config, weights and preferred pipeline.
  std::shared_ptr<Component> find(int32_t kind, const std::string& name) const;
  std::shared_ptr<Component> find_or_null(int32_t kind, const std::string& name) const;
  // The single component of a kind a library provides (for `--plugin student.so` defaults).
  std::vector<std::shared_ptr<Component>> from_file(const std::string& path) const;

  // The folder the installed/built plugins live in, derived from libsinsr_host's location.
  static std::string builtin_plugin_dir();

 private:
  struct Library;
  std::vector<std::shared_ptr<Library>> libraries_;
  std::vector<std::shared_ptr<Component>> components_;
  mutable std::map<const Component*, std::shared_ptr<Component>> resolved_;  // models, resolved once
  mutable std::mutex mutex_;
  std::shared_ptr<Component> resolve_locked(const std::shared_ptr<Component>& model) const;
};

// ---- handles -------------------------------------------------------------------------

// The sinsr_call_options for a compute call on tensors like `t`: the host's current CUDA
// stream on t's device when t is on CUDA (CUDA builds), else no stream.
sinsr_call_options call_options_for(const at::Tensor& t);

// What a network's t means, as a sampler or backbone instance declares it (ABI 1.1
// timestep_kind; a component without the call passes/takes int64 step indices).
struct TimestepKind {
  int32_t kind = SINSR_TIMESTEP_INDEX;
  std::string unit;  // noise levels only
  bool operator==(const TimestepKind& o) const { return kind == o.kind && unit == o.unit; }
  bool operator!=(const TimestepKind& o) const { return !(*this == o); }
  std::string describe() const;  // "int64 step indices", "noise levels in 'sigma'"
};

// Serialises calls as the component's declared thread-safety mode requires.
class CallLock {
 public:
  explicit CallLock(const Component& c);
  std::unique_lock<std::mutex> lock() const;

 private:
  std::shared_ptr<std::mutex> mutex_;
};

class Tape;

struct NamedTensor {
  std::string name;
  bool is_parameter = false;
  at::Tensor value;  // zero-copy view into the component
  at::Tensor grad;   // undefined for buffers
};

class BackboneHandle {
 public:
  BackboneHandle(std::shared_ptr<Component> c, const json& config);
  ~BackboneHandle();
  BackboneHandle(const BackboneHandle&) = delete;
  BackboneHandle& operator=(const BackboneHandle&) = delete;

  const Component& component() const { return *component_; }
  void load_weights(const std::string& path, const json& options = json::object());
  void save_weights(const std::string& path);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cond, const at::Tensor& t);
  // Forward recording a tape for backward().
  std::pair<at::Tensor, std::unique_ptr<Tape>> forward_train(const at::Tensor& x, const at::Tensor& cond,
                                                             const at::Tensor& t);
  // Consumes the tape; returns {grad_x, grad_cond} (undefined when not asked for / absent).
  std::pair<at::Tensor, at::Tensor> backward(std::unique_ptr<Tape> tape, const at::Tensor& grad_out,
                                             bool want_input_grads = false);
  std::vector<NamedTensor> state();
  void zero_grad();
  void set_training(bool training);
  void to(c10::Device device, at::ScalarType dtype);
  TimestepKind timestep_kind();  // what forward() takes as t

  const sinsr_backbone_vtable* vtable() const { return vt_; }
  sinsr_backbone* raw() const { return self_; }

 private:
  std::shared_ptr<Component> component_;
  const sinsr_backbone_vtable* vt_;
  sinsr_backbone* self_ = nullptr;
  CallLock lock_;
};

class Tape {
 public:
  ~Tape();
  Tape(const Tape&) = delete;
  Tape& operator=(const Tape&) = delete;

 private:
  friend class BackboneHandle;
  friend class LossHandle;
  Tape(std::function<void(sinsr_tape*)> release, sinsr_tape* tape) : release_(std::move(release)), tape_(tape) {}
  sinsr_tape* take() {
    sinsr_tape* t = tape_;
    tape_ = nullptr;
    return t;
  }
  std::function<void(sinsr_tape*)> release_;
  sinsr_tape* tape_;
};

class CodecHandle {
 public:
  CodecHandle(std::shared_ptr<Component> c, const json& config);
  ~CodecHandle();
  CodecHandle(const CodecHandle&) = delete;
  CodecHandle& operator=(const CodecHandle&) = delete;

  const Component& component() const { return *component_; }
  void load_weights(const std::string& path, const json& options = json::object());
  sinsr_codec_info info();
  at::Tensor encode(const at::Tensor& image);
  at::Tensor decode(const at::Tensor& latent);
  void to(c10::Device device, at::ScalarType dtype);

 private:
  std::shared_ptr<Component> component_;
  const sinsr_codec_vtable* vt_;
  sinsr_codec* self_ = nullptr;
  CallLock lock_;
};

class SamplerHandle {
 public:
  // steps > 0: respace the chain to that many network calls (ABI 1.1 respace, right after
  // create); throws, naming the sampler, when it cannot.
  SamplerHandle(std::shared_ptr<Component> c, const json& config, int steps = 0);
  ~SamplerHandle();
  SamplerHandle(const SamplerHandle&) = delete;
  SamplerHandle& operator=(const SamplerHandle&) = delete;

  const Component& component() const { return *component_; }
  int num_steps();
  at::Tensor schedule(const std::string& key);
  at::Tensor prior(const at::Tensor& y, const at::Tensor& noise);
  at::Tensor sample(const at::Tensor& y, const at::Tensor& x_T, const sdk::SampleCallbacks& callbacks);
  at::Tensor q_sample(const at::Tensor& x0, const at::Tensor& y, const at::Tensor& t, const at::Tensor& noise);
  at::Tensor scale_input(const at::Tensor& x_t, const at::Tensor& t);
  TimestepKind timestep_kind();  // what sample() passes to denoise as t
  // ABI 1.2: the network input, timestep and target for clean x0 and condition y, drawn
  // through draws.uniform and draws.noise. Throws SINSR_ERR_UNSUPPORTED, naming the sampler,
  // when it cannot train.
  sdk::TrainingExample training_example(const at::Tensor& x0, const at::Tensor& y, const sdk::SampleCallbacks& draws);

 private:
  void respace(int steps);

  std::shared_ptr<Component> component_;
  const sinsr_sampler_vtable* vt_;
  sinsr_sampler* self_ = nullptr;
  CallLock lock_;
};

class LossHandle {
 public:
  LossHandle(std::shared_ptr<Component> c, const json& config);
  ~LossHandle();
  LossHandle(const LossHandle&) = delete;
  LossHandle& operator=(const LossHandle&) = delete;

  const Component& component() const { return *component_; }
  at::Tensor forward(const at::Tensor& pred, const at::Tensor& target);
  std::pair<at::Tensor, std::unique_ptr<Tape>> forward_train(const at::Tensor& pred, const at::Tensor& target);
  at::Tensor backward(std::unique_ptr<Tape> tape, const at::Tensor& grad_loss);

 private:
  std::shared_ptr<Component> component_;
  const sinsr_loss_vtable* vt_;
  sinsr_loss* self_ = nullptr;
  CallLock lock_;
};

// Merges a component's default_config under the caller's config (caller wins).
json with_defaults(const Component& c, const json& config);

// Refuses (SINSR_ERR_INVALID_ARGUMENT, naming both components) a sampler whose timesteps the
// backbone does not take. Pipelines and the trainer call it when they pair the two.
void check_timesteps(SamplerHandle& sampler, BackboneHandle& backbone);

}  // namespace host
}  // namespace sinsr
