#include "sinsr/config.hpp"

#include "sinsr/sdk.hpp"

#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace sinsr {
namespace config {
namespace {

// YAML scalars carry no type; take the first of null, bool, integer, float that parses.
json scalar_to_json(const YAML::Node& node) {
  const std::string& s = node.Scalar();
  if (node.Tag() == "!") return s;  // quoted
  if (s == "~" || s == "null" || s == "Null" || s == "NULL" || s.empty()) return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  {
    char* end = nullptr;
    errno = 0;
    long long v = std::strtoll(s.c_str(), &end, 10);
    if (errno == 0 && end && *end == '\0') return v;
  }
  {
    char* end = nullptr;
    errno = 0;
    double v = std::strtod(s.c_str(), &end);
    if (errno == 0 && end && *end == '\0') return v;
  }
  return s;
}

json yaml_to_json(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
    case YAML::NodeType::Scalar:
      return scalar_to_json(node);
    case YAML::NodeType::Sequence: {
      json a = json::array();
      for (const auto& item : node) a.push_back(yaml_to_json(item));
      return a;
    }
    case YAML::NodeType::Map: {
      json o = json::object();
      for (const auto& kv : node) o[kv.first.as<std::string>()] = yaml_to_json(kv.second);
      return o;
    }
  }
  return nullptr;
}

}  // namespace

json parse(const std::string& text, const std::string& origin) {
  auto first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && (text[first] == '{' || text[first] == '[')) {
    try {
      return json::parse(text);
    } catch (const json::exception& e) {
      throw sdk::Error(SINSR_ERR_INVALID_ARGUMENT, origin + ": invalid JSON: " + e.what());
    }
  }
  try {
    return yaml_to_json(YAML::Load(text));
  } catch (const YAML::Exception& e) {
    throw sdk::Error(SINSR_ERR_INVALID_ARGUMENT, origin + ": invalid YAML/JSON: " + e.what());
  }
}

json load_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw sdk::Error(SINSR_ERR_NOT_FOUND, path + ": cannot open config file");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse(ss.str(), path);
}

json section_params(const json& config, const std::string& section) {
  if (!config.is_object()) return config;
  auto sec = config.find(section);
  if (sec != config.end() && sec->is_object()) {
    auto params = sec->find("params");
    return params != sec->end() ? *params : *sec;
  }
  auto params = config.find("params");
  if (params != config.end() && params->is_object()) return *params;
  return config;
}

json parse_optional(const char* text, const std::string& origin) {
  if (text == nullptr || *text == '\0') return json::object();
  json j = parse(text, origin);
  return j.is_null() ? json::object() : j;
}

json resolve(const json& config, const std::string& section) {
  json base = config.is_object() ? config : json::object();
  json source = base;
  auto file = base.find("config_file");
  if (file != base.end()) {
    if (!file->is_string()) throw sdk::Error(SINSR_ERR_INVALID_ARGUMENT, "config_file must be a path string");
    source = load_file(file->get<std::string>());
  }
  json result = section_params(source, section);
  if (!result.is_object()) result = json::object();
  if (section == "autoencoder" && !result.contains("scale_factor")) {
    if (source.contains("diffusion") && source["diffusion"].is_object() &&
        source["diffusion"].value("params", json::object()).contains("scale_factor"))
      result["scale_factor"] = source["diffusion"]["params"]["scale_factor"];
    else if (source.contains("params") && source.contains("scale_factor"))
      result["scale_factor"] = source["scale_factor"];
  }
  if (file != base.end()) {
    for (auto it = base.begin(); it != base.end(); ++it)
      if (it.key() != "config_file") result[it.key()] = it.value();
  }
  return result;
}

}  // namespace config
}  // namespace sinsr
