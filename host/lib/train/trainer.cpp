#include "train/trainer.hpp"

#include "runtime/weights_info.hpp"

#include <sinsr/checkpoint.hpp>

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

namespace sinsr {
namespace train {

using host::BackboneHandle;
using host::CodecHandle;
using host::LossHandle;
using host::NamedTensor;
using host::SamplerHandle;
using sdk::Error;
using sdk::require;

namespace {

// The official EMA averages every floating tensor, buffers included; integer tensors (index
// tables) cannot be averaged and stay as the model has them.
bool ema_skips(const at::Tensor& t) { return !t.is_floating_point(); }

c10::impl::GenericDict tensor_dict(const std::map<std::string, at::Tensor>& m) {
  c10::impl::GenericDict d(c10::StringType::get(), c10::AnyType::get());
  for (auto& [k, v] : m) d.insert(k, v.detach().to(at::kCPU).clone());
  return d;
}

std::map<std::string, at::Tensor> dict_tensors(const c10::IValue& v, const std::string& what, const std::string& path) {
  require(v.isGenericDict(), SINSR_ERR_FORMAT, path + ": '" + what + "' is not a dict");
  std::map<std::string, at::Tensor> m;
  for (auto& kv : v.toGenericDict()) m[kv.key().toStringRef()] = kv.value().toTensor();
  return m;
}

c10::IValue dict_get(const c10::IValue& d, const std::string& key, const std::string& path) {
  auto g = d.toGenericDict();
  auto it = g.find(c10::IValue(key));
  require(it != g.end(), SINSR_ERR_FORMAT, path + ": checkpoint has no '" + key + "'");
  return it->value();
}

}  // namespace

Draws Draws::from(at::Generator generator) {
  Draws d;
  d.normal = [generator](const at::Tensor& like) {
    return at::randn(like.sizes(), generator, at::TensorOptions().dtype(at::kFloat))
        .to(like.device(), like.scalar_type());
  };
  d.uniform = [generator](int64_t count) {
    return at::rand({count}, generator, at::TensorOptions().dtype(at::kDouble));
  };
  return d;
}

Draws Draws::replay(const at::Tensor& first_normal, const at::Tensor& uniform) {
  auto used = std::make_shared<bool>(false);
  auto next = std::make_shared<int64_t>(0);
  Draws d;
  d.normal = [first_normal, used](const at::Tensor& like) {
    if (!*used && first_normal.defined()) {
      *used = true;
      require(
          first_normal.sizes() == like.sizes(), SINSR_ERR_INVALID_ARGUMENT,
          "replayed noise has shape " + c10::str(first_normal.sizes()) + ", the step draws " + c10::str(like.sizes()));
      return first_normal.to(like.device(), like.scalar_type());
    }
    return at::randn(like.sizes(), like.options());
  };
  at::Tensor u = uniform.defined() ? uniform.to(at::kCPU, at::kDouble).contiguous().view(-1) : at::Tensor();
  d.uniform = [u, next](int64_t count) {
    require(u.defined() && *next + count <= u.numel(), SINSR_ERR_INVALID_ARGUMENT,
            "the replayed uniform draws ran out");
    at::Tensor out = u.narrow(0, *next, count).clone();
    *next += count;
    return out;
  };
  return d;
}

struct Trainer::Impl {
  TrainerOptions o;
  c10::Device device = c10::Device(c10::kCPU);
  std::unique_ptr<BackboneHandle> model, teacher;
  std::unique_ptr<CodecHandle> codec;
  std::unique_ptr<SamplerHandle> sampler, one_step;
  std::unique_ptr<LossHandle> l_x0, l_distill, l_inverse, l_gt, l_direct;
  std::vector<NamedTensor> state;  // zero-copy views into the model
  std::map<std::string, at::Tensor> ema, exp_avg, exp_avg_sq;
  int64_t iteration = 0;
  std::function<void(const std::vector<at::Tensor>&)> grad_hook;
  json components;  // what checkpoints say about the network (host::kComponentsKey)

