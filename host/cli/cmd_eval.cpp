// sinsr-host eval: PSNR/SSIM of predictions against ground truth, paired by file name (the
// official script pairs sorted lists by position, which silently mismatches).
#if SINSR_WITH_IMAGE_IO
#include "cli_common.hpp"
#include "commands.hpp"
#include "imresize.hpp"
#include "io/image_io.hpp"
#include "metrics.hpp"

#include <sinsr/sdk.hpp>

#include <nlohmann/json.hpp>

#include <boost/program_options.hpp>

#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>

namespace sinsr {
namespace cli {

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace {
at::Tensor to_u8(const at::Tensor& chw01) { return io::to_uint8_hwc(chw01.size(0) == 2 || chw01.size(0) == 4 ? chw01.narrow(0, 0, chw01.size(0) - 1) : chw01); }
}  // namespace

int cmd_eval(const Args& args) {
  std::string pred, gt, bicubic_from, csv, json_out, suffix, mode;
  int scale = 4, border = -1;
  po::options_description opts(
      "sinsr-host eval (--pred DIR | --bicubic-from LR_DIR) --gt DIR [options]\n"
      "PSNR and SSIM (the official calculate_psnr / calculate_ssim) per image and on average.\n\nOptions");
  // clang-format off
  opts.add_options()
    ("help,h", "this help")
    ("pred", po::value(&pred), "folder of predictions")
    ("bicubic-from", po::value(&bicubic_from), "instead of --pred: MATLAB-bicubic x scale upscales of these LR images")
    ("gt", po::value(&gt)->required(), "folder of ground-truth images (paired by file stem)")
    ("pred-suffix", po::value(&suffix)->default_value(""), "strip this from prediction stems before pairing (e.g. _x4)")
    ("scale", po::value(&scale)->default_value(4), "SR factor (default crop border)")
    ("crop-border", po::value(&border)->default_value(-1), "pixels cropped on each side (default: the scale)")
    ("mode", po::value(&mode)->default_value("y"), "y (MATLAB Y channel, the default) or rgb")
    ("csv", po::value(&csv), "write the per-image table as CSV")
    ("json", po::value(&json_out), "write the table and means as JSON");
  // clang-format on
  po::variables_map vm;
  if (int rc = parse_options(args, opts, vm, "eval"); rc >= 0) return rc;
  if (pred.empty() == bicubic_from.empty() || (mode != "y" && mode != "rgb")) {
    std::cerr << "sinsr-host eval: give exactly one of --pred and --bicubic-from, and --mode y or rgb\n";
    return 2;
  }
  if (border < 0) border = scale;
  const bool y = mode == "y";
  try {
    const std::string src = pred.empty() ? bicubic_from : pred;
    std::map<std::string, std::string> preds, gts;
    for (auto& f : io::list_images(src)) {
      std::string stem = fs::path(f).stem().string();
      if (!suffix.empty() && stem.size() > suffix.size() && stem.compare(stem.size() - suffix.size(), suffix.size(), suffix) == 0)
        stem.resize(stem.size() - suffix.size());
      preds[stem] = f;
    }
    for (auto& f : io::list_images(gt)) gts[fs::path(f).stem().string()] = f;
    std::vector<std::string> problems;
    for (auto& [stem, f] : preds)
      if (!gts.count(stem)) problems.push_back(f + ": no ground truth named " + stem + ".* in " + gt);
    for (auto& [stem, f] : gts)
      if (!preds.count(stem)) problems.push_back(f + ": no prediction for it in " + src);

    nlohmann::json rows = nlohmann::json::array();
    double sum_p = 0, sum_s = 0;
    int n = 0;
    std::cout << std::left << std::setw(24) << "image" << std::right << std::setw(10) << "PSNR" << std::setw(10) << "SSIM" << "\n";
    for (auto& [stem, gf] : gts) {
      auto it = preds.find(stem);
      if (it == preds.end()) continue;
      try {
        at::Tensor g = io::read_image(gf).pixels;
        at::Tensor p = io::read_image(it->second).pixels;
        if (pred.empty()) p = imaging::imresize(p, double(scale)).clamp(0.0, 1.0);
        if (p.size(1) != g.size(1) || p.size(2) != g.size(2))
          throw sdk::Error(SINSR_ERR_INVALID_ARGUMENT, it->second + ": size " + std::to_string(p.size(2)) + "x" +
                                                          std::to_string(p.size(1)) + " differs from the ground truth " +
                                                          std::to_string(g.size(2)) + "x" + std::to_string(g.size(1)));
        at::Tensor a = to_u8(p), b = to_u8(g);
        if (!y && a.size(2) != b.size(2)) {  // gray vs colour: compare as RGB
          if (a.size(2) == 1) a = a.expand({-1, -1, 3}).contiguous();
          if (b.size(2) == 1) b = b.expand({-1, -1, 3}).contiguous();
        }
        double ps = metrics::psnr(a, b, border, y), ss = metrics::ssim(a, b, border, y);
        std::cout << std::left << std::setw(24) << stem << std::right << std::fixed << std::setprecision(4) << std::setw(10)
                  << ps << std::setw(10) << ss << "\n";
        rows.push_back({{"image", stem}, {"psnr", ps}, {"ssim", ss}});
        sum_p += ps;
        sum_s += ss;
        ++n;
      } catch (const std::exception& e) {
        problems.push_back(e.what());
      }
    }
    double mp = n ? sum_p / n : 0, ms = n ? sum_s / n : 0;
    std::cout << std::left << std::setw(24) << "mean" << std::right << std::fixed << std::setprecision(4) << std::setw(10) << mp
              << std::setw(10) << ms << "   (" << n << " images, " << (y ? "Y channel" : "RGB") << ", border " << border << ")\n";
    if (!csv.empty()) {
      std::ofstream f(csv);
      f << "image,psnr,ssim\n";
      for (auto& r : rows) f << r["image"].get<std::string>() << "," << r["psnr"] << "," << r["ssim"] << "\n";
      if (!f) throw sdk::Error(SINSR_ERR_IO, csv + ": cannot write");
    }
    if (!json_out.empty()) {
      std::ofstream f(json_out);
      f << nlohmann::json{{"images", rows}, {"mean_psnr", mp}, {"mean_ssim", ms}, {"count", n}, {"border", border},
                          {"channel", y ? "y" : "rgb"}, {"problems", problems}}.dump(2) << "\n";
      if (!f) throw sdk::Error(SINSR_ERR_IO, json_out + ": cannot write");
    }
    for (auto& p : problems) std::cerr << "error: " << p << "\n";
    return problems.empty() && n > 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "sinsr-host eval: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace cli
}  // namespace sinsr
#endif  // SINSR_WITH_IMAGE_IO
