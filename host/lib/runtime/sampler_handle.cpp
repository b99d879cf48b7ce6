// SamplerHandle: respacing, the sampling call with its callbacks into the host, and the check
// that a sampler and a backbone agree on what a timestep is.
#include "runtime/handles.hpp"

#include <algorithm>

namespace sinsr {
namespace host {

using sdk::Error;
using sdk::from_dlpack;
using sdk::require;
using sdk::to_dlpack;

namespace {

// Bridges C callbacks to the C++ ones; an exception inside becomes a status for the plugin. The
// message goes back unprefixed: the sampler names the callback, the host the sampler.
struct CallbackBridge {
  const sdk::SampleCallbacks* cb;

  static sinsr_status* denoise(void* user, DLManagedTensor* x_in, DLManagedTensor* t, DLManagedTensor** out) {
    auto* self = static_cast<CallbackBridge*>(user);
    return sdk::guard("", [&] {
      at::Tensor x = from_dlpack(x_in);
      at::Tensor tt = from_dlpack(t);
      *out = to_dlpack(self->cb->denoise(x, tt));
    });
  }
  static sinsr_status* noise(void* user, const DLTensor* like, DLManagedTensor** out) {
    auto* self = static_cast<CallbackBridge*>(user);
    return sdk::guard("", [&] {
      require(self->cb->noise != nullptr, SINSR_ERR_INVALID_ARGUMENT, "no noise source given");
      std::vector<int64_t> shape(like->shape, like->shape + like->ndim);
      at::Tensor proto = at::empty(
          shape, at::TensorOptions().dtype(sdk::scalar_type_of(like->dtype)).device(sdk::device_of(like->device)));
      *out = to_dlpack(self->cb->noise(proto));
    });
  }
  static int32_t progress(void* user, int32_t step, int32_t total) {
    auto* self = static_cast<CallbackBridge*>(user);
    try {
      return (!self->cb->progress || self->cb->progress(step, total)) ? 0 : 1;
    } catch (...) {
      return 1;
    }
  }
  static sinsr_status* uniform(void* user, int64_t count, double* out) {
    auto* self = static_cast<CallbackBridge*>(user);
    return sdk::guard("", [&] {
      require(self->cb->uniform != nullptr, SINSR_ERR_INVALID_ARGUMENT, "no uniform source given");
      require(count >= 0 && (count == 0 || out != nullptr), SINSR_ERR_INVALID_ARGUMENT, "bad uniform request");
      at::Tensor u = self->cb->uniform(count).to(at::kCPU, at::kDouble).contiguous();
      require(u.numel() == count, SINSR_ERR_RUNTIME, "the uniform source returned the wrong count");
      std::copy_n(u.data_ptr<double>(), count, out);
    });
  }
  sinsr_sample_callbacks table() {
    sinsr_sample_callbacks t{};
    t.struct_size = sizeof(t);
    t.user = this;
    t.denoise = &CallbackBridge::denoise;
    t.noise = &CallbackBridge::noise;
    t.progress = &CallbackBridge::progress;
    t.uniform = &CallbackBridge::uniform;
    return t;
  }
};

}  // namespace

SamplerHandle::SamplerHandle(std::shared_ptr<Component> c, const json& config, int steps)
    : SamplerBase(std::move(c), config) {
  // A throw here still destroys the instance: the base is complete.
  require(steps >= 0, SINSR_ERR_INVALID_ARGUMENT, "sampler '" + component_->name() + "': steps must be >= 0");
  if (steps > 0) respace(steps);
}

void SamplerHandle::respace(int steps) {
  const std::string who = "sampler '" + component_->name() + "' cannot respace to " + std::to_string(steps) + " steps";
  if (!SINSR_HAS_FIELD(vt_, sinsr_sampler_vtable, respace) || vt_->respace == nullptr)
    throw Error(SINSR_ERR_UNSUPPORTED, who + ": its function table has no respace call (plugin " + component_->file +
                                           ", ABI " + version_string(component_->abi_version) +
                                           "), so it runs only its own " + std::to_string(num_steps()) + " steps");
  {
    auto l = lock_.lock();
    sdk::throw_if_error(vt_->respace(self_, steps), who);
  }
  const int n = num_steps();
  require(n == steps, SINSR_ERR_RUNTIME,
          "sampler '" + component_->name() + "' accepted respace(" + std::to_string(steps) + ") but reports " +
              std::to_string(n) + " steps");
}

int SamplerHandle::num_steps() {
  int32_t n = 0;
  call("num_steps", [&] { return vt_->num_steps(self_, &n); });
  return n;
}

at::Tensor SamplerHandle::schedule(const std::string& key) {
  return call_tensor("schedule", [&](DLManagedTensor** out) { return vt_->schedule(self_, key.c_str(), out); });
}

at::Tensor SamplerHandle::prior(const at::Tensor& y, const at::Tensor& noise) {
  const sinsr_call_options opts = call_options_for(y);
  return call_tensor(
      "prior", [&](DLManagedTensor** out) { return vt_->prior(self_, &opts, to_dlpack(y), to_dlpack(noise), out); });
}

at::Tensor SamplerHandle::sample(const at::Tensor& y, const at::Tensor& x_T, const sdk::SampleCallbacks& callbacks) {
  CallbackBridge bridge{&callbacks};
  const sinsr_sample_callbacks cb = bridge.table();
  const sinsr_call_options opts = call_options_for(y);
  return call_tensor("sample", [&](DLManagedTensor** out) {
    return vt_->sample(self_, &opts, to_dlpack(y), to_dlpack(x_T), &cb, out);
  });
}

namespace {
// The tensors a sampler filled into a result struct, adopted one by one (so that each is
// released whatever else is missing), then all required.
void adopt(std::initializer_list<std::pair<DLManagedTensor*, at::Tensor*>> fields, const std::string& incomplete) {
  bool complete = true;
  for (auto [field, tensor] : fields) {
    if (field)
      *tensor = from_dlpack(field);
    else
      complete = false;
  }
  require(complete, SINSR_ERR_RUNTIME, incomplete);
}
}  // namespace

sdk::TrainingExample SamplerHandle::training_example(const at::Tensor& x0, const at::Tensor& y,
                                                     const sdk::SampleCallbacks& draws) {
  require(SINSR_HAS_FIELD(vt_, sinsr_sampler_vtable, training_example) && vt_->training_example != nullptr,
          SINSR_ERR_UNSUPPORTED,
          "sampler '" + component_->name() + "' cannot train a network (it has no training_example call, ABI 1.2)");
  CallbackBridge bridge{&draws};
  const sinsr_sample_callbacks cb = bridge.table();
  sinsr_training_example ex{};
  ex.struct_size = sizeof(ex);
  const sinsr_call_options opts = call_options_for(x0);
  call("training_example", [&] { return vt_->training_example(self_, &opts, to_dlpack(x0), to_dlpack(y), &cb, &ex); });
  sdk::TrainingExample out;
  adopt({{ex.x_in, &out.x_in}, {ex.t, &out.t}, {ex.target, &out.target}},
        "sampler '" + component_->name() + "' returned an incomplete training example");
  return out;
}

bool SamplerHandle::can_distill() const {
  return SINSR_HAS_FIELD(vt_, sinsr_sampler_vtable, distillation_example) && vt_->distillation_example != nullptr;
}

sdk::DistillationExample SamplerHandle::distillation_example(const at::Tensor& y, const at::Tensor& noise,
                                                             const sdk::SampleCallbacks& teacher) {
  require(can_distill(), SINSR_ERR_UNSUPPORTED,
          "sampler '" + component_->name() + "' cannot distil (it has no distillation_example call, ABI 1.5)");
  CallbackBridge bridge{&teacher};
  const sinsr_sample_callbacks cb = bridge.table();
  sinsr_distillation_example ex{};
  ex.struct_size = sizeof(ex);
  const sinsr_call_options opts = call_options_for(y);
  call("distillation_example",
       [&] { return vt_->distillation_example(self_, &opts, to_dlpack(y), to_dlpack(noise), &cb, &ex); });
  sdk::DistillationExample out;
  adopt({{ex.x_T, &out.x_T},
         {ex.x0, &out.x0},
         {ex.x_in, &out.x_in},
         {ex.t_student, &out.t_student},
         {ex.t_inverse, &out.t_inverse}},
        "sampler '" + component_->name() + "' returned an incomplete distillation example");
  return out;
}

at::Tensor SamplerHandle::q_sample(const at::Tensor& x0, const at::Tensor& y, const at::Tensor& t,
                                   const at::Tensor& noise) {
  const sinsr_call_options opts = call_options_for(x0);
  return call_tensor("q_sample", [&](DLManagedTensor** out) {
    return vt_->q_sample(self_, &opts, to_dlpack(x0), to_dlpack(y), to_dlpack(t), to_dlpack(noise), out);
  });
}

at::Tensor SamplerHandle::scale_input(const at::Tensor& x_t, const at::Tensor& t) {
  const sinsr_call_options opts = call_options_for(x_t);
  return call_tensor("scale_input", [&](DLManagedTensor** out) {
    return vt_->scale_input(self_, &opts, to_dlpack(x_t), to_dlpack(t), out);
  });
}

std::string describe(sinsr_prediction p) {
  switch (p) {
    case SINSR_PREDICTION_X0: return "x0";
    case SINSR_PREDICTION_NOISE: return "noise";
    case SINSR_PREDICTION_OTHER: return "another quantity";
    default: return "undeclared";
  }
}

void check_pairing(SamplerHandle& sampler, BackboneHandle& backbone) {
  const TimestepKind passes = sampler.timestep_kind(), takes = backbone.timestep_kind();
  if (passes != takes)
    throw Error(SINSR_ERR_INVALID_ARGUMENT, "sampler '" + sampler.component().name() + "' passes " + passes.describe() +
                                                " as the timestep, but backbone '" + backbone.component().name() +
                                                "' takes " + takes.describe() +
                                                ": pick a sampler and a backbone that agree");
  const sinsr_prediction needs = sampler.prediction(), gives = backbone.prediction();
  if (needs != SINSR_PREDICTION_UNDECLARED && gives != SINSR_PREDICTION_UNDECLARED &&
      (needs != gives || needs == SINSR_PREDICTION_OTHER))
    throw Error(SINSR_ERR_INVALID_ARGUMENT, "sampler '" + sampler.component().name() +
                                                "' needs the network to predict " + describe(needs) +
                                                ", but backbone '" + backbone.component().name() + "' predicts " +
                                                describe(gives) + ": pick a sampler and a backbone that agree");
}

}  // namespace host
}  // namespace sinsr
