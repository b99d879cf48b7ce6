#include "imaging/degradation_options.hpp"

#include <sinsr/sdk.hpp>

#include <algorithm>
#include <cmath>
#include <sstream>

namespace sinsr {
namespace degrade {

namespace {

using json = nlohmann::json;

[[noreturn]] void bad(const std::string& key, const std::string& what) {
  throw sdk::Error(SINSR_ERR_INVALID_ARGUMENT, "degradation option '" + key + "': " + what);
}

// ---- options from JSON ----

double number(const json& j, const std::string& key) {
  if (!j.is_number()) bad(key, "expected a number, got " + j.dump());
  return j.get<double>();
}

void read_number(const json& src, const char* key, double& dst) {
  if (src.contains(key)) dst = number(src.at(key), key);
}
void read_int(const json& src, const char* key, int& dst) {
  if (!src.contains(key)) return;
  const json& j = src.at(key);
  if (!j.is_number_integer() && !(j.is_number() && std::floor(j.get<double>()) == j.get<double>()))
    bad(key, "expected an integer, got " + j.dump());
  dst = static_cast<int>(j.get<double>());
}
void read_bool(const json& src, const char* key, bool& dst) {
  if (!src.contains(key)) return;
  const json& j = src.at(key);
  if (!j.is_boolean()) bad(key, "expected true or false, got " + j.dump());
  dst = j.get<bool>();
}
template <size_t N>
void read_array(const json& src, const char* key, std::array<double, N>& dst) {
  if (!src.contains(key)) return;
  const json& j = src.at(key);
  if (!j.is_array() || j.size() != N) bad(key, "expected a list of " + std::to_string(N) + " numbers, got " + j.dump());
  for (size_t i = 0; i < N; ++i) dst[i] = number(j[i], key);
}
void read_doubles(const json& src, const char* key, std::vector<double>& dst) {
  if (!src.contains(key)) return;
  const json& j = src.at(key);
  if (!j.is_array()) bad(key, "expected a list of numbers, got " + j.dump());
  dst.clear();
  for (const auto& v : j) dst.push_back(number(v, key));
}
void read_strings(const json& src, const char* key, std::vector<std::string>& dst) {
  if (!src.contains(key)) return;
  const json& j = src.at(key);
  if (!j.is_array()) bad(key, "expected a list of kernel names, got " + j.dump());
  dst.clear();
  for (const auto& v : j) {
    if (!v.is_string()) bad(key, "expected kernel names, got " + v.dump());
    dst.push_back(v.get<std::string>());
  }
}

void apply(const json& s, Options& o) {
  read_int(s, "sf", o.sf);
  read_array(s, "resize_prob", o.resize_prob);
  read_array(s, "resize_range", o.resize_range);
  read_number(s, "gaussian_noise_prob", o.gaussian_noise_prob);
  read_array(s, "noise_range", o.noise_range);
  read_array(s, "poisson_scale_range", o.poisson_scale_range);
  read_number(s, "gray_noise_prob", o.gray_noise_prob);
  read_array(s, "jpeg_range", o.jpeg_range);
  read_number(s, "second_order_prob", o.second_order_prob);
  read_number(s, "second_blur_prob", o.second_blur_prob);
  read_array(s, "resize_prob2", o.resize_prob2);
  read_array(s, "resize_range2", o.resize_range2);
  read_number(s, "gaussian_noise_prob2", o.gaussian_noise_prob2);
  read_array(s, "noise_range2", o.noise_range2);
  read_array(s, "poisson_scale_range2", o.poisson_scale_range2);
  read_number(s, "gray_noise_prob2", o.gray_noise_prob2);
  read_array(s, "jpeg_range2", o.jpeg_range2);
  read_bool(s, "resize_back", o.resize_back);
  read_int(s, "blur_kernel_size", o.blur_kernel_size);
  read_strings(s, "kernel_list", o.kernel_list);
  read_doubles(s, "kernel_prob", o.kernel_prob);
  read_number(s, "sinc_prob", o.sinc_prob);
  read_array(s, "blur_sigma", o.blur_sigma);
  read_array(s, "betag_range", o.betag_range);
  read_array(s, "betap_range", o.betap_range);
  read_int(s, "blur_kernel_size2", o.blur_kernel_size2);
  read_strings(s, "kernel_list2", o.kernel_list2);
  read_doubles(s, "kernel_prob2", o.kernel_prob2);
  read_number(s, "sinc_prob2", o.sinc_prob2);
  read_array(s, "blur_sigma2", o.blur_sigma2);
  read_array(s, "betag_range2", o.betag_range2);
  read_array(s, "betap_range2", o.betap_range2);
  read_number(s, "final_sinc_prob", o.final_sinc_prob);
}

// ---- validation ----

void check_prob(const char* key, double p) {
  if (!(p >= 0 && p <= 1)) bad(key, "probability " + std::to_string(p) + " is outside [0, 1]");
}
void check_range(const char* key, Range r, double lo, double hi) {
  if (!(r[0] <= r[1])) bad(key, "range [" + std::to_string(r[0]) + ", " + std::to_string(r[1]) + "] is reversed");
  if (!(r[0] >= lo && r[1] <= hi))
    bad(key, "range [" + std::to_string(r[0]) + ", " + std::to_string(r[1]) + "] must lie in [" + std::to_string(lo) +
                 ", " + std::to_string(hi) + "]");
}
void check_weights(const char* key, const double* w, size_t n) {
  double sum = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!(w[i] >= 0) || !std::isfinite(w[i])) bad(key, "weights must be finite and non-negative");
    sum += w[i];
  }
  if (!(sum > 0)) bad(key, "weights sum to zero");
}
void check_resize_range(const char* key, Range r) {
  // Down-scales are drawn from [r0, 1], up-scales from [1, r1].
  if (!(r[0] > 0 && r[0] <= 1 && r[1] >= 1 && std::isfinite(r[1])))
    bad(key, "expected [down, up] with 0 < down <= 1 <= up");
}
void check_kernels(const char* size_key, int size, const char* list_key, const std::vector<std::string>& list,
                   const char* prob_key, const std::vector<double>& prob, const char* sigma_key, Range sigma,
                   const char* bg_key, Range bg, const char* bp_key, Range bp) {
  // Sizes are drawn from range(3, size, 2) and zero-padded to size, so size must be odd and >= 5.
  if (size < 5 || size % 2 == 0) bad(size_key, "must be an odd number >= 5, got " + std::to_string(size));
  // The official code pads every kernel to 21 (a larger size fails there); the cost grows as its square.
  if (size > 21)
    bad(size_key, "must be at most 21 (the official kernels are padded to 21), got " + std::to_string(size));
  if (list.empty()) bad(list_key, "is empty");
  for (const auto& n : list)
    if (std::find(kernel_types().begin(), kernel_types().end(), n) == kernel_types().end())
      bad(list_key, "unknown kernel type '" + n + "'");
  if (prob.size() != list.size())
    bad(prob_key,
        "has " + std::to_string(prob.size()) + " entries for " + std::to_string(list.size()) + " kernel types");
  check_weights(prob_key, prob.data(), prob.size());
  check_range(sigma_key, sigma, 1e-6, 1e6);
  check_range(bg_key, bg, 1e-6, 1e6);
  check_range(bp_key, bp, 1e-6, 1e6);
  if (bg[0] > 1 || bg[1] < 1) bad(bg_key, "must contain 1 (beta is drawn from [min, 1] or [1, max])");
  if (bp[0] > 1 || bp[1] < 1) bad(bp_key, "must contain 1 (beta is drawn from [min, 1] or [1, max])");
}

}  // namespace

