// Components that follow only the header (no ResShift keys): a sampler that respaces through
// the ABI and may pass noise levels, and a backbone that declares which timesteps it takes.
#include <sinsr/sdk.hpp>

#include <torch/nn/module.h>

#include <cmath>
#include <string>
#include <vector>

namespace {

using sinsr::sdk::Error;
using sinsr::sdk::Timesteps;

// {"timesteps": "index" | "noise_level", "unit": "..."} -> the declaration.
Timesteps timesteps_from(const nlohmann::json& config) {
  const std::string kind = config.value("timesteps", std::string("index"));
  if (kind == "index") return Timesteps::indices();
  if (kind == "noise_level") return Timesteps::noise_level(config.value("unit", std::string("sigma")));
  throw Error(SINSR_ERR_INVALID_ARGUMENT, "timesteps must be 'index' or 'noise_level', got '" + kind + "'");
}

// A chain of `length` noise levels sigma_i = (i + 1) / length. Sampling walks the kept steps
// from the top, predicting x0 at each and moving x_t towards it. Config: "length" (default 8),
// "timesteps", "unit", and "fixed": true for a sampler that keeps the SDK's refusing respace.
class ToyChain : public sinsr::sdk::Sampler {
 public:
  explicit ToyChain(const nlohmann::json& config)
      : length_(config.value("length", 8)), fixed_(config.value("fixed", false)), ts_(timesteps_from(config)) {
    if (length_ < 1) throw Error(SINSR_ERR_INVALID_ARGUMENT, "length must be >= 1");
    for (int i = 0; i < length_; ++i) kept_.push_back(i);
  }

  int num_steps() const override { return int(kept_.size()); }

  void respace(int steps) override {
    if (fixed_) return Sampler::respace(steps);  // the SDK's refusal
    if (steps > length_)
      throw Error(SINSR_ERR_INVALID_ARGUMENT,
                  "toy_chain has " + std::to_string(length_) + " steps, not " + std::to_string(steps));
    kept_.clear();
    if (steps == 1) kept_.push_back(length_ - 1);
    for (int x = 0; steps > 1 && x < steps; ++x)
      kept_.push_back(int(std::lround(double(x) * (length_ - 1) / double(steps - 1))));
  }

  Timesteps timesteps() const override { return ts_; }

  at::Tensor schedule(const std::string& key) const override {
    if (key != "timestep_map") throw Error(SINSR_ERR_NOT_FOUND, "toy_chain has no schedule '" + key + "'");
    return at::tensor(std::vector<int64_t>(kept_.begin(), kept_.end()), at::kLong);
  }

  at::Tensor prior(const at::Tensor& y, const at::Tensor& noise) override { return y + sigma(kept_.back()) * noise; }

  at::Tensor sample(const at::Tensor& y, const at::Tensor& x_T, const sinsr::sdk::SampleCallbacks& cb) override {
    at::Tensor x = x_T;
    const int S = num_steps();
    const int64_t n = x.size(0);
    for (int i = S - 1; i >= 0; --i) {
      at::Tensor step = at::full({n}, int64_t(i), at::TensorOptions().dtype(at::kLong).device(x.device()));
      at::Tensor x0 = cb.denoise(scale_input(x, step), network_t(kept_[size_t(i)], n, x.device()));
      x = i > 0 ? x0 + (x - x0) * (sigma(kept_[size_t(i - 1)]) / sigma(kept_[size_t(i)])) : x0;
      if (cb.progress && !cb.progress(S - i, S)) throw Error(SINSR_ERR_CANCELLED, "cancelled");
    }
    (void)y;
    sinsr::sdk::log(SINSR_LOG_INFO, "toy_chain: " + std::to_string(S) + " denoise calls");
    return x;
  }

  at::Tensor q_sample(const at::Tensor& x0, const at::Tensor& y, const at::Tensor& t,
                      const at::Tensor& noise) override {
    (void)y;
    return x0 + sigmas(t, x0) * noise;
  }

  at::Tensor scale_input(const at::Tensor& x_t, const at::Tensor& t) override {
    at::Tensor s = sigmas(t, x_t);
    return x_t / (s * s + 1).sqrt();
  }

 private:
  double sigma(int index) const { return double(index + 1) / double(length_); }

  // [N,1,1,1] sigma of each sample's respaced index t.
  at::Tensor sigmas(const at::Tensor& t, const at::Tensor& like) const {
    std::vector<float> table;
    for (int k : kept_) table.push_back(float(sigma(k)));
    at::Tensor s = at::tensor(table).to(like.device()).index_select(0, t.to(like.device(), at::kLong));
    return s.view({-1, 1, 1, 1}).to(like.scalar_type());
  }

  // What the network is given: the chain index, or its noise level.
  at::Tensor network_t(int index, int64_t n, const c10::Device& device) const {
    if (ts_.kind == SINSR_TIMESTEP_INDEX)
      return at::full({n}, int64_t(index), at::TensorOptions().dtype(at::kLong).device(device));
    return at::full({n}, sigma(index), at::TensorOptions().dtype(at::kFloat).device(device));
  }

  int length_;
  bool fixed_;
  Timesteps ts_;
  std::vector<int> kept_;
};

// x0 = the conditioning image brought to x's size. It checks that the timesteps it receives
// are the kind it declared, so a pipeline that passes the wrong kind fails loudly.
class ToyNet : public sinsr::sdk::Backbone {
 public:
  explicit ToyNet(const nlohmann::json& config) : ts_(timesteps_from(config)) {}
  torch::nn::Module& module() override { return module_; }
  Timesteps timesteps() const override { return ts_; }
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cond, const at::Tensor& t) override {
    const bool index = ts_.kind == SINSR_TIMESTEP_INDEX;
    if (index != (t.scalar_type() == at::kLong))
      throw Error(SINSR_ERR_INVALID_ARGUMENT, std::string("toy_net takes ") +
                                                  (index ? "int64 indices" : "float noise levels") + ", got " +
                                                  c10::toString(t.scalar_type()));
    return at::upsample_nearest2d(cond, {x.size(2), x.size(3)}).to(x.scalar_type());
  }

 private:
  Timesteps ts_;
  torch::nn::Module module_;
};

const char* kSamplerSchema = R"({
  "length": {"type": "integer", "default": 8, "doc": "steps of the chain"},
  "timesteps": {"type": "string", "default": "index", "doc": "index | noise_level"},
  "unit": {"type": "string", "default": "sigma", "doc": "the noise level's unit"},
  "fixed": {"type": "boolean", "default": false, "doc": "refuse respacing"}
})";

const char* kNetSchema = R"({
  "timesteps": {"type": "string", "default": "index", "doc": "index | noise_level"},
  "unit": {"type": "string", "default": "sigma", "doc": "the noise level's unit"}
})";

}  // namespace

SINSR_PLUGIN("contract_components", "1.0.0") {
  plugin.add_sampler<ToyChain>({"toy_chain", "1.0.0", "a sampler that knows only the ABI (tests)", kSamplerSchema});
  sinsr::sdk::ComponentMeta net{"toy_net", "1.0.0", "x0 = the upsampled condition; declares its timesteps (tests)",
                                kNetSchema};
  net.flags = SINSR_COMPONENT_NO_WEIGHTS;
  plugin.add_backbone<ToyNet>(net);
}
