// The sampler adapter: sinsr_sampler_vtable over a sinsr::sdk::Sampler (callbacks, respacing, timesteps).
#include "sdk_internal.hpp"

namespace sinsr {
namespace sdk {

using internal::adopt;
using internal::keep;

std::string describe_shape(const at::Tensor& t) { return t.defined() ? describe_shape(t.sizes()) : "undefined"; }

at::Tensor callback_result(const at::Tensor& v, const at::Tensor& like, const std::string& who, const char* what,
                           int64_t step) {
  require(v.defined() && v.sizes() == like.sizes(), SINSR_ERR_INVALID_ARGUMENT,
          who + ": the " + what + " callback returned " + describe_shape(v) +
              (step >= 0 ? " at step index " + std::to_string(step) : std::string()) + ", expected " +
              describe_shape(like));
  return v.to(like.device(), like.scalar_type());
}

at::Tensor coef_at(const at::Tensor& table, const at::Tensor& t, const at::Tensor& like) {
  std::vector<int64_t> shape(size_t(std::max<int64_t>(like.dim(), 1)), 1);
  shape[0] = t.numel();
  return table.index_select(0, t.to(table.device(), at::kLong).reshape({-1})).view(shape).to(like.device());
}

std::vector<double> linspace(double start, double stop, int num) {
  std::vector<double> y(size_t(std::max(num, 0)));
  if (num == 1) y[0] = start;
  if (num <= 1) return y;
  const double step = (stop - start) / double(num - 1);
  for (int i = 0; i < num; ++i) y[size_t(i)] = double(i) * step + start;
  y.back() = stop;
  return y;
}

std::vector<int64_t> evenly_spaced_steps(int64_t size, int64_t steps) {
  require(steps >= 1 && steps <= size, SINSR_ERR_INVALID_ARGUMENT,
          "evenly spaced steps: 1 to " + std::to_string(size) + " of the chain, got " + std::to_string(steps));
  if (steps == 1) return {size - 1};
  std::vector<int64_t> idx(static_cast<size_t>(steps));
  for (int64_t k = 0; k < steps; ++k) idx[size_t(k)] = std::llround(double(k) * double(size - 1) / double(steps - 1));
  return idx;
}

void report_progress(const std::function<bool(int, int)>& progress, int done, int total) {
  if (progress && !progress(done, total))
    throw Error(SINSR_ERR_CANCELLED, "sampling cancelled by the progress callback after step " + std::to_string(done) +
                                         " of " + std::to_string(total));
}

namespace {

struct SamplerBox {
  std::unique_ptr<Sampler> impl;
  internal::UnitStore units;
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

// The C callbacks as tensors-in, tensors-out functions; each checks its own presence when called.
SampleCallbacks adapt(const sinsr_sample_callbacks* cb) {
  SampleCallbacks callbacks;
  callbacks.denoise = [cb](const at::Tensor& x_in, const at::Tensor& t) {
    require(cb->denoise != nullptr, SINSR_ERR_INVALID_ARGUMENT, "no denoise callback given");
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
  callbacks.uniform = [cb](int64_t count) {
    require(SINSR_HAS_FIELD(cb, sinsr_sample_callbacks, uniform) && cb->uniform != nullptr, SINSR_ERR_INVALID_ARGUMENT,
            "this sampler needs a uniform callback (ABI 1.2)");
    require(count >= 0, SINSR_ERR_INVALID_ARGUMENT, "negative uniform draw count");
    at::Tensor u = at::empty({count}, at::kDouble);
    throw_if_error(cb->uniform(cb->user, count, u.data_ptr<double>()), "uniform callback");
    return u;
  };
  return callbacks;
}

sinsr_status* sp_sample(sinsr_sampler* s, const sinsr_call_options* o, DLManagedTensor* y, DLManagedTensor* x_T,
                        const sinsr_sample_callbacks* cb, DLManagedTensor** x0) {
  return guard("sample", [&] {
    auto in = adopt({y, x_T});
    require(x0 != nullptr && in[0].defined() && in[1].defined(), SINSR_ERR_INVALID_ARGUMENT, "null argument");
    require(cb != nullptr && SINSR_HAS_FIELD(cb, sinsr_sample_callbacks, noise) && cb->denoise != nullptr,
            SINSR_ERR_INVALID_ARGUMENT, "sample callbacks missing or too small");
    SampleCallbacks callbacks = adapt(cb);
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

// The message is the sampler's own: the host prefixes the component and the step count.
sinsr_status* sp_respace(sinsr_sampler* s, int32_t steps) {
  return guard("", [&] {
    require(steps >= 1, SINSR_ERR_INVALID_ARGUMENT, "steps must be >= 1, got " + std::to_string(steps));
    sp(s).respace(steps);
  });
}

sinsr_status* sp_timestep_kind(sinsr_sampler* s, sinsr_timestep_info* out) {
  return guard("timestep_kind", [&] {
    require(s != nullptr, SINSR_ERR_INVALID_ARGUMENT, "sampler handle is null");
    auto* box = reinterpret_cast<SamplerBox*>(s);
    internal::write_timesteps(box->impl->timesteps(), box->units, out);
  });
}

sinsr_status* sp_prediction(sinsr_sampler* s, int32_t* out) {
  return guard("prediction", [&] {
    require(s != nullptr && out != nullptr, SINSR_ERR_INVALID_ARGUMENT, "null argument");
    *out = reinterpret_cast<SamplerBox*>(s)->impl->prediction();
  });
}

sinsr_status* sp_training_example(sinsr_sampler* s, const sinsr_call_options* o, DLManagedTensor* x0,
                                  DLManagedTensor* y, const sinsr_sample_callbacks* cb, sinsr_training_example* out) {
  return guard("training_example", [&] {
    auto in = adopt({x0, y});
    require(out != nullptr && in[0].defined() && in[1].defined(), SINSR_ERR_INVALID_ARGUMENT, "null argument");
    require(cb != nullptr && SINSR_HAS_FIELD(cb, sinsr_sample_callbacks, noise), SINSR_ERR_INVALID_ARGUMENT,
            "training callbacks missing or too small");
    require(SINSR_HAS_FIELD(out, sinsr_training_example, target), SINSR_ERR_ABI, "training example struct too small");
    Sampler& impl = sp(s);
    with_stream(o, in[0].device(), [&] {
      at::NoGradGuard no_grad;
      TrainingExample ex = impl.training_example(in[0], in[1], adapt(cb));
      require(ex.x_in.defined() && ex.t.defined() && ex.target.defined(), SINSR_ERR_RUNTIME,
              "the sampler returned an incomplete training example");
      out->x_in = to_dlpack(ex.x_in);
      out->t = to_dlpack(ex.t);
      out->target = to_dlpack(ex.target);
    });
  });
}

sinsr_status* sp_distillation_example(sinsr_sampler* s, const sinsr_call_options* o, DLManagedTensor* y,
                                      DLManagedTensor* noise, const sinsr_sample_callbacks* cb,
                                      sinsr_distillation_example* out) {
  return guard("distillation_example", [&] {
    auto in = adopt({y, noise});
    require(out != nullptr && in[0].defined() && in[1].defined(), SINSR_ERR_INVALID_ARGUMENT, "null argument");
    require(cb != nullptr && SINSR_HAS_FIELD(cb, sinsr_sample_callbacks, noise) && cb->denoise != nullptr,
            SINSR_ERR_INVALID_ARGUMENT, "distillation callbacks missing or too small");
    require(SINSR_HAS_FIELD(out, sinsr_distillation_example, t_inverse), SINSR_ERR_ABI,
            "distillation example struct too small");
    Sampler& impl = sp(s);
    with_stream(o, in[0].device(), [&] {
      at::NoGradGuard no_grad;
      DistillationExample ex = impl.distillation_example(in[0], in[1], adapt(cb));
      require(
          ex.x_T.defined() && ex.x0.defined() && ex.x_in.defined() && ex.t_student.defined() && ex.t_inverse.defined(),
          SINSR_ERR_RUNTIME, "the sampler returned an incomplete distillation example");
      out->x_T = to_dlpack(ex.x_T);
      out->x0 = to_dlpack(ex.x0);
      out->x_in = to_dlpack(ex.x_in);
      out->t_student = to_dlpack(ex.t_student);
      out->t_inverse = to_dlpack(ex.t_inverse);
    });
  });
}

}  // namespace

DistillationExample Sampler::distillation_example(const at::Tensor&, const at::Tensor&, const SampleCallbacks&) {
  throw Error(SINSR_ERR_UNSUPPORTED, "this sampler cannot distil a student");
}

TrainingExample Sampler::training_example(const at::Tensor&, const at::Tensor&, const SampleCallbacks&) {
  throw Error(SINSR_ERR_UNSUPPORTED, "this sampler cannot make training examples");
}

void Sampler::respace(int steps) {
  throw Error(SINSR_ERR_UNSUPPORTED, "this sampler has a fixed number of steps (" + std::to_string(num_steps()) +
                                         "), it cannot run " + std::to_string(steps));
}

sinsr_status* detail::create_sampler(Sampler* (*f)(const json&), const char* c, sinsr_sampler** out) noexcept {
  return internal::create_boxed<SamplerBox>(f, c, nullptr, out);
}

const void* PluginBuilder::sampler_vtable(sinsr_status* (*create)(const char*, sinsr_sampler**), bool distills) {
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
  v.respace = sp_respace;  // 1.1
  v.timestep_kind = sp_timestep_kind;
  v.training_example = sp_training_example;                        // 1.2
  v.prediction = sp_prediction;                                    // 1.4
  if (distills) v.distillation_example = sp_distillation_example;  // 1.5
  return keep(v);
}

}  // namespace sdk
}  // namespace sinsr
