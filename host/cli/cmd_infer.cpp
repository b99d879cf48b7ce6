// sinsr-host infer: a file or a folder of LR images in, SR images out. Needs image I/O; a
// build without it lists the command and says so (main.cpp; the C API pipeline still works there).
#if SINSR_WITH_IMAGE_IO
#include "cli_common.hpp"
#include "commands.hpp"
#include "io/image_io.hpp"
#include "pipeline/pipeline.hpp"

#include <sinsr/config.hpp>

#include <boost/program_options.hpp>

#include <unistd.h>
#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>

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

// One plain line per finished image wherever stderr goes (a pipe or a log gets them as they
// happen); the live tile counter only on a terminal, where \r can redraw it.
class Progress {
 public:
  explicit Progress(bool enabled) : enabled_(enabled), tty_(enabled && ::isatty(STDERR_FILENO)) {}
  void live(const std::string& line) {
    if (!tty_) return;
    std::cerr << "\r\033[K" << line << std::flush;
    dirty_ = true;
  }
  void line(const std::string& text) {
    if (!enabled_) return;
    clear();
    std::cerr << text << "\n" << std::flush;
  }
  void clear() {
    if (dirty_) std::cerr << "\r\033[K" << std::flush;
    dirty_ = false;
  }

 private:
  bool enabled_, tty_;
  bool dirty_ = false;
};

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return s;
}

// jpg/jpeg and tif/tiff name one format each.
std::string canonical_format(std::string f) {
  f = lower(f);
  if (!f.empty() && f[0] == '.') f.erase(0, 1);
  if (f == "jpeg") return "jpg";
  if (f == "tiff") return "tif";
  return f;
}

std::string seconds(double s) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(s < 10 ? 2 : 1) << s << " s";  // a small image takes ~0.1 s
  return o.str();
}

// Infer's own defaults for what PipelineOptions leaves to the caller (the C API has none: no
// codec there is pixel space); a model's preferred pipeline wins over both.
constexpr const char* kDefaultCodec = "vq_f4";
constexpr const char* kDefaultSampler = "single-step";

}  // namespace

