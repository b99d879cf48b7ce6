#include "ddpm.hpp"

#include <string>

namespace sinsr {
namespace ddpm {

using sdk::Error;
using sdk::require;

namespace {

// Half-precision inputs run the chain in float32, as the references' float32 buffers promote them.
at::ScalarType work_type(const at::Tensor& t) { return at::promote_types(t.scalar_type(), at::kFloat); }

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

ChainSpec train_spec(const Options& o) {
  ChainSpec c;
  c.schedule = o.schedule;
  c.steps = o.train_steps;
  c.beta_start = o.train_beta_start;
  c.beta_end = o.train_beta_end;
  c.cosine_s = o.cosine_s;
  c.last_beta_0999 = o.residual;  // SRDiff: `if hparams['res']: betas[-1] = 0.999` (linear only)
  c.float64 = o.float64_schedule;
  return c;
}

ChainSpec sample_spec(const Options& o) {
  ChainSpec c = train_spec(o);
  c.steps = o.sample_steps;
  c.beta_start = o.sample_beta_start;
  c.beta_end = o.sample_beta_end;
  return c;
}

DdpmSampler::DdpmSampler(const Options& options) : o_(options) {
  o_.check();
  train_ = Chain(train_spec(o_));
  sample_ = Chain(sample_spec(o_));
  configured_ = sample_;
}

std::vector<std::string> DdpmSampler::schedule_keys() const {
  std::vector<std::string> keys{"timesteps"};
  for (const auto& k : sample_.keys()) {
    keys.push_back(k);
    keys.push_back("sample_" + k);
  }
  for (const auto& k : train_.keys()) keys.push_back("train_" + k);
  return keys;
}

at::Tensor DdpmSampler::schedule(const std::string& key) const {
  if (key == "timesteps")
    return o_.timestep == TimestepKind::Index
               ? (indices_.empty() ? at::arange(sample_.size(), at::kLong) : at::tensor(indices_, at::kLong))
               : sample_.get("sqrt_alphas_cumprod").clone();
  try {
    if (starts_with(key, "train_")) return train_.get(key.substr(6)).clone();
    if (starts_with(key, "sample_")) return sample_.get(key.substr(7)).clone();
    return sample_.get(key).clone();
  } catch (const Error&) {
    throw Error(SINSR_ERR_NOT_FOUND, kWho + ": no schedule array '" + key +
                                         "' (the sampling chain's arrays by name, e.g. betas, alphas_cumprod, "
                                         "posterior_mean_coef1, also prefixed sample_; the training chain's "
                                         "prefixed train_; timesteps)");
  }
}

at::Tensor DdpmSampler::prior(const at::Tensor& y, const at::Tensor& noise) {
  require(y.defined() && noise.defined() && y.sizes() == noise.sizes(), SINSR_ERR_INVALID_ARGUMENT,
          kWho + ": prior: y " + sdk::describe_shape(y) + " and noise " + sdk::describe_shape(noise) +
              " must have one shape");
  // Both references start from pure noise (SRDiff's residual chain included).
  // x * 1.0 is exact: temperature 1 gives the references' numbers bit for bit.
  return noise.to(work_type(noise)) * o_.temperature;
}

at::Tensor DdpmSampler::network_t(int64_t index, int64_t batch, const c10::Device& device) const {
  if (o_.timestep == TimestepKind::Index)
    return at::full({batch}, indices_.empty() ? index : indices_[size_t(index)],
                    at::TensorOptions().dtype(at::kLong).device(device));
  // SR3 feeds torch.sqrt(sample_alphas_bar[t]) of its float32 buffer.
  return sample_.get("sqrt_alphas_cumprod").slice(0, index, index + 1).expand({batch}).contiguous().to(device);
}

at::Tensor DdpmSampler::sample(const at::Tensor& y_in, const at::Tensor& x_T, const sdk::SampleCallbacks& cb) {
  require(x_T.defined() && y_in.defined() && x_T.dim() >= 1 && x_T.sizes() == y_in.sizes(), SINSR_ERR_INVALID_ARGUMENT,
          kWho + ": sample: y " + sdk::describe_shape(y_in) + " and x_T " + sdk::describe_shape(x_T) +
              " must have one shape");
  require(bool(cb.denoise), SINSR_ERR_INVALID_ARGUMENT, kWho + ": sample: no denoise callback");
  const int64_t S = sample_.size(), b = x_T.size(0);
  require(bool(cb.noise) || (S == 1 && !o_.final_noise), SINSR_ERR_INVALID_ARGUMENT,
          kWho + ": sample: ancestral sampling needs a noise callback");
  const at::ScalarType work = work_type(x_T);
  const at::Tensor y = y_in.to(x_T.device(), work);
  at::Tensor x = x_T.to(work);
  const Chain& c = sample_;
  for (int64_t i = S - 1; i >= 0; --i) {
    const at::Tensor t = at::full({b}, i, at::kLong);
    const at::Tensor eps = sdk::callback_result(cb.denoise(x, network_t(i, b, x.device())), x, kWho, "denoise", i);
    at::Tensor mean;
    if (o_.clip_x0) {
      at::Tensor x0 = c.coef("sqrt_recip_alphas_cumprod", t, x) * x - c.coef("sqrt_recipm1_alphas_cumprod", t, x) * eps;
      x0.clamp_(-1.0, 1.0);
      mean = c.coef("posterior_mean_coef1", t, x) * x0 + c.coef("posterior_mean_coef2", t, x) * x;
    } else {
      mean = c.coef("one_over_sqrt_alphas", t, x) * (x - c.coef("betas_over_sqrt_one_minus_alphas_bar", t, x) * eps);
    }
    if (i > 0) {
      const at::Tensor z = sdk::callback_result(cb.noise(x), x, kWho, "noise", i);
      const at::Tensor sigma = o_.variance == Variance::Beta
                                   ? c.coef("sigmas", t, x)
                                   : (c.coef("posterior_log_variance_clipped", t, x) * 0.5).exp();
      x = mean + sigma * z * o_.temperature;
    } else {
      // SRDiff draws at t = 0 too and multiplies by zero: draw, so the noise stream lines up.
      if (o_.final_noise) sdk::callback_result(cb.noise(x), x, kWho, "noise", i);
      x = mean;
    }
    const int done = int(S - i);
    sdk::report_progress(cb.progress, done, int(S));
  }
  at::Tensor img = x.clamp(-1.0, 1.0);
  if (o_.residual) img = img / o_.res_rescale + y;
  return img.to(x_T.scalar_type());
}

void DdpmSampler::check_indices(const at::Tensor& t, const at::Tensor& x, const char* what) const {
  require(t.defined() && t.scalar_type() == at::kLong && t.dim() <= 1 && x.dim() >= 1 && t.numel() == x.size(0),
          SINSR_ERR_INVALID_ARGUMENT,
          kWho + ": " + what + ": t must be int64 [N] indices of the training chain with N = " +
              (x.dim() >= 1 ? std::to_string(x.size(0)) : std::string("?")) + ", got " + sdk::describe_shape(t) + " " +
              (t.defined() ? std::string(c10::toString(t.scalar_type())) : ""));
  if (t.numel() == 0) return;
  const auto tc = t.to(at::kCPU);
  const int64_t lo = tc.min().item<int64_t>(), hi = tc.max().item<int64_t>();
  require(lo >= 0 && hi < train_.size(), SINSR_ERR_INVALID_ARGUMENT,
          kWho + ": " + what + ": t must be in [0, " + std::to_string(train_.size() - 1) + "], got " +
              std::to_string(lo < 0 ? lo : hi));
}

at::Tensor DdpmSampler::to_chain(const at::Tensor& x0, const at::Tensor& y) const {
  if (!o_.residual) return x0;
  return ((x0 - y) * o_.res_rescale).clamp(-1.0, 1.0);
}

at::Tensor DdpmSampler::q_sample(const at::Tensor& x0_in, const at::Tensor& y, const at::Tensor& t,
                                 const at::Tensor& noise) {
  require(
      x0_in.defined() && y.defined() && noise.defined() && x0_in.sizes() == noise.sizes() && x0_in.sizes() == y.sizes(),
      SINSR_ERR_INVALID_ARGUMENT,
      kWho + ": q_sample: x0 " + sdk::describe_shape(x0_in) + ", y " + sdk::describe_shape(y) + " and noise " +
          sdk::describe_shape(noise) + " must have one shape");
  check_indices(t, x0_in, "q_sample");
  const at::ScalarType work = work_type(x0_in);
  const at::Tensor x0 = to_chain(x0_in.to(work), y.to(x0_in.device(), work));
  const at::Tensor x_t = train_.coef("sqrt_alphas_cumprod", t, x0) * x0 +
                         train_.coef("sqrt_one_minus_alphas_cumprod", t, x0) * noise.to(x0.device(), work);
  return x_t.to(x0_in.scalar_type());
}

at::Tensor DdpmSampler::scale_input(const at::Tensor& x_t, const at::Tensor& t) {
  // Both references feed x_t unscaled.
  require(x_t.defined() && x_t.dim() >= 1 && t.defined() && t.scalar_type() == at::kLong && t.numel() == x_t.size(0),
          SINSR_ERR_INVALID_ARGUMENT,
          kWho + ": scale_input: t must be int64 [N] indices matching x_t " + sdk::describe_shape(x_t) + ", got " +
              sdk::describe_shape(t));
  return x_t;
}

void DdpmSampler::respace(int steps) {
  // Rebuild (the references): SR3 linspace(sample_beta_start, sample_beta_end, steps), SRDiff
  // a fresh steps-long schedule. Subsequence: steps of the configured chain. The training chain
  // stays as it is.
  Options o = o_;
  o.sample_steps = steps;
  o.check();
  indices_.clear();
  if (o.respace == Respace::Subsequence && steps == configured_.size()) {
    sample_ = configured_;
  } else if (o.respace == Respace::Subsequence) {
    std::vector<int64_t> idx = spaced_indices(configured_.size(), steps);
    ChainSpec spec = configured_.spec();
    spec.steps = steps;
    spec.betas = subsequence_betas(configured_, idx);
    sample_ = Chain(spec);
    indices_ = idx;
  } else {
    sample_ = Chain(sample_spec(o));
  }
  o_ = o;
}

sdk::Timesteps DdpmSampler::timesteps() const {
  return o_.timestep == TimestepKind::Index ? sdk::Timesteps::indices() : sdk::Timesteps::noise_level("sqrt_alpha_bar");
}

sdk::TrainingExample DdpmSampler::training_example(const at::Tensor& x0_in, const at::Tensor& y,
                                                   const sdk::SampleCallbacks& cb) {
  require(x0_in.defined() && y.defined() && x0_in.dim() >= 1 && x0_in.sizes() == y.sizes(), SINSR_ERR_INVALID_ARGUMENT,
          kWho + ": training_example: x0 " + sdk::describe_shape(x0_in) + " and y " + sdk::describe_shape(y) +
              " must have one shape");
  require(bool(cb.uniform) && bool(cb.noise), SINSR_ERR_INVALID_ARGUMENT,
          kWho + ": training_example needs the uniform and noise callbacks");
  const int64_t b = x0_in.size(0), T = train_.size();
  const at::ScalarType work = work_type(x0_in);
  const c10::Device dev = x0_in.device();
  const at::Tensor x0 = to_chain(x0_in.to(work), y.to(dev, work));
  auto draw = [&](int64_t n) {
    at::Tensor u = cb.uniform(n);
    require(u.defined() && u.numel() == n, SINSR_ERR_RUNTIME,
            kWho + ": the uniform callback returned " + sdk::describe_shape(u) + ", expected " + std::to_string(n));
    return u.to(at::kCPU, at::kDouble).reshape({n});
  };
  std::vector<int64_t> shape(size_t(x0.dim()), 1);
  shape[0] = b;
  sdk::TrainingExample ex;
  if (o_.timestep == TimestepKind::SqrtAlphaBar) {
    // SR3: t = randint(1, T), alpha_bar uniform between alphas_bar[t] and alphas_bar[t-1]
    // (float32 arithmetic, as the repo's rand_like over its float32 buffer), then eps.
    const at::Tensor idx = (draw(b) * double(T - 1)).floor_().clamp_(0, double(T - 2)).to(at::kLong) + 1;
    const at::Tensor v = draw(b).to(at::kFloat);
    const at::Tensor& ab = train_.get("alphas_bar");
    const at::Tensor high = ab.index_select(0, idx - 1), low = ab.index_select(0, idx);
    const at::Tensor gamma = (high - low) * v + low;
    const at::Tensor level = at::sqrt(gamma);
    const at::Tensor eps = sdk::callback_result(cb.noise(x0), x0, kWho, "noise", -1);
    const at::Tensor x_t =
        level.view(shape).to(dev, work) * x0 + at::sqrt(at::rsub(gamma, 1)).view(shape).to(dev, work) * eps;
    ex = {x_t, level.to(dev), eps};
  } else {
    // SRDiff: t = randint(0, T), x_t = q_sample(x0, t, eps).
    const at::Tensor idx = (draw(b) * double(T)).floor_().clamp_(0, double(T - 1)).to(at::kLong);
    const at::Tensor eps = sdk::callback_result(cb.noise(x0), x0, kWho, "noise", -1);
    const at::Tensor x_t =
        train_.coef("sqrt_alphas_cumprod", idx, x0) * x0 + train_.coef("sqrt_one_minus_alphas_cumprod", idx, x0) * eps;
    ex = {x_t, idx.to(dev), eps};
  }
  ex.x_in = ex.x_in.to(x0_in.scalar_type());  // scale_input is the identity
  ex.target = ex.target.to(x0_in.scalar_type());
  return ex;
}

}  // namespace ddpm
}  // namespace sinsr
