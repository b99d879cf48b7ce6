// config::Reader: the one strict reader of plugins' native configs.
#include "sinsr/config.hpp"

#include "sinsr/sdk.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <deque>

namespace sinsr {
namespace config {
namespace {

constexpr int64_t kInt32Min = std::numeric_limits<int32_t>::min();
constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();

// A value as errors show it: JSON, invalid UTF-8 replaced, long values cut.
std::string show(const json& v) {
  if (v.is_number_float() && !std::isfinite(v.get<double>()))
    return std::isnan(v.get<double>()) ? "nan" : v.get<double>() > 0 ? "inf" : "-inf";
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  return s.size() > 80 ? s.substr(0, 77) + "..." : s;
}

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.10g", v);
  return buf;
}

// An integral JSON number as int64; false for anything else (32.9, 1e300, "3", true).
bool as_int64(const json& v, int64_t& out) {
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    if (u > uint64_t(std::numeric_limits<int64_t>::max())) return false;
    out = int64_t(u);
    return true;
  }
  if (v.is_number_integer()) {
    out = v.get<int64_t>();
    return true;
  }
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (!std::isfinite(d) || std::floor(d) != d || std::fabs(d) > 9007199254740992.0) return false;
    out = int64_t(d);
    return true;
  }
  return false;
}

// What an integer must be, with the implicit 32-bit bound spelt out when `v` broke it.
std::string expected(const IntRange& range, const json& v) {
  std::string what = range.describe();
  int64_t x = 0;
  if (as_int64(v, x) && x > range.max && range.max >= kInt32Max) what += " and at most " + std::to_string(range.max);
  if (as_int64(v, x) && x < range.min && range.min <= kInt32Min) what += " and at least " + std::to_string(range.min);
  return what;
}

}  // namespace

std::string IntRange::describe() const {
  const bool lo = min > kInt32Min, hi = max < kInt32Max;
  if (lo && hi) return "an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]";
  if (lo) return "an integer >= " + std::to_string(min);
  if (hi) return "an integer <= " + std::to_string(max);
  return "an integer";
}

bool Range::operator()(double v) const {
  if (!std::isfinite(v)) return false;
  if (min_open ? !(v > min) : !(v >= min)) return false;
  if (max_open ? !(v < max) : !(v <= max)) return false;
  return true;
}

std::string Range::describe() const {
  const bool lo = std::isfinite(min), hi = std::isfinite(max);
  if (lo && hi)
    return std::string("a number in ") + (min_open ? "(" : "[") + num(min) + ", " + num(max) + (max_open ? ")" : "]");
  if (lo) return std::string("a number ") + (min_open ? "> " : ">= ") + num(min);
  if (hi) return std::string("a number ") + (max_open ? "< " : "<= ") + num(max);
  return "a finite number";
}

struct Reader::State {
  struct Node {
    std::string prefix;  // "" or "ddconfig."
    json value;
    std::set<std::string> known;
  };
  std::string who;
  std::deque<Node> nodes;  // a deque keeps references valid as nested readers are added
};

Reader::Reader(std::string who, const json& params, std::string prefix) : state_(std::make_shared<State>()) {
  state_->who = std::move(who);
  if (!params.is_null() && !params.is_object())
    throw sdk::Error(SINSR_ERR_INVALID_ARGUMENT,
                     state_->who + ": the config must be a JSON object (a mapping), got " + show(params));
  state_->nodes.push_back({std::move(prefix), params.is_null() ? json::object() : params, {}});
}

Reader::Reader(std::shared_ptr<State> state, size_t node) : state_(std::move(state)), node_(node) {}

const std::string& Reader::who() const { return state_->who; }

std::string Reader::path(const std::string& key) const { return state_->nodes[node_].prefix + key; }

void Reader::fail(const std::string& key, const std::string& what, int code) const {
  throw sdk::Error(code ? sinsr_code(code) : SINSR_ERR_INVALID_ARGUMENT, who() + ": '" + path(key) + "' " + what);
}

void Reader::fail(const std::string& what, int code) const {
  throw sdk::Error(code ? sinsr_code(code) : SINSR_ERR_INVALID_ARGUMENT, who() + ": " + what);
}

const json* Reader::lookup(const std::string& key) {
  auto& node = state_->nodes[node_];
  node.known.insert(key);
  auto it = node.value.find(key);
  if (it == node.value.end() || it->is_null()) return nullptr;
  return &*it;
}

bool Reader::has(const std::string& key) { return lookup(key) != nullptr; }

json Reader::raw(const std::string& key) {
  const json* v = lookup(key);
  return v ? *v : json();
}

void Reader::ignore(std::initializer_list<const char*> keys) {
  for (const char* k : keys) state_->nodes[node_].known.insert(k);
}