const std::vector<std::string>& kernel_types() {
  static const std::vector<std::string> names{"iso",         "aniso",        "generalized_iso", "generalized_aniso",
                                              "plateau_iso", "plateau_aniso"};
  return names;
}

void validate(const Options& o) {
  if (o.sf < 1) bad("sf", "must be >= 1");
  check_weights("resize_prob", o.resize_prob.data(), 3);
  check_resize_range("resize_range", o.resize_range);
  check_prob("gaussian_noise_prob", o.gaussian_noise_prob);
  check_range("noise_range", o.noise_range, 0, 1e6);
  check_range("poisson_scale_range", o.poisson_scale_range, 0, 1e6);
  check_prob("gray_noise_prob", o.gray_noise_prob);
  check_range("jpeg_range", o.jpeg_range, 1, 100);
  check_prob("second_order_prob", o.second_order_prob);
  check_prob("second_blur_prob", o.second_blur_prob);
  check_weights("resize_prob2", o.resize_prob2.data(), 3);
  check_resize_range("resize_range2", o.resize_range2);
  check_prob("gaussian_noise_prob2", o.gaussian_noise_prob2);
  check_range("noise_range2", o.noise_range2, 0, 1e6);
  check_range("poisson_scale_range2", o.poisson_scale_range2, 0, 1e6);
  check_prob("gray_noise_prob2", o.gray_noise_prob2);
  check_range("jpeg_range2", o.jpeg_range2, 1, 100);
  check_kernels("blur_kernel_size", o.blur_kernel_size, "kernel_list", o.kernel_list, "kernel_prob", o.kernel_prob,
                "blur_sigma", o.blur_sigma, "betag_range", o.betag_range, "betap_range", o.betap_range);
  check_prob("sinc_prob", o.sinc_prob);
  check_kernels("blur_kernel_size2", o.blur_kernel_size2, "kernel_list2", o.kernel_list2, "kernel_prob2",
                o.kernel_prob2, "blur_sigma2", o.blur_sigma2, "betag_range2", o.betag_range2, "betap_range2",
                o.betap_range2);
  check_prob("sinc_prob2", o.sinc_prob2);
  check_prob("final_sinc_prob", o.final_sinc_prob);
}

Options options_from_json(const json& config, const std::vector<std::string>& sections) {
  if (!config.is_object())
    throw sdk::Error(SINSR_ERR_INVALID_ARGUMENT, "degradation options: expected an object, got " + config.dump());
  Options o;
  bool sectioned = false;
  for (const auto& path : sections) {
    const json* at = &config;
    std::stringstream parts(path);
    for (std::string key; at && std::getline(parts, key, '.');)
      at = at->is_object() && at->contains(key) ? &(*at)[key] : nullptr;
    if (!at || !at->is_object()) continue;
    apply(*at, o);
    sectioned = true;
  }
  if (!sectioned) apply(config, o);
  validate(o);
  return o;
}

}  // namespace degrade
}  // namespace sinsr
