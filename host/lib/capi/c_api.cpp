// The host C API (abi/sinsr_host.h): every entry point converts exceptions into a status and
// records the message for sinsr_last_error().
#include "capi/c_api.hpp"

#include <string>

namespace sinsr {
namespace host {

namespace {
thread_local std::string t_last_error;
}

sinsr_status* c_guard(const char* where, const std::function<void()>& body) noexcept {
  sinsr_status* st = sdk::guard(where, body);
  try {
    t_last_error = st ? host_api()->status_message(st) : "";
  } catch (...) {
  }
  return st;
}

const char* t_last_error_ptr() noexcept { return t_last_error.c_str(); }

}  // namespace host
}  // namespace sinsr

using sinsr::host::c_guard;
using sinsr::host::Runtime;
using sinsr::sdk::Error;
using sinsr::sdk::require;

struct sinsr_runtime {
  Runtime impl;
  // The process's thread counts are left as they are: each pipeline applies its own around its work.
  explicit sinsr_runtime(int threads) : impl(threads, Runtime::ThreadsLeft::Alone) {}
};

Runtime& runtime_of(sinsr_runtime* runtime) {
  require(runtime != nullptr, SINSR_ERR_INVALID_ARGUMENT, "runtime is null");
  return runtime->impl;
}

extern "C" {

SINSR_API int32_t sinsr_status_code(const sinsr_status* status) { return sinsr::host::host_api()->status_code(status); }

SINSR_API const char* sinsr_status_message(const sinsr_status* status) {
  return sinsr::host::host_api()->status_message(status);
}

SINSR_API void sinsr_status_release(sinsr_status* status) {
  if (status) sinsr::host::host_api()->status_release(status);
}

SINSR_API const char* sinsr_last_error(void) { return sinsr::host::t_last_error_ptr(); }

SINSR_API void sinsr_log_set(sinsr_log_callback callback, void* user, int32_t min_level) {
  sinsr::host::set_log(callback, user, min_level);
}

SINSR_API sinsr_runtime_options sinsr_runtime_default_options(void) {
  sinsr_runtime_options o{};
  o.struct_size = sizeof(o);
  o.num_threads = 0;
  o.load_default_paths = 1;
  return o;
}

SINSR_API sinsr_status* sinsr_runtime_create(const sinsr_runtime_options* options, sinsr_runtime** out) {
  return c_guard("sinsr_runtime_create", [&] {
    require(out != nullptr, SINSR_ERR_INVALID_ARGUMENT, "out is null");
    *out = nullptr;
    int threads = 0;
    bool defaults = false;
    if (options) {
      require(options->struct_size >= offsetof(sinsr_runtime_options, num_threads) + sizeof(int32_t), SINSR_ERR_ABI,
              "sinsr_runtime_options.struct_size too small");
      threads = options->num_threads;
      if (SINSR_HAS_FIELD(options, sinsr_runtime_options, load_default_paths))
        defaults = options->load_default_paths != 0;
    }
    auto rt = std::make_unique<sinsr_runtime>(threads);
    if (defaults) {
      for (const auto& refused : rt->impl.load_default_paths())
        sinsr::host::host_api()->log(SINSR_LOG_WARNING, "sinsr", refused.c_str());
    }
    *out = rt.release();
  });
}

SINSR_API void sinsr_runtime_destroy(sinsr_runtime* runtime) { delete runtime; }

SINSR_API sinsr_status* sinsr_runtime_load(sinsr_runtime* runtime, const char* path) {
  return c_guard("sinsr_runtime_load", [&] {
    require(runtime != nullptr && path != nullptr, SINSR_ERR_INVALID_ARGUMENT, "null runtime or path");
    runtime->impl.load(path);
  });
}

SINSR_API sinsr_status* sinsr_runtime_component_count(const sinsr_runtime* runtime, size_t* count) {
  return c_guard("sinsr_runtime_component_count", [&] {
    require(runtime != nullptr && count != nullptr, SINSR_ERR_INVALID_ARGUMENT, "null runtime or count");
    *count = runtime->impl.components().size();
  });
}

SINSR_API sinsr_status* sinsr_runtime_component_info(const sinsr_runtime* runtime, size_t index,
                                                     sinsr_component_info* out) {
  return c_guard("sinsr_runtime_component_info", [&] {
    require(runtime != nullptr && out != nullptr, SINSR_ERR_INVALID_ARGUMENT, "null runtime or out");
    require(out->struct_size >= offsetof(sinsr_component_info, abi_version) + sizeof(uint32_t), SINSR_ERR_ABI,
            "sinsr_component_info.struct_size too small");
    const auto& all = runtime->impl.components();
    require(index < all.size(), SINSR_ERR_INVALID_ARGUMENT, "component index out of range");
    const auto& c = *all[index];
    out->kind = c.desc->kind;
    out->thread_safety = c.desc->thread_safety;
    out->name = c.desc->name;
    out->version = c.desc->version ? c.desc->version : "";
    out->summary = c.desc->summary ? c.desc->summary : "";
    out->config_schema = c.desc->config_schema ? c.desc->config_schema : "{}";
    out->file = c.file.c_str();
    out->plugin_name = c.plugin_name.c_str();
    out->abi_version = c.abi_version;
  });
}

SINSR_API sinsr_status* sinsr_runtime_find(const sinsr_runtime* runtime, int32_t kind, const char* name,
                                           const sinsr_component** out) {
  return c_guard("sinsr_runtime_find", [&] {
    require(runtime != nullptr && name != nullptr && out != nullptr, SINSR_ERR_INVALID_ARGUMENT, "null argument");
    *out = runtime->impl.find(kind, name)->desc;
  });
}

SINSR_API const sinsr_host_api* sinsr_runtime_host_api(const sinsr_runtime* runtime) {
  (void)runtime;
  return sinsr::host::host_api();
}

}  // extern "C"
