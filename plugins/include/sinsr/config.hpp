// Component configuration: JSON everywhere; YAML files (official configs) are read as is and
// converted to the same JSON.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace sinsr {
namespace config {

using json = nlohmann::json;

// Parses JSON text, or YAML text when it is not JSON. Errors name `origin`.
json parse(const std::string& text, const std::string& origin = "<config>");

// Reads a .json / .yaml / .yml file.
json load_file(const std::string& path);

// The parameters of one part of a config: given an official full config (`model.params`,
// `autoencoder.params`, `diffusion.params`), or a file whose top level holds `params`, or the
// parameters themselves. `section` is "model", "autoencoder" or "diffusion".
json section_params(const json& config, const std::string& section);

// A JSON argument that may be NULL or empty (-> {}).
json parse_optional(const char* text, const std::string& origin);

// What a component constructor should call on the JSON it receives: when it holds
// "config_file", that file is loaded and its `section` taken (section_params), then the other
// keys of `config` override it; otherwise section_params(config, section). For "autoencoder",
// scale_factor (diffusion.params.scale_factor, or a top-level scale_factor beside params) is
// copied into the result when the params lack it.
json resolve(const json& config, const std::string& section);

}  // namespace config
}  // namespace sinsr
