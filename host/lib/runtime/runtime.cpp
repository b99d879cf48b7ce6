// The plugin loader (libraries checked against this host's ABI) and the registry of their
// components, with shipped models resolved onto their base.
#include "runtime/registry.hpp"

#include <sinsr/config.hpp>

#include <ATen/Parallel.h>
#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/dll/shared_library.hpp>

#include <dlfcn.h>
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

namespace fs = std::filesystem;

namespace sinsr {
namespace host {
namespace {

using sdk::Error;
using sdk::require;

// v1 sizes: what a struct must at least hold for this host to use it.
constexpr size_t kInfoV1 = offsetof(sinsr_plugin_info, components) + sizeof(void*);
constexpr size_t kComponentV1 = offsetof(sinsr_component, vtable) + sizeof(void*);

size_t vtable_v1_size(int32_t kind) {
  switch (kind) {
    case SINSR_KIND_BACKBONE: return offsetof(sinsr_backbone_vtable, to) + sizeof(void*);
    case SINSR_KIND_CODEC: return offsetof(sinsr_codec_vtable, to) + sizeof(void*);
    case SINSR_KIND_SAMPLER: return offsetof(sinsr_sampler_vtable, scale_input) + sizeof(void*);
    case SINSR_KIND_LOSS: return offsetof(sinsr_loss_vtable, tape_release) + sizeof(void*);
    default: return 0;
  }
}

bool looks_like_shared_library(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {0, 0, 0, 0};
  in.read(magic, 4);
  return in.gcount() == 4 && magic[0] == 0x7f && magic[1] == 'E' && magic[2] == 'L' && magic[3] == 'F';
}

std::string take_message(sinsr_status* st) {
  std::string m = host_api()->status_message(st);
  host_api()->status_release(st);
  return m;
}

}  // namespace

std::string version_string(uint32_t v) {
  return std::to_string(SINSR_VERSION_GET_MAJOR(v)) + "." + std::to_string(SINSR_VERSION_GET_MINOR(v));
}

// ---- components ------------------------------------------------------------------------

std::string Component::default_weights_path() const {
  if (!SINSR_HAS_FIELD(desc, sinsr_component, default_weights) || desc->default_weights == nullptr ||
      *desc->default_weights == '\0')
    return "";
  fs::path p(desc->default_weights);
  if (p.is_relative()) p = fs::path(file).parent_path() / p;
  return p.string();
}

json Component::default_config() const {
  if (!SINSR_HAS_FIELD(desc, sinsr_component, default_config) || desc->default_config == nullptr) return json::object();
  return config::parse_optional(desc->default_config, name() + " default config");
}

std::string Component::base() const {
  if (!SINSR_HAS_FIELD(desc, sinsr_component, base) || desc->base == nullptr) return "";
  return desc->base;
}

json Component::preferred_pipeline() const {
  if (!SINSR_HAS_FIELD(desc, sinsr_component, preferred_pipeline) || desc->preferred_pipeline == nullptr)
    return json::object();
  json p = config::parse_optional(desc->preferred_pipeline, name() + " preferred pipeline");
  require(p.is_object(), SINSR_ERR_FORMAT,
          file + ": component '" + name() + "': preferred pipeline is not a JSON object");
  return p;
}

bool Component::needs_weights() const {
  return !(SINSR_HAS_FIELD(desc, sinsr_component, flags) && (desc->flags & SINSR_COMPONENT_NO_WEIGHTS));
}

json resolve_config(const Component& c, const json& config) {
  const int32_t kind = c.kind();
  const char* section = kind == SINSR_KIND_BACKBONE ? "model" : kind == SINSR_KIND_CODEC ? "autoencoder" : "diffusion";
  const auto known = config::schema_keys(c.desc->config_schema ? c.desc->config_schema : "{}");
  namespace official = config::official;
  const official::Section s = kind == SINSR_KIND_BACKBONE ? official::Section::Model
                              : kind == SINSR_KIND_CODEC  ? official::Section::Autoencoder
                                                          : official::Section::Diffusion;
  return known.empty() ? config::resolve(config, section) : official::params(config, s, known);
}

json with_defaults(const Component& c, const json& config) {
  json merged = c.default_config();
  if (!merged.is_object()) merged = json::object();
  // A file the caller names is read first, so that its keys (under the ones given beside it) win
  // over the defaults: merged into a model's defaults unread, the defaults won over the file.
  const json given = config.is_object() && config.contains("config_file") ? resolve_config(c, config) : config;
  if (given.is_object())
    for (auto it = given.begin(); it != given.end(); ++it) merged[it.key()] = it.value();
  return merged;
}

// ---- runtime ---------------------------------------------------------------------------

struct Runtime::Library {
  boost::dll::shared_library lib;
  std::string path;
  const sinsr_plugin_info* info = nullptr;
};

int default_threads() {
  // The cores this process may run on (its affinity mask: taskset, cgroups' cpusets), never the
  // machine's momentary load: the output bytes depend on the thread count, so a default that
  // followed the load gave the same command different bytes beside another process.
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

namespace {
// A C function of every loaded library that has it, distinct, looked up rather than linked (MKL
// builds of LibTorch, pip's, have no OpenBLAS; another LibTorch may bring Intel's OpenMP). Not
// only the global scope: in a process that loaded the host with RTLD_LOCAL (Python's ctypes) that
// scope holds none, and LibTorch's libblas.so.3 ran at OpenBLAS's own default count whatever was
// asked. `sonames` are only looked at when already loaded (NOLOAD; the handle is kept).
template <class Fn>
std::vector<Fn> loaded_functions(const char* symbol, std::initializer_list<const char*> sonames) {
  std::vector<Fn> out;
  auto add = [&](void* handle) {
    if (!handle) return;
    if (auto f = reinterpret_cast<Fn>(::dlsym(handle, symbol)); f && std::find(out.begin(), out.end(), f) == out.end())
      out.push_back(f);
  };
  add(RTLD_DEFAULT);
  for (const char* soname : sonames) add(::dlopen(soname, RTLD_LAZY | RTLD_NOLOAD));
  return out;
}

using SetThreads = void (*)(int);
using GetThreads = int (*)();
const std::initializer_list<const char*> kBlasLibraries = {"libblas.so.3", "libopenblas.so.0"};

void set_blas_threads(int n) {
  static const auto setters = loaded_functions<SetThreads>("openblas_set_num_threads", kBlasLibraries);
  for (auto set : setters) set(n);
}

int blas_threads() {  // 0 when there is no OpenBLAS
  static const auto getters = loaded_functions<GetThreads>("openblas_get_num_threads", kBlasLibraries);
  return getters.empty() ? 0 : getters.front()();
}

// A thread count capped at kMaxThreadsPerCore per core: more only cost memory and start-up
// (-j 100000 used to start thousands of threads, and hang under an address-space limit).
int capped(int n) {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::min(n, kMaxThreadsPerCore * cores);
}
}  // namespace

void set_threads(int n) {
  n = capped(n <= 0 ? default_threads() : n);
  at::set_num_threads(n);
  set_blas_threads(n);
}

namespace {
// OpenBLAS has one count per process: the first scope saves it, the last one out restores it, so
// that runs overlapping on several threads never reset it under each other.
std::mutex blas_scope_mutex;
int blas_scopes = 0, blas_saved = 0;
}  // namespace

// This thread's LibTorch count alone. OpenMP keeps the count per thread, so its own setter is
// enough; at::set_num_threads would also change the default of threads yet to start and clear
// oneDNN's primitive cache, which, done around every run of a service, cost each run its convolution
// set-up again. at::get_num_threads() first: LibTorch sets a thread's count on its first use.
void set_this_threads_count(int n) {
  static const auto omp = loaded_functions<SetThreads>("omp_set_num_threads", {"libgomp.so.1", "libiomp5.so"});
  (void)at::get_num_threads();
  if (!omp.empty())
    omp.front()(n);
  else
    at::set_num_threads(n);
}

ThreadScope::ThreadScope(int n) {
  if (n <= 0) return;
  n = capped(n);
  previous_ = at::get_num_threads();  // this thread's (OpenMP keeps one per thread)
  if (previous_ != n) set_this_threads_count(n);
  std::lock_guard<std::mutex> lock(blas_scope_mutex);
  if (blas_scopes++ == 0) blas_saved = blas_threads();
  set_blas_threads(n);
}

ThreadScope::~ThreadScope() {
  if (previous_ <= 0) return;
  if (at::get_num_threads() != previous_) set_this_threads_count(previous_);
  std::lock_guard<std::mutex> lock(blas_scope_mutex);
  if (--blas_scopes == 0 && blas_saved > 0) set_blas_threads(blas_saved);
}

std::string blas_description() {
  using Text = char* (*)();
  static const auto config = reinterpret_cast<Text>(::dlsym(RTLD_DEFAULT, "openblas_get_config"));
  static const auto core = reinterpret_cast<Text>(::dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  if (!config || !core) return "not OpenBLAS";
  std::string text = std::string(config()) + " (kernels: " + core() + ")";
  if (const char* forced = std::getenv("OPENBLAS_CORETYPE")) text += ", OPENBLAS_CORETYPE=" + std::string(forced);
  return text;
}

namespace {
// SERIAL means one call at a time over every instance in the process: runtimes that load the
// same library share its code and globals, so they share this lock, keyed by the function table.
std::shared_ptr<std::mutex> serial_mutex(const void* vtable) {
  static std::mutex guard;
  static std::map<const void*, std::weak_ptr<std::mutex>> locks;
  std::lock_guard<std::mutex> lock(guard);
  auto& slot = locks[vtable];
  auto m = slot.lock();
  if (!m) slot = m = std::make_shared<std::mutex>();
  return m;
}
}  // namespace

Runtime::Runtime(int num_threads, ThreadsLeft threads) : threads_(num_threads > 0 ? num_threads : default_threads()) {
  if (threads == ThreadsLeft::Applied) set_threads(num_threads);
}

Runtime::~Runtime() = default;

namespace {

bool is_manifest(const std::string& path) {
  static const std::string tail = kModelManifestSuffix;
  return path.size() > tail.size() && path.compare(path.size() - tail.size(), tail.size(), tail) == 0;
}

// A model manifest's descriptor and the strings it points into (no library: it has no code).
struct ManifestStorage {
  sinsr_component desc{};
  std::string name, version, summary, base, config, weights, preferred;
};

}  // namespace

void Runtime::load_manifest(const std::string& path) {
  const json m = config::load_file(path);
  auto need_string = [&](const char* key) {
    require(m.contains(key) && m[key].is_string() && !m[key].get<std::string>().empty(), SINSR_ERR_FORMAT,
            path + ": model manifest needs a string '" + key + "'");
    return m[key].get<std::string>();
  };
  static const std::set<std::string> known = {"sinsr_model", "name",  "base",  "config",  "weights",
                                              "pipeline",    "scale", "input", "summary", "version"};
  for (auto it = m.begin(); it != m.end(); ++it)
    require(known.count(it.key()) > 0, SINSR_ERR_FORMAT, path + ": unknown key '" + it.key() + "' in a model manifest");
  require(m.value("sinsr_model", 0) == 1, SINSR_ERR_FORMAT, path + ": not a SinSR model manifest (\"sinsr_model\": 1)");
  auto st = std::make_shared<ManifestStorage>();
  st->name = need_string("name");
  st->base = need_string("base");
  st->weights = need_string("weights");  // relative: beside the manifest (default_weights_path)
  st->summary = m.value("summary", std::string());
  st->version = m.value("version", std::string("1.0.0"));
  const fs::path dir = fs::path(path).parent_path();
  // The config inline, or a file beside the manifest.
  json cfg = m.value("config", json::object());
  if (cfg.is_string()) cfg = config::load_file((dir / cfg.get<std::string>()).string());
  require(cfg.is_object(), SINSR_ERR_FORMAT, path + ": 'config' must be an object or a file name");
  st->config = cfg.dump();
  json pipeline = m.value("pipeline", json::object());
  if (pipeline.is_string()) pipeline = config::load_file((dir / pipeline.get<std::string>()).string());
  require(pipeline.is_object(), SINSR_ERR_FORMAT, path + ": 'pipeline' must be an object or a file name");
  // What the model declares travels in its preferred pipeline, as a built model's does.
  if (m.contains("scale")) pipeline["scale"] = m["scale"];
  if (m.contains("input")) pipeline["input"] = m["input"];
  st->preferred = pipeline.dump();
  sinsr_component& d = st->desc;
  d.struct_size = sizeof(sinsr_component);
  d.kind = SINSR_KIND_BACKBONE;
  d.thread_safety = SINSR_THREAD_PARALLEL;  // a model runs with its base's mode
  d.name = st->name.c_str();
  d.version = st->version.c_str();
  d.summary = st->summary.c_str();
  d.default_config = st->config.c_str();
  d.default_weights = st->weights.c_str();
  d.base = st->base.c_str();
  d.preferred_pipeline = st->preferred.c_str();
  auto comp = std::make_shared<Component>();
  comp->desc = &st->desc;
  comp->file = path;
  comp->plugin_name = st->name;
  comp->plugin_version = st->version;
  comp->abi_version = SINSR_ABI_VERSION;
  comp->serial = std::make_shared<std::mutex>();
  comp->storage = st;
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& o : components_) {
    if (o->file == path) return;  // already loaded
    require(!(o->kind() == SINSR_KIND_BACKBONE && o->name() == st->name), SINSR_ERR_INVALID_ARGUMENT,
            std::string("two backbone components named '") + st->name + "': " + o->file + " and " + path);
  }
  components_.push_back(comp);
}

void Runtime::load_file(const std::string& path_in) {
  std::error_code ec;
  fs::path p = fs::absolute(path_in, ec);
  std::string path = ec ? path_in : p.lexically_normal().string();
  if (!fs::exists(path, ec)) throw Error(SINSR_ERR_NOT_FOUND, path_in + ": plugin file not found");
  if (fs::is_directory(path, ec)) throw Error(SINSR_ERR_INVALID_ARGUMENT, path + ": is a folder, not a plugin file");
  if (is_manifest(path)) return load_manifest(path);
  if (!looks_like_shared_library(path)) throw Error(SINSR_ERR_FORMAT, path + ": not a shared library");
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& l : libraries_)
      if (l->path == path) return;  // already loaded
  }

