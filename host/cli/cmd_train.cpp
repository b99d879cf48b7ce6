// sinsr-host train (ResShift teacher) and sinsr-host distill (SinSR student): one option set,
// every part a plugin chosen by name.
#include "cli_common.hpp"
#include "commands.hpp"
#include "degradation.hpp"
#include "trainer.hpp"

#include <sinsr/config.hpp>

#include <boost/program_options.hpp>

#include <filesystem>
#include <iostream>

namespace sinsr {
namespace cli {

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace {

struct LossFlags {
  std::string name = "mse", config;
  double weight = 1.0;
  void add(po::options_description& opts, const std::string& term, const std::string& what) {
    opts.add_options()(("loss-" + term).c_str(), po::value(&name)->default_value("mse"),
                       ("loss plugin for " + what + " (mse, l1, charbonnier, ...)").c_str())(
        ("loss-" + term + "-config").c_str(), po::value(&config), "its JSON config (e.g. {\"eps\": 1e-3})")(
        ("weight-" + term).c_str(), po::value(&weight)->default_value(1.0), "its weight");
  }
  train::LossTerm term() const { return {name, config_argument(config), weight}; }
};

int run(const Args& args, bool distill) {
  const char* cmd = distill ? "distill" : "train";
  std::string config, backbone, bcfg, bw, teacher, tcfg, tw, codec, ccfg, cw, sampler, scfg, device, resume, out;
  std::string val_lr, val_hr, degradation, dcfg;
  std::vector<std::string> plugins, data;
  int gt_size = 256, max_side = 0, batch = 4, workers = 2, scale = 4, threads = 0, val_limit = 8;
  int64_t max_steps = 1000, save_every = 500, val_every = 0, log_every = 10, warmup = 5000, crash_at = 0;
  double lr = 5e-5, wd = 0, ema = 0.999;
  uint64_t seed = 123456;
  bool no_inverse = false, no_gt = false;
  LossFlags l_x0, l_distill, l_inverse, l_gt;

  po::options_description opts(std::string("sinsr-host ") + cmd + " --data DIR --out DIR [options]\n" +
                               (distill ? "Distills a one-step SinSR student from a teacher (the official recipe by default).\n"
                                        : "Trains a ResShift teacher (x0-prediction MSE at uniformly drawn timesteps).\n") +
                               "\nOptions");
  // clang-format off
  opts.add_options()
    ("help,h", "this help")
    ("data", po::value(&data)->required(), "folder of HR training images (repeatable, searched recursively)")
    ("out,o", po::value(&out)->required(), "run folder: checkpoints, ema.pth, train_log.jsonl")
    ("plugin", po::value(&plugins), "load a plugin library (repeatable)")
    ("config,c", po::value(&config), "official full YAML for every part (a bare name: an installed config)")
    ("backbone", po::value(&backbone)->default_value("unet_swin"), "the trained network")
    ("backbone-config", po::value(&bcfg), "its config: file or inline JSON")
    ("backbone-weights", po::value(&bw), distill ? "student initial weights (default: the teacher's)" : "initial weights (default: random)")
    ("codec", po::value(&codec)->default_value("vq_f4"), "latent codec, or 'none' for pixel space")
    ("codec-config", po::value(&ccfg), "codec config")
    ("codec-weights", po::value(&cw), "codec weights")
    ("sampler", po::value(&sampler)->default_value("deterministic"), "schedule / teacher trajectory")
    ("sampler-config", po::value(&scfg), "sampler config")
    ("scale", po::value(&scale)->default_value(4), "SR factor")
    ("gt-size", po::value(&gt_size)->default_value(256), "HR crop size")
    ("max-side", po::value(&max_side)->default_value(0), "shrink training photos whose longer side exceeds this "
                                                         "(MATLAB bicubic, at load; 0: as they are)")
    ("batch", po::value(&batch)->default_value(4), "batch size per process")
    ("workers", po::value(&workers)->default_value(2), "data loading threads")
    ("degradation", po::value(&degradation)->default_value("bicubic"), "bicubic (MATLAB) or realesrgan")
    ("degradation-config", po::value(&dcfg), "RealESRGAN parameters: file or inline JSON "
                                             "(default: --config's blocks, else the official values)")
    ("lr", po::value(&lr)->default_value(lr, readable(lr)), "AdamW learning rate")
    ("weight-decay", po::value(&wd)->default_value(0.0), "AdamW weight decay")
    ("warmup", po::value(&warmup)->default_value(5000), "linear warm-up steps (applied after each step, as officially)")
    ("ema", po::value(&ema)->default_value(0.999), "EMA rate (0: off)")
    ("max-steps", po::value(&max_steps)->default_value(1000), "stop after this step")
    ("save-every", po::value(&save_every)->default_value(500), "checkpoint period")
    ("val-every", po::value(&val_every)->default_value(0), "validation period (0: never)")
    ("val-lr", po::value(&val_lr), "validation LR folder")
    ("val-hr", po::value(&val_hr), "validation HR folder (same file names)")
    ("val-limit", po::value(&val_limit)->default_value(8), "validation images")
    ("log-every", po::value(&log_every)->default_value(10), "progress line period")
    ("resume", po::value(&resume)->implicit_value("auto"), "continue from a checkpoint (no value: the latest in --out)")
    ("seed", po::value(&seed)->default_value(123456), "seed of data and noise")
    ("device", po::value(&device)->default_value("cpu"), "cpu, cuda, cuda:N")
    ("threads", po::value(&threads)->default_value(0), "CPU threads (0: all)");
  if (distill) {
    opts.add_options()
      ("teacher", po::value(&teacher), "teacher backbone (default: the --backbone component)")
      ("teacher-config", po::value(&tcfg), "teacher config (default: the backbone's)")
      ("teacher-weights", po::value(&tw)->required(), "teacher checkpoint")
      ("no-inverse", po::bool_switch(&no_inverse), "drop the inverse (x0 -> x_T) objective")
      ("no-gt", po::bool_switch(&no_gt), "drop the GT-consistency objective");
    l_distill.add(opts, "distill", "the distillation objective");
    l_inverse.add(opts, "inverse", "the inverse objective");
    l_gt.add(opts, "gt", "the GT-consistency objective");
  } else {
    l_x0.add(opts, "x0", "the x0 prediction");
  }
  // clang-format on
  // Test hooks work but stay out of --help.
  po::options_description hidden;
  hidden.add_options()("crash-at", po::value(&crash_at)->default_value(0), "testing: abort before this step");
  po::variables_map vm;
  if (int rc = parse_options(args, opts, vm, cmd, &hidden); rc >= 0) return rc;
  config = resolve_config(config);

  // Numbers the loop cannot use are refused here, by flag name, before anything is loaded.
  const std::pair<bool, const char*> bad[] = {
      {batch < 1, "--batch must be at least 1"},
      {gt_size < 1 || scale < 1, "--gt-size and --scale must be positive"},
      {max_side < 0, "--max-side must be 0 (off) or a size"},
      {workers < 0, "--workers must be 0 or more"},
      {!(lr >= 0), "--lr must be 0 or more"},
      {!(wd >= 0), "--weight-decay must be 0 or more"},
      {warmup < 0, "--warmup must be 0 or more"},
      {!(ema >= 0 && ema < 1), "--ema must be in [0, 1)"},
      {max_steps < 1, "--max-steps must be at least 1"},
      {save_every < 1 || log_every < 1, "--save-every and --log-every must be at least 1"},
      {val_every < 0, "--val-every must be 0 (never) or a period"},
  };
  for (const auto& [is_bad, message] : bad)
    if (is_bad) {
      std::cerr << "sinsr-host " << cmd << ": " << message << "\n";
      return 2;
    }

  try {
    host::Runtime runtime(threads);
    load_plugins(runtime, plugins);
    host::json whole = config.empty() ? host::json::object() : host::json{{"config_file", config}};
    train::TrainerOptions o;
    o.mode = distill ? train::TrainerOptions::Mode::Distill : train::TrainerOptions::Mode::Teacher;
    o.backbone = {backbone, bcfg.empty() ? whole : config_argument(bcfg), bw};
    o.teacher = {teacher, config_argument(tcfg), tw};
    if (codec != "none") o.codec = {codec, ccfg.empty() ? whole : config_argument(ccfg), cw};
    o.sampler = {sampler, scfg.empty() ? whole : config_argument(scfg), ""};
    o.scale = scale;
    o.x0 = l_x0.term();
    o.distill = l_distill.term();
    o.inverse = l_inverse.term();
    o.gt = l_gt.term();
    o.learn_xT = !no_inverse;
    o.use_gt = !no_gt;
    o.lr = lr;
    o.weight_decay = wd;
    o.warmup = warmup;
    o.ema_rate = ema;
    o.seed = seed;
    o.device = device;

    train::LoopOptions loop;
    loop.data.folders = data;
    loop.data.gt_size = gt_size;
    loop.data.max_side = max_side;
    loop.data.batch_size = batch;
    loop.data.workers = workers;
    loop.data.degradation = degradation;
    if (degradation == "realesrgan" && (!dcfg.empty() || !config.empty()))
      loop.data.degradation_options = degrade::options_from_json(dcfg.empty() ? config::load_file(config)
                                                                      : config_contents(dcfg, "--degradation-config"));
    loop.max_steps = max_steps;
    loop.save_every = save_every;
    loop.val_every = val_every;
    loop.log_every = log_every;
    loop.out_dir = out;
    loop.resume = resume;
    loop.val_lr = val_lr;
    loop.val_hr = val_hr;
    loop.val_limit = val_limit;
    loop.crash_at = crash_at;
    loop.config = {{"command", cmd}, {"args", args}};
    return train::run_training(runtime, o, loop);
  } catch (const std::exception& e) {
    std::cerr << "sinsr-host " << cmd << ": " << e.what() << "\n";
    return 1;
  }
}

}  // namespace

int cmd_train(const Args& args) { return run(args, false); }
int cmd_distill(const Args& args) { return run(args, true); }

}  // namespace cli
}  // namespace sinsr
