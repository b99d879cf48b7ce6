// sinsr-host bench: forward time of the full-size UNet (64x64 latent) and VQ encode/decode
// (256x256 image) with random weights, at one thread and at the requested thread count, side
// by side in one run, so later numbers (the official Python code, other machines) compare; with a
// GPU present, a CUDA column joins them.
// --only upscale times the whole one-step upscale (LR -> [-1,1] -> bicubic -> encode -> one UNet
// call -> decode -> image) per image after a warm-up, and the start-up before the first image;
// --only distill times a distillation iteration; --only memory measures peak memory of tiled
// upscales as the image grows at a fixed tile size.
#include "cli_common.hpp"
#include "commands.hpp"
#include "pipeline/pipeline.hpp"
#include "train/trainer.hpp"

#include <sinsr/config.hpp>

#include <ATen/Parallel.h>
#include <boost/program_options.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>

#include <sys/resource.h>

namespace po = boost::program_options;

namespace sinsr {
namespace cli {
namespace {

// Median of `repeats` timed calls after one warm-up, in milliseconds.
template <class F>
double time_ms(int repeats, F&& f) {
  f();
  std::vector<double> ms;
  for (int i = 0; i < repeats; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

struct Row {
  std::string what;
  double ms_one, ms_many;
  double ms_cuda = -1;  // fp32 on the first CUDA device; -1: not measured
};

// CUDA kernels run asynchronously: reading one value back waits for the work queued before it.
// (A plain device synchronise is not in the CPU LibTorch headers this must also build against.)
void wait_for(const at::Tensor& t) { t.sum().item<double>(); }

// Peak resident memory in MiB. Linux resets the high-water mark on writing "5" to clear_refs,
// so each measurement sees only its own peak; elsewhere the peak is the process's so far.
bool reset_peak_rss() {
  std::ofstream f("/proc/self/clear_refs");
  return bool(f << "5" << std::flush);
}

double peak_rss_mib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;  // kB
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / 1024.0;
}

// The networks timed (defaults.json's "bench" section).
struct Parts {
  std::string backbone, codec, sampler;
};

// Peak memory of whole-image upscales at a fixed tile size, per image size: apart from the
// buffers that scale with the image (input, padded input, the output accumulators), it must
// stay flat, because only one batch of tiles is in flight.
int bench_memory(host::Runtime& runtime, const Parts& parts, const std::string& config_path,
                 const std::string& codec_config, const std::string& sizes_arg, int chop) {
  host::PipelineOptions po;
  po.backbone = {parts.backbone, {{"config_file", config_path}}, "none"};
  po.codec = {parts.codec, {{"config_file", codec_config.empty() ? config_path : codec_config}}, "none"};
  po.sampler = {parts.sampler, host::json::object(), ""};
  po.steps = 1;
  po.chop_size = chop;
  po.seed = 0;
  std::vector<int64_t> sizes;
  std::stringstream ss(sizes_arg);
  for (std::string item; std::getline(ss, item, ',');) sizes.push_back(std::stoll(item));
  if (sizes.empty() || *std::min_element(sizes.begin(), sizes.end()) < 1) {
    std::cerr << "sinsr-host bench: --memory-sizes takes positive LR sizes, e.g. 64,128,256\n";
    return 2;
  }
  std::unique_ptr<host::Pipeline> pipeline;
  try {
    pipeline = std::make_unique<host::Pipeline>(runtime, po);
  } catch (const std::exception& e) {
    std::cerr << "sinsr-host bench: " << error_text(e) << "\n";
    return 1;
  }
  const int64_t s = po.scale;
  // One warm-up tile so that one-time allocations (weights, thread pools) are not charged to
  // the first size.
  pipeline->upscale_any(at::rand({3, chop, chop}));
  const bool exact = reset_peak_rss();
  std::printf("peak resident memory, LR tile %d (chop stride %d), %s\n", chop, pipeline->options().chop_stride,
              exact ? "high-water mark reset before each size" : "process peak so far (no per-run reset here)");
  std::printf("%-12s %8s %12s %14s %16s %8s\n", "LR size", "tiles", "peak MiB", "image bufs MiB", "peak - bufs MiB",
              "ratio");
  double first = 0;
  for (int64_t n : sizes) {
    at::Tensor lr = at::rand({3, n, n});
    int tiles = 0;
    reset_peak_rss();
    at::Tensor sr = pipeline->upscale_any(lr, [&](int, int total) {
      tiles = total;
      return true;
    });
    double peak = peak_rss_mib();
    // float32: the input and its padded [-1,1] copy; the accumulator and weight sum (4 planes,
    // normalised in place into the output).
    double bufs = double(n * n * 3 * 2 + n * s * n * s * 4) * 4 / (1024.0 * 1024.0);
    double rest = peak - bufs;
    if (first == 0) first = rest;
    std::printf("%-12s %8d %12.1f %14.1f %16.1f %7.2fx\n", (std::to_string(n) + "x" + std::to_string(n)).c_str(), tiles,
                peak, bufs, rest, rest / first);
  }
  return 0;
}

}  // namespace

int cmd_bench(const Args& args) {
  po::options_description opts = options_table("sinsr-host bench [options]");
  std::vector<std::string> plugins;
  std::string config_path, what, codec_config;
  std::string memory_sizes = "64,128,256";
  std::string weights = "none", codec_weights = "none";
  int threads = 0, repeats = 3, latent = 64, image = 256, distill_size = 256, distill_batch = 1, chop = 64, lr = 64;
  bool no_cuda = false;
  // clang-format off
  opts.add_options()
    ("help,h", "show this help")
    ("plugin", po::value(&plugins)->composing(), "load a plugin library (repeatable)")
    ("config", po::value(&config_path), ("model config: a file, or the bare name of an installed config "
                                         "(default: " + installed_default("config", "bench") + ")").c_str())
    ("threads,j", po::value(&threads), "intra-op threads for the second column (default: every core this process may use)")
    ("repeats", po::value(&repeats)->default_value(repeats), "timed calls per measurement (median reported)")
    ("latent", po::value(&latent)->default_value(latent), "UNet latent size")
    ("image", po::value(&image)->default_value(image), "VQ image size")
    ("only", po::value(&what), "unet, vq, upscale, distill or memory (default: unet and vq)")
    ("lr", po::value(&lr)->default_value(lr), "upscale: LR image size (one tile: chop size 512)")
    ("weights", po::value(&weights)->default_value(weights), "upscale: UNet checkpoint for the start-up time "
                                                             "(none: random weights)")
    ("codec-weights", po::value(&codec_weights)->default_value(codec_weights), "upscale: VQ checkpoint (none: random)")
    ("distill-size", po::value(&distill_size)->default_value(distill_size), "distill: HR crop size (latent = size / 4 "
                                                                           "with the codec)")
    ("distill-batch", po::value(&distill_batch)->default_value(distill_batch), "distill: batch size")
    ("codec-config", po::value(&codec_config), "distill, memory: codec config (default: --config)")
    ("memory-sizes", po::value(&memory_sizes)->default_value(memory_sizes), "memory: LR image sizes, comma-separated")
    ("chop-size", po::value(&chop)->default_value(chop), "memory: LR tile size")
    ("no-cuda", po::bool_switch(&no_cuda), "leave out the CUDA column even when a GPU is present");
  // clang-format on
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(opts).run(), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    return usage_error("bench", error_text(e));
  }
  if (vm.count("help")) {
    std::cout << opts;
    return 0;
  }
  if (threads <= 0) threads = host::default_threads();

