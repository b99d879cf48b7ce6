// sinsr-host eval: PSNR/SSIM and the detail ratio of predictions against ground truth, paired by file name (the
// official script pairs sorted lists by position, which silently mismatches), and NIQE where no ground truth exists.
#include "cli_common.hpp"
#include "commands.hpp"
#include "imaging/imresize.hpp"
#include "imaging/metrics.hpp"
#include "imaging/niqe.hpp"
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

namespace {

// The metrics eval can report, in table order; the first three need a ground truth.
const char* const kMetricNames[] = {"psnr", "ssim", "detail", "niqe"};
constexpr int kMetricCount = 4;
enum Metric { kPsnr, kSsim, kDetail, kNiqe };

struct Selection {
  bool on[kMetricCount] = {};
  bool any_reference() const { return on[kPsnr] || on[kSsim] || on[kDetail]; }
};

// "psnr,ssim,niqe" -> the set; an empty or unknown name is a usage error (message in `error`).
bool parse_metrics(const std::string& list, Selection& sel, std::string& error) {
  std::stringstream in(list);
  std::string name;
  bool any = false;
  while (std::getline(in, name, ',')) {
    int k = 0;
    while (k < kMetricCount && name != kMetricNames[k]) ++k;
    if (k == kMetricCount) {
      error = "--metrics: unknown metric '" + name + "' (psnr, ssim, detail, niqe)";
      return false;
    }
    sel.on[k] = any = true;
  }
  if (!any) error = "--metrics: name at least one of psnr, ssim, detail, niqe";
  return any;
}

// Running mean of one metric over the images where it is defined (NaN is left out).
struct Mean {
  double sum = 0;
  int n = 0;
  void add(double v) {
    if (!std::isnan(v)) sum += v, ++n;
  }
  double value() const { return n ? sum / n : std::nan(""); }
};

}  // namespace