  auto library = std::make_shared<Library>();
  library->path = path;
  try {
    // NODELETE: plugins carry LibTorch state (thread-locals, static tensors) that must outlive
    // any unload order; a refused library stays mapped but unused.
    auto mode = boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local |
                static_cast<boost::dll::load_mode::type>(RTLD_NODELETE);
    library->lib.load(path, mode);
  } catch (const std::exception& e) {
    throw Error(SINSR_ERR_FORMAT, path + ": cannot load shared library: " + e.what());
  }
  if (!library->lib.has(SINSR_PLUGIN_ENTRY_SYMBOL))
    throw Error(SINSR_ERR_FORMAT, path + ": not a SinSR plugin (no " SINSR_PLUGIN_ENTRY_SYMBOL " symbol)");
  auto& entry =
      library->lib.get<sinsr_status*(const sinsr_host_api*, const sinsr_plugin_info**)>(SINSR_PLUGIN_ENTRY_SYMBOL);

  const sinsr_plugin_info* info = nullptr;
  sinsr_status* st = nullptr;
  try {
    // One entry call at a time in the process: runtimes loading one library on two threads
    // would otherwise run its entry (which stores the host table in a global) at once.
    static std::mutex entry_mutex;
    std::lock_guard<std::mutex> entry_lock(entry_mutex);
    st = entry(host_api(), &info);
  } catch (...) {
    throw Error(SINSR_ERR_RUNTIME, path + ": plugin entry threw an exception across the C ABI");
  }
  if (st) {
    int32_t code = host_api()->status_code(st);
    throw Error(static_cast<sinsr_code>(code), path + ": plugin refused to load: " + take_message(st));
  }
  if (info == nullptr) throw Error(SINSR_ERR_ABI, path + ": plugin entry returned no descriptor");
  if (info->struct_size < kInfoV1)
    throw Error(SINSR_ERR_ABI, path + ": plugin descriptor struct too small (" + std::to_string(info->struct_size) +
                                   " bytes, ABI 1.0 needs " + std::to_string(kInfoV1) + ")");
  if (SINSR_VERSION_GET_MAJOR(info->abi_version) != SINSR_ABI_VERSION_MAJOR)
    throw Error(SINSR_ERR_ABI, path + ": plugin built for ABI " + version_string(info->abi_version) +
                                   ", this host implements ABI " + version_string(SINSR_ABI_VERSION));
  if (info->min_abi_version > SINSR_ABI_VERSION)
    throw Error(SINSR_ERR_ABI, path + ": plugin needs host ABI " + version_string(info->min_abi_version) +
                                   " or newer, this host implements ABI " + version_string(SINSR_ABI_VERSION));
  if (info->num_components > 0 && info->components == nullptr)
    throw Error(SINSR_ERR_FORMAT, path + ": descriptor lists components but no array");
  library->info = info;

