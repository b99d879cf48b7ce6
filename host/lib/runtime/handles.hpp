// The handles: each kind's C function table wrapped in an RAII object that speaks at::Tensor and
// throws sinsr::sdk::Error naming the component and the call. What the four kinds share (the
// instance, its call lock, errors, weights, device moves, timesteps, tapes) is one template,
// ComponentHandle; each kind adds its own calls.
#pragma once

#include "runtime/registry.hpp"

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace sinsr {
namespace host {

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

template <class VT, class Self, int32_t Kind>
class ComponentHandle;

// A recorded forward pass, consumed by the backward call of the handle that made it.
class Tape {
 public:
  ~Tape();
  Tape(const Tape&) = delete;
  Tape& operator=(const Tape&) = delete;

 private:
  template <class VT, class Self, int32_t Kind>
  friend class ComponentHandle;
  Tape(std::function<void(sinsr_tape*)> release, sinsr_tape* tape) : release_(std::move(release)), tape_(tape) {}
  sinsr_tape* take() {
    sinsr_tape* t = tape_;
    tape_ = nullptr;
    return t;
  }
  std::function<void(sinsr_tape*)> release_;
  sinsr_tape* tape_;
};

struct NamedTensor {
  std::string name;
  bool is_parameter = false;
  at::Tensor value;  // zero-copy view into the component
  at::Tensor grad;   // undefined for buffers
};

// Checked pieces the handles share (handles.cpp).
namespace detail {
// The component's table, after checking it is of `kind`.
const void* table_of(const Component& c, int32_t kind);
std::string context(const Component& c, const char* what);  // "<component> <what>"
DLDevice dl_device(c10::Device d);
DLDataType dl_dtype(at::ScalarType t);  // floating types only
sinsr_timestep_info empty_timestep_info();
// A timestep_kind() answer, checked: a known kind, and a unit for noise levels.
TimestepKind timestep_kind_of(const Component& c, const sinsr_timestep_info& info);
// Whether a table type has the ABI 1.3 create_with slot (backbones and codecs).
template <class VT, class = void>
struct has_create_with : std::false_type {};
template <class VT>
struct has_create_with<VT, std::void_t<decltype(&VT::create_with)>> : std::true_type {};
}  // namespace detail

// The common part of the four handles. The calls only some kinds have (weights, device moves,
// timesteps, tapes) are written here once, protected, and made public by the kinds that have
// them; a member of a class template is compiled only for the kinds that use it.
template <class VT, class Self, int32_t Kind>
class ComponentHandle {
 public:
  // Creates the instance from the component's default config merged under `config`.
  // weights_follow: the caller loads a complete state dict next (strictly), so a component
  // that can (ABI 1.3 create_with) skips drawing initial values.
  ComponentHandle(std::shared_ptr<Component> c, const json& config, bool weights_follow = false)
      : component_(std::move(c)), vt_(static_cast<const VT*>(detail::table_of(*component_, Kind))), lock_(*component_) {
    const std::string text = with_defaults(*component_, config).dump();
    // Every call of the table under the mode's lock, create and destroy included: a SERIAL
    // plugin may keep state shared by its instances.
    auto l = lock_.lock();
    try {
      bool created = false;
      if constexpr (detail::has_create_with<VT>::value) {
        if (weights_follow && SINSR_HAS_FIELD(vt_, VT, create_with) && vt_->create_with) {
          sdk::throw_if_error(vt_->create_with(text.c_str(), R"({"init": "none"})", &self_), context("create"));
          created = true;
        }
      }
      if (!created) sdk::throw_if_error(vt_->create(text.c_str(), &self_), context("create"));
    } catch (const sdk::Error& e) {  // a config read from a file: the file is named first
      const auto file = config.is_object() ? config.find("config_file") : config.end();
      if (file == config.end() || !file->is_string()) throw;
      throw sdk::Error(e.code(), file->template get<std::string>() + ": " + e.what());
    }
    sdk::require(self_ != nullptr, SINSR_ERR_RUNTIME, context("create") + ": plugin returned no instance");
  }
  ~ComponentHandle() {
    if (!self_) return;
    auto l = lock_.lock();
    vt_->destroy(self_);
  }
  ComponentHandle(const ComponentHandle&) = delete;
  ComponentHandle& operator=(const ComponentHandle&) = delete;

  const Component& component() const { return *component_; }
  const VT* vtable() const { return vt_; }
  Self* raw() const { return self_; }

 protected:
  // Runs f() (a call of the table returning a status) under the call lock; a failure throws
  // "<component> <what>: <the plugin's message>".
  template <class F>
  void call(const char* what, F&& f) {
    auto l = lock_.lock();
    sdk::throw_if_error(f(), context(what));
  }
  // The same for a call that hands back one tensor through its last argument.
  template <class F>
  at::Tensor call_tensor(const char* what, F&& f) {
    DLManagedTensor* out = nullptr;
    call(what, [&] { return f(&out); });
    return sdk::from_dlpack(out);
  }
  std::string context(const char* what) const { return detail::context(*component_, what); }

  // A tape of this instance, released through the table when dropped unconsumed.
  // Released under the instance's call lock, like every other call (never drop a tape inside call()).
  std::unique_ptr<Tape> make_tape(sinsr_tape* tape) const {
    const VT* vt = vt_;
    Self* self = self_;
    return std::unique_ptr<Tape>(new Tape(
        [vt, self, lock = lock_](sinsr_tape* t) {
          auto l = lock.lock();
          vt->tape_release(self, t);
        },
        tape));
  }
  static sinsr_tape* take(Tape& tape) { return tape.take(); }

  void load_weights(const std::string& path, const json& options = json::object()) {
    const std::string opts = options.dump();
    call("load_weights", [&] { return vt_->load_weights(self_, path.c_str(), opts.c_str()); });
  }
  void to(c10::Device device, at::ScalarType dtype) {
    call("to", [&] { return vt_->to(self_, detail::dl_device(device), detail::dl_dtype(dtype)); });
  }
  // ABI 1.4: what the instance predicts (backbones) or needs (samplers); UNDECLARED when the
  // table has no such call.
  sinsr_prediction prediction() {
    if (!SINSR_HAS_FIELD(vt_, VT, prediction) || vt_->prediction == nullptr) return SINSR_PREDICTION_UNDECLARED;
    int32_t p = SINSR_PREDICTION_UNDECLARED;
    call("prediction", [&] { return vt_->prediction(self_, &p); });
    sdk::require(p >= SINSR_PREDICTION_UNDECLARED && p <= SINSR_PREDICTION_OTHER, SINSR_ERR_RUNTIME,
                 context("prediction") + ": unknown value " + std::to_string(p));
    return sinsr_prediction(p);
  }
  TimestepKind timestep_kind() {
    if (!SINSR_HAS_FIELD(vt_, VT, timestep_kind) || vt_->timestep_kind == nullptr)
      return TimestepKind();  // a 1.0 table: int64 step indices
    sinsr_timestep_info info = detail::empty_timestep_info();
    call("timestep_kind", [&] { return vt_->timestep_kind(self_, &info); });
    return detail::timestep_kind_of(*component_, info);
  }

  std::shared_ptr<Component> component_;
  const VT* vt_;
  Self* self_ = nullptr;
  CallLock lock_;
};

using BackboneBase = ComponentHandle<sinsr_backbone_vtable, sinsr_backbone, SINSR_KIND_BACKBONE>;
using CodecBase = ComponentHandle<sinsr_codec_vtable, sinsr_codec, SINSR_KIND_CODEC>;
using SamplerBase = ComponentHandle<sinsr_sampler_vtable, sinsr_sampler, SINSR_KIND_SAMPLER>;
using LossBase = ComponentHandle<sinsr_loss_vtable, sinsr_loss, SINSR_KIND_LOSS>;

class BackboneHandle : public BackboneBase {
 public:
  using BackboneBase::BackboneBase;
  using BackboneBase::load_weights;
  using BackboneBase::prediction;     // what forward() returns
  using BackboneBase::timestep_kind;  // what forward() takes as t
  using BackboneBase::to;

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
};

class CodecHandle : public CodecBase {
 public:
  using CodecBase::CodecBase;
  using CodecBase::load_weights;
  using CodecBase::to;

  sinsr_codec_info info();
  at::Tensor encode(const at::Tensor& image);
  at::Tensor decode(const at::Tensor& latent);
};

class SamplerHandle : public SamplerBase {
 public:
  // steps > 0: respace the chain to that many network calls (ABI 1.1 respace, right after
  // create); throws, naming the sampler, when it cannot.
  SamplerHandle(std::shared_ptr<Component> c, const json& config, int steps = 0);
  using SamplerBase::prediction;     // what denoise must return
  using SamplerBase::timestep_kind;  // what sample() passes to denoise as t

  int num_steps();
  at::Tensor schedule(const std::string& key);
  at::Tensor prior(const at::Tensor& y, const at::Tensor& noise);
  at::Tensor sample(const at::Tensor& y, const at::Tensor& x_T, const sdk::SampleCallbacks& callbacks);
  at::Tensor q_sample(const at::Tensor& x0, const at::Tensor& y, const at::Tensor& t, const at::Tensor& noise);
  at::Tensor scale_input(const at::Tensor& x_t, const at::Tensor& t);
  // ABI 1.2: the network input, timestep and target for clean x0 and condition y, drawn
  // through draws.uniform and draws.noise. Throws SINSR_ERR_UNSUPPORTED, naming the sampler,
  // when it cannot train.
  sdk::TrainingExample training_example(const at::Tensor& x0, const at::Tensor& y, const sdk::SampleCallbacks& draws);
  // ABI 1.5: SinSR distillation's data (prior draw, the teacher's trajectory end through
  // teacher.denoise, the student's steps). can_distill() says whether the table has the call.
  bool can_distill() const;
  sdk::DistillationExample distillation_example(const at::Tensor& y, const at::Tensor& noise,
                                                const sdk::SampleCallbacks& teacher);

 private:
  void respace(int steps);
};

class LossHandle : public LossBase {
 public:
  using LossBase::LossBase;

  at::Tensor forward(const at::Tensor& pred, const at::Tensor& target);
  std::pair<at::Tensor, std::unique_ptr<Tape>> forward_train(const at::Tensor& pred, const at::Tensor& target);
  at::Tensor backward(std::unique_ptr<Tape> tape, const at::Tensor& grad_loss);
};

// Refuses (SINSR_ERR_INVALID_ARGUMENT, naming both) a sampler and a backbone that disagree on
// what t means (ABI 1.1) or on what the network returns (ABI 1.4; undeclared on either side is
// not checked). Pipelines and the trainer call it when they pair the two.
void check_pairing(SamplerHandle& sampler, BackboneHandle& backbone);
// "x0", "noise", "another quantity", "undeclared".
std::string describe(sinsr_prediction p);

// ---- weights ---------------------------------------------------------------------------

// A part that must have weights and has none: neither a file given for it nor default weights
// of its component. `part()` is the caller's name for the part ("backbone", "codec",
// "teacher"), so a front end can point to its own way of giving them (sinsr-host: --<part>-weights).
class MissingWeights : public sdk::Error {
 public:
  MissingWeights(const std::string& part, const std::string& component);
  const std::string& part() const { return part_; }
  const std::string& component_name() const { return component_; }

 private:
  std::string part_, component_;
};

// The weights rule of every part the host loads (pipelines, the trainer): `weights` when given,
// else the component's default weights; "none" runs the part untrained, and a component that
// declares no weights (SINSR_COMPONENT_NO_WEIGHTS) needs none unless a file is given. Returns
// the file to load, or "" for none. When nothing applies: "" if !required (a network trained
// from scratch), else MissingWeights(part, component).
std::string resolve_weights(const Component& c, const std::string& weights, const std::string& part,
                            bool required = true);
// resolve_weights, then loads the file into the handle (a backbone or a codec); returns the
// file loaded, or "" for none.
template <class Handle>
std::string load_part_weights(Handle& handle, const std::string& weights, const std::string& part,
                              bool required = true) {
  std::string file = resolve_weights(handle.component(), weights, part, required);
  if (!file.empty()) handle.load_weights(file);
  return file;
}

}  // namespace host
}  // namespace sinsr
