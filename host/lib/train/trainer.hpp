// Training across the ABI: diffusion training (the sampler makes each example: ABI 1.2
// training_example), SinSR distillation and plain regression, assembled from a backbone, an
// optional codec, a sampler and loss plugins. The optimiser (AdamW), EMA, the learning-rate
// schedule, gradient all-reduce and checkpoints live here and work for any backbone.
#pragma once

#include "pipeline/pipeline.hpp"
#include "runtime/runtime.hpp"
#include "train/dataset.hpp"

#include <ATen/ATen.h>

#include <functional>
#include <map>
#include <memory>
#include <string>

namespace sinsr {
namespace train {

using host::json;

struct LossTerm {
  std::string name = "mse";  // a loss component; 0-d or per-sample results both train
  json config = json::object();
  double weight = 1.0;
};

// The random draws of one training step. Replaying the same draws replays the step exactly.
struct Draws {
  std::function<at::Tensor(const at::Tensor& like)> normal;  // N(0, 1) with like's shape, dtype, device
  std::function<at::Tensor(int64_t count)> uniform;          // U[0, 1), float64 CPU [count]
  // Both from one CPU generator (the device never changes the numbers).
  static Draws from(at::Generator generator);
  // The first normal draw is `first_normal`, later ones come from the global generator;
  // uniform draws are `uniform` in order (refused when they run out).
  static Draws replay(const at::Tensor& first_normal, const at::Tensor& uniform = {});
};

struct TrainerOptions {
  // Teacher: the diffusion objective of the sampler (its training_example: ResShift's x0, SR3's
  // and SRDiff's noise, ...). Distill: SinSR's three objectives. Regress: the network's output
  // for (up-sampled LR, LR, t = 0) against the HR image (e.g. pre-training an LR encoder).
  enum class Mode { Teacher, Distill, Regress } mode = Mode::Distill;
  host::PipelinePart backbone;  // the trained network (distill: the student, initialised from the teacher)
  host::PipelinePart teacher;   // distill: the teacher (name/config default to the backbone's)
  host::PipelinePart codec;     // empty name: pixel space
  host::PipelinePart sampler;   // schedule, q_sample, teacher trajectory
  // Names come from the caller: `sinsr-host train` takes what it is not given from the installed
  // defaults.json ("train"), so that no family is named in the host.
  int scale = 4;

  // Losses: teacher and regress modes use `x0` (prediction vs target); distill uses the three
  // SinSR objectives, and `direct` (the student's one-step output vs the GT latent; weight 0 =
  // off, the official recipe) pulls it toward the ground truth. When `direct` is the only term
  // (distill weight 0, neither inverse nor GT consistency), the teacher's trajectory is not run.
  LossTerm x0, distill, inverse, gt;
  LossTerm direct{"mse", json::object(), 0.0};
  bool learn_xT = true;  // the inverse objective
  bool use_gt = true;    // the GT-consistency objective (weight: gt.weight)

  // AdamW and the official schedule: linear warm-up applied after each step.
  double lr = 5e-5, weight_decay = 0.0, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  int64_t warmup = 5000;
  // After the warm-up: "constant" (SinSR's, and ResShift's realsr configs) or "cosine" (ResShift's
  // `cosin`, CosineAnnealingLR): lr falls to lr_min along half a cosine, ending at step lr_steps
  // (the run's --max-steps).
  std::string lr_schedule = "constant";
  double lr_min = 2e-5;
  int64_t lr_steps = 0;
  double ema_rate = 0.999;  // 0: no EMA

  uint64_t seed = 123456;
  std::string device = "cpu";
};

struct StepResult {
  std::map<std::string, double> losses;  // batch means of each term and "loss" (the total)
  at::Tensor z0_teacher, pred;           // distill: teacher output, student output at T-1
  double lr = 0;
};

class Trainer {
 public:
  Trainer(host::Runtime& runtime, TrainerOptions options);
  ~Trainer();