  std::vector<std::shared_ptr<Component>> found;
  std::shared_ptr<void> keep_alive(library, library.get());
  for (size_t i = 0; i < info->num_components; ++i) {
    const sinsr_component* c = info->components[i];
    std::string where = path + ": component " + std::to_string(i);
    if (c == nullptr) throw Error(SINSR_ERR_FORMAT, where + " is null");
    if (c->struct_size < kComponentV1)
      throw Error(SINSR_ERR_ABI, where + ": component struct too small (" + std::to_string(c->struct_size) +
                                     " bytes, ABI 1.0 needs " + std::to_string(kComponentV1) + ")");
    if (c->name == nullptr || *c->name == '\0') throw Error(SINSR_ERR_FORMAT, where + " has no name");
    where = path + ": component '" + c->name + "'";
    size_t need = vtable_v1_size(c->kind);
    if (need == 0) throw Error(SINSR_ERR_FORMAT, where + " has unknown kind " + std::to_string(c->kind));
    if (c->thread_safety < SINSR_THREAD_PARALLEL || c->thread_safety > SINSR_THREAD_SERIAL)
      throw Error(SINSR_ERR_FORMAT, where + " declares unknown thread-safety mode " + std::to_string(c->thread_safety));
    const bool model = SINSR_HAS_FIELD(c, sinsr_component, base) && c->base != nullptr;
    if (model && *c->base == '\0') throw Error(SINSR_ERR_FORMAT, where + " names an empty base component");
    const size_t* vt_size = static_cast<const size_t*>(c->vtable);
    if (vt_size == nullptr && !model) throw Error(SINSR_ERR_FORMAT, where + " has no function table");
    if (vt_size != nullptr && *vt_size < need)
      throw Error(SINSR_ERR_ABI, where + ": function table too small (" + std::to_string(*vt_size) +
                                     " bytes, ABI 1.0 needs " + std::to_string(need) + ")");
    auto comp = std::make_shared<Component>();
    comp->desc = c;
    comp->file = path;
    comp->plugin_name = info->name ? info->name : "";
    comp->plugin_version = info->version ? info->version : "";
    comp->abi_version = info->abi_version;
    comp->library = keep_alive;
    comp->serial = serial_mutex(c->vtable);
    found.push_back(comp);
  }

