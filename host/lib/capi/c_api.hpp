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
