// Reading a state dict's names and shapes inside a component's static detect(). While the
// signature keys are read a missing key means "not this network" (NOT_FOUND: the host asks the
// next component); once the keys are known to be this network's it means a variant the
// component cannot build (UNSUPPORTED). Messages carry no component name: the host adds it.
#pragma once

#include <sinsr/sdk.hpp>

#include <string>
#include <vector>

namespace sinsr {
namespace sdk {

// The shape of `key`, or nullptr.
inline const std::vector<int64_t>* find_shape(const ShapeMap& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? nullptr : &it->second;
}

// `cannot` names the refusal, e.g. "a UNetModelSwin this backbone cannot build".
[[noreturn]] inline void refuse_variant(const std::string& cannot, const std::string& why) {
  throw Error(SINSR_ERR_UNSUPPORTED, cannot + ": " + why);
}

// The shape of `key` with `ndim` dimensions. Missing or of another rank: NOT_FOUND ("not a
// <network> state dict") for a signature key, else refuse_variant(cannot, ...).
inline const std::vector<int64_t>& need_shape(const ShapeMap& m, const std::string& key, size_t ndim, bool signature,
                                              const std::string& network, const std::string& cannot) {
  const std::vector<int64_t>* s = find_shape(m, key);
  std::string why;
  if (s == nullptr)
    why = "no '" + key + "'";
  else if (s->size() != ndim)
    why = "'" + key + "' is " + describe_shape(*s) + ", not " + std::to_string(ndim) + "-D";
  if (why.empty()) return *s;
  if (signature) throw Error(SINSR_ERR_NOT_FOUND, "not a " + network + " state dict (" + why + ")");
  refuse_variant(cannot, why);
}

}  // namespace sdk
}  // namespace sinsr
