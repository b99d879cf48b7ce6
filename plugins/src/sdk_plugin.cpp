// Registration: the component descriptors a PluginBuilder collects, and sinsr_plugin_entry.
#include "sdk_internal.hpp"

#include <mutex>

namespace sinsr {
namespace sdk {

PluginBuilder& PluginBuilder::add(int32_t kind, ComponentMeta meta, const void* vtable) {
  require(!meta.name.empty(), SINSR_ERR_INVALID_ARGUMENT, "component without a name");
  require(vtable != nullptr || !meta.base.empty(), SINSR_ERR_INVALID_ARGUMENT,
          "component '" + meta.name + "': a model (no function table) must name its base");
  entries_.push_back(Entry{std::move(meta), kind, vtable});
  return *this;
}

namespace {
struct BuiltPlugin {
  std::string name, version;
  std::vector<ComponentMeta> metas;  // owns the strings the descriptor points into
  std::vector<sinsr_component> components;
  std::vector<const sinsr_component*> pointers;
  sinsr_plugin_info info{};
};
}  // namespace

const sinsr_plugin_info* PluginBuilder::finish(const char* plugin_name, const char* plugin_version) {
  auto* built = new BuiltPlugin();  // lives as long as the library
  built->name = plugin_name ? plugin_name : "";
  built->version = plugin_version ? plugin_version : "";
  built->components.resize(entries_.size());
  for (const Entry& e : entries_) built->metas.push_back(e.meta);  // sized once: c_str() stays valid
  for (size_t i = 0; i < entries_.size(); ++i) {
    const Entry& e = entries_[i];
    const ComponentMeta& m = built->metas[i];
    sinsr_component& c = built->components[i];
    c.struct_size = sizeof(sinsr_component);
    c.kind = e.kind;
    c.thread_safety = m.thread_safety;
    c.name = m.name.c_str();
    c.version = m.version.c_str();
    c.summary = m.summary.c_str();
    c.config_schema = m.config_schema.c_str();
    c.default_config = m.default_config.empty() ? nullptr : m.default_config.c_str();
    c.default_weights = m.default_weights.empty() ? nullptr : m.default_weights.c_str();
    c.vtable = e.vtable;
    c.base = m.base.empty() ? nullptr : m.base.c_str();
    c.preferred_pipeline = m.preferred_pipeline.empty() ? nullptr : m.preferred_pipeline.c_str();
    c.flags = m.flags;
  }
  for (auto& c : built->components) built->pointers.push_back(&c);
  built->info.struct_size = sizeof(sinsr_plugin_info);
  built->info.abi_version = SINSR_ABI_VERSION;
  // A model means nothing to a 1.0 host (it would see a component without a function table).
  bool needs_1_1 = false;
  for (const Entry& e : entries_) needs_1_1 = needs_1_1 || !e.meta.base.empty();
  built->info.min_abi_version = SINSR_MAKE_VERSION(SINSR_ABI_VERSION_MAJOR, needs_1_1 ? 1 : 0);
  built->info.name = built->name.c_str();
  built->info.version = built->version.c_str();
  built->info.num_components = built->pointers.size();
  built->info.components = built->pointers.data();
  return &built->info;
}

std::string describe_shape(at::IntArrayRef shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

void check_detected(const ShapeMap& given, const ShapeMap& expected, const std::string& what,
                    const std::function<bool(const std::string&)>& optional) {
  size_t unexpected = 0, missing = 0;
  std::string first;
  for (const auto& [key, shape] : given) {
    auto it = expected.find(key);
    if (it == expected.end()) {
      if (unexpected++ == 0 && first.empty()) first = "'" + key + "' is not in it";
    } else if (it->second != shape) {
      throw Error(SINSR_ERR_UNSUPPORTED, what + ": '" + key + "' is " + describe_shape(shape) + " in the weights, " +
                                             describe_shape(it->second) + " in the network the shapes describe");
    }
  }
  for (const auto& [key, shape] : expected)
    if (!given.count(key) && !(optional && optional(key)))
      if (missing++ == 0 && first.empty()) first = "the weights lack '" + key + "'";
  if (unexpected + missing > 0)
    throw Error(SINSR_ERR_UNSUPPORTED, what + ": the weights are not the network the shapes describe (" + first + "; " +
                                           std::to_string(unexpected) + " unexpected and " + std::to_string(missing) +
                                           " missing entries)");
}

sinsr_status* detail::detect_config(DetectFn detect, const sinsr_tensor_shape* const* entries, size_t count,
                                    sinsr_text_writer write, void* user) noexcept {
  // No prefix: the class's own message ("not a UNetModelSwin state dict: ...") is the answer.
  return guard("", [&] {
    require(write != nullptr, SINSR_ERR_INVALID_ARGUMENT, "detect_config: write is null");
    require(count == 0 || entries != nullptr, SINSR_ERR_INVALID_ARGUMENT, "detect_config: entries is null");
    ShapeMap shapes;
    for (size_t i = 0; i < count; ++i) {
      const sinsr_tensor_shape* e = entries[i];
      require(SINSR_HAS_FIELD(e, sinsr_tensor_shape, shape), SINSR_ERR_ABI,
              "detect_config: entry " + std::to_string(i) + " is null or its struct_size is too small");
      require(e->name != nullptr && e->ndim >= 0 && e->ndim <= 64 && (e->ndim == 0 || e->shape != nullptr),
              SINSR_ERR_INVALID_ARGUMENT, "detect_config: entry " + std::to_string(i) + " has no name or shape");
      shapes[e->name] = std::vector<int64_t>(e->shape, e->shape + e->ndim);
    }
    Detection d = detect(shapes);
    nlohmann::ordered_json out = {{"config", d.config}, {"assumed", d.assumed}};
    if (!d.assumed_from.empty()) out["assumed_from"] = d.assumed_from;
    const std::string text = out.dump();
    write(user, text.c_str());
  });
}

sinsr_status* plugin_entry(const sinsr_host_api* host_api, const sinsr_plugin_info** out, const char* name,
                           const char* version, void (*register_fn)(PluginBuilder&)) noexcept {
  if (host_api == nullptr || host_api->struct_size < offsetof(sinsr_host_api, log) ||
      host_api->status_create == nullptr)
    return nullptr;  // cannot even report; the host treats a missing descriptor as a refusal
  if (SINSR_VERSION_GET_MAJOR(host_api->abi_version) != SINSR_ABI_VERSION_MAJOR) {
    std::string msg = std::string("plugin '") + (name ? name : "?") + "' needs ABI " +
                      std::to_string(SINSR_ABI_VERSION_MAJOR) + ".x, host has " +
                      std::to_string(SINSR_VERSION_GET_MAJOR(host_api->abi_version)) + "." +
                      std::to_string(SINSR_VERSION_GET_MINOR(host_api->abi_version));
    return host_api->status_create(SINSR_ERR_ABI, msg.c_str());
  }
  set_host(host_api);
  internal::set_log_source(name);  // sdk::log names the plugin
  static std::mutex mutex;
  static const sinsr_plugin_info* info = nullptr;
  return guard("", [&] {
    require(out != nullptr, SINSR_ERR_INVALID_ARGUMENT, "out is null");
    std::lock_guard<std::mutex> lock(mutex);
    if (info == nullptr) {
      PluginBuilder builder;
      register_fn(builder);
      info = builder.finish(name, version);
    }
    *out = info;
  });
}

}  // namespace sdk
}  // namespace sinsr
