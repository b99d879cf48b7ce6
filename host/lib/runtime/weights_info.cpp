#include "runtime/weights_info.hpp"

#include <sinsr/checkpoint.hpp>

#include <algorithm>
#include <map>

namespace sinsr {
namespace host {
namespace {

using sdk::Error;
using sdk::require;
using ordered_json = nlohmann::ordered_json;

json parse_components(const std::string& text, const std::string& path) {
  json j;
  try {
    j = config::parse(text, path + ": " + kComponentsKey);
  } catch (const Error& e) {
    throw Error(SINSR_ERR_FORMAT, e.what());
  }
  require(j.is_object(), SINSR_ERR_FORMAT, path + ": '" + kComponentsKey + "' is not a JSON object");
  return j;
}

bool all_tensors(const c10::impl::GenericDict& d) {
  if (d.size() == 0) return false;
  for (auto& kv : d)
    if (!kv.key().isString() || !kv.value().isTensor()) return false;
  return true;
}

sinsr_detect_config_fn detect_of(const Component& c) {
  const void* vt = c.desc->vtable;
  if (vt == nullptr) return nullptr;
  if (c.kind() == SINSR_KIND_BACKBONE) {
    auto* t = static_cast<const sinsr_backbone_vtable*>(vt);
    return SINSR_HAS_FIELD(t, sinsr_backbone_vtable, detect_config) ? t->detect_config : nullptr;
  }
  if (c.kind() == SINSR_KIND_CODEC) {
    auto* t = static_cast<const sinsr_codec_vtable*>(vt);
    return SINSR_HAS_FIELD(t, sinsr_codec_vtable, detect_config) ? t->detect_config : nullptr;
  }
  return nullptr;
}

// "key=value" for every leaf of `config` not in `skip` (nested objects flattened to their leaves).
void describe(const ordered_json& config, const std::string& path, const std::vector<std::string>& skip,
              std::string& out) {
  for (auto it = config.begin(); it != config.end(); ++it) {
    const std::string key = path.empty() ? it.key() : path + "." + it.key();
    if (it->is_object()) {
      describe(*it, key, skip, out);
    } else if (std::find(skip.begin(), skip.end(), key) == skip.end()) {
      out += " " + it.key() + "=" + it->dump();
    }
  }
}

// The value at a dotted path ("ddconfig.resolution"), or null.
ordered_json at_path(const ordered_json& j, const std::string& path) {
  const ordered_json* p = &j;
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    const std::string key = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (!p->is_object() || !p->contains(key)) return nullptr;
    p = &(*p)[key];
    if (dot == std::string::npos) return *p;
    start = dot + 1;
  }
}

std::string describe_stored(const json& stored) {
  std::string s;
  for (const char* kind : {"backbone", "codec", "sampler"}) {
    auto it = stored.find(kind);
    std::string what = "none";
    if (it != stored.end() && it->is_object() && it->contains("name") && (*it)["name"].is_string()) {
      what = (*it)["name"].get<std::string>();
      if (it->contains("model") && (*it)["model"].is_string())
        what += " (model " + (*it)["model"].get<std::string>() + ")";
      if (it->contains("steps") && (*it)["steps"].is_number_integer())
        what += " (" + std::to_string((*it)["steps"].get<int64_t>()) + " step" +
                ((*it)["steps"].get<int64_t>() == 1 ? ")" : "s)");
    }
    s += std::string(s.empty() ? "" : ", ") + kind + " " + what;
  }
  if (stored.contains("scale") && stored["scale"].is_number_integer())
    s += ", scale " + std::to_string(stored["scale"].get<int64_t>());
  return s;
}

}  // namespace

sdk::ShapeMap read_shapes(const std::string& path, json* stored_components) {
  if (stored_components) *stored_components = nullptr;
  sdk::ShapeMap shapes;
  if (auto header = ckpt::read_safetensors_header(path)) {
    for (auto& [name, shape] : header->shapes) shapes[ckpt::entry_name(name)] = shape;
    for (auto& [key, value] : header->metadata)
      if (stored_components && key == kComponentsKey) *stored_components = parse_components(value, path);
    return shapes;
  }

  c10::IValue root = ckpt::read_file(path);
  require(root.isGenericDict(), SINSR_ERR_FORMAT, path + ": top level is not a dict");
  auto dict = root.toGenericDict();
  auto stored = dict.find(c10::IValue(std::string(kComponentsKey)));
  if (stored_components && stored != dict.end() && stored->value().isString())
    *stored_components = parse_components(stored->value().toStringRef(), path);
  // The state dict where sinsr::ckpt::read_state_dict finds it: the top level, or the first of
  // the usual nesting keys.
  c10::optional<c10::impl::GenericDict> chosen;
  if (all_tensors(dict)) {
    chosen = dict;
  } else {
    for (const char* k : {"state_dict", "params_ema", "ema", "model", "model_state_dict", "net", "params", "network"}) {
      auto it = dict.find(c10::IValue(std::string(k)));
      if (it != dict.end() && it->value().isGenericDict() && all_tensors(it->value().toGenericDict())) {
        chosen = it->value().toGenericDict();
        break;
      }
    }
  }
  if (!chosen) {
    // Let the reader say why (or find what this shortcut missed).
    for (auto& [name, t] : ckpt::read_state_dict(path)) shapes[name] = t.sizes().vec();
    return shapes;
  }
  for (auto& kv : *chosen) shapes[ckpt::entry_name(kv.key().toStringRef())] = kv.value().toTensor().sizes().vec();
  return shapes;
}

WeightsInfo weights_info(const Runtime& runtime, int32_t kind, const std::string& path) {
  require(kind == SINSR_KIND_BACKBONE || kind == SINSR_KIND_CODEC, SINSR_ERR_INVALID_ARGUMENT,
          "weights_info: kind must be backbone or codec");
  const std::string kind_name = sinsr_kind_name(kind);
  WeightsInfo info;
  json stored;
  const sdk::ShapeMap shapes = read_shapes(path, &stored);

  if (stored.is_object()) {
    info.source = "stored";
    info.components = stored;
    auto part = stored.find(kind_name);
    if (part != stored.end() && part->is_object()) {
      if (part->contains("name") && (*part)["name"].is_string()) info.component = (*part)["name"].get<std::string>();
      if (part->contains("config") && (*part)["config"].is_object()) info.config = (*part)["config"];
    }
    info.summary = "stored: " + describe_stored(stored);
    return info;
  }

  // The ABI sees the shapes as an array of pointers to entries that point into `shapes`.
  std::vector<sinsr_tensor_shape> entries;
  entries.reserve(shapes.size());
  for (const auto& [name, shape] : shapes) {
    sinsr_tensor_shape e{};
    e.struct_size = sizeof(e);
    e.name = name.c_str();
    e.ndim = int32_t(shape.size());
    e.shape = shape.data();
    entries.push_back(e);
  }
  std::vector<const sinsr_tensor_shape*> pointers;
  for (const auto& e : entries) pointers.push_back(&e);

  std::vector<std::string> answers;
  for (const auto& c : runtime.components()) {
    if (c->kind() != kind) continue;
    sinsr_detect_config_fn detect = detect_of(*c);
    if (detect == nullptr) continue;  // a model (no table of its own: its base answers) or no detection
    std::string text;
    sinsr_status* status = detect(
        pointers.data(), pointers.size(),
        [](void* user, const char* t) { *static_cast<std::string*>(user) = t ? t : ""; }, &text);
    if (status != nullptr) {
      const sinsr_host_api* api = host_api();
      answers.push_back(c->name() + ": " + (api->status_message(status) ? api->status_message(status) : "refused"));
      api->status_release(status);
      continue;
    }
    ordered_json answer;
    try {
      answer = ordered_json::parse(text);
    } catch (const std::exception& e) {
      answers.push_back(c->name() + ": unreadable answer (" + e.what() + ")");
      continue;
    }
    if (!answer.is_object() || !answer.contains("config") || !answer["config"].is_object()) {
      answers.push_back(c->name() + ": answer without a config object");
      continue;
    }
    info.source = "detected";
    info.component = c->name();
    info.config = json::parse(answer["config"].dump());
    if (answer.contains("assumed") && answer["assumed"].is_array())
      for (auto& k : answer["assumed"])
        if (k.is_string()) info.assumed.push_back(k.get<std::string>());
    if (answer.contains("assumed_from") && answer["assumed_from"].is_string())
      info.assumed_from = answer["assumed_from"].get<std::string>();
    info.summary = "detected: " + info.component;
    describe(answer["config"], "", info.assumed, info.summary);
    if (!info.assumed.empty()) {
      info.summary += info.assumed_from.empty() ? " (assumed:" : " (assumed from " + info.assumed_from + ":";
      for (size_t i = 0; i < info.assumed.size(); ++i) {
        const std::string& k = info.assumed[i];
        info.summary += (i ? ", " : " ") + k.substr(k.rfind('.') + 1) + "=" + at_path(answer["config"], k).dump();
      }
      info.summary += ")";
    }
    return info;
  }
  info.summary = path + ": no stored configs, and no loaded " + kind_name + " recognises its weights";
  if (!answers.empty()) {
    info.summary += " (";
    for (size_t i = 0; i < answers.size(); ++i) info.summary += (i ? "; " : "") + answers[i];
    info.summary += ")";
  }
  return info;
}

json stored_component(const Runtime& runtime, int32_t kind, const std::string& name, const json& config) {
  auto c = runtime.find(kind, name);  // a shipped model comes back resolved onto its base
  std::string base = name;
  for (const auto& raw : runtime.components())
    if (raw->kind() == kind && raw->name() == name && !raw->base().empty()) base = raw->base();
  // What the component is created with: its default config under the caller's, as it reads it.
  json resolved = resolve_config(*c, with_defaults(*c, config));
  json out = {{"name", base}, {"config", resolved}};
  if (base != name) out["model"] = name;
  return out;
}

void save_weights(const std::string& path, const ckpt::StateDict& state, const json& components) {
  if (components.is_null()) return ckpt::save_state_dict(path, state);
  c10::impl::GenericDict sd(c10::StringType::get(), c10::AnyType::get());
  for (const auto& [name, t] : state) sd.insert(name, t.detach().to(at::kCPU).contiguous());
  c10::impl::GenericDict root(c10::StringType::get(), c10::AnyType::get());
  root.insert("state_dict", sd);
  root.insert(kComponentsKey, components.dump());
  ckpt::save_file(path, root);
}

void blend_weights(const ckpt::StateDict& mine, const ckpt::StateDict& theirs, double alpha,
                   const std::string& mine_name, const std::string& theirs_name) {
  std::map<std::string, at::Tensor> by_name(theirs.begin(), theirs.end());
  sdk::require(mine.size() == by_name.size(), SINSR_ERR_FORMAT,
               theirs_name + " holds " + std::to_string(by_name.size()) + " tensors, " + mine_name + " " +
                   std::to_string(mine.size()) + ": not the same network");
  at::NoGradGuard no_grad;  // `mine` may be a network's parameters
  for (const auto& [name, t] : mine) {
    auto it = by_name.find(name);
    sdk::require(it != by_name.end() && it->second.sizes() == t.sizes(), SINSR_ERR_FORMAT,
                 theirs_name + " differs from " + mine_name + " at '" + name + "' (not the same network)");
    if (t.is_floating_point()) {
      at::Tensor other = it->second.to(t.device(), at::kFloat);
      at::Tensor blend = t.to(at::kFloat).mul(alpha).add(other, 1.0 - alpha);
      t.copy_(blend);
    }
  }
}

}  // namespace host
}  // namespace sinsr