  host::Runtime runtime(threads);
  load_plugins(runtime, plugins);
  // The networks timed: the installed defaults.json's "bench" section.
  Parts parts;
  try {
    parts = {runtime.default_name("bench", "backbone", SINSR_KIND_BACKBONE),
             runtime.default_name("bench", "codec", SINSR_KIND_CODEC),
             runtime.default_name("bench", "sampler", SINSR_KIND_SAMPLER)};
    if (const auto configs = runtime.default_names("bench", "config"); config_path.empty() && !configs.empty())
      config_path = configs.front();
    sdk::require(!parts.backbone.empty() && !parts.codec.empty() && !parts.sampler.empty() && !config_path.empty(),
                 SINSR_ERR_NOT_FOUND, "no defaults.json names the networks to time (its \"bench\" section)");
    config_path = resolve_config(config_path);
  } catch (const std::exception& e) {
    std::cerr << "sinsr-host bench: " << error_text(e) << "\n";
    return 1;
  }
  const bool cuda = !no_cuda && at::hasCUDA();
  const c10::Device gpu(c10::kCUDA, 0);
  at::manual_seed(0);
  std::vector<Row> rows;

  if (!what.empty() && what != "unet" && what != "vq" && what != "upscale" && what != "distill" && what != "memory") {
    return usage_error("bench", "--only takes unet, vq, upscale, distill or memory");
  }
  if (what == "memory") {
    host::set_threads(threads);
    return bench_memory(runtime, parts, config_path, codec_config, memory_sizes, chop);
  }
  if (what.empty() || what == "unet") {
    host::BackboneHandle unet(runtime.find(SINSR_KIND_BACKBONE, parts.backbone), {{"config_file", config_path}});
    at::Tensor x = at::randn({1, 3, latent, latent}), lq = at::rand({1, 3, latent, latent}) * 2 - 1;
    at::Tensor t = at::full({1}, 14, at::kLong);
    Row r{parts.backbone + " forward, latent " + std::to_string(latent) + "x" + std::to_string(latent), 0, 0};
    host::set_threads(1);
    r.ms_one = time_ms(repeats, [&] { unet.forward(x, lq, t); });
    host::set_threads(threads);
    r.ms_many = time_ms(repeats, [&] { unet.forward(x, lq, t); });
    if (cuda) {
      unet.to(gpu, at::kFloat);
      at::Tensor xg = x.to(gpu), lqg = lq.to(gpu), tg = t.to(gpu);
      r.ms_cuda = time_ms(repeats, [&] { wait_for(unet.forward(xg, lqg, tg)); });
    }
    rows.push_back(r);
  }
  if (what.empty() || what == "vq") {
    host::CodecHandle vq(runtime.find(SINSR_KIND_CODEC, parts.codec), {{"config_file", config_path}});
    at::Tensor img = at::rand({1, 3, image, image}) * 2 - 1;
    at::Tensor z = vq.encode(img);
    Row enc{parts.codec + " encode, image " + std::to_string(image) + "x" + std::to_string(image), 0, 0};
    Row dec{parts.codec + " decode, image " + std::to_string(image) + "x" + std::to_string(image), 0, 0};
    host::set_threads(1);
    enc.ms_one = time_ms(repeats, [&] { vq.encode(img); });
    dec.ms_one = time_ms(repeats, [&] { vq.decode(z); });
    host::set_threads(threads);
    enc.ms_many = time_ms(repeats, [&] { vq.encode(img); });
    dec.ms_many = time_ms(repeats, [&] { vq.decode(z); });
    if (cuda) {
      vq.to(gpu, at::kFloat);
      at::Tensor ig = img.to(gpu), zg = z.to(gpu);
      enc.ms_cuda = time_ms(repeats, [&] { wait_for(vq.encode(ig)); });
      dec.ms_cuda = time_ms(repeats, [&] { wait_for(vq.decode(zg)); });
    }
    rows.push_back(enc);
    rows.push_back(dec);
  }
  if (what == "upscale") {
    // The official one-step inference at the config's sizes: deterministic sampler, one step.
    host::PipelineOptions po;
    po.backbone = {parts.backbone, {{"config_file", config_path}}, weights};
    po.codec = {parts.codec, {{"config_file", codec_config.empty() ? config_path : codec_config}}, codec_weights};
    po.sampler = {parts.sampler, host::json::object(), ""};
    po.steps = 1;
    po.seed = 0;
    host::set_threads(threads);
    std::unique_ptr<host::Pipeline> pipeline;
    double startup_ms = 0;
    try {
      // Start-up: what a one-image run pays before its image (networks built, weights read).
      startup_ms = time_ms(repeats, [&] {
        pipeline.reset();
        pipeline = std::make_unique<host::Pipeline>(runtime, po);
      });
    } catch (const std::exception& e) {
      std::cerr << "sinsr-host bench: " << error_text(e) << "\n";
      return 1;
    }
    at::Tensor img = at::rand({1, 3, lr, lr});
    const std::string size =
        std::to_string(lr) + "x" + std::to_string(lr) + " -> " + std::to_string(lr * 4) + "x" + std::to_string(lr * 4);
    Row r{"upscale " + size + ", one step", 0, 0};
    host::set_threads(1);
    r.ms_one = time_ms(repeats, [&] { pipeline->upscale(img); });
    host::set_threads(threads);
    r.ms_many = time_ms(repeats, [&] { pipeline->upscale(img); });
    if (cuda) {
      host::PipelineOptions g = po;
      g.device = "cuda";
      host::Pipeline on_gpu(runtime, g);
      r.ms_cuda = time_ms(repeats, [&] { wait_for(on_gpu.upscale(img)); });
    }
    rows.push_back(r);
    std::printf("start-up (pipeline built, weights %s): %.1f ms at %d threads\n",
                weights == "none" ? "random" : weights.c_str(), startup_ms, threads);
  }
  if (what == "distill") {
    // One SinSR distillation iteration (15 teacher calls, 4 student calls, 3 backward passes)
    // with random weights: teacher = student = the config's UNet, codec = its VQ.
    train::TrainerOptions o;
    o.backbone = {parts.backbone, {{"config_file", config_path}}, "none"};
    o.teacher = {"", host::json::object(), "none"};
    o.codec = {parts.codec, {{"config_file", codec_config.empty() ? config_path : codec_config}}, "none"};
    // The schedule from the config's diffusion section, else the SinSR defaults.
    bool has_diffusion = config::load_file(config_path).contains("diffusion");
    o.sampler = {parts.sampler, has_diffusion ? host::json{{"config_file", config_path}} : host::json::object(), ""};
    o.warmup = 0;
    std::unique_ptr<train::Trainer> trainer;
    try {
      trainer = std::make_unique<train::Trainer>(runtime, o);
    } catch (const std::exception& e) {
      std::cerr << "sinsr-host bench: " << error_text(e) << "\n";
      return 1;
    }
    at::Tensor gt = at::rand({distill_batch, 3, distill_size, distill_size}) * 2 - 1;
    at::Tensor lq = at::rand({distill_batch, 3, distill_size / 4, distill_size / 4}) * 2 - 1;
    at::Tensor noise = at::randn(trainer->latent_shape(lq));
    Row r{"distill iteration, HR " + std::to_string(distill_size) + ", batch " + std::to_string(distill_batch), 0, 0};
    host::set_threads(1);
    r.ms_one = time_ms(repeats, [&] { trainer->step(lq, gt, noise); });
    host::set_threads(threads);
    r.ms_many = time_ms(repeats, [&] { trainer->step(lq, gt, noise); });
    trainer.reset();
    if (cuda) {
      o.device = "cuda";
      train::Trainer on_gpu(runtime, o);
      // step() reads its loss values back, which waits for the GPU.
      r.ms_cuda = time_ms(repeats, [&] { on_gpu.step(lq, gt, noise); });
    }
    rows.push_back(r);
    std::printf("distillation: %.3f it/s at 1 thread, %.3f it/s at %d threads", 1000.0 / r.ms_one, 1000.0 / r.ms_many,
                threads);
    if (cuda) std::printf(", %.3f it/s on CUDA", 1000.0 / r.ms_cuda);
    std::printf("\n");
  }
  std::printf("device: cpu%s   threads: 1 vs %d   repeats: %d (median)   config: %s\n", cuda ? " + cuda:0 (fp32)" : "",
              threads, repeats, config_path.c_str());
  if (!cuda) std::printf("cuda: %s\n", no_cuda ? "left out (--no-cuda)" : "no CUDA device here, column skipped");
  std::printf("blas: %s\n", host::blas_description().c_str());
  std::printf("%-40s %12s %12s %8s", "what", "1 thread ms", "N threads ms", "speedup");
  if (cuda) std::printf(" %12s %10s", "cuda ms", "vs N thr");
  std::printf("\n");
  for (const auto& r : rows) {
    std::printf("%-40s %12.1f %12.1f %7.2fx", r.what.c_str(), r.ms_one, r.ms_many, r.ms_one / r.ms_many);
    if (cuda) std::printf(" %12.1f %9.2fx", r.ms_cuda, r.ms_many / r.ms_cuda);
    std::printf("\n");
  }
  return 0;
}

}  // namespace cli
}  // namespace sinsr