int cmd_eval(const Args& args) {
  std::string pred, gt, bicubic_from, csv, json_out, suffix, mode_arg, metrics_arg;
  int scale = 4, border = -1;
  po::options_description opts = options_table(
      "sinsr-host eval (--pred DIR | --bicubic-from LR_DIR) [--gt DIR] [options]   (or one file each)\n"
      "Scores images and prints per-image values and their means. With --gt, pairs by file stem\n"
      "(pred/baby.png with gt/baby.*, never by position) and reports PSNR, SSIM and detail; without\n"
      "--gt it reports NIQE. Unpaired, duplicate or mismatched files are named and make the exit code 1.\n"
      "Metrics see 8-bit values (as a saved PNG); alpha is ignored; gray is replicated to RGB.\n"
      "  psnr, ssim  as --metric-mode says: y = the official calculate_psnr/ssim on the MATLAB Y channel\n"
      "              rounded to uint8 (the SR-paper convention); rgb = all channels; pyiqa = the official\n"
      "              evaluate.py (Y not rounded, SSIM with ReLU; it crops no border: add --crop-border 0)\n"
      "  detail      mean Sobel gradient of the prediction over the ground truth's (Y, same border):\n"
      "              1 = as much gradient, < 1 blurrier, > 1 sharper or noisier; nan for a flat ground truth\n"
      "  niqe        no reference needed: NIQE (BasicSR's calculate_niqe on the Y channel, no border, any\n"
      "              --metric-mode), how far the image's local statistics are from natural photos; lower is\n"
      "              more natural. It is blind to fidelity (a sharp invention scores well): read it beside\n"
      "              PSNR/SSIM where a ground truth exists, never instead. Needs a whole 96x96 block: a\n"
      "              smaller image gets nan (null in JSON) and is left out of the mean.\n"
      "--bicubic-from scores MATLAB-bicubic x<scale> upscales of LR images: a set's bicubic baseline.\n\n"
      "Options");
  // clang-format off
  opts.add_options()
    ("help,h", "this help")
    ("pred", po::value(&pred), "folder of predictions (or one image)")
    ("bicubic-from", po::value(&bicubic_from), "instead of --pred: MATLAB-bicubic x scale upscales of these LR images")
    ("gt", po::value(&gt), "folder of ground-truth images (needed by psnr, ssim, detail)")
    ("metrics", po::value(&metrics_arg), "comma-separated subset of psnr,ssim,detail,niqe\n"
                                         "(default: psnr,ssim,detail with --gt, niqe without)")
    ("pred-suffix", po::value(&suffix)->default_value(""), "strip this from prediction stems before pairing (e.g. _x4: baby_x4.png pairs baby.png)")
    ("scale", po::value(&scale)->default_value(4), "SR factor: the bicubic factor and the default border")
    ("crop-border", po::value(&border)->default_value(-1, "scale"), "pixels cropped on each side before psnr/ssim/detail")
    ("metric-mode", po::value(&mode_arg)->default_value("y"), "y | rgb | pyiqa (psnr and ssim)")
    ("csv", po::value(&csv), "write the per-image table and the means as CSV")
    ("json", po::value(&json_out), "write the table, the means and the problems as JSON");
  // clang-format on
  po::variables_map vm;
  if (int rc = parse_options(args, opts, vm, "eval"); rc >= 0) return rc;
  if (pred.empty() == bicubic_from.empty()) return usage_error("eval", "give exactly one of --pred and --bicubic-from");
  if (scale < 1) return usage_error("eval", "--scale must be at least 1");
  Selection sel;
  if (metrics_arg.empty()) metrics_arg = gt.empty() ? "niqe" : "psnr,ssim,detail";
  if (std::string why; !parse_metrics(metrics_arg, sel, why)) return usage_error("eval", why);
  if (sel.any_reference() && gt.empty())
    return usage_error("eval", "psnr, ssim and detail need --gt DIR (without it, --metrics niqe)");
  metrics::Mode mode;
  try {
    mode = metrics::parse_mode(mode_arg);
  } catch (const std::exception& e) {
    return usage_error("eval", error_text(e));
  }
  if (border < 0) border = scale;
  try {
    const std::string src = pred.empty() ? bicubic_from : pred;
    const std::string src_what = pred.empty() ? "LR image" : "prediction";
    io::Pairing paired = gt.empty() ? io::list_by_stem(src, pred.empty() ? "" : suffix)
                                    : io::pair_by_stem(src, gt, src_what, "ground truth", pred.empty() ? "" : suffix);
    std::vector<std::string>& problems = paired.problems;
    if (paired.pairs.empty()) {
      // Say why rather than print a table of nothing with zero means.
      for (auto& p : problems) std::cerr << "sinsr-host eval: " << p << "\n";
      const std::string why = paired.first_count == 0    ? "no images in " + src
                              : paired.second_count == 0 ? "no images in " + gt
                                                         : "no file names in common between " + src + " and " + gt;
      std::cerr << "sinsr-host eval: no " << (gt.empty() ? "images" : "image pairs") << " to evaluate: " << why << "\n";
      return 1;
    }

    const char* const headers[kMetricCount] = {"PSNR", "SSIM", "detail", "NIQE"};
    nlohmann::json rows = nlohmann::json::array();
    Mean means[kMetricCount];
    int n = 0;
    const int name_w = 24;
    std::cout << std::left << std::setw(name_w) << "image" << std::right << std::setw(12) << "size";
    for (int k = 0; k < kMetricCount; ++k)
      if (sel.on[k]) std::cout << std::setw(10) << headers[k];
    std::cout << "\n";
    for (const auto& [stem, pf, gf] : paired.pairs) {
      try {
        at::Tensor p = io::read_image(pf).pixels;
        if (pred.empty()) p = imaging::imresize(p, double(scale));
        double v[kMetricCount] = {std::nan(""), std::nan(""), std::nan(""), std::nan("")};
        const at::Tensor pu = io::color_uint8_hwc(p);
        std::string size = size_str(p);
        if (!gf.empty()) {
          at::Tensor g = io::read_image(gf).pixels;
          if (p.size(1) != g.size(1) || p.size(2) != g.size(2))
            throw sdk::Error(SINSR_ERR_INVALID_ARGUMENT,
                             pf + ": size " + size_str(p) + (pred.empty() ? " after x" + std::to_string(scale) : "") +
                                 " differs from the ground truth " + gf + " (" + size_str(g) + ")");
          const at::Tensor gu = io::color_uint8_hwc(g);
          if (sel.on[kPsnr] || sel.on[kSsim]) {
            metrics::Scores s = metrics::evaluate(pu, gu, border, mode);
            v[kPsnr] = s.psnr, v[kSsim] = s.ssim;
          }
          if (sel.on[kDetail]) v[kDetail] = metrics::detail(pu, gu, border);
        }
        if (sel.on[kNiqe]) v[kNiqe] = metrics::niqe(pu);
        std::cout << std::left << std::setw(name_w) << stem << std::right << std::setw(12) << size;
        nlohmann::json row{{"image", stem}, {"pred", pf}};
        if (!gf.empty()) row["gt"] = gf;
        for (int k = 0; k < kMetricCount; ++k)
          if (sel.on[k]) {
            std::cout << std::setw(10) << num(v[k], 4);
            row[kMetricNames[k]] = v[k];  // NaN becomes null
            means[k].add(v[k]);           // an infinite PSNR (identical images) stays in its mean
          }
        std::cout << "\n";
        ++n;
        rows.push_back(row);
      } catch (const std::exception& e) {
        problems.push_back(error_text(e));
      }
    }
    double m[kMetricCount];
    for (int k = 0; k < kMetricCount; ++k) m[k] = means[k].value();
    std::cout << std::left << std::setw(name_w) << "mean" << std::right << std::setw(12) << "";
    for (int k = 0; k < kMetricCount; ++k)
      if (sel.on[k]) std::cout << std::setw(10) << num(m[k], 4);
    std::cout << "   (" << n << " images";
    if (sel.on[kPsnr] || sel.on[kSsim]) std::cout << ", " << metrics::mode_name(mode);
    if (sel.any_reference()) std::cout << ", border " << border;
    if (sel.on[kDetail] && means[kDetail].n != n)
      std::cout << "; detail over " << means[kDetail].n << ": flat ground truth gives nan";
    if (sel.on[kNiqe] && means[kNiqe].n != n)
      std::cout << "; NIQE over " << means[kNiqe].n << ": no whole 96x96 block gives nan";
    std::cout << ")\n";
    if (!csv.empty()) {
      std::ofstream f(csv);
      f << "image,pred" << (gt.empty() ? "" : ",gt");
      for (int k = 0; k < kMetricCount; ++k)
        if (sel.on[k]) f << "," << kMetricNames[k];
      f << "\n";
      auto value = [](const nlohmann::json& j) { return j.is_null() ? std::nan("") : j.get<double>(); };
      for (auto& r : rows) {
        f << csv_field(r["image"].get<std::string>()) << "," << csv_field(r["pred"].get<std::string>());
        if (!gt.empty()) f << "," << csv_field(r["gt"].get<std::string>());
        for (int k = 0; k < kMetricCount; ++k)
          if (sel.on[k]) f << "," << num(value(r[kMetricNames[k]]), 6);
        f << "\n";
      }
      f << "(mean)," << (gt.empty() ? "" : ",");
      for (int k = 0; k < kMetricCount; ++k)
        if (sel.on[k]) f << "," << num(m[k], 6);
      f << "\n";
      if (!f) throw sdk::Error(SINSR_ERR_IO, csv + ": cannot write");
    }
    if (!json_out.empty()) {
      std::ofstream f(json_out);
      // JSON has no infinity or NaN: identical pairs give psnr null there, a flat ground truth
      // detail null, an image too small for NIQE niqe null; *_count says over how many a mean is.
      nlohmann::json top{
          {"images", rows}, {"count", n}, {"scale", scale}, {"bicubic", pred.empty()}, {"problems", problems}};
      if (sel.on[kPsnr]) top["mean_psnr"] = m[kPsnr];
      if (sel.on[kSsim]) top["mean_ssim"] = m[kSsim];
      if (sel.on[kDetail]) top["mean_detail"] = m[kDetail], top["detail_count"] = means[kDetail].n;
      if (sel.on[kNiqe]) top["mean_niqe"] = m[kNiqe], top["niqe_count"] = means[kNiqe].n;
      if (sel.any_reference()) top["border"] = border, top["mode"] = metrics::mode_name(mode);
      f << top.dump(2) << "\n";
      if (!f) throw sdk::Error(SINSR_ERR_IO, json_out + ": cannot write");
    }
    for (auto& p : problems) std::cerr << "sinsr-host eval: " << p << "\n";
    if (n == 0) std::cerr << "sinsr-host eval: no images were evaluated: every one failed\n";
    return problems.empty() && n > 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "sinsr-host eval: " << error_text(e) << "\n";
    return 1;
  }
}

}  // namespace cli
}  // namespace sinsr
