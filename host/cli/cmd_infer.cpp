// sinsr-host infer: a file or a folder of LR images in, SR images out. Needs image I/O; a
// build without it keeps the placeholder in pending.cpp (the C API pipeline still works).
#if SINSR_WITH_IMAGE_IO
#include "cli_common.hpp"
#include "commands.hpp"
#include "io/image_io.hpp"
#include "pipeline.hpp"

#include <sinsr/config.hpp>

#include <boost/program_options.hpp>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <unistd.h>

namespace sinsr {
namespace cli {

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace {

std::string same_file_guard(const fs::path& in, const fs::path& out) {
  std::error_code ec;
  if (fs::exists(out, ec) && fs::equivalent(in, out, ec)) return "refusing to overwrite the input " + in.string();
  return "";
}

class Progress {
 public:
  explicit Progress(bool enabled) : enabled_(enabled && ::isatty(STDERR_FILENO)) {}
  void show(const std::string& line) {
    if (!enabled_) return;
    std::cerr << "\r\033[K" << line << std::flush;
    dirty_ = true;
  }
  void done() {
    if (dirty_) std::cerr << "\r\033[K" << std::flush;
    dirty_ = false;
  }

 private:
  bool enabled_;
  bool dirty_ = false;
};

}  // namespace

int cmd_infer(const Args& args) {
  std::string input, output, backbone, codec, sampler, config, bcfg, ccfg, scfg, bw, cw, device, precision, ext;
  std::vector<std::string> plugins;
  int steps = 0, scale = 4, chop_size = 512, chop_stride = 0, chop_batch = 1, pad_multiple = 64, threads = 0, bits = 0;
  uint64_t seed = 12345;
  bool quiet = false, skip_existing = false;
  po::options_description opts(
      "sinsr-host infer -i INPUT -o OUTPUT [options]\n"
      "Upscales an image or every image of a folder (png, jpg, tif, exr, ...). With a folder the\n"
      "output is a folder; unreadable images are reported, skipped, and make the exit code 1.\n\n"
      "Options");
  // clang-format off
  opts.add_options()
    ("help,h", "this help")
    ("input,i", po::value(&input)->required(), "LR image file or folder")
    ("output,o", po::value(&output)->required(), "SR image file, or folder (created) for a folder input")
    ("plugin", po::value(&plugins), "load a plugin library (repeatable); a library's single backbone becomes the default")
    ("config,c", po::value(&config), "official full YAML (model / autoencoder / diffusion sections) for all components")
    ("backbone", po::value(&backbone), "backbone or model (default: the --plugin's backbone, else the shipped model 'student', else unet_swin)")
    ("backbone-config", po::value(&bcfg), "backbone config: YAML/JSON file or inline JSON")
    ("backbone-weights,w", po::value(&bw), "backbone checkpoint (.pth / .safetensors); default: the plugin's own")
    ("codec", po::value(&codec)->default_value("vq_f4"), "codec component, or 'none' for pixel space (default: the model's, else vq_f4)")
    ("codec-config", po::value(&ccfg), "codec config: file or inline JSON")
    ("codec-weights", po::value(&cw), "codec checkpoint")
    ("sampler", po::value(&sampler)->default_value("single-step"), "stochastic | deterministic | single-step | any loaded sampler (default: the model's, else single-step)")
    ("sampler-config", po::value(&scfg), "sampler config: file or inline JSON")
    ("steps", po::value(&steps)->default_value(0), "respace the sampler to N steps (deterministic + 1 = SinSR one-step); default: the model's, else the sampler's own")
    ("scale", po::value(&scale)->default_value(4), "upscaling factor")
    ("seed", po::value(&seed)->default_value(12345), "noise seed (the same seed gives the same image)")
    ("device", po::value(&device)->default_value("cpu"), "cpu, cuda, cuda:N")
    ("precision", po::value(&precision)->default_value("fp32"), "fp32, fp16 (CUDA), bf16")
    ("chop-size", po::value(&chop_size)->default_value(512), "LR tile size (0: never tile)")
    ("chop-stride", po::value(&chop_stride)->default_value(0), "LR tile stride (0: 7/8 of the tile)")
    ("chop-batch", po::value(&chop_batch)->default_value(1), "tiles per network call")
    ("pad-multiple", po::value(&pad_multiple)->default_value(64), "reflect-pad LR tiles to a multiple of this (64 official; "
                                                                  "pixel-space models need only their own stride)")
    ("bits", po::value(&bits)->default_value(0), "output bit depth 8 or 16 (0: like the input)")
    ("ext", po::value(&ext)->default_value("png"), "output file type for folder runs")
    ("skip-existing", po::bool_switch(&skip_existing), "folder runs: keep outputs that already exist")
    ("threads", po::value(&threads)->default_value(0), "CPU threads (0: all)")
    ("quiet,q", po::bool_switch(&quiet), "no progress display");
  // clang-format on
  po::variables_map vm;
  if (int rc = parse_options(args, opts, vm, "infer"); rc >= 0) return rc;
  if (bits != 0 && bits != 8 && bits != 16) {
    std::cerr << "sinsr-host infer: --bits must be 8 or 16\n";
    return 2;
  }

  try {
    host::Runtime runtime(threads);
    load_plugins(runtime, plugins);
    // The backbone: --backbone, else the one a --plugin library provides, else the shipped
    // default model (`student`), else unet_swin.
    if (backbone.empty()) {
      for (const auto& p : plugins)
        for (const auto& c : runtime.from_file(p))
          if (c->kind() == SINSR_KIND_BACKBONE) backbone = c->name();
      if (backbone.empty()) backbone = runtime.find_or_null(SINSR_KIND_BACKBONE, "student") ? "student" : "unet_swin";
    }
    host::PipelineOptions o;
    host::json whole = config.empty() ? host::json::object() : host::json{{"config_file", config}};
    o.backbone = {backbone, bcfg.empty() ? whole : config_argument(bcfg), bw};
    if (codec != "none") o.codec = {codec, ccfg.empty() ? whole : config_argument(ccfg), cw};
    o.sampler = {sampler, scfg.empty() ? whole : config_argument(scfg), ""};
    o.steps = steps;
    o.scale = scale;
    o.seed = seed;
    o.device = device;
    o.precision = precision;
    o.chop_size = chop_size;
    o.chop_stride = chop_stride;
    o.pad_multiple = pad_multiple;
    o.chop_batch = chop_batch;
    // What the user typed wins over a model's preferred pipeline; our defaults do not.
    for (const char* key : {"codec", "sampler", "steps", "scale", "pad_multiple", "chop_size"}) {
      std::string flag(key);
      std::replace(flag.begin(), flag.end(), '_', '-');
      if (vm.count(flag) && !vm[flag].defaulted()) o.explicit_keys.insert(key);
    }
    host::Pipeline pipeline(runtime, o);

    // Work list: (input, output) pairs.
    std::vector<std::pair<fs::path, fs::path>> jobs;
    std::error_code ec;
    if (fs::is_directory(input, ec)) {
      if (fs::exists(output, ec) && !fs::is_directory(output, ec))
        throw sdk::Error(SINSR_ERR_INVALID_ARGUMENT, "input is a folder, so the output must be a folder: " + output);
      fs::create_directories(output, ec);
      if (ec) throw sdk::Error(SINSR_ERR_IO, output + ": cannot create folder: " + ec.message());
      for (const auto& f : io::list_images(input)) {
        fs::path dst = fs::path(output) / (fs::path(f).stem().string() + "." + ext);
        jobs.emplace_back(f, dst);
      }
      if (jobs.empty()) throw sdk::Error(SINSR_ERR_NOT_FOUND, input + ": no images in this folder");
    } else {
      if (!fs::exists(input, ec)) throw sdk::Error(SINSR_ERR_NOT_FOUND, input + ": no such file or folder");
      fs::path dst = output;
      if (fs::is_directory(dst, ec)) dst /= fs::path(input).stem().string() + "." + ext;
      if (dst.has_parent_path()) {  // a file output into a new folder: make the folder
        fs::create_directories(dst.parent_path(), ec);
        if (ec) throw sdk::Error(SINSR_ERR_IO, dst.parent_path().string() + ": cannot create folder: " + ec.message());
      }
      jobs.emplace_back(input, dst);
    }

    Progress progress(!quiet);
    std::vector<std::string> failures;
    size_t written = 0;
    for (size_t k = 0; k < jobs.size(); ++k) {
      const auto& [src, dst] = jobs[k];
      std::string label = "[" + std::to_string(k + 1) + "/" + std::to_string(jobs.size()) + "] " + src.filename().string();
      try {
        std::string guard = same_file_guard(src, dst);
        if (!guard.empty()) throw sdk::Error(SINSR_ERR_INVALID_ARGUMENT, guard);
        if (skip_existing && fs::exists(dst, ec)) continue;
        progress.show(label);
        io::Image img = io::read_image(src.string());
        at::Tensor sr = pipeline.upscale_any(img.pixels, [&](int done, int total) {
          if (total > 1) progress.show(label + "  tiles " + std::to_string(done) + "/" + std::to_string(total));
          return true;
        });
        int out_bits = bits ? bits : (img.bits >= 16 ? 16 : 8);
        io::write_image(dst.string(), sr, out_bits);
        ++written;
      } catch (const std::exception& e) {
        progress.done();
        std::string msg = e.what();
        std::cerr << "error: " << (msg.find(src.string()) == std::string::npos ? src.string() + ": " : "") << msg << "\n";
        failures.push_back(src.string());
      }
    }
    progress.done();
    if (!quiet) std::cerr << "wrote " << written << " image(s) to " << output << "\n";
    if (!failures.empty()) {
      std::cerr << failures.size() << " image(s) failed:\n";
      for (const auto& f : failures) std::cerr << "  " << f << "\n";
      return 1;
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "sinsr-host infer: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace cli
}  // namespace sinsr
#endif  // SINSR_WITH_IMAGE_IO
