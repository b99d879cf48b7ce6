// sinsr-host train (a diffusion network with its sampler's objective, or plain regression) and
// sinsr-host distill (SinSR student): one option set, every part a plugin chosen by name.
#include "cli_common.hpp"
#include "commands.hpp"
#include "imaging/degradation.hpp"
#include "train/trainer.hpp"

#include <sinsr/config.hpp>

#include <boost/program_options.hpp>

#include <filesystem>
#include <iostream>
#include <sstream>

namespace sinsr {
namespace cli {

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace {

struct LossFlags {
  explicit LossFlags(const train::LossTerm& defaults = {}) : name(defaults.name), weight(defaults.weight) {}
  std::string name, config;
  double weight;
  void add(po::options_description& opts, const std::string& term, const std::string& what) {
    opts.add_options()(("loss-" + term).c_str(), po::value(&name)->default_value(name),
                       ("loss plugin for " + what + " (mse, l1, charbonnier, ...)").c_str())(
        ("loss-" + term + "-config").c_str(), po::value(&config), "its JSON config (e.g. {\"eps\": 1e-3})")(
        ("weight-" + term).c_str(), po::value(&weight)->default_value(weight, readable(weight)), "its weight");
  }
  train::LossTerm term() const { return {name, config_argument(config), weight}; }
};

int run(const Args& args, bool distill) {
  const char* cmd = distill ? "distill" : "train";
  // Every flag is bound to the option struct it fills, so each default exists once: there.
  train::TrainerOptions o;
  train::LoopOptions loop;
  auto& data = loop.data;
  o.mode = distill ? train::TrainerOptions::Mode::Distill : train::TrainerOptions::Mode::Teacher;
  std::string config, backbone, bcfg, teacher, tcfg, codec, ccfg, scfg, dcfg, objective = "diffusion", max_side = "0";
  std::vector<std::string> plugins;
  int threads = 0;
  double max_minutes = 0;
  bool no_inverse = !o.learn_xT, no_gt = !o.use_gt, overwrite = false;
  LossFlags l_x0, l_distill, l_inverse, l_gt, l_direct(o.direct);

  po::options_description opts = options_table(
      std::string("sinsr-host ") + cmd + " --data DIR --out DIR [options]\n" +
      (distill ? "Distills a one-step SinSR student from a teacher (the official recipe by default).\n"
               : "Trains a diffusion network with the sampler's objective (ResShift: x0 MSE at uniformly\n"
                 "drawn timesteps; eps-prediction samplers: the noise), or plain regression.\n") +
      "\nOptions");
  // clang-format off
  opts.add_options()
    ("help,h", "this help")
    ("data", po::value(&data.folders)->required(), "folder of HR training images (repeatable, searched recursively)")
    ("out,o", po::value(&loop.out_dir)->required(), "run folder: checkpoints, ema.pth, train_log.jsonl")
    ("config,c", po::value(&config), "official full YAML for every part (a bare name: an installed config)")
    ("backbone", po::value(&backbone), ("the trained network (default: " + installed_default("backbone", "train") + ")").c_str())
    ("backbone-config", po::value(&bcfg), "its config: file or inline JSON")
    ("backbone-weights,w", po::value(&o.backbone.weights), distill ? "student initial weights (default: the teacher's)" : "initial weights (default: random)")
    ("codec", po::value(&codec), ("latent codec, or 'none' for pixel space (default: " + installed_default("codec", "train") + ")").c_str())
    ("codec-weights", po::value(&o.codec.weights), "codec weights")
    ("sampler", po::value(&o.sampler.name), ("the diffusion: training examples, schedule, teacher trajectory (default: " +
                                             installed_default("sampler", "train") + ")").c_str())
    ("gt-size", po::value(&data.gt_size)->default_value(data.gt_size), "HR crop size")
    ("max-side", po::value(&max_side)->default_value(max_side), "shrink training photos whose longer side exceeds this "
                                                             "(MATLAB bicubic, at load; 0: as they are); a list such as "
                                                             "512,1024 keeps one copy per size (multi-scale)")
    ("batch", po::value(&data.batch_size)->default_value(data.batch_size), "batch size per process")
    ("degradation", po::value(&data.degradation)->default_value(data.degradation), "bicubic (MATLAB) or realesrgan")
    ("lr", po::value(&o.lr)->default_value(o.lr, readable(o.lr)), "AdamW learning rate")
    ("warmup", po::value(&o.warmup)->default_value(o.warmup), "linear warm-up steps (applied after each step, as officially)")
    ("ema", po::value(&o.ema_rate)->default_value(o.ema_rate, readable(o.ema_rate)), "EMA rate (0: off)")
    ("max-steps", po::value(&loop.max_steps)->default_value(loop.max_steps), "stop after this step")
    ("max-minutes", po::value(&max_minutes)->default_value(0), "wall-time budget (0: none): the step that uses it up is "
                                                               "saved and the run ends; --resume continues")
    ("save-every", po::value(&loop.save_every)->default_value(loop.save_every), "checkpoint period")
    ("val-every", po::value(&loop.val_every)->default_value(loop.val_every), "validation period (0: never)")
    ("val-lr", po::value(&loop.val_lr), "validation LR folder")
    ("val-hr", po::value(&loop.val_hr), "validation HR folder (same file names)")
    ("resume", po::value(&loop.resume)->implicit_value("auto"), "continue from a checkpoint (no value: the latest in --out)")
    ("overwrite", po::bool_switch(&overwrite), "start over in a used --out (the old run is moved aside, not deleted)")
    ("seed", po::value(&o.seed)->default_value(o.seed), "seed of data and noise")
    ("threads,j", po::value(&threads)->default_value(threads), "CPU threads (0: every core this process may use)");
  po::options_description more;
  more.add_options()
    ("plugin", po::value(&plugins), "load a plugin library (repeatable)")
    ("codec-config", po::value(&ccfg), "codec config")
    ("sampler-config", po::value(&scfg), "sampler config")
    ("scale", po::value(&o.scale)->default_value(o.scale), "SR factor")
    ("workers", po::value(&data.workers)->default_value(data.workers), "data loading threads")
    ("degradation-config", po::value(&dcfg), "RealESRGAN parameters: file or inline JSON "
                                             "(default: --config's blocks, else the official values)")
    ("weight-decay", po::value(&o.weight_decay)->default_value(o.weight_decay, readable(o.weight_decay)), "AdamW weight decay")
    ("lr-schedule", po::value(&o.lr_schedule)->default_value(o.lr_schedule), "after the warm-up: constant (SinSR's) or "
                                                                        "cosine (ResShift's cosin: to --lr-min at --max-steps)")
    ("lr-min", po::value(&o.lr_min)->default_value(o.lr_min, readable(o.lr_min)), "where the cosine schedule ends")
    ("val-limit", po::value(&loop.val_limit)->default_value(loop.val_limit), "validation images")
    ("log-every", po::value(&loop.log_every)->default_value(loop.log_every), "progress line period")
    ("device", po::value(&o.device)->default_value(o.device), "cpu, cuda, cuda:N");
  if (distill) {
    opts.add_options()
      ("teacher-weights", po::value(&o.teacher.weights)->required(), "teacher checkpoint");
    more.add_options()
      ("teacher", po::value(&teacher), "teacher backbone (default: the --backbone component)")
      ("teacher-config", po::value(&tcfg), "teacher config (default: the backbone's)")
      ("no-inverse", po::bool_switch(&no_inverse), "drop the inverse (x0 -> x_T) objective")
      ("no-gt", po::bool_switch(&no_gt), "drop the GT-consistency objective");
    l_distill.add(more, "distill", "the distillation objective");
    l_inverse.add(more, "inverse", "the inverse objective");
    l_gt.add(more, "gt", "the GT-consistency objective");
    l_direct.add(more, "direct", "the student's output vs the GT (weight 0: off)");
  } else {
    opts.add_options()
      ("objective", po::value(&objective)->default_value(objective),
       "diffusion (the sampler's training examples) or regress (output for the up-sampled LR, t = 0)");
    l_x0.add(more, "x0", "the prediction (x0, noise or image, as the objective says)");
  }
  // clang-format on
  // Test hooks work but stay out of --help.
  po::options_description hidden;
  hidden.add_options()("crash-at", po::value(&loop.crash_at)->default_value(loop.crash_at),
                       "testing: abort before this step");
  po::variables_map vm;
  if (int rc = parse_options(args, opts, vm, cmd, &hidden, nullptr, {}, &more); rc >= 0) return rc;
  config = resolve_config(config);

  // "512" or "512,768,1024": one copy of each photo per size.
  data.max_sides.clear();
  bool sides_ok = !max_side.empty() && max_side.back() != ',';
  std::istringstream sides(max_side);
  for (std::string item; sides_ok && std::getline(sides, item, ',');) {
    size_t used = 0;
    try {
      data.max_sides.push_back(std::stoi(item, &used));
    } catch (const std::exception&) {
      used = 0;
    }
    sides_ok = used != 0 && used == item.size() && data.max_sides.back() >= 0;
  }

  // Numbers the loop cannot use are refused here, by flag name, before anything is loaded.
  const std::pair<bool, const char*> bad[] = {
      {data.batch_size < 1, "--batch must be at least 1"},
      {data.gt_size < 1 || o.scale < 1, "--gt-size and --scale must be positive"},
      {!sides_ok, "--max-side must be 0 (off), a size, or sizes separated by commas"},
      {data.workers < 0, "--workers must be 0 or more"},
      {!(o.lr >= 0), "--lr must be 0 or more"},
      {!(o.weight_decay >= 0), "--weight-decay must be 0 or more"},
      {o.lr_schedule != "constant" && o.lr_schedule != "cosine", "--lr-schedule must be constant or cosine"},
      {!(o.lr_min >= 0 && o.lr_min <= o.lr), "--lr-min must be in [0, --lr]"},
      {o.warmup < 0, "--warmup must be 0 or more"},
      {!(o.ema_rate >= 0 && o.ema_rate < 1), "--ema must be in [0, 1)"},
      {loop.max_steps < 1, "--max-steps must be at least 1"},
      {!(max_minutes >= 0 && max_minutes < 1e7), "--max-minutes must be 0 (none) or a positive number of minutes"},
      {loop.save_every < 1 || loop.log_every < 1, "--save-every and --log-every must be at least 1"},
      {loop.val_every < 0, "--val-every must be 0 (never) or a period"},
      {objective != "diffusion" && objective != "regress", "--objective must be diffusion or regress"},
      {overwrite && !loop.resume.empty(), "--overwrite and --resume exclude each other"},
  };
  for (const auto& [is_bad, message] : bad)
    if (is_bad) {
      std::cerr << "sinsr-host " << cmd << ": " << message << "\n";
      return 2;
    }

  try {
    host::Runtime runtime(threads);
    load_plugins(runtime, plugins);
    // What the line does not name: the installed defaults.json's "train" section.
    auto or_default = [&](std::string& name, const char* key, int32_t kind) {
      if (name.empty()) name = runtime.default_name("train", key, kind);
      sdk::require(!name.empty(), SINSR_ERR_NOT_FOUND,
                   std::string("no --") + key + " given and no defaults.json names one (its \"train\" section)");
    };
    or_default(backbone, "backbone", SINSR_KIND_BACKBONE);
    or_default(codec, "codec", SINSR_KIND_CODEC);
    or_default(o.sampler.name, "sampler", SINSR_KIND_SAMPLER);
    host::json whole = config.empty() ? host::json::object() : host::json{{"config_file", config}};
    if (objective == "regress") o.mode = train::TrainerOptions::Mode::Regress;
    o.backbone = {backbone, bcfg.empty() ? whole : config_argument(bcfg), o.backbone.weights};
    o.teacher = {teacher, config_argument(tcfg), o.teacher.weights};
    if (codec != "none")
      o.codec = {codec, ccfg.empty() ? whole : config_argument(ccfg), o.codec.weights};
    else
      o.codec = {};
    o.sampler.config = scfg.empty() ? whole : config_argument(scfg);
    o.x0 = l_x0.term();
    o.distill = l_distill.term();
    o.inverse = l_inverse.term();
    o.gt = l_gt.term();
    o.direct = l_direct.term();
    o.lr_steps = loop.max_steps;
    o.learn_xT = !no_inverse;
    o.use_gt = !no_gt;
    if (data.degradation == "realesrgan" && (!dcfg.empty() || !config.empty()))
      data.degradation_options = degrade::options_from_json(
          dcfg.empty() ? config::load_file(config) : config_contents(dcfg, "--degradation-config"),
          runtime.default_names("degradation", "sections"));
    loop.existing = overwrite ? train::LoopOptions::Existing::MoveAside : train::LoopOptions::Existing::Refuse;
    loop.config = {{"command", cmd}, {"args", args}};
    loop.max_seconds = max_minutes * 60;
    auto report = train::run_training(runtime, o, loop);
    if (report.out_of_time)
      std::cerr << "paused: " << loop.out_dir << " at step " << report.last_step << " of " << loop.max_steps
                << " (--max-minutes " << max_minutes << " used up); the same line with --resume continues\n";
    else
      std::cerr << "done: " << loop.out_dir << " (step " << report.last_step << ")\n";
    return 0;
  } catch (const train::RunInUse& e) {
    std::cerr << "sinsr-host " << cmd << ": " << error_text(e)
              << ": pass --resume to continue it or --overwrite to start over\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "sinsr-host " << cmd << ": " << error_text(e) << "\n";
    return 1;
  }
}

}  // namespace

int cmd_train(const Args& args) { return run(args, false); }
int cmd_distill(const Args& args) { return run(args, true); }

}  // namespace cli
}  // namespace sinsr
