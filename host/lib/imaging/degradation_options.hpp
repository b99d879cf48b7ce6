// The options of the RealESRGAN degradation (degradation.hpp) and how they are read from a
// parsed official YAML or a flat JSON object, with their checks.
#pragma once

#include <nlohmann/json.hpp>

#include <array>
#include <string>
#include <vector>

namespace sinsr {
namespace degrade {

using Range = std::array<double, 2>;

// The kernel types random_mixed_kernel draws from, in the official order.
const std::vector<std::string>& kernel_types();

// The official parameters (the official SinSR.yaml: the `degradation` block and the kernel keys of
// `data.train.params`), with its values as defaults.
struct Options {
  int sf = 4;
  // First order.
  std::array<double, 3> resize_prob{0.2, 0.7, 0.1};  // up, down, keep
  Range resize_range{0.15, 1.5};
  double gaussian_noise_prob = 0.5;
  Range noise_range{1, 30};
  Range poisson_scale_range{0.05, 3.0};
  double gray_noise_prob = 0.4;
  Range jpeg_range{30, 95};
  // Second order.
  double second_order_prob = 0.5;
  double second_blur_prob = 0.8;
  std::array<double, 3> resize_prob2{0.3, 0.4, 0.3};
  Range resize_range2{0.3, 1.2};
  double gaussian_noise_prob2 = 0.5;
  Range noise_range2{1, 25};
  Range poisson_scale_range2{0.05, 2.5};
  double gray_noise_prob2 = 0.4;
  Range jpeg_range2{30, 95};
  bool resize_back = false;  // bicubic the LR back to the input size (official option, off)
  // Kernels. Sizes are drawn from range(3, blur_kernel_size, 2), as the official dataset does.
  int blur_kernel_size = 21;
  std::vector<std::string> kernel_list = kernel_types();
  std::vector<double> kernel_prob{0.45, 0.25, 0.12, 0.03, 0.12, 0.03};
  double sinc_prob = 0.1;
  Range blur_sigma{0.2, 3.0};
  Range betag_range{0.5, 4.0};
  Range betap_range{1, 2.0};
  int blur_kernel_size2 = 15;
  std::vector<std::string> kernel_list2 = kernel_types();
  std::vector<double> kernel_prob2{0.45, 0.25, 0.12, 0.03, 0.12, 0.03};
  double sinc_prob2 = 0.1;
  Range blur_sigma2{0.2, 1.5};
  Range betag_range2{0.5, 4.0};
  Range betap_range2{1, 2.0};
  double final_sinc_prob = 0.8;
};

// Options from JSON (a parsed official YAML): the blocks at `sections` (dotted paths, applied in
// order, later ones winning; the official layouts are data: defaults.json's
// "degradation"."sections", e.g. SinSR's data.train.params and ResShift's opts for the kernel
// keys, then the degradation block), or, when none is there, a flat object of the keys above.
// Keys not listed are ignored (the official blocks carry paths etc.); a listed key of the wrong
// type or size, or a probability/range out of bounds, throws SINSR_ERR_INVALID_ARGUMENT naming it.
Options options_from_json(const nlohmann::json& config, const std::vector<std::string>& sections = {});
// Checks the values (as options_from_json does); degrade() calls it too.
void validate(const Options& o);

}  // namespace degrade
}  // namespace sinsr
