// Component configuration: JSON everywhere; YAML files (official configs) are read as is and
// converted to the same JSON. Three layers:
//  - parse / load_file: text -> JSON, bounded (nesting depth, node count, size; YAML aliases);
//  - Reader: the one strict reader every plugin uses for its native config (typed getters with
//    defaults and ranges, errors naming the component and the key, unread keys refused);
//  - official: the adapter from an official SinSR/ResShift YAML (model / autoencoder /
//    diffusion sections) to one component's params; the only place that knows those names.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <limits>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace sinsr {
namespace config {

using json = nlohmann::json;

// What parse() accepts; beyond it the text is refused (SINSR_ERR_INVALID_ARGUMENT naming the
// limit) before anything large is built. A process may raise them (e.g. for generated configs).
struct ParseLimits {
  size_t max_bytes = size_t(16) << 20;  // text size
  int max_depth = 128;                  // nested arrays / objects
  size_t max_nodes = 1000000;           // values after YAML aliases are expanded
};
ParseLimits& parse_limits();

// Parses JSON text, or YAML text when it is not JSON. Errors name `origin`.
json parse(const std::string& text, const std::string& origin = "<config>");

// JSON text only, under `limits`: depth, value count and duplicate keys checked in one linear
// pass before it is parsed (nlohmann's callback parser was quadratic in the number of keys).
json parse_json(std::string_view text, const std::string& origin, const ParseLimits& limits);

// Reads a .json / .yaml / .yml file.
json load_file(const std::string& path);

// A JSON argument that may be NULL or empty (-> {}).
json parse_optional(const char* text, const std::string& origin);

// Allowed values of an integer; the default range is that of a 32-bit int, so every value read
// fits the int fields options structs use.
struct IntRange {
  int64_t min = std::numeric_limits<int32_t>::min();
  int64_t max = std::numeric_limits<int32_t>::max();
  static IntRange at_least(int64_t lo) { return {lo, std::numeric_limits<int32_t>::max()}; }
  static IntRange between(int64_t lo, int64_t hi) { return {lo, hi}; }
  bool operator()(int64_t v) const { return v >= min && v <= max; }
  std::string describe() const;  // "an integer >= 1", "an integer in [1, 64]"
};

// Allowed values of a number. NaN and infinities are never allowed.
struct Range {
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
  bool min_open = false, max_open = false;
  static Range any() { return {}; }
  static Range at_least(double lo) { return {lo, std::numeric_limits<double>::infinity(), false, false}; }
  static Range above(double lo) { return {lo, std::numeric_limits<double>::infinity(), true, false}; }
  static Range between(double lo, double hi) { return {lo, hi, false, false}; }
  bool operator()(double v) const;
  std::string describe() const;  // "a finite number > 0", "a number in [0, 1]"
};

// The strict reader of one component's config object. Every getter takes the key, the default
// used when the key is absent or null, and what is allowed; a wrong type or a value out of range
// throws sdk::Error(SINSR_ERR_INVALID_ARGUMENT) reading
//   <who>: '<key>' must be <what>, got <value>
// e.g. sampler 'ddpm': 'steps' must be an integer >= 1, got "x".
// finish() then refuses every key no getter asked for, naming it and the known keys. Keys of a
// nested object (object()) are named with their path ('ddconfig.ch') and checked by the same
// finish(). Integers are JSON integers (an integral float such as 2.0 is taken; 32.9 is not).
class Reader {
 public:
  // `who` names the component in errors, e.g. "backbone 'unet_swin'". `params` must be an object
  // or null (= {}). `prefix` is put before every key in errors (e.g. "diffusion.params.", where
  // an official config holds these keys).
  Reader(std::string who, const json& params, std::string prefix = "");

  int64_t integer(const std::string& key, int64_t fallback, IntRange range = {});
  double number(const std::string& key, double fallback, Range range = {});
  bool boolean(const std::string& key, bool fallback);
  // `allowed` empty: any string.
  std::string string(const std::string& key, const std::string& fallback, const std::vector<std::string>& allowed = {});
  // A list of integers, each in `range`, with min_items..max_items entries. With scalar_repeat > 0
  // a single integer is also taken and repeated that many times (the official configs' short form).
  std::vector<int64_t> integers(const std::string& key, const std::vector<int64_t>& fallback, IntRange range = {},
                                size_t min_items = 0, size_t max_items = 4096, size_t scalar_repeat = 0);
  std::vector<double> numbers(const std::string& key, const std::vector<double>& fallback, Range range = {},
                              size_t max_items = 1 << 20);
  // A nested object (absent or null: {}); its keys are checked by this reader's finish().
  Reader object(const std::string& key);

  // Present and not null; the key counts as known.
  bool has(const std::string& key);
  // The value as is (null when absent), for shapes the getters do not cover; the key counts as read.
  json raw(const std::string& key);
  // Keys accepted and not used (an official key with no effect here).
  void ignore(std::initializer_list<const char*> keys);

  // Refuses the keys no getter asked for, in this object and every nested one read through it.
  void finish();

  // An error about `key` in the reader's words: "<who>: '<key>' <what>" (code: invalid argument
  // unless given, e.g. SINSR_ERR_UNSUPPORTED).
  [[noreturn]] void fail(const std::string& key, const std::string& what, int code = 0) const;
  // An error about the config as a whole: "<who>: <what>".
  [[noreturn]] void fail(const std::string& what, int code = 0) const;
  const std::string& who() const;

 private:
  struct State;
  Reader(std::shared_ptr<State> state, size_t node);
  const json* lookup(const std::string& key);  // marks the key as known; nullptr when absent or null
  std::string path(const std::string& key) const;

  std::shared_ptr<State> state_;
  size_t node_ = 0;
};

// The keys of a config_schema JSON text (the ABI's {"key": {"type", "default", "doc"}}).
std::set<std::string> schema_keys(const std::string& schema);

namespace official {

// The parts of an official SinSR / ResShift config file.
enum class Section { Model, Autoencoder, Diffusion };

// What a component receives, turned into its params:
//  - {"config_file": path, other keys...}: the file is loaded and its section taken (or the
//    file's top-level `params`), then the other keys override;
//  - an official config given inline (it holds the section name, or a top-level `params`): the
//    same without the file;
//  - anything else: the component's native config, returned as is.
// Keys that come from the official config and are not in `known` (the component's schema keys)
// are dropped: official files hold keys a component ignores. Keys given directly are kept, so
// the component's Reader refuses a misspelt one. For the autoencoder, the latent scale_factor of
// diffusion.params (or a top-level scale_factor beside params) is added when the section lacks it.
json params(const json& config, Section section, const std::set<std::string>& known);

// {"config_file": path, other keys...} naming a component's native config (a file with none of
// the official parts model / autoencoder / diffusion and no top-level params): the file's
// contents with the other keys over them. Anything else comes back unchanged. The SDK applies
// it before every create, so any component takes a config file; official files stay for the
// components that read them (params above).
json native_file(const json& config);

}  // namespace official

// The previous interface of the adapter: `section` is "model", "autoencoder" or "diffusion";
// nothing is dropped. Use official::params for new code.
json resolve(const json& config, const std::string& section);

}  // namespace config
}  // namespace sinsr
