// One SinSR distillation iteration against the official code (distill_case.pth): teacher
// trajectory, the three objectives, and the gradients that reach the student across the ABI.
#include "parity.hpp"
#include "plugin_runtime.hpp"

#include "train/trainer.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include <map>

namespace {

using sinsr::host::json;
using sinsr::train::Draws;
using sinsr::train::Trainer;
using sinsr::train::TrainerOptions;

sinsr::host::Runtime& runtime() { return sinsr_test::plugin_runtime(); }

TrainerOptions tiny_distill() {
  TrainerOptions o;
  o.mode = TrainerOptions::Mode::Distill;
  o.backbone = {"unet_swin", {{"config_file", sinsr_test::parity_file("tiny-unet.yaml")}}, ""};
  o.teacher = {"", json::object(), sinsr_test::parity_file("unet_tiny.pth")};
  o.codec = {
      "vq_f4", {{"config_file", sinsr_test::parity_file("tiny-vq.yaml")}}, sinsr_test::parity_file("vq_tiny.pth")};
  o.sampler = {"deterministic", json::object(), ""};
  return o;
}

TEST(DistillParity, OneIterationMatchesTheOfficialCode) {
  auto c = sinsr_test::load("distill_case.pth");
  Trainer trainer(runtime(), tiny_distill());
  auto r = trainer.forward_backward(sinsr_test::tensor(c, "lq"), sinsr_test::tensor(c, "gt"),
                                    Draws::replay(sinsr_test::tensor(c, "noise")));
  EXPECT_TRUE(sinsr_test::all_close(r.z0_teacher, sinsr_test::tensor(c, "z_start_teacher"), 5e-4));
  EXPECT_TRUE(sinsr_test::all_close(r.pred, sinsr_test::tensor(c, "z0_pred"), 5e-4));
  auto near = [&](const std::string& mine, const std::string& key) {
    double ref = sinsr_test::at_key(c, key).toTensor().mean().item<double>();  // per-sample in the file
    EXPECT_NEAR(r.losses.at(mine), ref, 1e-4 * std::abs(ref) + 1e-7) << key;
  };
  near("distill", "loss_distill");
  near("inverse", "loss_inverse");
  near("gt", "loss_gt");
  near("loss", "loss_total");

  double sq = 0;
  std::map<std::string, at::Tensor> grads;
  for (auto& s : trainer.model().state()) {
    if (!s.is_parameter) continue;
    ASSERT_TRUE(s.grad.defined()) << s.name;
    sq += s.grad.to(at::kDouble).pow(2).sum().item<double>();
    grads[s.name] = s.grad;
  }
  double ref_norm = sinsr_test::at_key(c, "grad_norm").toTensor().item<double>();
  EXPECT_NEAR(std::sqrt(sq), ref_norm, 1e-3 * ref_norm);
  EXPECT_TRUE(sinsr_test::all_close(grads.at("out.2.weight"), sinsr_test::tensor(c, "grad_out_conv_weight"), 1e-4));
  EXPECT_TRUE(sinsr_test::all_close(grads.at("input_blocks.0.0.weight"),
                                    sinsr_test::tensor(c, "grad_input_conv_weight"), 1e-4));
  EXPECT_TRUE(
      sinsr_test::all_close(grads.at("time_embed.0.weight"), sinsr_test::tensor(c, "grad_time_embed0_weight"), 1e-4));
}

// The direct term compares the student's one step with the GT latent. Beside the official three
// it adds to the total; alone (distill weight 0, no inverse, no GT consistency) the student sees
// the same input and the teacher's end point is neither computed nor reported.
TEST(DirectTerm, ComparesTheStudentsStepWithTheGt) {
  auto c = sinsr_test::load("distill_case.pth");
  at::Tensor lq = sinsr_test::tensor(c, "lq"), gt = sinsr_test::tensor(c, "gt"), noise = sinsr_test::tensor(c, "noise");
  auto both = tiny_distill();
  both.direct = {"mse", json::object(), 0.5};
  Trainer full(runtime(), both);
  auto r = full.forward_backward(lq, gt, Draws::replay(noise));
  at::Tensor z_gt;
  {
    at::NoGradGuard no_grad;
    z_gt = full.codec()->encode(gt);
  }
  const double direct = (r.pred - z_gt).pow(2).mean().item<double>();
  EXPECT_NEAR(r.losses.at("direct"), direct, 1e-6);
  EXPECT_NEAR(r.losses.at("loss"),
              r.losses.at("distill") + r.losses.at("inverse") + r.losses.at("gt") + 0.5 * r.losses.at("direct"), 1e-6);
  auto near = [&](const std::string& mine, const std::string& key) {
    double ref = sinsr_test::at_key(c, key).toTensor().mean().item<double>();
    EXPECT_NEAR(r.losses.at(mine), ref, 1e-4 * std::abs(ref) + 1e-7) << key;
  };
  near("distill", "loss_distill");  // the official terms are untouched by the extra one
  near("gt", "loss_gt");

  auto alone = tiny_distill();
  alone.distill.weight = 0;
  alone.learn_xT = false;
  alone.use_gt = false;
  alone.direct = {"mse", json::object(), 1.0};
  Trainer only(runtime(), alone);
  auto q = only.forward_backward(lq, gt, Draws::replay(noise));
  EXPECT_EQ(q.losses.count("distill"), 0u);
  EXPECT_FALSE(q.z0_teacher.defined());
  EXPECT_TRUE(sinsr_test::all_close(q.pred, r.pred, 1e-6));
  EXPECT_NEAR(q.losses.at("direct"), direct, 1e-6);
  EXPECT_NEAR(q.losses.at("loss"), direct, 1e-6);
  // Sharing the student's output, the two terms' gradients add up: full = official + 0.5 direct.
  Trainer official(runtime(), tiny_distill());
  official.forward_backward(lq, gt, Draws::replay(noise));
  auto grads = [](Trainer& t) {
    std::map<std::string, at::Tensor> g;
    for (auto& s : t.model().state())
      if (s.is_parameter && s.grad.defined()) g[s.name] = s.grad.clone();
    return g;
  };
  auto g_full = grads(full), g_official = grads(official), g_only = grads(only);
  ASSERT_EQ(g_full.size(), g_official.size());
  for (const char* name : {"out.2.weight", "input_blocks.0.0.weight", "time_embed.0.weight"}) {
    EXPECT_GT(g_only.at(name).abs().sum().item<double>(), 0.0) << name;
    EXPECT_TRUE(sinsr_test::all_close(g_full.at(name), g_official.at(name) + 0.5 * g_only.at(name), 1e-5, 1e-4))
        << name;
  }
}

// The ABI lets a loss answer 0-d (the batch loss) or [N] (per sample); both train the same.
TEST(LossShapes, ABatchLossAndPerSampleValuesGiveTheSameStep) {
  auto c = sinsr_test::load("distill_case.pth");
  at::Tensor lq = sinsr_test::tensor(c, "lq"), gt = sinsr_test::tensor(c, "gt"), noise = sinsr_test::tensor(c, "noise");
  at::Tensor t = at::arange(lq.size(0), at::kLong).mul_(7).remainder_(15);
  at::Tensor u = (t.to(at::kDouble) + 0.5) / 15.0;  // the resshift sampler draws t = floor(u * T)
  auto run = [&](const json& loss_config) {
    auto o = tiny_distill();
    o.mode = TrainerOptions::Mode::Teacher;
    o.backbone.weights = sinsr_test::parity_file("unet_tiny.pth");
    o.x0 = {"mse", loss_config, 0.5};
    Trainer trainer(runtime(), o);
    auto r = trainer.forward_backward(lq, gt, Draws::replay(noise, u));
    std::map<std::string, at::Tensor> grads;
    for (auto& s : trainer.model().state())
      if (s.is_parameter) grads[s.name] = s.grad.clone();
    return std::make_pair(r.losses.at("loss"), grads);
  };
  auto [batch_loss, batch_grads] = run(json::object());  // mse's default: a 0-d mean
  auto [sample_loss, sample_grads] = run({{"reduction", "per_sample"}});
  EXPECT_NEAR(batch_loss, sample_loss, 1e-6 * std::abs(sample_loss));
  ASSERT_EQ(batch_grads.size(), sample_grads.size());
  for (auto& [name, g] : sample_grads) EXPECT_TRUE(sinsr_test::all_close(batch_grads.at(name), g, 1e-7, 1e-4)) << name;
}

// Teacher training asks the sampler for its example (ABI 1.2): for ResShift that is the
// official step -- x_t = q_sample(x0, y, t, noise), the scaled input, and x0 as the target.
TEST(TeacherStep, TheSamplerMakesTheOfficialExample) {
  auto c = sinsr_test::load("distill_case.pth");
  at::Tensor lq = sinsr_test::tensor(c, "lq"), gt = sinsr_test::tensor(c, "gt"), noise = sinsr_test::tensor(c, "noise");
  at::Tensor t = at::arange(lq.size(0), at::kLong).mul_(4).add_(3).remainder_(15);
  auto o = tiny_distill();
  o.mode = TrainerOptions::Mode::Teacher;
  o.backbone.weights = sinsr_test::parity_file("unet_tiny.pth");
  Trainer trainer(runtime(), o);
  auto r = trainer.forward_backward(lq, gt, Draws::replay(noise, (t.to(at::kDouble) + 0.5) / 15.0));

  at::NoGradGuard no_grad;
  auto& codec = *trainer.codec();
  at::Tensor z_y = codec.encode(sinsr::host::upsample_bicubic(lq, 4)), z_gt = codec.encode(gt);
  auto& s = trainer.sampler();
  at::Tensor x_in = s.scale_input(s.q_sample(z_gt, z_y, t, noise), t);
  at::Tensor out = trainer.model().forward(x_in, lq, t);
  EXPECT_TRUE(sinsr_test::all_close(r.pred, out, 1e-5));
  EXPECT_NEAR(r.losses.at("x0"), (out - z_gt).pow(2).mean().item<double>(), 1e-6);

  // Replaying the same draws replays the step; other draws give another one.
  auto again = trainer.forward_backward(lq, gt, Draws::replay(noise, (t.to(at::kDouble) + 0.5) / 15.0));
  EXPECT_DOUBLE_EQ(again.losses.at("x0"), r.losses.at("x0"));
  auto other = trainer.forward_backward(lq, gt, Draws::from(at::make_generator<at::CPUGeneratorImpl>(7)));
  EXPECT_NE(other.losses.at("x0"), r.losses.at("x0"));
}

// Regression trains the network's output for the up-sampled LR straight against the HR image.
TEST(RegressStep, TheOutputIsComparedWithTheTarget) {
  auto c = sinsr_test::load("distill_case.pth");
  at::Tensor lq = sinsr_test::tensor(c, "lq"), gt = sinsr_test::tensor(c, "gt");
  auto o = tiny_distill();
  o.mode = TrainerOptions::Mode::Regress;
  o.backbone.weights = sinsr_test::parity_file("unet_tiny.pth");
  Trainer trainer(runtime(), o);
  auto r = trainer.forward_backward(lq, gt, Draws::from(at::make_generator<at::CPUGeneratorImpl>(1)));
  at::NoGradGuard no_grad;
  auto& codec = *trainer.codec();
  at::Tensor z_y = codec.encode(sinsr::host::upsample_bicubic(lq, 4)), z_gt = codec.encode(gt);
  at::Tensor out = trainer.model().forward(z_y, lq, at::zeros({lq.size(0)}, at::kLong));
  EXPECT_NEAR(r.losses.at("regress"), (out - z_gt).pow(2).mean().item<double>(), 1e-6);
}

TEST(Optimizer, WarmupFollowsTheOfficialSchedule) {
  auto o = tiny_distill();
  o.warmup = 5000;
  Trainer trainer(runtime(), o);
  EXPECT_DOUBLE_EQ(trainer.lr_at(1), 5e-5);  // before the first adjust_lr
  EXPECT_DOUBLE_EQ(trainer.lr_at(2), 5e-5 / 5000);
  EXPECT_DOUBLE_EQ(trainer.lr_at(2501), 2.5e-5);
  EXPECT_DOUBLE_EQ(trainer.lr_at(9000), 5e-5);
}

// ResShift's `cosin`: after the warm-up, half a cosine from lr down to lr_min at the last step.
TEST(Optimizer, CosineFallsFromTheWarmupToLrMinAtTheLastStep) {
  auto o = tiny_distill();
  o.warmup = 100;
  o.lr = 1e-4;
  o.lr_min = 1e-5;
  o.lr_schedule = "cosine";
  o.lr_steps = 1101;
  Trainer trainer(runtime(), o);
  EXPECT_DOUBLE_EQ(trainer.lr_at(51), 5e-5);  // the warm-up is unchanged
  EXPECT_DOUBLE_EQ(trainer.lr_at(101), 1e-4);
  EXPECT_NEAR(trainer.lr_at(601), 5.5e-5, 1e-12);  // half way: the mean of the two
  EXPECT_NEAR(trainer.lr_at(1101), 1e-5, 1e-12);
  EXPECT_NEAR(trainer.lr_at(5000), 1e-5, 1e-12);  // past the last step it stays there
  for (int64_t k = 102; k <= 1101; ++k) ASSERT_LT(trainer.lr_at(k), trainer.lr_at(k - 1)) << k;
  o.lr_schedule = "linear";
  EXPECT_THROW(Trainer(runtime(), o), sinsr::sdk::Error);
}

// ABI 1.4: a network declares what it predicts. SinSR distillation needs x0: a noise-predicting
// pair (srdiff + ddpm, which agree with each other) is refused in one line naming both parts,
// before any step; a pair that disagrees is refused by the pipeline and the trainer alike.
TEST(Predictions, DistillingANoiseNetworkIsRefusedNamingBothParts) {
  TrainerOptions o;
  o.mode = TrainerOptions::Mode::Distill;
  o.backbone = {"srdiff", json::object(), "none"};
  o.teacher = {"", json::object(), "none"};
  o.codec = {"", json::object(), ""};
  o.sampler = {"ddpm", {{"variant", "srdiff"}}, ""};
  try {
    Trainer trainer(runtime(), o);
    ADD_FAILURE() << "distilled a noise-predicting network";
  } catch (const sinsr::sdk::Error& e) {
    const std::string m = e.what();
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    EXPECT_NE(m.find("backbone 'srdiff' predicts noise"), std::string::npos) << m;
    EXPECT_NE(m.find("sampler 'ddpm'"), std::string::npos) << m;
  }
  o.sampler = {"deterministic", json::object(), ""};
  o.mode = TrainerOptions::Mode::Teacher;
  try {
    Trainer trainer(runtime(), o);
    ADD_FAILURE() << "paired a noise network with an x0 sampler";
  } catch (const sinsr::sdk::Error& e) {
    EXPECT_NE(std::string(e.what()).find("sampler 'deterministic' needs the network to predict x0, but backbone "
                                         "'srdiff' predicts noise"),
              std::string::npos)
        << e.what();
  }
}

// A component built before ABI 1.4 (its table ends before `prediction`) still loads and runs:
// its prediction is undeclared and never checked.
TEST(Predictions, A13TableIsUndeclaredAndStillRuns) {
  auto real = runtime().find(SINSR_KIND_BACKBONE, "unet_swin");
  static sinsr_backbone_vtable old_table;
  old_table = *static_cast<const sinsr_backbone_vtable*>(real->desc->vtable);
  old_table.struct_size = offsetof(sinsr_backbone_vtable, prediction);
  old_table.prediction = nullptr;
  static sinsr_component old_desc;
  old_desc = *real->desc;
  old_desc.vtable = &old_table;
  auto old = std::make_shared<sinsr::host::Component>(*real);
  old->desc = &old_desc;
  const json tiny = {{"config_file", sinsr_test::parity_file("tiny-unet.yaml")}};
  sinsr::host::BackboneHandle now(real, tiny), before(old, tiny);
  EXPECT_EQ(now.prediction(), SINSR_PREDICTION_X0);
  EXPECT_EQ(before.prediction(), SINSR_PREDICTION_UNDECLARED);
  sinsr::host::SamplerHandle sampler(runtime().find(SINSR_KIND_SAMPLER, "deterministic"), json::object());
  EXPECT_NO_THROW(sinsr::host::check_pairing(sampler, before));
  EXPECT_NO_THROW(sinsr::host::check_pairing(sampler, now));
}

}  // namespace
