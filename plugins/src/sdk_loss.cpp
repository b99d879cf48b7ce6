// The loss adapter: sinsr_loss_vtable over a sinsr::sdk::Loss (backward through a LibTorch autograd tape).
#include "sdk_internal.hpp"

namespace sinsr {
namespace sdk {

using internal::adopt;
using internal::keep;

namespace {

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
  return guard("", [&] {
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
  return guard("", [&] {
    auto in = adopt({grad_loss});
    require(s != nullptr && rec != nullptr && grad_pred != nullptr, SINSR_ERR_INVALID_ARGUMENT, "null argument");
    at::Tensor g =
        in[0].defined() ? in[0].to(rec->loss.scalar_type()).reshape(rec->loss.sizes()) : at::ones_like(rec->loss);
    with_stream(o, rec->loss.device(), [&] {
      rec->loss.backward(g);
      *grad_pred = to_dlpack(rec->pred.grad());
    });
  });
}

void ls_tape_release(sinsr_loss*, sinsr_tape* tape) { delete reinterpret_cast<LossTape*>(tape); }

}  // namespace

sinsr_status* detail::create_loss(Loss* (*f)(const json&), const char* c, sinsr_loss** out) noexcept {
  return internal::create_boxed<LossBox>(f, c, nullptr, out);
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

}  // namespace sdk
}  // namespace sinsr
