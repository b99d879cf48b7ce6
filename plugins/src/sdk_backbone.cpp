// The backbone adapter: sinsr_backbone_vtable over a sinsr::sdk::Backbone (tapes, state views, timesteps).
#include "sdk_internal.hpp"

#include "sinsr/checkpoint.hpp"

#include <torch/nn/module.h>

namespace sinsr {
namespace sdk {

using internal::adopt;
using internal::keep;

namespace {

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
  internal::UnitStore units;
};

BackboneBox* bb(sinsr_backbone* s) {
  require(s != nullptr, SINSR_ERR_INVALID_ARGUMENT, "backbone handle is null");
  return reinterpret_cast<BackboneBox*>(s);
}

void bb_destroy(sinsr_backbone* s) { delete reinterpret_cast<BackboneBox*>(s); }

sinsr_status* bb_load(sinsr_backbone* s, const char* path, const char* options) {
  return guard("", [&] {
    require(path != nullptr, SINSR_ERR_INVALID_ARGUMENT, "path is null");
    bb(s)->impl->load_weights(path, config::parse_optional(options, "load options"));
  });
}

sinsr_status* bb_save(sinsr_backbone* s, const char* path) {
  return guard("", [&] {
    require(path != nullptr, SINSR_ERR_INVALID_ARGUMENT, "path is null");
    bb(s)->impl->save_weights(path);
  });
}

sinsr_status* bb_forward(sinsr_backbone* s, const sinsr_call_options* o, DLManagedTensor* x, DLManagedTensor* cond,
                         DLManagedTensor* t, DLManagedTensor** out, sinsr_tape** tape) {
  return guard("", [&] {
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
  return guard("", [&] {
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
  return guard("", [&] {
    require(count != nullptr, SINSR_ERR_INVALID_ARGUMENT, "count is null");
    BackboneBox* b = bb(s);
    fill_state(b->impl->module(), b->state);
    *count = b->state.names.size();
  });
}

sinsr_status* bb_state_get(sinsr_backbone* s, size_t index, sinsr_named_tensor* out) {
  return guard("", [&] {
    BackboneBox* b = bb(s);
    state_entry(b->impl->module(), b->state, index, out);
  });
}

sinsr_status* bb_zero_grad(sinsr_backbone* s) {
  return guard("", [&] {
    for (auto& p : bb(s)->impl->module().parameters(true))
      if (p.grad().defined()) p.mutable_grad().zero_();
  });
}

sinsr_status* bb_set_training(sinsr_backbone* s, int32_t training) {
  return guard("", [&] { bb(s)->impl->module().train(training != 0); });
}

sinsr_status* bb_to(sinsr_backbone* s, DLDevice device, DLDataType dtype) {
  return guard("", [&] {
    BackboneBox* b = bb(s);
    b->impl->to(device_of(device), scalar_type_of(dtype));
    b->state = StateCache();
  });
}

sinsr_status* bb_timestep_kind(sinsr_backbone* s, sinsr_timestep_info* out) {
  return guard("", [&] {
    BackboneBox* b = bb(s);
    internal::write_timesteps(b->impl->timesteps(), b->units, out);
  });
}

sinsr_status* bb_prediction(sinsr_backbone* s, int32_t* out) {
  return guard("", [&] {
    require(out != nullptr, SINSR_ERR_INVALID_ARGUMENT, "out is null");
    *out = bb(s)->impl->prediction();
  });
}

}  // namespace

void Backbone::load_weights(const std::string& path, const json& options) {
  internal::load_module_weights(module(), path, options);
}

void Backbone::save_weights(const std::string& path) { ckpt::save_state_dict(path, ckpt::state_of(module())); }

void Backbone::to(c10::Device device, at::ScalarType dtype) { internal::move_module(module(), device, dtype); }

sinsr_status* detail::create_backbone(Backbone* (*f)(const json&), const char* c, const char* o,
                                      sinsr_backbone** out) noexcept {
  return internal::create_boxed<BackboneBox>(f, c, o, out);
}

const void* PluginBuilder::backbone_vtable(sinsr_status* (*create)(const char*, sinsr_backbone**),
                                           sinsr_status* (*create_with)(const char*, const char*, sinsr_backbone**),
                                           sinsr_detect_config_fn detect) {
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
  v.timestep_kind = bb_timestep_kind;  // 1.1
  v.detect_config = detect;            // 1.2
  v.create_with = create_with;         // 1.3
  v.prediction = bb_prediction;        // 1.4
  return keep(v);
}

}  // namespace sdk
}  // namespace sinsr
