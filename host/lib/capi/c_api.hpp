// Shared by the files implementing abi/sinsr_host.h.
#pragma once

#include "runtime/runtime.hpp"

#include <functional>

namespace sinsr {
namespace host {

// Runs body, converting exceptions to a status and remembering the message for
// sinsr_last_error() on this thread.
sinsr_status* c_guard(const char* where, const std::function<void()>& body) noexcept;
const char* t_last_error_ptr() noexcept;

}  // namespace host
}  // namespace sinsr

// The opaque runtime handle of the C API.
struct sinsr_runtime;
sinsr::host::Runtime& runtime_of(sinsr_runtime* runtime);

namespace sinsr {
namespace host {

// Pixels across the C API: uint8, uint16 (DLPack kDLUInt 16, which LibTorch 1.13 cannot hold:
// read as its bits) or floating. Integer samples become float32 in [0, 1] as the image reader
// scales them; `bits` is 8, 16, or 32 for floating input (`dtype` keeps its type).
struct Samples {
  at::Tensor pixels;
  int bits = 32;
  at::ScalarType dtype = at::kFloat;
};
// Consumes m (its deleter runs on every path).
Samples take_samples(DLManagedTensor* m);
// float [0, 1] pixels back in the caller's sample type: 8/16 bits rounded as the image writer
// rounds (NaN 0, clamped, half to even), 32 as `dtype`.
DLManagedTensor* give_samples(const at::Tensor& pixels01, int bits, at::ScalarType dtype);

}  // namespace host
}  // namespace sinsr