  std::lock_guard<std::mutex> lock(mutex_);
  for (size_t i = 0; i < found.size(); ++i) {
    auto clash = [&](const std::shared_ptr<Component>& o) {
      return o->kind() == found[i]->kind() && o->name() == found[i]->name();
    };
    for (const auto& o : components_)
      if (clash(o))
        throw Error(SINSR_ERR_INVALID_ARGUMENT, std::string("two ") + sinsr_kind_name(o->kind()) +
                                                    " components named '" + o->name() + "': " + o->file + " and " +
                                                    path);
    for (size_t j = 0; j < i; ++j)
      if (clash(found[j]))
        throw Error(SINSR_ERR_INVALID_ARGUMENT, path + ": provides two " + sinsr_kind_name(found[i]->kind()) +
                                                    " components named '" + found[i]->name() + "'");
  }
  libraries_.push_back(library);
  components_.insert(components_.end(), found.begin(), found.end());
}

std::vector<std::string> Runtime::load_dir(const std::string& path) { return load_dir(path, false); }

std::vector<std::string> Runtime::load_dir(const std::string& path, bool chosen) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) throw Error(SINSR_ERR_NOT_FOUND, path + ": plugin folder not found");
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(path, ec)) {
    if (!e.is_regular_file(ec)) continue;
    std::string ext = e.path().extension().string();
    if (ext == ".so" || ext == ".dylib" || ext == ".dll" || is_manifest(e.path().string()))
      files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  std::vector<std::string> refused;
  for (const auto& f : files) {
    try {
      load_file(f);
    } catch (const std::exception& e) {
      refused.push_back(e.what());
    }
  }
  const fs::path defaults = fs::path(path) / kDefaultsFileName;
  if (fs::is_regular_file(defaults, ec)) try {
      load_defaults(defaults.string(), chosen);
    } catch (const std::exception& e) {
      refused.push_back(e.what());
    }
  return refused;
}

