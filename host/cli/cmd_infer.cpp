// sinsr-host infer: a file or a folder of LR images in, SR images out.
#include "cli_common.hpp"
#include "commands.hpp"
#include "io/image_io.hpp"
#include "io/upscale_file.hpp"
#include "pipeline/pipeline.hpp"

#include <sinsr/config.hpp>

#include <boost/program_options.hpp>

#include <unistd.h>
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>

namespace sinsr {
namespace cli {

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace {

// The files of a folder run: its images, or with `recursive` those of every sub-folder except
// `skip` (an output folder inside the input folder), sorted.
std::vector<fs::path> input_files(const fs::path& dir, bool recursive, const fs::path& skip) {
  if (!recursive) {
    std::vector<fs::path> out;
    for (const auto& f : io::list_images(dir.string())) out.emplace_back(f);
    return out;
  }
  std::vector<fs::path> out;
  std::error_code ec;
  const fs::path skip_c = fs::weakly_canonical(skip, ec);
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_directory(ec) && fs::weakly_canonical(it->path(), ec) == skip_c) {
      it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file(ec) && io::has_image_extension(it->path().string())) out.push_back(it->path());
  }
  if (ec) throw sdk::Error(SINSR_ERR_IO, dir.string() + ": cannot list the folder: " + ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

// Every output name of the run is known before the first write: an output that is one of the
// run's inputs (or any existing file the same as its own input), or two inputs that would write
// one file, refuse the whole run, naming the files. Nothing is lost, nothing is half-done.
void check_outputs(const std::vector<std::pair<fs::path, fs::path>>& jobs) {
  std::error_code ec;
  std::map<fs::path, fs::path> inputs, outputs;  // canonical -> as given
  for (const auto& [src, dst] : jobs) inputs.emplace(fs::weakly_canonical(src, ec), src);
  std::vector<std::string> problems;
  for (const auto& [src, dst] : jobs) {
    const fs::path d = fs::weakly_canonical(dst, ec);
    if (auto it = inputs.find(d); it != inputs.end())
      problems.push_back("the output of " + src.string() + " would overwrite the input " + it->second.string());
    else if (fs::exists(dst, ec) && fs::equivalent(src, dst, ec))
      problems.push_back("the output of " + src.string() + " is the input itself (" + dst.string() + ")");
    auto [it, fresh] = outputs.emplace(d, src);
    if (!fresh) problems.push_back(it->second.string() + " and " + src.string() + " would both write " + dst.string());
  }
  if (problems.empty()) return;
  std::string msg = "refusing to run, nothing was written: " + problems[0];
  if (problems.size() > 1) msg += " (and " + std::to_string(problems.size() - 1) + " more)";
  msg += "; --suffix S (e.g. _x4) or --ext auto (each input's own format) keeps the names apart";
  throw sdk::Error(SINSR_ERR_INVALID_ARGUMENT, msg);
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

}  // namespace

int cmd_infer(const Args& args) {
  // Flags write straight into the options, whose defaults are the defaults shown by --help.
  host::PipelineOptions o;
  std::string input, output, backbone, codec, sampler, config, bcfg, ccfg, scfg, bw, cw, ext, format;
  std::vector<std::string> plugins, stray;
  int threads = 0;
  int gpu = -1;
  std::string suffix;
  bool quiet = false, skip_existing = false, recursive = false;
  io::UpscaleFileOptions file_options;  // --max-pixels, --outscale, --bits
  file_options.raise_hint = "--max-pixels raises it";
  double& outscale = file_options.outscale;
  int64_t& max_pixels = file_options.max_pixels;
  int& bits = file_options.bits;
  po::options_description opts = options_table(
      "sinsr-host infer -i INPUT -o OUTPUT [options]\n"
      "Upscales an image, or every image of a folder into a folder (an unreadable image is reported\n"
      "and skipped; the exit code is then 1). A model's preferred pipeline (codec, sampler, steps,\n"
      "tiles) wins over the defaults, never over what is given. Every option: docs/cli.md.\n\n"
      "Options");
  // clang-format off
  opts.add_options()
    ("help,h", "this help")
    ("input,i", po::value(&input)->required(), "LR image file or folder")
    ("output,o", po::value(&output)->required(), "SR image file, or folder (created) for a folder input")
    ("backbone,n", po::value(&backbone), ("model or backbone by name (default: " + installed_default("backbone") +
                                          "; see `sinsr-host models`)").c_str())
    ("scale,s", po::value(&o.scale)->default_value(o.scale), "upscaling factor (a fixed-factor model refuses others)")
    ("outscale", po::value(&outscale), "final factor: the model's, then bicubic to this one (e.g. 2 from x4)")
    ("strength", po::value(&o.strength)->default_value(o.strength, "1"), "0..1: 0 = student_bicubic (clean input), "
                                                                        "1 = real-world")
    ("chop-size,t", po::value(&o.chop_size)->default_value(o.chop_size), "tile size in LR pixels (0: never tile)")
    ("gpu,g", po::value(&gpu), "GPU index (absent or -1: the CPU)")
    ("threads,j", po::value(&threads)->default_value(threads), "CPU threads (0: every core this process may use)")
    ("format,f", po::value(&format), "output format (png, jpg, webp, tif, exr, ...); wins over -o's extension")
    ("suffix", po::value(&suffix), "appended to each output's stem; needed when -o is the input folder")
    ("recursive,r", po::bool_switch(&recursive), "folder runs: the sub-folders too, mirrored in the output")
    ("skip-existing", po::bool_switch(&skip_existing), "folder runs: keep outputs that already exist")
    ("max-pixels", po::value(&max_pixels)->default_value(max_pixels, "4096x4096"),
     "refuse inputs with more pixels than this")
    ("config,c", po::value(&config), "official full YAML for all parts (or an installed name: sinsr_x4)")
    ("backbone-weights,w", po::value(&bw), "backbone checkpoint (.pth / .safetensors); alone it names its network")
    ("codec-weights", po::value(&cw), "codec checkpoint")
    ("plugin", po::value(&plugins), "load a plugin library or model manifest (repeatable)")
    ("seed", po::value(&o.seed)->default_value(o.seed), "noise seed (the same seed gives the same image)")
    ("quiet,q", po::bool_switch(&quiet), "no progress lines");
  po::options_description more;
  more.add_options()
    ("backbone-config", po::value(&bcfg), "backbone config: YAML/JSON file or inline JSON")
    ("codec", po::value(&codec), ("codec component, or 'none' for pixel space (default: the model's, else " +
                                  installed_default("codec") + ")").c_str())
    ("codec-config", po::value(&ccfg), "codec config: file or inline JSON")
    ("sampler", po::value(&sampler), ("any loaded sampler (default: the model's, else " +
                                      installed_default("sampler") + ")").c_str())
    ("sampler-config", po::value(&scfg), "sampler config: file or inline JSON")
    ("steps", po::value(&o.steps)->default_value(o.steps), "respace the sampler to N steps (0: its own)")
    ("device", po::value(&o.device)->default_value(o.device), "cpu, cuda, cuda:N")
    ("precision", po::value(&o.precision)->default_value(o.precision), "fp32, fp16 (CUDA), bf16")
    ("chop-stride", po::value(&o.chop_stride)->default_value(o.chop_stride), "LR tile stride (0: 7/8 of the tile)")
    ("chop-batch", po::value(&o.chop_batch)->default_value(o.chop_batch), "tiles per network call")
    ("self-ensemble", po::bool_switch(&o.self_ensemble), "average the outputs of the 8 flips and rotations "
                                                       "(8x the time; more PSNR/SSIM, less invented texture)")
    ("pad-multiple", po::value(&o.pad_multiple)->default_value(o.pad_multiple), "reflect-pad LR tiles to a multiple")
    ("bits", po::value(&bits)->default_value(bits), "output bit depth 8 or 16 (0: like the input)")
    ("ext", po::value(&ext)->default_value(io::default_format()), "output file type (older spelling of -f); auto: the input's");
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
            << "sinsr-host infer: this line is an infer line and also names the command '" << word
            << "': write the command first; only --plugin and --threads/-j may precede it (see `sinsr-host --help`)\n";
        return 2;
      }
    return usage_error("infer", "unexpected argument '" + words[0] + "'");
  };
  if (int rc = parse_options(args, opts, vm, "infer", &hidden, &positional, refuse_stray, &more); rc >= 0) return rc;
  auto given = [&](const char* name) { return vm.count(name) && !vm[name].defaulted(); };
  if (bits != 0 && bits != 8 && bits != 16) return usage_error("infer", "--bits must be 8 or 16");
  if (o.scale < 1) return usage_error("infer", "-s/--scale must be at least 1");
  if (threads < 0) return usage_error("infer", "-j/--threads must be 0 (every core) or more");
  if (!(o.strength >= 0 && o.strength <= 1)) return usage_error("infer", "--strength must be in [0, 1]");
  if (vm.count("outscale") && !(std::isfinite(outscale) && outscale > 0 && outscale <= 64))
    return usage_error("infer", "--outscale must be a positive factor (at most 64)");
  if (max_pixels < 1) return usage_error("infer", "--max-pixels must be at least 1");

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
  const std::string format_flag = format_given ? "-f" : "--ext";
  std::string fmt = lower(format_given ? format : ext);
  if (!fmt.empty() && fmt[0] == '.') fmt.erase(0, 1);
  const bool auto_format = fmt == "auto";
  if (!auto_format && !io::has_image_extension("x." + fmt))
    return usage_error("infer", format_flag + " " + fmt +
                                    ": not an image format here (auto, png, jpg, webp, tif, exr, bmp, ppm, pgm)");
  if (suffix.find('/') != std::string::npos) return usage_error("infer", "--suffix must not contain '/'");
  // The output name of one input: its stem, the suffix, the chosen (or its own) format.
  auto output_name = [&](const fs::path& src) {
    return src.stem().string() + suffix + (auto_format ? src.extension().string() : "." + fmt);
  };
  config = resolve_config(config);

