// What the SDK's source files share (not installed; nothing here is public API).
#pragma once

#include "sinsr/config.hpp"
#include "sinsr/layers.hpp"
#include "sinsr/sdk.hpp"

#include <deque>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace sinsr {
namespace sdk {
namespace internal {

// Adopts every input up front so each deleter runs exactly once, whatever fails later.
std::vector<at::Tensor> adopt(std::initializer_list<DLManagedTensor*> inputs);

// Tables live as long as the library; a deque never moves its elements.
template <class T>
T* keep(const T& table) {
  static std::mutex mutex;
  static std::deque<T> tables;
  std::lock_guard<std::mutex> lock(mutex);
  tables.push_back(table);
  return &tables.back();
}

// create_with's options (ABI 1.3), checked: whether parameters are drawn ({"init": "none"}: no).
bool initialise_option(const char* options_json);

// Parses the config, constructs the instance and boxes it; every exception becomes a status.
template <class Box, class Base, class Handle>
sinsr_status* create_boxed(Base* (*factory)(const json&), const char* config, const char* options,
                           Handle** out) noexcept {
  return guard("create", [&] {
    require(out != nullptr, SINSR_ERR_INVALID_ARGUMENT, "out is null");
    *out = nullptr;
    json cfg = config::official::native_file(config::parse_optional(config, "component config"));
    const bool initialise = initialise_option(options);
    auto box = std::make_unique<Box>();
    {
      ParameterInitScope scope(initialise);
      box->impl.reset(factory(cfg));
    }
    *out = reinterpret_cast<Handle*>(box.release());
  });
}

void load_module_weights(torch::nn::Module& module, const std::string& path, const json& options);
// Integer buffers (index tables) keep their dtype; only floating tensors change precision.
void move_module(torch::nn::Module& module, c10::Device device, at::ScalarType dtype);

// The unit strings an instance has handed out: the ABI keeps them valid while it lives, and a
// set never moves its nodes.
struct UnitStore {
  std::mutex mutex;
  std::set<std::string> units;
};
// The source sdk::log reports (the plugin's name; "sinsr" in the host's own copy). `source`
// must outlive the library (SINSR_PLUGIN passes a literal).
void set_log_source(const char* source) noexcept;

// Fills a caller-sized sinsr_timestep_info (ABI 1.1 timestep_kind).
void write_timesteps(const Timesteps& ts, UnitStore& store, sinsr_timestep_info* out);

}  // namespace internal
}  // namespace sdk
}  // namespace sinsr