int64_t Reader::integer(const std::string& key, int64_t fallback, IntRange range) {
  const json* v = lookup(key);
  if (!v) return fallback;
  int64_t x = 0;
  if (!as_int64(*v, x) || !range(x)) fail(key, "must be " + expected(range, *v) + ", got " + show(*v));
  return x;
}

double Reader::number(const std::string& key, double fallback, Range range) {
  const json* v = lookup(key);
  if (!v) return fallback;
  if (!v->is_number() || !range(v->get<double>())) fail(key, "must be " + range.describe() + ", got " + show(*v));
  return v->get<double>();
}

bool Reader::boolean(const std::string& key, bool fallback) {
  const json* v = lookup(key);
  if (!v) return fallback;
  if (!v->is_boolean()) fail(key, "must be true or false, got " + show(*v));
  return v->get<bool>();
}

std::string Reader::string(const std::string& key, const std::string& fallback,
                           const std::vector<std::string>& allowed) {
  const json* v = lookup(key);
  if (!v) return fallback;
  std::string list;
  for (const auto& a : allowed) list += (list.empty() ? "'" : ", '") + a + "'";
  const std::string what = allowed.empty() ? "a string" : "one of " + list;
  if (!v->is_string()) fail(key, "must be " + what + ", got " + show(*v));
  const std::string s = v->get<std::string>();
  if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), s) == allowed.end())
    fail(key, "must be " + what + ", got " + show(*v));
  return s;
}

std::vector<int64_t> Reader::integers(const std::string& key, const std::vector<int64_t>& fallback, IntRange range,
                                      size_t min_items, size_t max_items, size_t scalar_repeat) {
  const json* v = lookup(key);
  if (!v) return fallback;
  const std::string what = "a list of " + std::to_string(min_items) + " to " + std::to_string(max_items) + " integers" +
                           (scalar_repeat ? " (or one integer)" : "");
  int64_t x = 0;
  if (scalar_repeat > 0 && v->is_number()) {
    if (!as_int64(*v, x) || !range(x)) fail(key, "must be " + expected(range, *v) + ", got " + show(*v));
    return std::vector<int64_t>(scalar_repeat, x);
  }
  if (!v->is_array() || v->size() < min_items || v->size() > max_items)
    fail(key, "must be " + what + ", got " + show(*v));
  std::vector<int64_t> out;
  for (size_t i = 0; i < v->size(); ++i) {
    if (!as_int64((*v)[i], x) || !range(x))
      fail(key, "entry " + std::to_string(i) + " must be " + expected(range, (*v)[i]) + ", got " + show((*v)[i]));
    out.push_back(x);
  }
  return out;
}

std::vector<double> Reader::numbers(const std::string& key, const std::vector<double>& fallback, Range range,
                                    size_t max_items) {
  const json* v = lookup(key);
  if (!v) return fallback;
  if (!v->is_array() || v->size() > max_items)
    fail(key, "must be a list of at most " + std::to_string(max_items) + " numbers, got " + show(*v));
  std::vector<double> out;
  for (size_t i = 0; i < v->size(); ++i) {
    const json& e = (*v)[i];
    if (!e.is_number() || !range(e.get<double>()))
      fail(key, "entry " + std::to_string(i) + " must be " + range.describe() + ", got " + show(e));
    out.push_back(e.get<double>());
  }
  return out;
}

Reader Reader::object(const std::string& key) {
  const json* v = lookup(key);
  if (v && !v->is_object()) fail(key, "must be an object (a mapping), got " + show(*v));
  json value = v ? *v : json::object();
  state_->nodes.push_back({path(key) + ".", std::move(value), {}});
  return Reader(state_, state_->nodes.size() - 1);
}

void Reader::finish() {
  for (const auto& node : state_->nodes)
    for (auto it = node.value.begin(); it != node.value.end(); ++it) {
      if (node.known.count(it.key())) continue;
      std::string list;
      for (const auto& k : node.known) list += (list.empty() ? "" : ", ") + k;
      throw sdk::Error(SINSR_ERR_INVALID_ARGUMENT,
                       who() + ": unknown key '" + node.prefix + it.key() + "'" +
                           (list.empty() ? " (it takes no keys)" : " (known: " + list + ")"));
    }
}

std::set<std::string> schema_keys(const std::string& schema) {
  json j = parse_optional(schema.c_str(), "config schema");
  if (!j.is_object()) throw sdk::Error(SINSR_ERR_INVALID_ARGUMENT, "config schema must be a JSON object");
  std::set<std::string> keys;
  for (auto it = j.begin(); it != j.end(); ++it) keys.insert(it.key());
  return keys;
}

}  // namespace config
}  // namespace sinsr