  try {
    host::Runtime runtime(threads);
    load_plugins(runtime, plugins);
    host::json whole = config.empty() ? host::json::object() : host::json{{"config_file", config}};
    o.backbone = {backbone, bcfg.empty() ? whole : config_argument(bcfg), bw};
    o.codec = {codec == "none" ? "" : codec,
               codec == "none" ? host::json::object()
               : ccfg.empty()  ? whole
                               : config_argument(ccfg),
               cw};
    o.sampler = {sampler, scfg.empty() ? whole : config_argument(scfg), ""};
    // What the user typed wins over a model's preferred pipeline; the defaults do not.
    for (const std::string& key : host::PipelineOptions::preferred_keys()) {
      std::string flag(key);
      std::replace(flag.begin(), flag.end(), '_', '-');
      if (given(flag.c_str())) o.explicit_keys.insert(key);
    }
    // The network that will run (the host's one resolution), for the usage errors below.
    o.resolve_names(runtime);
    backbone = o.backbone.name;
    // A model's fixed factor against -s, as a usage error before anything is loaded.
    const host::json preferred = runtime.find(SINSR_KIND_BACKBONE, backbone)->preferred_pipeline();
    const int fixed_scale = host::PipelineOptions::fixed_scale(preferred);
    try {
      o.check_scale(preferred, "model '" + backbone + "'");
    } catch (const sdk::Error& e) {
      return usage_error("infer", "-s " + std::to_string(o.scale) + ": " + error_text(e) + "; use -s " +
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
        std::cerr << "sinsr-host infer: " << why << ") cannot upscale x" << o.scale << " (" << error_text(e) << ")\n";
        return 2;
      }
    }

    // Work list: (input, output) pairs, all named before anything is written.
    std::vector<std::pair<fs::path, fs::path>> jobs;
    std::error_code ec;
    const bool folder = fs::is_directory(input, ec);
    if (folder) {
      if (fs::exists(output, ec) && !fs::is_directory(output, ec))
        throw sdk::Error(SINSR_ERR_INVALID_ARGUMENT, "input is a folder, so the output must be a folder: " + output);
      if (suffix.empty() && fs::exists(output, ec) && fs::equivalent(input, output, ec))
        throw sdk::Error(SINSR_ERR_INVALID_ARGUMENT, "-o " + output +
                                                         " is the input folder: add --suffix S (e.g. _x4) "
                                                         "so that no input is overwritten, or write to another folder");
      for (const auto& f : input_files(input, recursive, output)) {
        const fs::path rel = f.parent_path().lexically_relative(input);
        jobs.emplace_back(f, fs::path(output) / rel / output_name(f));
      }
      if (jobs.empty()) throw sdk::Error(SINSR_ERR_NOT_FOUND, input + ": no images in this folder");
    } else {
      if (!fs::exists(input, ec)) throw sdk::Error(SINSR_ERR_NOT_FOUND, input + ": no such file or folder");
      fs::path dst = output;
      if (fs::is_directory(dst, ec)) {
        dst /= output_name(input);
      } else if (format_given && !auto_format && canonical_format(dst.extension().string()) != canonical_format(fmt)) {
        // The writer picks the format by extension, so -f renames rather than mislabels.
        fs::path renamed = fs::path(dst).replace_extension(fmt);
        std::cerr << "sinsr-host infer: -f " << fmt << " wins over the extension of " << dst.string() << ": writing "
                  << renamed.string() << "\n";
        dst = renamed;
      }
      jobs.emplace_back(input, dst);
    }
    check_outputs(jobs);
    // Folders are made only once the run is known to be writable as planned.
    for (const auto& [src, dst] : jobs)
      if (dst.has_parent_path()) {
        fs::create_directories(dst.parent_path(), ec);
        if (ec) throw sdk::Error(SINSR_ERR_IO, dst.parent_path().string() + ": cannot create folder: " + ec.message());
      }

    Progress progress(!quiet);
    std::vector<std::string> failures;
    size_t written = 0;
    for (size_t k = 0; k < jobs.size(); ++k) {
      const auto& [src, dst] = jobs[k];
      std::string label =
          "[" + std::to_string(k + 1) + "/" + std::to_string(jobs.size()) + "] " + src.filename().string();
      try {
        if (skip_existing && fs::exists(dst, ec)) {
          progress.line(label + "  skipped: " + dst.filename().string() + " exists");
          continue;
        }
        const auto t0 = std::chrono::steady_clock::now();
        progress.live(label);
        io::upscale_file(pipeline, src.string(), dst.string(), file_options, [&](int done, int total) {
          if (total > 1) progress.live(label + "  tiles " + std::to_string(done) + "/" + std::to_string(total));
          return true;
        });
        ++written;
        progress.line(label + "  (" +
                      seconds(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()) + ")");
      } catch (const std::exception& e) {
        progress.clear();
        report_file_error("infer", src.string(), e);
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