void Runtime::load(const std::string& path) {
  std::error_code ec;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    chosen_.push_back(fs::absolute(path, ec).lexically_normal().string());
  }
  if (!fs::is_directory(path, ec)) {
    if (fs::path(path).filename() == kDefaultsFileName) return load_defaults(path, true);
    load_file(path);
    return;
  }
  auto refused = load_dir(path, true);
  if (refused.empty()) return;
  std::string msg = path + ": " + std::to_string(refused.size()) + " plugin(s) refused (the others loaded):";
  for (const auto& r : refused) msg += "\n  " + r;
  throw Error(SINSR_ERR_FORMAT, msg);
}

namespace {
// Keys of `from` over (wins) or under `into`, objects merged key by key.
void merge_defaults(json& into, const json& from, bool wins) {
  for (auto it = from.begin(); it != from.end(); ++it) {
    json& slot = into[it.key()];
    if (slot.is_object() && it.value().is_object())
      merge_defaults(slot, it.value(), wins);
    else if (wins || slot.is_null())
      slot = it.value();
  }
}

// A defaults file's sections, checked: objects of names or lists of names.
json read_defaults(const std::string& path) {
  json d = config::load_file(path);
  require(d.is_object() && d.value("sinsr_defaults", 0) == 1, SINSR_ERR_FORMAT,
          path + ": not a SinSR defaults file (a JSON object with \"sinsr_defaults\": 1)");
  d.erase("sinsr_defaults");
  for (auto it = d.begin(); it != d.end(); ++it) {
    require(it.value().is_object(), SINSR_ERR_FORMAT, path + ": '" + it.key() + "' must be an object");
    for (auto kv = it.value().begin(); kv != it.value().end(); ++kv) {
      const json& v = kv.value();
      bool names = v.is_string();
      if (v.is_array()) {
        names = !v.empty();
        for (const auto& x : v) names = names && x.is_string();
      }
      require(names, SINSR_ERR_FORMAT,
              path + ": '" + it.key() + "." + kv.key() + "' must be a name or a list of names, got " + v.dump());
    }
  }
  return d;
}
}  // namespace