  // One optimisation step on a batch (lq, gt in [-1, 1]) with the step's random draws. Steps
  // are numbered from 1.
  StepResult step(const at::Tensor& lq, const at::Tensor& gt, const Draws& draws);
  // The same with `noise` as the first normal draw (distillation's prior noise; benches).
  StepResult step(const at::Tensor& lq, const at::Tensor& gt, const at::Tensor& noise) {
    return step(lq, gt, Draws::replay(noise));
  }
  // Loss and gradients only (no optimiser update): what the parity test inspects.
  StepResult forward_backward(const at::Tensor& lq, const at::Tensor& gt, const Draws& draws);

  int64_t iteration() const;
  double lr_at(int64_t step) const;  // the learning rate used by step `step` (1-based)

  host::BackboneHandle& model();
  host::CodecHandle* codec();
  host::SamplerHandle& sampler();
  // What validation samples with: one step at T-1 for a distilled student, the `direct` sampler
  // for a regression network, else the sampler.
  host::SamplerHandle& inference_sampler();
  bool can_validate() const;  // false for a regression run without the `direct` plugin
  // Latent shape for a batch of LR images: [B, C, h*scale/downscale, ...].
  std::vector<int64_t> latent_shape(const at::Tensor& lq) const;

  // Called between backward and the optimiser step (gradient all-reduce).
  void set_gradient_hook(std::function<void(const std::vector<at::Tensor>& grads)> hook);

  // Checkpoint: {"state_dict": model (official names), "ema", "optimizer", "iters_start",
  // "seed", "config", "sinsr_components"}; written atomically. load() restores everything for an
  // exact resume. "sinsr_components" (JSON text, host::kComponentsKey) holds the backbone, codec
  // and sampler as created, config files resolved, so the file loads with no config
  // (host::weights_info).
  void save(const std::string& path, const json& config) const;
  void load(const std::string& path);
  // EMA weights as a plain state dict (official names), flat for the official loaders: it does
  // not carry the components (weights_info falls back to detection for it).
  void save_ema(const std::string& path) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The loop around a Trainer: data, noise, logging, validation, checkpoints, data parallelism.
struct LoopOptions {
  DatasetOptions data;
  int64_t max_steps = 1000;
  int64_t save_every = 500;
  int64_t val_every = 0;  // 0: no validation
  int64_t log_every = 10;
  std::string out_dir = "runs/sinsr";
  std::string resume;            // "": fresh; "auto": latest checkpoint in out_dir; or a file
  std::string val_lr, val_hr;    // folders of LR/HR pairs (matched by file name)
  int val_limit = 8;             // images per validation
  std::string backend = "auto";  // c10d backend when WORLD_SIZE > 1
  json config;                   // stored in checkpoints
  // Wall-time budget in seconds from the call (0: none): the step that uses it up is saved as a
  // checkpoint and the run returns early (TrainingReport::out_of_time); resuming continues.
  double max_seconds = 0;
  int64_t crash_at = 0;  // testing: abort() right before this step (simulates a kill)
  // What a fresh run (no `resume`) does when out_dir already holds one (checkpoints or a log):
  // refuse (RunInUse), or move the old folder aside to "<out_dir>.old-N" and start over.
  enum class Existing { Refuse, MoveAside } existing = Existing::Refuse;
};

// out_dir already holds a training run and neither resuming nor moving it aside was asked for.
struct RunInUse : sdk::Error {
  using sdk::Error::Error;
};

struct TrainingReport {
  int64_t last_step = 0;
  std::string last_checkpoint;  // "" when none was written
  std::string moved_aside;      // where an earlier run in out_dir went (Existing::MoveAside)
  bool out_of_time = false;     // stopped before max_steps by LoopOptions::max_seconds
};

// Runs to max_steps. A failure throws sdk::Error; a failed step's message names the last
// checkpoint, which stays intact.
TrainingReport run_training(host::Runtime& runtime, TrainerOptions options, LoopOptions loop);

}  // namespace train
}  // namespace sinsr
