// The official-YAML adapter: the only code that knows the section names of an official SinSR /
// ResShift config (model, autoencoder, diffusion) and how a component's params sit in it.
#include "sinsr/config.hpp"

#include "sinsr/sdk.hpp"

namespace sinsr {
namespace config {
namespace official {
namespace {

const char* section_name(Section s) {
  switch (s) {
    case Section::Model: return "model";
    case Section::Autoencoder: return "autoencoder";
    case Section::Diffusion: return "diffusion";
  }
  return "?";
}

// An object's member that is itself an object, or nullptr.
const json* member_object(const json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it != j.end() && it->is_object() ? &*it : nullptr;
}

// True when `config` is laid out as an official file: the section (or a top-level `params`).
bool is_official(const json& config, Section section) {
  return member_object(config, section_name(section)) != nullptr || member_object(config, "params") != nullptr;
}

// The section's params: section.params (or the section itself), else a top-level params.
json section_params(const json& source, Section section) {
  if (const json* sec = member_object(source, section_name(section))) {
    auto params = sec->find("params");
    return params != sec->end() ? *params : *sec;
  }
  if (const json* params = member_object(source, "params")) return *params;
  return source;
}

// `known` null: keep every key (the old resolve()).
json adapt(const json& config, Section section, const std::set<std::string>* known) {
  if (!config.is_object()) return config;
  json source;
  auto file = config.find("config_file");
  const bool from_file = file != config.end();
  if (from_file) {
    if (!file->is_string())
      throw sdk::Error(SINSR_ERR_INVALID_ARGUMENT, "'config_file' must be a path string, got " +
                                                       file->dump(-1, ' ', false, json::error_handler_t::replace));
    source = load_file(file->get<std::string>());
  } else if (is_official(config, section)) {
    source = config;
  } else {
    return config;  // the component's native config
  }
  const bool official_layout = is_official(source, section);
  json result = section_params(source, section);
  if (result.is_null()) result = json::object();
  if (!result.is_object())
    throw sdk::Error(SINSR_ERR_INVALID_ARGUMENT, std::string(from_file ? file->get<std::string>() : "config") +
                                                     ": the " + section_name(section) + " params must be a mapping");
  // A native file (no section, no params) is the component's own config: nothing is dropped.
  if (known && official_layout) {
    for (auto it = result.begin(); it != result.end();) {
      if (known->count(it.key()))
        ++it;
      else
        it = result.erase(it);
    }
  }
  if (section == Section::Autoencoder && !result.contains("scale_factor") && (!known || known->count("scale_factor"))) {
    const json* diffusion = member_object(source, "diffusion");
    const json* dparams = diffusion ? member_object(*diffusion, "params") : nullptr;
    if (dparams && dparams->contains("scale_factor"))
      result["scale_factor"] = (*dparams)["scale_factor"];
    else if (member_object(source, "params") && source.contains("scale_factor"))
      result["scale_factor"] = source["scale_factor"];
  }
  if (from_file)
    for (auto it = config.begin(); it != config.end(); ++it)
      if (it.key() != "config_file") result[it.key()] = it.value();
  return result;
}

}  // namespace

json params(const json& config, Section section, const std::set<std::string>& known) {
  return adapt(config, section, &known);
}

json native_file(const json& config) {
  if (!config.is_object()) return config;
  auto file = config.find("config_file");
  if (file == config.end() || !file->is_string()) return config;  // a component's own refusal
  json source = load_file(file->get<std::string>());
  for (const char* part : {"model", "autoencoder", "diffusion", "params"})
    if (member_object(source, part)) return config;
  if (!source.is_object())
    throw sdk::Error(SINSR_ERR_INVALID_ARGUMENT, file->get<std::string>() + ": a config file must hold a mapping");
  for (auto it = config.begin(); it != config.end(); ++it)
    if (it.key() != "config_file") source[it.key()] = it.value();
  return source;
}

}  // namespace official

json resolve(const json& config, const std::string& section) {
  official::Section s;
  if (section == "model")
    s = official::Section::Model;
  else if (section == "autoencoder")
    s = official::Section::Autoencoder;
  else if (section == "diffusion")
    s = official::Section::Diffusion;
  else
    throw sdk::Error(SINSR_ERR_INVALID_ARGUMENT, "config::resolve: unknown official section '" + section + "'");
  json result = official::adapt(config, s, nullptr);
  return result.is_object() ? result : json::object();
}

}  // namespace config
}  // namespace sinsr
