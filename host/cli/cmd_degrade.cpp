// sinsr-host degrade: HR images in, LR images out, by the RealESRGAN second-order degradation
// (the official training degradation) or MATLAB bicubic.
#include "cli_common.hpp"
#include "commands.hpp"
#include "imaging/degradation.hpp"
#include "imaging/imresize.hpp"
#include "io/image_io.hpp"
#include "runtime/seed.hpp"

#include <sinsr/config.hpp>
#include <sinsr/sdk.hpp>

#include <ATen/Parallel.h>
#include <boost/program_options.hpp>

#include <filesystem>
#include <iostream>
#include <map>
#include <set>
#include <thread>

namespace sinsr {
namespace cli {

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace {

// FNV-1a: a stable hash, so an image's seed does not depend on the platform's std::hash.
uint64_t name_hash(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

fs::path canonical_or_self(const fs::path& p) {
  std::error_code ec;
  fs::path c = fs::weakly_canonical(p, ec);
  return ec ? p : c;
}

}  // namespace

int cmd_degrade(const Args& args) {
  std::string input, output, config, mode, ext;
  uint64_t seed = 0;
  int scale = 0, threads = 0;
  bool quiet = false;
  po::options_description opts = options_table(
      "sinsr-host degrade --in HR_DIR --out LR_DIR (--seed S | --mode bicubic) [options]\n"
      "Makes an LR image from every image of HR_DIR (or from one HR file). realesrgan mode: the\n"
      "official RealESRGAN second-order degradation (blur, resize, Gaussian/Poisson noise, JPEG,\n"
      "twice, then a sinc filter), output HR/scale, 8-bit PNG. Each image gets its own seed derived\n"
      "from --seed and its file name, so a result does not depend on the other files of the folder.\n"
      "bicubic mode: MATLAB-style bicubic downscaling (ceil(HR*1/scale)); it draws nothing and needs no\n"
      "--seed. Alpha is dropped.\n"
      "Unreadable images are reported by name and skipped, and make the exit code 1. Inputs are never\n"
      "overwritten.\n\nOptions");
  // clang-format off
  opts.add_options()
    ("help,h", "this help")
    ("in,i", po::value(&input)->required(), "HR image folder (or one HR image)")
    ("out,o", po::value(&output)->required(), "LR folder (created)")
    ("seed", po::value(&seed), "degradation seed, required by realesrgan mode (the same seed gives the same images)")
    ("scale", po::value(&scale)->default_value(0, "config sf, else " + std::to_string(degrade::Options().sf)),
     "downscaling factor")
    ("config,c", po::value(&config), "degradation parameters: the official YAML (its `degradation` block and kernel keys), "
                                      "a file of the keys, inline JSON, or the bare name of an installed config; "
                                      "default: the official SinSR.yaml's values")
    ("mode", po::value(&mode)->default_value("realesrgan"), "realesrgan | bicubic")
    ("ext", po::value(&ext)->default_value(io::default_format()), "output file type")
    ("threads,j", po::value(&threads)->default_value(0), "CPU threads (0: every core this process may use)")
    ("quiet,q", po::bool_switch(&quiet), "no summary line");
  // clang-format on
  po::variables_map vm;
  if (int rc = parse_options(args, opts, vm, "degrade"); rc >= 0) return rc;
  if (mode != "realesrgan" && mode != "bicubic")
    return usage_error("degrade", "--mode must be realesrgan or bicubic, got '" + mode + "'");
  // Bicubic draws nothing; the random degradation must not fall back to a hidden seed.
  if (mode == "realesrgan" && !vm.count("seed"))
    return usage_error("degrade", "--seed is required for --mode realesrgan (--mode bicubic needs none)");
  if (vm["scale"].defaulted() == false && scale < 1) return usage_error("degrade", "--scale must be at least 1");
  config = resolve_config(config);

  try {
    host::set_threads(threads);
    degrade::Options options;
    if (!config.empty()) {
      const host::json given = config_contents(config, "--config");
      std::error_code exists;
      try {
        // Where an official file keeps the keys: the installed defaults.json's sections.
        options = degrade::options_from_json(
            given, host::Runtime::names_in(host::Runtime::installed_defaults(), "degradation", "sections"));
      } catch (const sdk::Error& e) {  // a file is named: its line is the one to fix
        if (!fs::exists(config, exists)) throw;
        throw sdk::Error(e.code(), config + ": " + e.what());
      }
    }
    if (scale < 1) scale = options.sf;

    std::error_code ec;
    std::vector<std::string> sources;
    if (fs::is_directory(input, ec)) {
      sources = io::list_images(input);
      if (sources.empty()) throw sdk::Error(SINSR_ERR_NOT_FOUND, input + ": no images in this folder");
    } else if (fs::exists(input, ec)) {
      sources.push_back(input);
    } else {
      throw sdk::Error(SINSR_ERR_NOT_FOUND, input + ": no such file or folder");
    }
    if (fs::exists(output, ec) && !fs::is_directory(output, ec))
      throw sdk::Error(SINSR_ERR_INVALID_ARGUMENT, output + ": the output must be a folder");
    fs::create_directories(output, ec);
    if (ec) throw sdk::Error(SINSR_ERR_IO, output + ": cannot create folder: " + ec.message());

    std::set<fs::path> inputs;
    for (const auto& s : sources) inputs.insert(canonical_or_self(s));
    std::map<fs::path, std::string> claimed;  // output -> the input that writes it

    std::vector<std::string> failures;
    size_t written = 0;
    for (const auto& src : sources) {
      try {
        const std::string name = fs::path(src).filename().string();
        const fs::path dst = fs::path(output) / (fs::path(src).stem().string() + "." + ext);
        const fs::path key = canonical_or_self(dst);
        if (inputs.count(key))
          throw sdk::Error(SINSR_ERR_INVALID_ARGUMENT, "refusing to overwrite the input " + dst.string());
        if (claimed.count(key))
          throw sdk::Error(SINSR_ERR_INVALID_ARGUMENT,
                           "its output " + dst.string() + " is already written for " + claimed[key]);
        claimed[key] = src;

        io::Image img = io::read_image(src);
        at::Tensor rgb = img.pixels;
        if (rgb.size(0) == 2 || rgb.size(0) == 4) rgb = rgb.narrow(0, 0, rgb.size(0) - 1);  // drop alpha
        rgb = at::clamp(rgb, 0, 1);
        at::Tensor lr;
        if (mode == "bicubic") {
          if (rgb.size(1) < 1 || rgb.size(2) < 1) throw sdk::Error(SINSR_ERR_FORMAT, "empty image");
          lr = imaging::imresize(rgb, 1.0 / scale);
        } else {
          lr = degrade::degrade(rgb, scale, mix_seed(seed, name_hash(name)), options);
        }
        io::write_image(dst.string(), lr, 8);
        ++written;
      } catch (const std::exception& e) {
        report_file_error("degrade", src, e);
        failures.push_back(src);
      }
    }
    if (!quiet)
      std::cerr << "wrote " << written << " LR image(s) (x" << scale << ", " << mode << ") to " << output << "\n";
    if (!failures.empty()) {
      std::cerr << failures.size() << " image(s) failed:\n";
      for (const auto& f : failures) std::cerr << "  " << f << "\n";
      return 1;
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "sinsr-host degrade: " << error_text(e) << "\n";
    return 1;
  }
}

}  // namespace cli
}  // namespace sinsr
