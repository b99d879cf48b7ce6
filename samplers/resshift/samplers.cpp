#include "samplers.hpp"

#include <sinsr/sdk.hpp>

namespace sinsr {
namespace resshift {

using sdk::Error;
using sdk::require;

namespace {

std::string who(Rule rule) {
  return rule == Rule::Stochastic      ? "sampler 'stochastic'"
         : rule == Rule::Deterministic ? "sampler 'deterministic'"
                                       : "sampler 'single-step'";
}

}  // namespace

at::Tensor sample(const Schedule& s, Rule rule, const at::Tensor& y_in, const at::Tensor& x_T, const Denoise& denoise,
                  const Noise& noise, const Progress& progress) {
  require(x_T.defined() && y_in.defined() && x_T.dim() >= 1 && x_T.sizes() == y_in.sizes(), SINSR_ERR_INVALID_ARGUMENT,
          "sample: y " + sdk::describe_shape(y_in) + " and x_T " + sdk::describe_shape(x_T) + " must have one shape");
  require(bool(denoise), SINSR_ERR_INVALID_ARGUMENT, "sample: no denoise callback");
  require(rule != Rule::Stochastic || bool(noise), SINSR_ERR_INVALID_ARGUMENT,
          "sample: the stochastic sampler needs a noise callback");
  // Half-precision inputs run the update in float32, as the official float32 coefficients promote them.
  const at::ScalarType work = at::promote_types(x_T.scalar_type(), at::kFloat);
  const at::Tensor y = y_in.to(work);
  at::Tensor x = x_T.to(work);
  const int64_t S = s.num_steps(), b = x.size(0);
  const int total = rule == Rule::SingleStep ? 1 : int(S);
  int done = 0;
  for (int64_t i = S - 1; i >= 0; --i) {
    const at::Tensor t = at::full({b}, i, at::TensorOptions().dtype(at::kLong).device(x.device()));
    at::Tensor out = sdk::callback_result(denoise(s.scale_input(x, t), s.model_timesteps(i, b, x.device())), x,
                                          who(rule), "denoise", i);
    const at::Tensor x0 = s.pred_xstart(out, x, y, t);
    if (rule == Rule::SingleStep) {
      x = x0;
    } else if (rule == Rule::Deterministic) {
      x = x0 * s.coef("k_f32", t, x) + s.coef("m_f32", t, x) * x + s.coef("j_f32", t, x) * y;
    } else {
      const at::Tensor mean =
          s.coef("posterior_mean_coef1_f32", t, x) * x + s.coef("posterior_mean_coef2_f32", t, x) * x0;
      const at::Tensor eps = sdk::callback_result(noise(x), x, who(rule), "noise", i);
      x = i == 0 ? mean : mean + s.coef("posterior_std_f32", t, x) * eps;
    }
    ++done;
    sdk::report_progress(progress, done, total);
    if (rule == Rule::SingleStep) break;
  }
  return x.scalar_type() == x_T.scalar_type() ? x : x.to(x_T.scalar_type());
}

}  // namespace resshift
}  // namespace sinsr
