#include "cli_common.hpp"
#include "commands.hpp"

#include <sinsr/config.hpp>

#include <boost/program_options.hpp>

#include <iomanip>
#include <iostream>

namespace po = boost::program_options;

namespace sinsr {
namespace cli {
namespace {

const char* safety_name(int32_t mode) {
  switch (mode) {
    case SINSR_THREAD_PARALLEL: return "parallel";
    case SINSR_THREAD_PER_INSTANCE: return "per-instance";
    case SINSR_THREAD_SERIAL: return "serial";
    default: return "unknown";
  }
}

nlohmann::json describe(const host::Component& c, bool with_schema) {
  nlohmann::json j = {{"kind", sinsr_kind_name(c.kind())},
                      {"name", c.name()},
                      {"version", c.desc->version ? c.desc->version : ""},
                      {"abi_version", host::version_string(c.abi_version)},
                      {"thread_safety", safety_name(c.desc->thread_safety)},
                      {"plugin", c.plugin_name},
                      {"file", c.file},
                      {"summary", c.desc->summary ? c.desc->summary : ""}};
  std::string weights = c.default_weights_path();
  if (!weights.empty()) j["default_weights"] = weights;
  if (!c.base().empty()) j["base"] = c.base();
  if (!c.needs_weights()) j["weights"] = "none needed";
  nlohmann::json preferred = c.preferred_pipeline();
  if (!preferred.empty()) j["preferred_pipeline"] = preferred;
  if (with_schema) {
    j["config_schema"] = config::parse_optional(c.desc->config_schema, c.name() + " config schema");
    j["default_config"] = c.default_config();
  }
  return j;
}

}  // namespace

int cmd_plugins(const Args& args) {
  po::options_description opts = options_table("sinsr-host plugins list [--json] | plugins inspect NAME [--kind KIND]");
  std::vector<std::string> plugins;
  std::string kind;
  opts.add_options()("help,h", "show this help")("json", "machine-readable output")(
      "plugin", po::value(&plugins)->composing(), "load a plugin library (repeatable)")(
      "no-default-paths", "do not load SINSR_PLUGIN_PATH and the installed plugin folder")(
      "kind", po::value(&kind), "restrict inspect to one kind (backbone, codec, sampler, loss)");
  po::options_description hidden;
  std::vector<std::string> positional;
  hidden.add_options()("args", po::value(&positional));
  po::options_description all;
  all.add(opts).add(hidden);
  po::positional_options_description pos;
  pos.add("args", -1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(all).positional(pos).run(), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    return usage_error("plugins", error_text(e));
  }
  if (vm.count("help")) {
    std::cout << opts;
    return 0;
  }
  std::string action = positional.empty() ? "list" : positional[0];
  host::Runtime runtime;
  try {
    load_plugins(runtime, plugins, !vm.count("no-default-paths"));
  } catch (const std::exception& e) {
    std::cerr << "sinsr-host plugins: " << error_text(e) << "\n";
    return 1;
  }
  const auto& comps = runtime.components();
  if (action == "list") {
    if (vm.count("json")) {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& c : comps) out.push_back(describe(*c, false));
      std::cout << out.dump(2) << "\n";
      return 0;
    }
    std::cout << std::left << std::setw(10) << "KIND" << std::setw(16) << "NAME" << std::setw(10) << "VERSION"
              << std::setw(6) << "ABI" << std::setw(14) << "THREADS"
              << "FILE\n";
    for (const auto& c : comps)
      std::cout << std::left << std::setw(10) << sinsr_kind_name(c->kind()) << std::setw(16) << c->name()
                << std::setw(10) << (c->desc->version ? c->desc->version : "") << std::setw(6)
                << host::version_string(c->abi_version) << std::setw(14) << safety_name(c->desc->thread_safety)
                << c->file << "\n";
    if (comps.empty()) std::cout << "(no plugins found; use --plugin FILE or SINSR_PLUGIN_PATH)\n";
    return 0;
  }
  if (action == "inspect") {
    if (positional.size() != 2) {
      return usage_error("plugins", "inspect takes one component name");
    }
    nlohmann::json found = nlohmann::json::array();
    for (const auto& c : comps)
      if (c->name() == positional[1] && (kind.empty() || kind == sinsr_kind_name(c->kind()))) {
        nlohmann::json d = describe(*c, true);
        if (!c->base().empty()) {  // a model: show what it resolves to (its base's schema, merged config)
          try {
            auto resolved = runtime.find(c->kind(), c->name());
            d["config_schema"] = config::parse_optional(resolved->desc->config_schema, c->name() + " config schema");
            d["default_config"] = resolved->default_config();
            d["default_weights"] = resolved->default_weights_path();
          } catch (const std::exception& e) {
            d["unresolved"] = error_text(e);
          }
        }
        found.push_back(d);
      }
    if (found.empty()) {
      std::string names;
      for (const auto& c : comps)
        if (kind.empty() || kind == sinsr_kind_name(c->kind()))
          names += (names.empty() ? "" : ", ") + std::string(sinsr_kind_name(c->kind())) + " " + c->name();
      std::cerr << "sinsr-host plugins inspect: no component named '" << positional[1]
                << "' (loaded: " << (names.empty() ? "none" : names) << ")\n";
      return 1;
    }
    std::cout << (found.size() == 1 ? found[0] : found).dump(2) << "\n";
    return 0;
  }
  return usage_error("plugins", "unknown action '" + action + "' (list, inspect)");
}

int cmd_models(const Args& args) {
  po::options_description opts = options_table(
      "sinsr-host models [--json] [--plugin FILE]\n"
      "Every model the runtime can see (built model plugins and NAME.model.json manifests on the plugin\n"
      "path, SINSR_PLUGIN_PATH and --plugin): its scale, the input it is for, where it came from and its\n"
      "summary. Use one with -n NAME.\n\nOptions");
  std::vector<std::string> plugins;
  opts.add_options()("help,h", "this help")("json", "machine-readable output")(
      "plugin", po::value(&plugins)->composing(), "also load this plugin library or model manifest (repeatable)");
  po::variables_map vm;
  if (int rc = parse_options(args, opts, vm, "models"); rc >= 0) return rc;
  host::Runtime runtime;
  try {
    load_plugins(runtime, plugins);
  } catch (const std::exception& e) {
    std::cerr << "sinsr-host models: " << error_text(e) << "\n";
    return 1;
  }
  nlohmann::json out = nlohmann::json::array();
  for (const auto& c : runtime.components()) {
    if (c->kind() != SINSR_KIND_BACKBONE || c->base().empty()) continue;
    const nlohmann::json pref = c->preferred_pipeline();
    nlohmann::json m = {{"name", c->name()},
                        {"base", c->base()},
                        {"scale", pref.value("scale", 0)},
                        {"input", pref.value("input", std::string("unstated"))},
                        {"file", c->file},
                        {"summary", c->desc->summary ? c->desc->summary : ""}};
    if (pref.contains("blend_with")) m["strength_partner"] = pref["blend_with"];
    const std::string w = c->default_weights_path();
    if (!w.empty()) m["weights"] = w;
    out.push_back(m);
  }
  if (vm.count("json")) {
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::cout << std::left << std::setw(18) << "NAME" << std::setw(7) << "SCALE" << std::setw(12) << "INPUT"
            << "SUMMARY / FILE\n";
  for (const auto& m : out)
    std::cout << std::left << std::setw(18) << m["name"].get<std::string>() << std::setw(7)
              << ("x" + std::to_string(m["scale"].get<int>())) << std::setw(12) << m["input"].get<std::string>()
              << m["summary"].get<std::string>() << "\n"
              << std::setw(37) << "" << m["file"].get<std::string>() << "\n";
  if (out.empty()) std::cout << "(no models found; use --plugin FILE or SINSR_PLUGIN_PATH)\n";
  return 0;
}

}  // namespace cli
}  // namespace sinsr
