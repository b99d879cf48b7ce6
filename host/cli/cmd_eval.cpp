// sinsr-host eval: PSNR/SSIM and the detail ratio of predictions against ground truth, paired by file name (the
// official script pairs sorted lists by position, which silently mismatches).
#if SINSR_WITH_IMAGE_IO
#include "cli_common.hpp"
#include "commands.hpp"
#include "imaging/imresize.hpp"
#include "imaging/metrics.hpp"
#include "io/image_io.hpp"
#include "io/pairs.hpp"

#include <sinsr/sdk.hpp>

#include <nlohmann/json.hpp>

#include <boost/program_options.hpp>

#include <cmath>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

namespace sinsr {
namespace cli {

namespace po = boost::program_options;

namespace {

std::string size_str(const at::Tensor& chw) { return std::to_string(chw.size(2)) + "x" + std::to_string(chw.size(1)); }

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char ch : s) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return q + "\"";
}

std::string num(double v, int precision) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  std::ostringstream s;
  s << std::fixed << std::setprecision(precision) << v;
  return s.str();
}

}  // namespace

int cmd_eval(const Args& args) {
  std::string pred, gt, bicubic_from, csv, json_out, suffix, mode_arg;
  int scale = 4, border = -1;
  po::options_description opts(
      "sinsr-host eval (--pred DIR | --bicubic-from LR_DIR) --gt DIR [options]\n"
      "PSNR, SSIM and detail per image and their means. Images are paired by file stem (pred/baby.png with\n"
      "gt/baby.*), never by position; missing partners, duplicate stems and size mismatches are\n"
      "reported by name and make the exit code 1. Metrics see 8-bit values (16-bit and float files\n"
      "are quantised as a saved PNG would be); alpha is ignored; gray is replicated to RGB.\n"
      "Metric modes: y = the official calculate_psnr/calculate_ssim on the MATLAB Y channel rounded to\n"
      "uint8 (the SR-paper convention); rgb = the same on all three channels; pyiqa = what the official\n"
      "evaluate.py reports (pyiqa, Y not rounded, SSIM with ReLU; it crops no border: add --crop-border 0).\n"
      "detail = mean Sobel gradient magnitude of the prediction over that of the ground truth, on the\n"
      "rounded Y channel (in every mode), same border crop, 3x3 Sobel without padding, sqrt(gx^2+gy^2):\n"
      "1 = as much gradient as the ground truth, < 1 blurrier, > 1 sharper or noisier (read it beside\n"
      "PSNR). A flat ground truth (no gradient) gives detail nan (null in JSON); such images are left\n"
      "out of the mean detail, which says over how many images it was taken.\n"
      "--bicubic-from makes MATLAB-bicubic x<scale> upscales of LR images (same names as the GT) and\n"
      "evaluates those: the bicubic baseline of a benchmark set.\n\nOptions");
  // clang-format off
  opts.add_options()
    ("help,h", "this help")
    ("pred", po::value(&pred), "folder of predictions")
    ("bicubic-from", po::value(&bicubic_from), "instead of --pred: evaluate MATLAB-bicubic x scale upscales of these LR images")
    ("gt", po::value(&gt)->required(), "folder of ground-truth images")
    ("pred-suffix", po::value(&suffix)->default_value(""), "strip this from prediction stems before pairing (e.g. _x4: baby_x4.png pairs baby.png)")
    ("scale", po::value(&scale)->default_value(4), "SR factor: the bicubic factor and the default border")
    ("crop-border", po::value(&border)->default_value(-1, "scale"), "pixels cropped on each side before measuring")
    ("metric-mode", po::value(&mode_arg)->default_value("y"), "y | rgb | pyiqa")
    ("csv", po::value(&csv), "write the per-image table and the means as CSV")
    ("json", po::value(&json_out), "write the table, the means and the problems as JSON");
  // clang-format on
  po::variables_map vm;
  if (int rc = parse_options(args, opts, vm, "eval"); rc >= 0) return rc;
  if (pred.empty() == bicubic_from.empty()) return usage_error("eval", "give exactly one of --pred and --bicubic-from");
  if (scale < 1) return usage_error("eval", "--scale must be at least 1");
  metrics::Mode mode;
  try {
    mode = metrics::parse_mode(mode_arg);
  } catch (const std::exception& e) {
    return usage_error("eval", e.what());
  }
  if (border < 0) border = scale;
  try {
    const std::string src = pred.empty() ? bicubic_from : pred;
    io::Pairing paired =
        io::pair_by_stem(src, gt, pred.empty() ? "LR image" : "prediction", "ground truth", pred.empty() ? "" : suffix);
    std::vector<std::string>& problems = paired.problems;
    if (paired.pairs.empty()) {
      // Say why rather than print a table of nothing with zero means.
      for (auto& p : problems) std::cerr << "error: " << p << "\n";
      const std::string why = paired.first_count == 0    ? "no images in " + src
                              : paired.second_count == 0 ? "no images in " + gt
                                                         : "no file names in common between " + src + " and " + gt;
      std::cerr << "sinsr-host eval: no image pairs to evaluate: " << why << "\n";
      return 1;
    }

    nlohmann::json rows = nlohmann::json::array();
    double sum_p = 0, sum_s = 0, sum_d = 0;
    int n = 0, n_d = 0;
    const int name_w = 24;
    std::cout << std::left << std::setw(name_w) << "image" << std::right << std::setw(12) << "size" << std::setw(10)
              << "PSNR" << std::setw(10) << "SSIM" << std::setw(10) << "detail"
              << "\n";
    for (const auto& [stem, pf, gf] : paired.pairs) {
      try {
        at::Tensor g = io::read_image(gf).pixels;
        at::Tensor p = io::read_image(pf).pixels;
        if (pred.empty()) p = imaging::imresize(p, double(scale));
        if (p.size(1) != g.size(1) || p.size(2) != g.size(2))
          throw sdk::Error(SINSR_ERR_INVALID_ARGUMENT,
                           pf + ": size " + size_str(p) + (pred.empty() ? " after x" + std::to_string(scale) : "") +
                               " differs from the ground truth " + gf + " (" + size_str(g) + ")");
        const at::Tensor pu = io::color_uint8_hwc(p), gu = io::color_uint8_hwc(g);
        metrics::Scores s = metrics::evaluate(pu, gu, border, mode);
        const double d = metrics::detail(pu, gu, border);
        std::cout << std::left << std::setw(name_w) << stem << std::right << std::setw(12) << size_str(g)
                  << std::setw(10) << num(s.psnr, 4) << std::setw(10) << num(s.ssim, 4) << std::setw(10) << num(d, 4)
                  << "\n";
        rows.push_back({{"image", stem}, {"pred", pf}, {"gt", gf}, {"psnr", s.psnr}, {"ssim", s.ssim}, {"detail", d}});
        sum_p += s.psnr;
        sum_s += s.ssim;
        ++n;
        if (!std::isnan(d)) {
          sum_d += d;
          ++n_d;
        }
      } catch (const std::exception& e) {
        problems.push_back(e.what());
      }
    }
    const double mp = n ? sum_p / n : 0, ms = n ? sum_s / n : 0;
    const double md = n_d ? sum_d / n_d : std::nan("");  // over the images whose ground truth has a gradient
    std::cout << std::left << std::setw(name_w) << "mean" << std::right << std::setw(12) << "" << std::setw(10)
              << num(mp, 4) << std::setw(10) << num(ms, 4) << std::setw(10) << num(md, 4) << "   (" << n << " images, "
              << metrics::mode_name(mode) << ", border " << border;
    if (n_d != n) std::cout << "; detail over " << n_d << ": flat ground truth gives nan";
    std::cout << ")\n";
    if (!csv.empty()) {
      std::ofstream f(csv);
      f << "image,pred,gt,psnr,ssim,detail\n";
      for (auto& r : rows)
        f << csv_field(r["image"].get<std::string>()) << "," << csv_field(r["pred"].get<std::string>()) << ","
          << csv_field(r["gt"].get<std::string>()) << "," << num(r["psnr"].get<double>(), 6) << ","
          << num(r["ssim"].get<double>(), 6) << ","
          << num(r["detail"].is_null() ? std::nan("") : r["detail"].get<double>(), 6) << "\n";
      f << "(mean),,," << num(mp, 6) << "," << num(ms, 6) << "," << num(md, 6) << "\n";
      if (!f) throw sdk::Error(SINSR_ERR_IO, csv + ": cannot write");
    }
    if (!json_out.empty()) {
      std::ofstream f(json_out);
      // JSON has no infinity or NaN: identical pairs give psnr null there, a flat ground truth
      // detail null (and mean_detail null when no image has a gradient; detail_count says how many).
      f << nlohmann::json{{"images", rows},          {"mean_psnr", mp},     {"mean_ssim", ms},
                          {"mean_detail", md},       {"detail_count", n_d}, {"count", n},
                          {"border", border},        {"scale", scale},      {"mode", metrics::mode_name(mode)},
                          {"bicubic", pred.empty()}, {"problems", problems}}
               .dump(2)
        << "\n";
      if (!f) throw sdk::Error(SINSR_ERR_IO, json_out + ": cannot write");
    }
    for (auto& p : problems) std::cerr << "error: " << p << "\n";
    if (n == 0) std::cerr << "sinsr-host eval: no image pairs were evaluated: every pair failed\n";
    return problems.empty() && n > 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "sinsr-host eval: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace cli
}  // namespace sinsr
#endif  // SINSR_WITH_IMAGE_IO
