#include "options.hpp"

#include <sinsr/config.hpp>
#include <sinsr/sdk.hpp>

#include <limits>

namespace sinsr {
namespace ddpm {

using json = nlohmann::json;
using sdk::Error;

namespace {

constexpr int kMaxSteps = 1000000;

const char* name_of(Variant v) { return v == Variant::SR3 ? "sr3" : "srdiff"; }
const char* name_of(BetaSchedule s) { return s == BetaSchedule::Linear ? "linear" : "cosine"; }
const char* name_of(Variance v) { return v == Variance::Beta ? "beta" : "posterior"; }
const char* name_of(TimestepKind t) { return t == TimestepKind::SqrtAlphaBar ? "sqrt_alpha_bar" : "index"; }

}  // namespace

Options Options::defaults(Variant v) {
  Options o;  // the member initialisers are SR3's (novwaul/SR3 diffusion.py)
  if (v == Variant::SRDiff) {
    // LeiaLi/SRDiff configs/diffsr_base.yaml and models/diffusion.py.
    o.variant = v;
    o.schedule = BetaSchedule::Cosine;
    o.train_steps = 100;
    o.train_beta_start = 1e-4;  // get_beta_schedule's default beta_start
    o.train_beta_end = 0.02;    // hparams beta_end (linear schedule only)
    o.sample_steps = o.train_steps;
    o.sample_beta_start = o.train_beta_start;
    o.sample_beta_end = o.train_beta_end;
    o.variance = Variance::Posterior;
    o.clip_x0 = true;
    o.residual = true;
    o.timestep = TimestepKind::Index;
    o.final_noise = true;
    o.float64_schedule = true;
  }
  return o;
}

Options Options::from_json(const json& config) {
  config::Reader r(kWho, config);
  const config::IntRange steps = config::IntRange::between(1, kMaxSteps);
  const config::Range beta{0, 1, true, true};
  const std::string v = r.string("variant", "sr3", {"sr3", "srdiff"});
  Options o = defaults(v == "sr3" ? Variant::SR3 : Variant::SRDiff);
  const bool srdiff = o.variant == Variant::SRDiff;

  o.schedule = r.string("schedule", name_of(o.schedule), {"linear", "cosine"}) == "linear" ? BetaSchedule::Linear
                                                                                           : BetaSchedule::Cosine;
  o.train_steps = int(r.integer("train_steps", o.train_steps, steps));
  o.train_beta_start = r.number("train_beta_start", o.train_beta_start, beta);
  o.train_beta_end = r.number("train_beta_end", o.train_beta_end, beta);
  // SRDiff samples the chain it trains on: its sampling keys follow the training ones.
  o.sample_steps = int(r.integer("sample_steps", srdiff ? o.train_steps : o.sample_steps, steps));
  o.sample_beta_start = r.number("sample_beta_start", srdiff ? o.train_beta_start : o.sample_beta_start, beta);
  o.sample_beta_end = r.number("sample_beta_end", srdiff ? o.train_beta_end : o.sample_beta_end, beta);
  o.cosine_s = r.number("cosine_s", o.cosine_s, config::Range::between(0, 1));
  o.variance =
      r.string("variance", name_of(o.variance), {"beta", "posterior"}) == "beta" ? Variance::Beta : Variance::Posterior;
  o.clip_x0 = r.boolean("clip_x0", o.clip_x0);
  o.residual = r.boolean("residual", o.residual);
  o.res_rescale = r.number("res_rescale", o.res_rescale, config::Range::above(0));
  o.timestep = r.string("timestep", name_of(o.timestep), {"sqrt_alpha_bar", "index"}) == "index"
                   ? TimestepKind::Index
                   : TimestepKind::SqrtAlphaBar;
  o.final_noise = r.boolean("final_noise", o.final_noise);
  o.float64_schedule =
      r.string("schedule_dtype", o.float64_schedule ? "float64" : "float32", {"float32", "float64"}) == "float64";
  o.temperature = r.number("temperature", o.temperature, config::Range::between(0, 10));
  o.respace =
      r.string("respace", "rebuild", {"rebuild", "subsequence"}) == "rebuild" ? Respace::Rebuild : Respace::Subsequence;
  r.finish();
  o.check();
  return o;
}

void Options::check() const {
  auto refuse = [](const std::string& msg) { throw Error(SINSR_ERR_INVALID_ARGUMENT, kWho + ": " + msg); };
  if (train_steps < 1 || train_steps > kMaxSteps)
    refuse("'train_steps' must be in [1, " + std::to_string(kMaxSteps) + "], got " + std::to_string(train_steps));
  if (sample_steps < 1 || sample_steps > kMaxSteps)
    refuse("'sample_steps' must be in [1, " + std::to_string(kMaxSteps) + "], got " + std::to_string(sample_steps));
  // SR3's training draws t from 1..T-1 and alpha_bar between alpha_bar[t] and alpha_bar[t-1].
  if (timestep == TimestepKind::SqrtAlphaBar && train_steps < 2)
    refuse("'train_steps' must be >= 2 with timestep \"sqrt_alpha_bar\" (training draws t from 1..T-1), got " +
           std::to_string(train_steps));
  if (schedule == BetaSchedule::Linear && (train_beta_start > train_beta_end || sample_beta_start > sample_beta_end))
    refuse("a linear schedule needs beta_start <= beta_end (train " + json(train_beta_start).dump() + ".." +
           json(train_beta_end).dump() + ", sample " + json(sample_beta_start).dump() + ".." +
           json(sample_beta_end).dump() + ")");
}

json Options::to_json() const {
  return {{"variant", name_of(variant)},
          {"schedule", name_of(schedule)},
          {"train_steps", train_steps},
          {"train_beta_start", train_beta_start},
          {"train_beta_end", train_beta_end},
          {"sample_steps", sample_steps},
          {"sample_beta_start", sample_beta_start},
          {"sample_beta_end", sample_beta_end},
          {"cosine_s", cosine_s},
          {"variance", name_of(variance)},
          {"clip_x0", clip_x0},
          {"residual", residual},
          {"res_rescale", res_rescale},
          {"timestep", name_of(timestep)},
          {"final_noise", final_noise},
          {"schedule_dtype", float64_schedule ? "float64" : "float32"},
          {"temperature", temperature},
          {"respace", respace == Respace::Rebuild ? "rebuild" : "subsequence"}};
}

const std::string& config_schema() {
  static const std::string text = [] {
    json s = json::object();
    auto key = [&](const char* name, const char* type, json fallback, const char* doc, json choices = nullptr) {
      s[name] = {{"type", type}, {"default", fallback}, {"doc", doc}};
      if (!choices.is_null()) s[name]["enum"] = choices;
    };
    const Options d;  // the default variant, sr3
    key("variant", "string", "sr3",
        "the reference whose defaults the other keys start from: sr3 (novwaul/SR3) or srdiff (LeiaLi/SRDiff)",
        {"sr3", "srdiff"});
    key("schedule", "string", "linear",
        "beta schedule of both chains (srdiff: cosine); linear with residual sets the last beta to 0.999, as "
        "SRDiff does",
        {"linear", "cosine"});
    key("train_steps", "integer", d.train_steps, "T of the training chain (training_example, q_sample); srdiff: 100");
    key("train_beta_start", "number", d.train_beta_start, "first beta of a linear training chain");
    key("train_beta_end", "number", d.train_beta_end, "last beta of a linear training chain; srdiff: 0.02");
    key("sample_steps", "integer", d.sample_steps,
        "steps of the sampling chain, built with that many betas (the host's --steps rebuilds it the same way); "
        "srdiff: = train_steps");
    key("sample_beta_start", "number", d.sample_beta_start,
        "first beta of a linear sampling chain; srdiff: = train_beta_start");
    key("sample_beta_end", "number", d.sample_beta_end,
        "last beta of a linear sampling chain; srdiff: = train_beta_end");
    key("cosine_s", "number", d.cosine_s, "offset s of the cosine schedule");
    key("variance", "string", "beta",
        "reverse-step std: sqrt(beta_t) (sr3) or exp(0.5 posterior_log_variance_clipped) (srdiff)",
        {"beta", "posterior"});
    key("clip_x0", "boolean", d.clip_x0,
        "predict x0 from eps, clamp it to [-1,1] and take the posterior mean (srdiff: true); false: SR3's direct "
        "eps update");
    key("residual", "boolean", d.residual,
        "the chain lives in residual space clamp((x - y) * res_rescale, -1, 1), y = bicubic-upsampled LR; the "
        "result is clamp(x, -1, 1) / res_rescale + y (srdiff: true)");
    key("res_rescale", "number", d.res_rescale, "residual scale (with residual only)");
    key("timestep", "string", "sqrt_alpha_bar",
        "t given to the network: float32 sqrt(alpha_bar) (sr3; training draws alpha_bar continuously) or int64 "
        "step indices (srdiff)",
        {"sqrt_alpha_bar", "index"});
    key("final_noise", "boolean", d.final_noise,
        "draw a noise tensor at the last step too and discard it, as SRDiff's loop consumes its RNG "
        "(srdiff: true)");
    key("schedule_dtype", "string", "float32",
        "arithmetic of the schedule arrays: float32 torch ops as SR3 (sr3) or float64 as SRDiff (srdiff); stored "
        "float32 either way",
        {"float32", "float64"});
    key("temperature", "number", d.temperature,
        "scales the prior and each step's noise: 1 = the references; < 1 trades detail for fidelity (PSNR), as "
        "SRFlow's sampling temperature; 0 = the chain of posterior means");
    key("respace", "string", "rebuild",
        "what another step count (--steps) builds: rebuild = a fresh chain of that length (the references); "
        "subsequence = evenly spaced steps of the configured chain, the network seeing their indices in it",
        {"rebuild", "subsequence"});
    return s.dump(2);
  }();
  return text;
}

}  // namespace ddpm
}  // namespace sinsr