  // The loss gets the caller's config as it is: the ABI lets it answer 0-d or per sample.
  std::unique_ptr<LossHandle> make_loss(host::Runtime& rt, const LossTerm& term) {
    json cfg = term.config.is_object() ? term.config : json::object();
    return std::make_unique<LossHandle>(rt.find(SINSR_KIND_LOSS, term.name), cfg);
  }

  // One loss term: its value (0-d batch loss, or [N] per sample), its weight, and the tapes.
  struct Term {
    at::Tensor value;
    std::unique_ptr<host::Tape> tape;
    std::unique_ptr<host::Tape> net_tape;
    LossHandle* loss = nullptr;
    double weight = 1;
    std::string name;
  };

  // The objective is sum(weight * batch loss); a per-sample term's batch loss is its mean. A term
  // without a network tape scored the same output as the term before it: their gradients add up
  // and the network runs backward once.
  void backward(std::vector<Term>& terms) {
    for (size_t i = 0; i < terms.size();) {
      auto grad_of = [](Term& term) {
        const double n = term.value.dim() == 0 ? 1.0 : double(term.value.size(0));
        return term.loss->backward(std::move(term.tape), at::full_like(term.value, term.weight / n));
      };
      at::Tensor grad_pred = grad_of(terms[i]);
      size_t j = i + 1;
      for (; j < terms.size() && !terms[j].net_tape; ++j) grad_pred = grad_pred + grad_of(terms[j]);
      model->backward(std::move(terms[i].net_tape), grad_pred);
      i = j;
    }
  }
};

Trainer::Trainer(host::Runtime& rt, TrainerOptions options) : impl_(new Impl) {
  auto& im = *impl_;
  im.o = std::move(options);
  auto& o = im.o;
  im.device = c10::Device(o.device);
  if (im.device.is_cuda())
    require(at::hasCUDA(), SINSR_ERR_UNSUPPORTED, "device '" + o.device + "' requested, but there is no CUDA here");
  require(!o.backbone.name.empty(), SINSR_ERR_INVALID_ARGUMENT, "no backbone given");
  require(!o.sampler.name.empty(), SINSR_ERR_INVALID_ARGUMENT, "no sampler given");
  require(o.lr_schedule == "constant" || o.lr_schedule == "cosine", SINSR_ERR_INVALID_ARGUMENT,
          "unknown lr schedule '" + o.lr_schedule + "' (constant or cosine)");

  auto bc = rt.find(SINSR_KIND_BACKBONE, o.backbone.name);
  im.model = std::make_unique<BackboneHandle>(bc, o.backbone.config);
  // The runtime's one weights rule: the given file, else the plugin's own, "none" = untrained.
  if (o.mode == TrainerOptions::Mode::Distill) {
    const std::string tname = o.teacher.name.empty() ? o.backbone.name : o.teacher.name;
    json tcfg = o.teacher.name.empty() && o.teacher.config.empty() ? o.backbone.config : o.teacher.config;
    auto tc = rt.find(SINSR_KIND_BACKBONE, tname);
    im.teacher = std::make_unique<BackboneHandle>(tc, tcfg);
    im.teacher->set_training(false);
    const std::string tw = host::load_part_weights(*im.teacher, o.teacher.weights, "teacher");
    if (!tw.empty()) {  // "none": untrained networks, for benchmarks
      // The student starts as a copy of the teacher unless its own weights are given.
      const std::string own = host::resolve_weights(*bc, o.backbone.weights, "backbone", false);
      im.model->load_weights(own.empty() ? tw : own);
    }
  } else {
    host::load_part_weights(*im.model, o.backbone.weights, "backbone", false);
  }
  if (!o.codec.name.empty()) {
    auto cc = rt.find(SINSR_KIND_CODEC, o.codec.name);
    im.codec = std::make_unique<CodecHandle>(cc, o.codec.config);
    host::load_part_weights(*im.codec, o.codec.weights, "codec");
  }
  auto sc = rt.find(SINSR_KIND_SAMPLER, o.sampler.name);
  im.sampler = std::make_unique<SamplerHandle>(sc, o.sampler.config);
  // Regression never asks the sampler for timesteps; the diffusion modes pair the two.
  if (o.mode != TrainerOptions::Mode::Regress) host::check_pairing(*im.sampler, *im.model);
  if (im.teacher) host::check_pairing(*im.sampler, *im.teacher);
  // SinSR's objectives compare network outputs with x0 (the teacher's trajectory end, the GT).
  if (o.mode == TrainerOptions::Mode::Distill)
    for (BackboneHandle* net : {im.model.get(), im.teacher.get()}) {
      const sinsr_prediction p = net ? net->prediction() : SINSR_PREDICTION_UNDECLARED;
      if (p != SINSR_PREDICTION_X0 && p != SINSR_PREDICTION_UNDECLARED)
        throw Error(SINSR_ERR_INVALID_ARGUMENT, "distill: backbone '" + net->component().name() + "' predicts " +
                                                    host::describe(p) + ", but SinSR distillation (sampler '" +
                                                    o.sampler.name + "') trains a network that predicts x0");
    }
  // The sampler makes each step's data (ABI 1.5); one without the call is refused before compute.
  if (o.mode == TrainerOptions::Mode::Distill && !im.sampler->can_distill())
    throw Error(SINSR_ERR_UNSUPPORTED, "distill: sampler '" + o.sampler.name +
                                           "' cannot distil (it has no distillation_example call, ABI 1.5)");
  // The distilled student samples in one step: the sampler respaced to one network call.
  if (o.mode == TrainerOptions::Mode::Distill) im.one_step = std::make_unique<SamplerHandle>(sc, o.sampler.config, 1);
  // A regression network runs as the `direct` sampler runs it (one call at t = 0): validation
  // scores it so, where that plugin is loaded.
  if (o.mode == TrainerOptions::Mode::Regress) {
    try {
      im.one_step = std::make_unique<SamplerHandle>(rt.find(SINSR_KIND_SAMPLER, "direct"), json::object());
    } catch (const Error&) {
      host::log(SINSR_LOG_WARNING, "train", "no 'direct' sampler loaded: this regression run is not validated");
    }
  }
  if (o.mode != TrainerOptions::Mode::Distill) {
    im.l_x0 = im.make_loss(rt, o.x0);
  } else {
    im.l_distill = im.make_loss(rt, o.distill);
    if (o.learn_xT) im.l_inverse = im.make_loss(rt, o.inverse);
    if (o.use_gt) im.l_gt = im.make_loss(rt, o.gt);
    if (o.direct.weight != 0) im.l_direct = im.make_loss(rt, o.direct);
  }
  if (!im.device.is_cpu()) {
    im.model->to(im.device, at::kFloat);
    if (im.teacher) im.teacher->to(im.device, at::kFloat);
    if (im.codec) im.codec->to(im.device, at::kFloat);
  }
  im.model->set_training(true);
  im.state = im.model->state();  // after any move: views must point at the final storage
  // The parts as created, config files resolved: a checkpoint then loads with no config.
  im.components = {
      {"backbone", host::stored_component(rt, SINSR_KIND_BACKBONE, o.backbone.name, o.backbone.config)},
      {"codec", o.codec.name.empty() ? json(nullptr)
                                     : host::stored_component(rt, SINSR_KIND_CODEC, o.codec.name, o.codec.config)},
      {"sampler", host::stored_component(rt, SINSR_KIND_SAMPLER, o.sampler.name, o.sampler.config)},
      {"scale", o.scale}};
  if (o.mode == TrainerOptions::Mode::Distill) im.components["sampler"]["steps"] = 1;  // the student's one step
  if (o.ema_rate > 0)
    for (auto& s : im.state)
      if (!ema_skips(s.value)) im.ema[s.name] = s.value.detach().clone();
}

Trainer::~Trainer() = default;

int64_t Trainer::iteration() const { return impl_->iteration; }
host::BackboneHandle& Trainer::model() { return *impl_->model; }
host::CodecHandle* Trainer::codec() { return impl_->codec.get(); }
host::SamplerHandle& Trainer::sampler() { return *impl_->sampler; }
host::SamplerHandle& Trainer::inference_sampler() { return impl_->one_step ? *impl_->one_step : *impl_->sampler; }
bool Trainer::can_validate() const {
  return impl_->o.mode != TrainerOptions::Mode::Regress || impl_->one_step != nullptr;
}
void Trainer::set_gradient_hook(std::function<void(const std::vector<at::Tensor>&)> hook) {
  impl_->grad_hook = std::move(hook);
}

std::vector<int64_t> Trainer::latent_shape(const at::Tensor& lq) const {
  int64_t down = 1, ch = lq.size(1);
  if (impl_->codec) {
    auto info = impl_->codec->info();
    down = info.downscale;
    ch = info.latent_channels;
  }
  const int64_t s = impl_->o.scale;
  return {lq.size(0), ch, lq.size(2) * s / down, lq.size(3) * s / down};
}

double Trainer::lr_at(int64_t step) const {
  const auto& o = impl_->o;
  // The official schedule is applied after each step, so step 1 runs at the full rate.
  if (o.lr_schedule == "cosine" && step > o.warmup + 1 && o.lr_steps > o.warmup + 1) {
    const double done = std::min(1.0, double(step - 1 - o.warmup) / double(o.lr_steps - 1 - o.warmup));
    return o.lr_min + (o.lr - o.lr_min) * 0.5 * (1.0 + std::cos(M_PI * done));
  }
  if (o.warmup <= 0 || step <= 1) return o.lr;
  return o.lr * std::min(1.0, double(step - 1) / double(o.warmup));
}

StepResult Trainer::forward_backward(const at::Tensor& lq_in, const at::Tensor& gt_in, const Draws& draws) {
  auto& im = *impl_;
  const auto& o = im.o;
  const c10::Device dev = im.device;
  at::Tensor lq = lq_in.to(dev, at::kFloat), gt = gt_in.to(dev, at::kFloat);
  const int64_t b = lq.size(0);
  im.model->zero_grad();

  at::Tensor z_y, z_gt;
  {
    at::NoGradGuard no_grad;
    at::Tensor up = host::upsample_bicubic(lq, o.scale);
    z_y = im.codec ? im.codec->encode(up) : up;
    z_gt = im.codec ? im.codec->encode(gt) : gt;
  }
  StepResult r;
  std::vector<Impl::Term> terms;
  auto add_term = [&](const std::string& name, LossHandle& loss, double weight, std::unique_ptr<host::Tape> net_tape,
                      const at::Tensor& pred, const at::Tensor& target) {
    auto [value, tape] = loss.forward_train(pred, target);
    require(value.dim() == 0 || (value.dim() == 1 && value.size(0) == b), SINSR_ERR_RUNTIME,
            "loss '" + loss.component().name() + "' returned shape " + c10::str(value.sizes()) +
                "; the ABI allows a 0-d batch loss or one value per sample ([" + std::to_string(b) + "])");
    Impl::Term term;
    term.value = value;
    term.tape = std::move(tape);
    term.net_tape = std::move(net_tape);
    term.loss = &loss;
    term.weight = weight;
    term.name = name;
    terms.push_back(std::move(term));
  };
  sdk::SampleCallbacks random;
  random.noise = draws.normal;
  random.uniform = draws.uniform;

  if (o.mode == TrainerOptions::Mode::Teacher) {
    sdk::TrainingExample ex = im.sampler->training_example(z_gt, z_y, random);
    auto [out, tape] = im.model->forward_train(ex.x_in, lq, ex.t);
    add_term("x0", *im.l_x0, o.x0.weight, std::move(tape), out, ex.target);
    r.pred = out.detach();
  } else if (o.mode == TrainerOptions::Mode::Regress) {
    const bool levels = im.model->timestep_kind().kind == SINSR_TIMESTEP_NOISE_LEVEL;
    at::Tensor t = at::zeros({b}, at::TensorOptions().dtype(levels ? at::kFloat : at::kLong).device(dev));
    auto [out, tape] = im.model->forward_train(z_y, lq, t);
    add_term("regress", *im.l_x0, o.x0.weight, std::move(tape), out, z_gt);
    r.pred = out.detach();
  } else {
    // The sampler owns the trajectory: the teacher's end point and the student's steps.
    sdk::SampleCallbacks teacher;
    // Only the distill, inverse and GT-consistency terms read the teacher's end point.
    const bool uses_teacher = o.distill.weight != 0 || im.l_inverse || im.l_gt || !im.l_direct;
    teacher.denoise = [&](const at::Tensor& x_in, const at::Tensor& t) {
      return uses_teacher ? im.teacher->forward(x_in, lq, t) : at::zeros_like(x_in);
    };
    teacher.noise = draws.normal;
    sdk::DistillationExample ex;
    {
      at::NoGradGuard no_grad;
      ex = im.sampler->distillation_example(z_y, draws.normal(z_y), teacher);
    }
    const at::Tensor &z_T = ex.x_T, &z0_teacher = ex.x0, &t_student = ex.t_student, &t_inverse = ex.t_inverse;
    // The student's one step on the prior draw: the distillation objective.
    auto [out, tape0] = im.model->forward_train(ex.x_in, lq, t_student);
    r.pred = out.detach();
    if (uses_teacher) {
      add_term("distill", *im.l_distill, o.distill.weight, std::move(tape0), out, z0_teacher);
      r.z0_teacher = z0_teacher;
    }
    // The same output against the GT (after the distill term, whose network tape it shares).
    if (im.l_direct) add_term("direct", *im.l_direct, o.direct.weight, std::move(tape0), out, z_gt);
    if (im.l_inverse) {
      // Inverse mapping x0 -> x_T: at t_inverse, the input scaled as at the student's step.
      auto [xT_hat, tape1] = im.model->forward_train(im.sampler->scale_input(z0_teacher, t_student), lq, t_inverse);
      add_term("inverse", *im.l_inverse, o.inverse.weight, std::move(tape1), xT_hat, z_T);
    }
    if (im.l_gt) {
      // GT consistency: invert the GT latent without gradient, then predict it back.
      at::Tensor xT_gt = im.model->forward(im.sampler->scale_input(z_gt, t_student), lq, t_inverse);
      auto [out_gt, tape3] = im.model->forward_train(im.sampler->scale_input(xT_gt, t_student), lq, t_student);
      add_term("gt", *im.l_gt, o.gt.weight, std::move(tape3), out_gt, z_gt);
    }
  }

  double total = 0;
  for (auto& term : terms) {
    double mean = term.value.mean().item<double>();  // a 0-d value is its own mean
    if (!std::isfinite(mean))
      throw Error(SINSR_ERR_RUNTIME, "step " + std::to_string(im.iteration + 1) + ": loss term '" + term.name +
                                         "' is " + (std::isnan(mean) ? "nan" : "inf"));
    r.losses[term.name] = mean;
    total += term.weight * mean;
  }
  r.losses["loss"] = total;
  im.backward(terms);
  return r;
}

StepResult Trainer::step(const at::Tensor& lq, const at::Tensor& gt, const Draws& draws) {
  auto& im = *impl_;
  const auto& o = im.o;
  StepResult r = forward_backward(lq, gt, draws);
  const int64_t k = im.iteration + 1;
  if (im.grad_hook) {
    std::vector<at::Tensor> grads;
    for (auto& s : im.state)
      if (s.is_parameter && s.grad.defined()) grads.push_back(s.grad);
    im.grad_hook(grads);
  }
  // AdamW, the PyTorch formulation, on the plugin's parameters in place.
  at::NoGradGuard no_grad;
  const double lr = lr_at(k);
  const double bc1 = 1.0 - std::pow(o.beta1, double(k)), bc2 = 1.0 - std::pow(o.beta2, double(k));
  for (auto& s : im.state) {
    if (!s.is_parameter || !s.grad.defined() || !s.value.is_floating_point()) continue;
    at::Tensor& m = im.exp_avg[s.name];
    at::Tensor& v = im.exp_avg_sq[s.name];
    if (!m.defined()) {
      m = at::zeros_like(s.value);
      v = at::zeros_like(s.value);
    }
    if (o.weight_decay != 0) s.value.mul_(1.0 - lr * o.weight_decay);
    m.mul_(o.beta1).add_(s.grad, 1.0 - o.beta1);
    v.mul_(o.beta2).addcmul_(s.grad, s.grad, 1.0 - o.beta2);
    at::Tensor denom = (v.sqrt() / std::sqrt(bc2)).add_(o.eps);
    s.value.addcdiv_(m, denom, -lr / bc1);
  }
  if (o.ema_rate > 0)
    for (auto& s : im.state) {
      auto it = im.ema.find(s.name);
      if (it != im.ema.end()) it->second.mul_(o.ema_rate).add_(s.value, 1.0 - o.ema_rate);
    }
  im.iteration = k;
  r.lr = lr;
  return r;
}

void Trainer::save(const std::string& path, const json& config) const {
  const auto& im = *impl_;
  std::map<std::string, at::Tensor> model;
  for (auto& s : im.state) model[s.name] = s.value;
  c10::impl::GenericDict opt(c10::StringType::get(), c10::AnyType::get());
  opt.insert("step", im.iteration);
  opt.insert("exp_avg", tensor_dict(im.exp_avg));
  opt.insert("exp_avg_sq", tensor_dict(im.exp_avg_sq));
  c10::impl::GenericDict root(c10::StringType::get(), c10::AnyType::get());
  // "state_dict" + "iters_start" is the official trainer's layout: its loader accepts this file.
  c10::impl::GenericDict sd(c10::StringType::get(), c10::AnyType::get());
  for (auto& s : im.state) sd.insert(s.name, s.value.detach().to(at::kCPU).clone());
  root.insert("state_dict", sd);
  root.insert("iters_start", im.iteration);
  root.insert("ema", tensor_dict(im.ema));
  root.insert("optimizer", opt);
  root.insert("seed", int64_t(im.o.seed));
  root.insert("config", config.dump());
  // Beside state_dict, never inside it: the official strict loaders still read the file.
  root.insert(host::kComponentsKey, im.components.dump());
  ckpt::save_file(path, root);
}

// The EMA weights under "state_dict" (official loaders take that key) with the parts they were
// trained with beside them, as a checkpoint stores them.
void Trainer::save_ema(const std::string& path) const {
  const auto& im = *impl_;
  ckpt::StateDict out;
  for (auto& s : im.state) {
    auto it = im.ema.find(s.name);
    out.emplace_back(s.name, it != im.ema.end() ? it->second : s.value);
  }
  host::save_weights(path, out, im.components);  // the parts beside the weights: -w alone runs it
}

void Trainer::load(const std::string& path) {
  auto& im = *impl_;
  c10::IValue root = ckpt::read_file(path);
  require(root.isGenericDict(), SINSR_ERR_FORMAT, path + ": not a training checkpoint");
  auto model = dict_tensors(dict_get(root, "state_dict", path), "state_dict", path);
  at::NoGradGuard no_grad;
  for (auto& s : im.state) {
    auto it = model.find(s.name);
    require(it != model.end(), SINSR_ERR_FORMAT, path + ": state_dict lacks " + s.name);
    require(it->second.sizes() == s.value.sizes(), SINSR_ERR_FORMAT, path + ": " + s.name + " has another shape");
    s.value.copy_(it->second);
  }
  auto g = root.toGenericDict();
  if (g.contains("ema"))
    for (auto& [k, v] : dict_tensors(g.at("ema"), "ema", path)) im.ema[k] = v.to(im.device).clone();
  if (g.contains("optimizer")) {
    auto opt = g.at("optimizer");
    im.exp_avg.clear();
    im.exp_avg_sq.clear();
    for (auto& [k, v] : dict_tensors(dict_get(opt, "exp_avg", path), "exp_avg", path)) im.exp_avg[k] = v.to(im.device);
    for (auto& [k, v] : dict_tensors(dict_get(opt, "exp_avg_sq", path), "exp_avg_sq", path))
      im.exp_avg_sq[k] = v.to(im.device);
  }
  im.iteration = dict_get(root, "iters_start", path).toInt();
}

}  // namespace train
}  // namespace sinsr