void Runtime::load_defaults(const std::string& path, bool wins) {
  const json d = read_defaults(path);
  std::lock_guard<std::mutex> lock(mutex_);
  merge_defaults(defaults_, d, wins);
}

json Runtime::defaults() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return defaults_;
}

std::vector<std::string> Runtime::names_in(const json& d, const std::string& section, const std::string& key) {
  if (!d.contains(section) || !d[section].contains(key)) return {};
  const json& v = d[section][key];
  if (v.is_string()) return {v.get<std::string>()};
  return v.get<std::vector<std::string>>();
}

std::vector<std::string> Runtime::default_names(const std::string& section, const std::string& key) const {
  return names_in(defaults(), section, key);
}

std::string Runtime::default_name(const std::string& section, const std::string& key, int32_t kind) const {
  const auto names = default_names(section, key);
  for (const auto& n : names)
    if (find_or_null(kind, n)) return n;
  return names.empty() ? std::string() : names.back();
}

json Runtime::installed_defaults() {
  std::error_code ec;
  const std::string dir = builtin_plugin_dir();
  const fs::path file = fs::path(dir) / kDefaultsFileName;
  if (dir.empty() || !fs::is_regular_file(file, ec)) return json::object();
  try {
    return read_defaults(file.string());
  } catch (const std::exception&) {
    return json::object();  // --help stays up; a run reports the file
  }
}

std::string Runtime::builtin_plugin_dir() {
  // libsinsr_host lives in <prefix>/lib; plugins in <prefix>/<SINSR_PLUGIN_SUBDIR>.
  std::error_code ec;
  fs::path lib = boost::dll::this_line_location().parent_path().string();
  fs::path prefix = lib.parent_path();
  fs::path dir = prefix / SINSR_PLUGIN_SUBDIR;
  if (fs::is_directory(dir, ec)) return dir.string();
  return "";
}

std::vector<std::string> Runtime::load_default_paths() {
  std::vector<std::string> refused;
  auto take = [&](const std::string& p) {
    std::error_code ec;
    if (p.empty() || !fs::exists(p, ec)) return;
    try {
      if (fs::is_directory(p, ec)) {
        auto r = load_dir(p);
        refused.insert(refused.end(), r.begin(), r.end());
      } else {
        load_file(p);
      }
    } catch (const std::exception& e) {
      refused.push_back(e.what());
    }
  };
  if (const char* env = std::getenv("SINSR_PLUGIN_PATH")) {
    std::stringstream ss(env);
    std::string item;
    while (std::getline(ss, item, ':')) take(item);
  }
  take(builtin_plugin_dir());
  return refused;
}

