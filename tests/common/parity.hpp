// Test helpers: where the parity vectors are, and typed access into their dicts.
#pragma once

#include <sinsr/checkpoint.hpp>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

namespace sinsr_test {

inline std::string parity_dir() {
  const char* env = std::getenv("SINSR_PARITY_DIR");
  return (env && *env) ? std::string(env) : std::string(SINSR_DEFAULT_PARITY_DIR);
}
inline std::string parity_file(const std::string& name) { return parity_dir() + "/" + name; }
inline std::string data_dir() {
  const char* env = std::getenv("SINSR_DATA_DIR");
  return (env && *env) ? std::string(env) : std::string(SINSR_DEFAULT_DATA_DIR);
}

// Loads a parity .pth through the project's own checkpoint reader.
inline c10::IValue load(const std::string& name) { return sinsr::ckpt::read_file(parity_file(name)); }

inline c10::IValue at_key(const c10::IValue& dict, const std::string& key) {
  auto d = dict.toGenericDict();
  auto it = d.find(c10::IValue(key));
  if (it == d.end()) throw std::runtime_error("parity key missing: " + key);
  return it->value();
}
inline at::Tensor tensor(const c10::IValue& dict, const std::string& key) { return at_key(dict, key).toTensor(); }

// max |a - b| <= atol + rtol * |b|, reporting the worst element.
inline ::testing::AssertionResult all_close(const at::Tensor& a, const at::Tensor& b, double atol, double rtol = 0) {
  if (a.sizes() != b.sizes()) return ::testing::AssertionFailure() << "shape " << a.sizes() << " vs " << b.sizes();
  auto a64 = a.to(at::kDouble), b64 = b.to(at::kDouble);
  auto excess = (a64 - b64).abs() - (atol + rtol * b64.abs());
  double worst = excess.max().item<double>();
  if (worst <= 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "max |a-b| = " << (a64 - b64).abs().max().item<double>() << " exceeds atol "
                                       << atol << " rtol " << rtol;
}

}  // namespace sinsr_test
