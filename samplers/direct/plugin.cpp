// Sampler "direct": no chain at all, one network call at t = 0 on the condition y. It runs a
// network trained by plain regression (`train --objective regress`, or training with this
// sampler: its training example is the same pair), e.g. the PSNR ceiling beside a diffusion model.
#include <sinsr/sdk.hpp>

namespace {

const char* kSchema = R"json({})json";

class DirectSampler : public sinsr::sdk::Sampler {
 public:
  explicit DirectSampler(const nlohmann::json&) {}

  int num_steps() const override { return 1; }
  at::Tensor schedule(const std::string& key) const override {
    throw sinsr::sdk::Error(SINSR_ERR_INVALID_ARGUMENT, "direct: has no schedule (asked for '" + key + "')");
  }
  // The "prior" is the condition itself: nothing is drawn.
  at::Tensor prior(const at::Tensor& y, const at::Tensor&) override { return y; }
  at::Tensor sample(const at::Tensor& y, const at::Tensor&, const sinsr::sdk::SampleCallbacks& cb) override {
    at::Tensor out = sinsr::sdk::callback_result(cb.denoise(y, zero_steps(y)), y, "direct", "denoise", 0);
    sinsr::sdk::report_progress(cb.progress, 1, 1);
    return out;
  }
  at::Tensor q_sample(const at::Tensor& x0, const at::Tensor&, const at::Tensor&, const at::Tensor&) override {
    return x0;
  }
  at::Tensor scale_input(const at::Tensor& x_t, const at::Tensor&) override { return x_t; }
  sinsr_prediction prediction() const override { return SINSR_PREDICTION_X0; }  // the output is the result
  void respace(int steps) override {
    if (steps != 1)
      throw sinsr::sdk::Error(SINSR_ERR_INVALID_ARGUMENT,
                              "direct: runs exactly one step (asked for " + std::to_string(steps) + ")");
  }
  sinsr::sdk::TrainingExample training_example(const at::Tensor& x0, const at::Tensor& y,
                                               const sinsr::sdk::SampleCallbacks&) override {
    return {y, zero_steps(y), x0};
  }

 private:
  static at::Tensor zero_steps(const at::Tensor& like) {
    return at::zeros({like.size(0)}, at::TensorOptions().dtype(at::kLong).device(like.device()));
  }
};

}  // namespace

SINSR_PLUGIN("direct", "1.0.0") {
  sinsr::sdk::ComponentMeta direct{"direct", "1.0.0", "one network call at t = 0 on y (a regression network)", kSchema};
  direct.thread_safety = SINSR_THREAD_PARALLEL;
  plugin.add_sampler<DirectSampler>(direct);
}
