// Config text -> JSON, bounded: configs come from strangers (downloaded YAML files), so size,
// nesting and the expansion of YAML aliases are limited before anything large is built.
#include "sinsr/config.hpp"

#include "sinsr/sdk.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <unordered_set>
#include <vector>

namespace sinsr {
namespace config {
namespace {

[[noreturn]] void refuse(const std::string& origin, const std::string& what) {
  throw sdk::Error(SINSR_ERR_INVALID_ARGUMENT, origin + ": " + what);
}

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

// YAML anchors make the node tree a graph: an alias may point at its own ancestor (a cycle) or
// repeat a subtree many times over (an "alias bomb"). The conversion walks the graph as a tree,
// so it refuses a node that is its own ancestor and counts every value it writes.
class YamlToJson {
 public:
  YamlToJson(const std::string& origin, const ParseLimits& limits) : origin_(origin), limits_(limits) {}

  json convert(const YAML::Node& node) {
    if (++nodes_ > limits_.max_nodes)
      refuse(origin_, "more than " + std::to_string(limits_.max_nodes) +
                          " values (YAML aliases expanded; config::parse_limits().max_nodes)");
    switch (node.Type()) {
      case YAML::NodeType::Null:
      case YAML::NodeType::Undefined: return nullptr;
      case YAML::NodeType::Scalar: return scalar_to_json(node);
      case YAML::NodeType::Sequence:
      case YAML::NodeType::Map: break;
    }
    if (int(path_.size()) >= limits_.max_depth)
      refuse(origin_,
             "nesting deeper than " + std::to_string(limits_.max_depth) + " (config::parse_limits().max_depth)");
    for (const auto& up : path_)
      if (up.is(node)) refuse(origin_, "a YAML alias refers to a node that contains it (self-reference)");
    path_.push_back(node);
    json out;
    if (node.IsSequence()) {
      out = json::array();
      for (const auto& item : node) out.push_back(convert(item));
    } else {
      out = json::object();
      for (const auto& kv : node) {
        if (!kv.first.IsScalar()) refuse(origin_, "a mapping key must be a plain value");
        out[kv.first.Scalar()] = convert(kv.second);
      }
    }
    path_.pop_back();
    return out;
  }

 private:
  const std::string& origin_;
  const ParseLimits& limits_;
  std::vector<YAML::Node> path_;
  size_t nodes_ = 0;
};

// Depth, values and duplicate keys of a JSON text in one pass over its characters (strings are
// skipped, keys compared as written). Syntax errors are left to the parser that follows.
void scan_json(std::string_view text, const std::string& origin, const ParseLimits& limits) {
  struct Level {
    bool object;
    bool expect_key;
    std::unordered_set<std::string> keys;
  };
  std::vector<Level> stack;
  size_t nodes = 0;
  auto count = [&] {
    if (++nodes > limits.max_nodes)
      refuse(origin, "more than " + std::to_string(limits.max_nodes) + " values (config::parse_limits().max_nodes)");
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '"') {
      const size_t start = ++i;
      while (i < text.size() && text[i] != '"') i += text[i] == '\\' ? 2 : 1;
      if (i >= text.size()) return;  // unterminated: the parser says so
      if (!stack.empty() && stack.back().object && stack.back().expect_key) {
        std::string key(text.substr(start, i - start));
        if (!stack.back().keys.insert(key).second) refuse(origin, "duplicate key '" + key + "' in one object");
        stack.back().expect_key = false;
      } else {
        count();
      }
    } else if (c == '{' || c == '[') {
      if (int(stack.size()) >= limits.max_depth)
        refuse(origin,
               "nesting deeper than " + std::to_string(limits.max_depth) + " (config::parse_limits().max_depth)");
      count();
      stack.push_back({c == '{', c == '{', {}});
    } else if (c == '}' || c == ']') {
      if (!stack.empty()) stack.pop_back();
    } else if (c == ',') {
      if (!stack.empty() && stack.back().object) stack.back().expect_key = true;
    } else if (c != ':' && c != ' ' && c != '\t' && c != '\r' && c != '\n') {
      // A number, true, false or null: one value, whatever its length.
      count();
      while (i + 1 < text.size() && !std::strchr(",]}: \t\r\n", text[i + 1])) ++i;
    }
  }
}

}  // namespace

ParseLimits& parse_limits() {
  static ParseLimits limits;
  return limits;
}

json parse_json(std::string_view text, const std::string& origin, const ParseLimits& limits) {
  if (text.size() > limits.max_bytes)
    refuse(origin, "JSON text of " + std::to_string(text.size()) + " bytes exceeds the limit of " +
                       std::to_string(limits.max_bytes));
  scan_json(text, origin, limits);
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    refuse(origin, std::string("invalid JSON: ") + e.what());
  }
}

json parse(const std::string& text, const std::string& origin) {
  const ParseLimits limits = parse_limits();
  if (text.size() > limits.max_bytes)
    refuse(origin, "config text of " + std::to_string(text.size()) + " bytes exceeds the limit of " +
                       std::to_string(limits.max_bytes) + " (config::parse_limits().max_bytes)");
  auto first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && (text[first] == '{' || text[first] == '[')) return parse_json(text, origin, limits);
  try {
    YamlToJson convert(origin, limits);
    return convert.convert(YAML::Load(text));
  } catch (const YAML::Exception& e) {
    refuse(origin, std::string("invalid YAML/JSON: ") + e.what());
  }
}

json load_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw sdk::Error(SINSR_ERR_NOT_FOUND, path + ": cannot open config file");
  // A device or a pipe (/dev/zero) has no size to check and may never end.
  if (!std::filesystem::is_regular_file(path, ec))
    throw sdk::Error(SINSR_ERR_IO, path + ": not a regular file (a config must be a .yaml or .json file)");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw sdk::Error(SINSR_ERR_IO, path + ": cannot open config file");
  // At most one byte beyond the limit is read, whatever the file grows to meanwhile.
  const size_t limit = parse_limits().max_bytes;
  const uintmax_t size = std::filesystem::file_size(path, ec);
  std::string text(size_t(std::min<uintmax_t>(ec ? limit : size, limit)) + 1, '\0');
  in.read(&text[0], std::streamsize(text.size()));
  text.resize(size_t(in.gcount()));
  if (text.size() > limit)
    refuse(path, "config file larger than the limit of " + std::to_string(limit) +
                     " bytes (config::parse_limits().max_bytes)");
  return parse(text, path);
}

json parse_optional(const char* text, const std::string& origin) {
  if (text == nullptr || *text == '\0') return json::object();
  json j = parse(text, origin);
  return j.is_null() ? json::object() : j;
}

}  // namespace config
}  // namespace sinsr