namespace {
// What a resolved model owns: its descriptor and the strings it points into.
struct ModelStorage {
  sinsr_component desc{};
  std::string name, version, summary, config, weights, preferred;
  std::shared_ptr<void> model_library, base_library;
};
}  // namespace

std::shared_ptr<Component> Runtime::resolve_locked(const std::shared_ptr<Component>& model) const {
  if (model->base().empty()) return model;
  if (auto it = resolved_.find(model.get()); it != resolved_.end()) return it->second;
  const std::string where = model->file + ": model '" + model->name() + "'";
  std::shared_ptr<Component> base;
  for (const auto& c : components_)
    if (c->kind() == model->kind() && c->name() == model->base()) base = c;
  require(base != nullptr, SINSR_ERR_NOT_FOUND,
          where + " is built on the " + sinsr_kind_name(model->kind()) + " '" + model->base() +
              "', which is not loaded (is its plugin on the plugin path?)");
  require(base->base().empty(), SINSR_ERR_FORMAT,
          where + ": its base '" + base->name() + "' is itself a model; a base must have its own function table");

  auto st = std::make_shared<ModelStorage>();
  st->name = model->name();
  st->version = model->desc->version ? model->desc->version : "";
  st->summary = model->desc->summary ? model->desc->summary : "";
  json config = with_defaults(*base, model->default_config());
  st->config = config.dump();
  st->weights = model->default_weights_path();
  st->preferred = model->preferred_pipeline().dump();
  st->model_library = model->library;
  st->base_library = base->library;
  sinsr_component& d = st->desc;
  d.struct_size = sizeof(sinsr_component);
  d.kind = model->kind();
  d.thread_safety = base->desc->thread_safety;
  d.name = st->name.c_str();
  d.version = st->version.c_str();
  d.summary = st->summary.c_str();
  d.config_schema = base->desc->config_schema;
  d.default_config = st->config.c_str();
  d.default_weights = st->weights.empty() ? nullptr : st->weights.c_str();
  d.vtable = base->desc->vtable;
  d.base = nullptr;
  d.preferred_pipeline = st->preferred.c_str();
  d.flags = SINSR_HAS_FIELD(model->desc, sinsr_component, flags) ? model->desc->flags : 0u;

  auto out = std::make_shared<Component>(*base);
  out->desc = &st->desc;
  out->file = model->file;
  out->plugin_name = model->plugin_name;
  out->plugin_version = model->plugin_version;
  out->abi_version = model->abi_version;
  out->storage = st;
  out->library = std::shared_ptr<void>(st, st.get());  // keeps both libraries loaded
  resolved_[model.get()] = out;
  return out;
}

std::shared_ptr<Component> Runtime::find_or_null(int32_t kind, const std::string& name) const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& c : components_)
    if (c->kind() == kind && c->name() == name) return resolve_locked(c);
  return nullptr;
}

std::shared_ptr<Component> Runtime::find(int32_t kind, const std::string& name) const {
  if (auto c = find_or_null(kind, name)) return c;
  std::string available;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& c : components_)
      if (c->kind() == kind) available += (available.empty() ? "" : ", ") + c->name();
  }
  throw Error(SINSR_ERR_NOT_FOUND, std::string("no ") + sinsr_kind_name(kind) + " named '" + name +
                                       "' (loaded: " + (available.empty() ? "none" : available) + ")");
}

std::string Runtime::chosen_backbone() const {
  std::vector<std::string> chosen;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    chosen = chosen_;
  }
  std::string name;
  for (const auto& f : chosen)
    for (const auto& c : from_file(f))
      if (c->kind() == SINSR_KIND_BACKBONE) name = c->name();
  return name;
}

std::string Runtime::default_backbone() const {
  std::string name = chosen_backbone();
  if (!name.empty()) return name;
  name = default_name("infer", "backbone", SINSR_KIND_BACKBONE);
  require(!name.empty(), SINSR_ERR_NOT_FOUND,
          std::string("no backbone named, and no ") + kDefaultsFileName +
              " of the loaded plugin folders names a default one: name a backbone or model");
  return name;
}

std::vector<std::shared_ptr<Component>> Runtime::from_file(const std::string& path) const {
  std::error_code ec;
  std::string abs = fs::absolute(path, ec).lexically_normal().string();
  std::vector<std::shared_ptr<Component>> out;
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& c : components_)
    if (c->file == abs) out.push_back(c);
  return out;
}

}  // namespace host
}  // namespace sinsr