int cmd_infer(const Args& args) {
  // Flags write straight into the options, whose defaults are the defaults shown by --help.
  host::PipelineOptions o;
  std::string input, output, backbone, codec, sampler, config, bcfg, ccfg, scfg, bw, cw, ext, format;
  std::vector<std::string> plugins, stray;
  int threads = 0, bits = 0;
  int gpu = -1;
  bool quiet = false, skip_existing = false;
  po::options_description opts(
      "sinsr-host infer -i INPUT -o OUTPUT [options]\n"
      "Upscales an image or every image of a folder (png, jpg, tif, exr, ...). With a folder the\n"
      "output is a folder; unreadable images are reported, skipped, and make the exit code 1.\n"
      "Short options follow realesrgan-ncnn-vulkan: -i -o -s -t -g -j -f -n.\n"
      "A model's preferred pipeline (codec, sampler, steps, scale, tile size, pad multiple) wins over\n"
      "the defaults below, never over what is given.\n"
      "Progress: one line per image on stderr ([k/N] name  (time)); on a terminal also the tiles.\n"
      "Threads: the same -j gives the same bytes on every run, but another -j may change a few pixels\n"
      "by a level or two (LibTorch splits sums across threads). Set5 x4, -j 1 against -j 2: the shipped\n"
      "student 0 to 3 of 567456 pixels by 1/255 (two trainings of it); the tiny parity UNet + vq_f4\n"
      "3252 pixels by at most 2/255. Compare outputs made with one -j.\n\n"
      "Options");
  // clang-format off
  opts.add_options()
    ("help,h", "this help")
    ("input,i", po::value(&input)->required(), "LR image file or folder")
    ("output,o", po::value(&output)->required(), "SR image file, or folder (created) for a folder input")
    ("backbone,n", po::value(&backbone), (std::string("model or backbone by name, from the plugin path (e.g. -n ") +
                                          host::kDefaultModel + "; default: the --plugin's backbone, else the "
                                          "shipped model '" + host::kDefaultModel + "', else " +
                                          host::kFallbackBackbone + ")").c_str())
    ("scale,s", po::value(&o.scale)->default_value(o.scale), "upscaling factor; a model or pipeline with another fixed "
                                                             "factor refuses it")
    ("chop-size,t", po::value(&o.chop_size)->default_value(o.chop_size), "tile size in LR pixels (0: never tile)")
    ("gpu,g", po::value(&gpu), "GPU index: 0 = cuda:0; -1 or absent: the CPU (--device says the same)")
    ("threads,j", po::value(&threads)->default_value(threads), "CPU threads (0: the cores other processes leave free)")
    ("format,f", po::value(&format), "output format: png, jpg, webp, tif, exr, bmp, ... for files and folders; "
                                     "wins over the output file's extension (the file is renamed, said on stderr)")
    ("plugin", po::value(&plugins), "load a plugin library (repeatable); a library's single backbone becomes the default")
    ("config,c", po::value(&config), "official full YAML (model / autoencoder / diffusion sections) for all components; "
                                     "a bare name (sinsr_x4) is looked up in the installed configs")
    ("backbone-config", po::value(&bcfg), "backbone config: YAML/JSON file or inline JSON")
    ("backbone-weights,w", po::value(&bw), "backbone checkpoint (.pth / .safetensors); default: the plugin's own. "
                                            "Alone (no -n, no config) it names its network: the configs a train "
                                            "checkpoint stores, else what the plugins detect from its shapes")
    ("codec", po::value(&codec)->default_value(kDefaultCodec), "codec component, or 'none' for pixel space")
    ("codec-config", po::value(&ccfg), "codec config: file or inline JSON")
    ("codec-weights", po::value(&cw), "codec checkpoint")
    ("sampler", po::value(&sampler)->default_value(kDefaultSampler), "stochastic | deterministic | single-step | "
                                                                      "any loaded sampler")
    ("sampler-config", po::value(&scfg), "sampler config: file or inline JSON; without --sampler its keys adjust a "
                                         "model's preferred sampler (e.g. '{\"temperature\": 0}')")
    ("steps", po::value(&o.steps)->default_value(o.steps), "respace the sampler to N steps (deterministic + 1 = SinSR "
                                                           "one-step; 0: the sampler's own)")
    ("seed", po::value(&o.seed)->default_value(o.seed), "noise seed (the same seed gives the same image)")
    ("device", po::value(&o.device)->default_value(o.device), "cpu, cuda, cuda:N")
    ("precision", po::value(&o.precision)->default_value(o.precision), "fp32, fp16 (CUDA), bf16")
    ("chop-stride", po::value(&o.chop_stride)->default_value(o.chop_stride), "LR tile stride (0: 7/8 of the tile)")
    ("chop-batch", po::value(&o.chop_batch)->default_value(o.chop_batch), "tiles per network call")
    ("pad-multiple", po::value(&o.pad_multiple)->default_value(o.pad_multiple), "reflect-pad LR tiles to a multiple of "
                                                                                "this (64 official; pixel-space models "
                                                                                "need only their own stride)")
    ("bits", po::value(&bits)->default_value(bits), "output bit depth 8 or 16 (0: like the input)")
    ("ext", po::value(&ext)->default_value("png"), "output file type for folder runs (older spelling of -f)")
    ("skip-existing", po::bool_switch(&skip_existing), "folder runs: keep outputs that already exist")
    ("quiet,q", po::bool_switch(&quiet), "no progress lines");
  // clang-format on
  // Words that are no option's value: reported by name rather than as "too many positional options".
  po::options_description hidden;
  hidden.add_options()("stray", po::value(&stray));
  po::positional_options_description positional;
  positional.add("stray", -1);
  po::variables_map vm;
  auto refuse_stray = [](const po::variables_map& parsed) {
    if (!parsed.count("stray")) return -1;
    const auto& words = parsed["stray"].as<std::vector<std::string>>();
    for (const auto& word : words)
      if (is_command_name(word)) {
        std::cerr
            << "sinsr-host: this line is an infer line and also names the command '" << word
            << "': write the command first; only --plugin and --threads/-j may precede it (see `sinsr-host --help`)\n";
        return 2;
      }
    return usage_error("infer", "unexpected argument '" + words[0] + "'");
  };
  if (int rc = parse_options(args, opts, vm, "infer", &hidden, &positional, refuse_stray); rc >= 0) return rc;
  auto given = [&](const char* name) { return vm.count(name) && !vm[name].defaulted(); };
  if (bits != 0 && bits != 8 && bits != 16) return usage_error("infer", "--bits must be 8 or 16");
  if (o.scale < 1) return usage_error("infer", "-s/--scale must be at least 1");
  if (threads < 0) return usage_error("infer", "-j/--threads must be 0 (all) or more");

  // -g: realesrgan's GPU index, onto --device.
  if (vm.count("gpu")) {
    if (gpu < -1) return usage_error("infer", "-g takes a GPU index, or -1 for the CPU");
    if (given("device")) return usage_error("infer", "give -g or --device, not both");
    if (gpu >= 0) {
      if (!at::hasCUDA()) {
        std::cerr << "sinsr-host infer: -g " << gpu << ": no CUDA here (this build or machine has no CUDA GPU); "
                  << "-g -1 or no -g runs on the CPU\n";
        return 1;
      }
      if (size_t(gpu) >= at::getNumGPUs()) {
        std::cerr << "sinsr-host infer: -g " << gpu << ": no such GPU (" << at::getNumGPUs()
                  << " CUDA device(s), from 0)\n";
        return 1;
      }
      o.device = "cuda:" + std::to_string(gpu);
    } else {
      o.device = "cpu";
    }
  }

  // -f (or the older --ext): the output format.
  if (vm.count("format") && given("ext") && canonical_format(format) != canonical_format(ext))
    return usage_error("infer", "-f " + format + " and --ext " + ext + " disagree: give one");
  const bool format_given = vm.count("format") > 0;
  std::string fmt = lower(format_given ? format : ext);
  if (!fmt.empty() && fmt[0] == '.') fmt.erase(0, 1);
  if (!io::has_image_extension("x." + fmt))
    return usage_error("infer", "-f " + fmt + ": not an image format here (png, jpg, webp, tif, exr, bmp, ppm, pgm)");
  config = resolve_config(config);

  try {
    host::Runtime runtime(threads);
    load_plugins(runtime, plugins);
    // -w alone: the network is what the file stores or its plugin detects (Pipeline).
    if (backbone.empty() && (bw.empty() || bw == "none" || !bcfg.empty() || !config.empty() || !plugins.empty()))
      backbone = runtime.default_backbone(plugins);
    host::json whole = config.empty() ? host::json::object() : host::json{{"config_file", config}};
    o.backbone = {backbone, bcfg.empty() ? whole : config_argument(bcfg), bw};
    if (codec != "none") o.codec = {codec, ccfg.empty() ? whole : config_argument(ccfg), cw};
    o.sampler = {sampler, scfg.empty() ? whole : config_argument(scfg), ""};
    // What the user typed wins over a model's preferred pipeline; our defaults do not.
    for (const char* key : {"codec", "sampler", "steps", "scale", "pad_multiple", "chop_size"}) {
      std::string flag(key);
      std::replace(flag.begin(), flag.end(), '_', '-');
      if (given(flag.c_str())) o.explicit_keys.insert(key);
    }
    // A model's fixed factor against -s, as a usage error before anything is loaded.
    const host::json preferred =
        backbone.empty() ? host::json() : runtime.find(SINSR_KIND_BACKBONE, backbone)->preferred_pipeline();
    const int fixed_scale = host::PipelineOptions::fixed_scale(preferred);
    try {
      o.check_scale(preferred, "model '" + backbone + "'");
    } catch (const sdk::Error& e) {
      return usage_error("infer", "-s " + std::to_string(o.scale) + ": " + e.what() + "; use -s " +
                                      std::to_string(fixed_scale) + " or another model (-n)");
    }
    host::Pipeline pipeline(runtime, o);
    if (!quiet)
      for (const auto& line : pipeline.options().described) std::cerr << line << "\n";
    backbone = pipeline.options().backbone.name;

    // Any other pipeline has the factor its codec and backbone allow, known only by trying: an
    // asked-for -s is tried on one smallest tile (one network call) before any image is read.
    if (given("scale") && fixed_scale == 0) {
      const int64_t m = pipeline.options().pad_multiple;
      try {
        pipeline.run_batch(at::zeros({1, 3, m, m}), [](const at::Tensor& like) { return at::zeros_like(like); });
      } catch (const std::exception& e) {
        std::string why = "-s " + std::to_string(o.scale) + ": this pipeline (backbone '" + backbone + "'";
        const std::string& cname = pipeline.options().codec.name;
        if (!cname.empty()) {
          host::CodecHandle c(runtime.find(SINSR_KIND_CODEC, cname), pipeline.options().codec.config);
          why += ", codec '" + cname + "' at 1/" + std::to_string(c.info().downscale) + " of the image size";
        }
        std::cerr << "sinsr-host infer: " << why << ") cannot upscale x" << o.scale << " (" << e.what() << ")\n";
        return 2;
      }
    }

    // Work list: (input, output) pairs.
    std::vector<std::pair<fs::path, fs::path>> jobs;
    std::error_code ec;
    const bool folder = fs::is_directory(input, ec);
    if (folder) {
      if (fs::exists(output, ec) && !fs::is_directory(output, ec))
        throw sdk::Error(SINSR_ERR_INVALID_ARGUMENT, "input is a folder, so the output must be a folder: " + output);
      fs::create_directories(output, ec);
      if (ec) throw sdk::Error(SINSR_ERR_IO, output + ": cannot create folder: " + ec.message());
      for (const auto& f : io::list_images(input)) {
        fs::path dst = fs::path(output) / (fs::path(f).stem().string() + "." + fmt);
        jobs.emplace_back(f, dst);
      }
      if (jobs.empty()) throw sdk::Error(SINSR_ERR_NOT_FOUND, input + ": no images in this folder");
    } else {
      if (!fs::exists(input, ec)) throw sdk::Error(SINSR_ERR_NOT_FOUND, input + ": no such file or folder");
      fs::path dst = output;
      if (fs::is_directory(dst, ec)) {
        dst /= fs::path(input).stem().string() + "." + fmt;
      } else if (format_given && canonical_format(dst.extension().string()) != canonical_format(fmt)) {
        // The writer picks the format by extension, so -f renames rather than mislabels.
        fs::path renamed = fs::path(dst).replace_extension(fmt);
        std::cerr << "sinsr-host infer: -f " << fmt << " wins over the extension of " << dst.string() << ": writing "
                  << renamed.string() << "\n";
        dst = renamed;
      }
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
      std::string label =
          "[" + std::to_string(k + 1) + "/" + std::to_string(jobs.size()) + "] " + src.filename().string();
      try {
        std::string guard = same_file_guard(src, dst);
        if (!guard.empty()) throw sdk::Error(SINSR_ERR_INVALID_ARGUMENT, guard);
        if (skip_existing && fs::exists(dst, ec)) {
          progress.line(label + "  skipped: " + dst.filename().string() + " exists");
          continue;
        }
        const auto t0 = std::chrono::steady_clock::now();
        progress.live(label);
        io::Image img = io::read_image(src.string());
        at::Tensor sr = pipeline.upscale_any(img.pixels, [&](int done, int total) {
          if (total > 1) progress.live(label + "  tiles " + std::to_string(done) + "/" + std::to_string(total));
          return true;
        });
        int out_bits = bits ? bits : (img.bits >= 16 ? 16 : 8);
        io::write_image(dst.string(), sr, out_bits);
        ++written;
        progress.line(label + "  (" +
                      seconds(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()) + ")");
      } catch (const std::exception& e) {
        progress.clear();
        std::string msg = e.what();
        std::cerr << "error: " << (msg.find(src.string()) == std::string::npos ? src.string() + ": " : "") << msg
                  << "\n";
        failures.push_back(src.string());
      }
    }
    progress.clear();
    if (!quiet)
      std::cerr << "wrote " << written << " image(s) to " << (folder ? output : jobs[0].second.string()) << "\n";
    if (!failures.empty()) {
      std::cerr << failures.size() << " image(s) failed:\n";
      for (const auto& f : failures) std::cerr << "  " << f << "\n";
      return 1;
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "sinsr-host infer: " << error_text(e) << "\n";
    return 1;
  }
}

}  // namespace cli
}  // namespace sinsr
#endif  // SINSR_WITH_IMAGE_IO
