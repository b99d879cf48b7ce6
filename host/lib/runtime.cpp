#include "runtime.hpp"

#include <sinsr/config.hpp>

#include <ATen/Parallel.h>
#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/dll/shared_library.hpp>

#include <dlfcn.h>

#if defined(SINSR_WITH_CUDA)
#include <c10/cuda/CUDAStream.h>
#endif

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

namespace fs = std::filesystem;

struct sinsr_status {
  int32_t code;
  std::string message;
};

namespace sinsr {
namespace host {
namespace {

using sdk::Error;
using sdk::require;

sinsr_status g_out_of_memory{SINSR_ERR_OUT_OF_MEMORY, "out of memory"};

sinsr_status* status_create(int32_t code, const char* message) {
  try {
    return new sinsr_status{code == SINSR_OK ? SINSR_ERR_RUNTIME : code, message ? message : ""};
  } catch (...) {
    return &g_out_of_memory;  // static: status_release never frees it
  }
}
int32_t status_code(const sinsr_status* s) { return s ? s->code : SINSR_OK; }
const char* status_message(const sinsr_status* s) { return s ? s->message.c_str() : ""; }
void status_release(sinsr_status* s);

void log_message(int32_t level, const char* source, const char* message) {
  static const char* names[] = {"debug", "info", "warning", "error"};
  if (level < SINSR_LOG_INFO) return;
  const char* name = (level >= 0 && level <= 3) ? names[level] : "log";
  std::fprintf(stderr, "[%s] %s: %s\n", name, source ? source : "plugin", message ? message : "");
}

const sinsr_host_api kHostApi = {sizeof(sinsr_host_api), SINSR_ABI_VERSION, &status_create, &status_code,
                                 &status_message, &status_release, &log_message};

void status_release(sinsr_status* s) {
  if (s != &g_out_of_memory) delete s;
}

// The host's copy of the SDK reports through the same table the plugins get.
struct InstallHost {
  InstallHost() { sdk::set_host(&kHostApi); }
} install_host;

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

std::string version_text(uint32_t v) {
  return std::to_string(SINSR_VERSION_GET_MAJOR(v)) + "." + std::to_string(SINSR_VERSION_GET_MINOR(v));
}

bool looks_like_shared_library(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {0, 0, 0, 0};
  in.read(magic, 4);
  return in.gcount() == 4 && magic[0] == 0x7f && magic[1] == 'E' && magic[2] == 'L' && magic[3] == 'F';
}

std::string take_message(sinsr_status* st) {
  std::string m = status_message(st);
  status_release(st);
  return m;
}

}  // namespace

const sinsr_host_api* host_api() { return &kHostApi; }

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
  require(p.is_object(), SINSR_ERR_FORMAT, file + ": component '" + name() + "': preferred pipeline is not a JSON object");
  return p;
}

bool Component::needs_weights() const {
  return !(SINSR_HAS_FIELD(desc, sinsr_component, flags) && (desc->flags & SINSR_COMPONENT_NO_WEIGHTS));
}

json with_defaults(const Component& c, const json& config) {
  json merged = c.default_config();
  if (!merged.is_object()) merged = json::object();
  if (config.is_object())
    for (auto it = config.begin(); it != config.end(); ++it) merged[it.key()] = it.value();
  return merged;
}

// ---- runtime ---------------------------------------------------------------------------

struct Runtime::Library {
  boost::dll::shared_library lib;
  std::string path;
  const sinsr_plugin_info* info = nullptr;
};

Runtime::Runtime(int num_threads) {
  int n = num_threads > 0 ? num_threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(n);
}

Runtime::~Runtime() = default;

void Runtime::load_file(const std::string& path_in) {
  std::error_code ec;
  fs::path p = fs::absolute(path_in, ec);
  std::string path = ec ? path_in : p.lexically_normal().string();
  if (!fs::exists(path, ec)) throw Error(SINSR_ERR_NOT_FOUND, path_in + ": plugin file not found");
  if (fs::is_directory(path, ec)) throw Error(SINSR_ERR_INVALID_ARGUMENT, path + ": is a folder, not a plugin file");
  if (!looks_like_shared_library(path))
    throw Error(SINSR_ERR_FORMAT, path + ": not a shared library");
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
  auto& entry = library->lib.get<sinsr_status*(const sinsr_host_api*, const sinsr_plugin_info**)>(
      SINSR_PLUGIN_ENTRY_SYMBOL);

  const sinsr_plugin_info* info = nullptr;
  sinsr_status* st = nullptr;
  try {
    st = entry(&kHostApi, &info);
  } catch (...) {
    throw Error(SINSR_ERR_RUNTIME, path + ": plugin entry threw an exception across the C ABI");
  }
  if (st) {
    int32_t code = status_code(st);
    throw Error(static_cast<sinsr_code>(code), path + ": plugin refused to load: " + take_message(st));
  }
  if (info == nullptr) throw Error(SINSR_ERR_ABI, path + ": plugin entry returned no descriptor");
  if (info->struct_size < kInfoV1)
    throw Error(SINSR_ERR_ABI, path + ": plugin descriptor struct too small (" + std::to_string(info->struct_size) +
                                   " bytes, ABI 1.0 needs " + std::to_string(kInfoV1) + ")");
  if (SINSR_VERSION_GET_MAJOR(info->abi_version) != SINSR_ABI_VERSION_MAJOR)
    throw Error(SINSR_ERR_ABI, path + ": plugin built for ABI " + version_text(info->abi_version) +
                                   ", this host implements ABI " + version_text(SINSR_ABI_VERSION));
  if (info->min_abi_version > SINSR_ABI_VERSION)
    throw Error(SINSR_ERR_ABI, path + ": plugin needs host ABI " + version_text(info->min_abi_version) +
                                   " or newer, this host implements ABI " + version_text(SINSR_ABI_VERSION));
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
    comp->serial = std::make_shared<std::mutex>();
    found.push_back(comp);
  }

  std::lock_guard<std::mutex> lock(mutex_);
  for (size_t i = 0; i < found.size(); ++i) {
    auto clash = [&](const std::shared_ptr<Component>& o) {
      return o->kind() == found[i]->kind() && o->name() == found[i]->name();
    };
    for (const auto& o : components_)
      if (clash(o))
        throw Error(SINSR_ERR_INVALID_ARGUMENT, std::string("two ") + sinsr_kind_name(o->kind()) + " components named '" +
                                                    o->name() + "': " + o->file + " and " + path);
    for (size_t j = 0; j < i; ++j)
      if (clash(found[j]))
        throw Error(SINSR_ERR_INVALID_ARGUMENT, path + ": provides two " + sinsr_kind_name(found[i]->kind()) +
                                                    " components named '" + found[i]->name() + "'");
  }
  libraries_.push_back(library);
  components_.insert(components_.end(), found.begin(), found.end());
}

std::vector<std::string> Runtime::load_dir(const std::string& path) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) throw Error(SINSR_ERR_NOT_FOUND, path + ": plugin folder not found");
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(path, ec)) {
    if (!e.is_regular_file(ec)) continue;
    std::string ext = e.path().extension().string();
    if (ext == ".so" || ext == ".dylib" || ext == ".dll") files.push_back(e.path().string());
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
  return refused;
}

void Runtime::load(const std::string& path) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) {
    load_file(path);
    return;
  }
  auto refused = load_dir(path);
  if (refused.empty()) return;
  std::string msg = path + ": " + std::to_string(refused.size()) + " plugin(s) refused (the others loaded):";
  for (const auto& r : refused) msg += "\n  " + r;
  throw Error(SINSR_ERR_FORMAT, msg);
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

std::vector<std::shared_ptr<Component>> Runtime::from_file(const std::string& path) const {
  std::error_code ec;
  std::string abs = fs::absolute(path, ec).lexically_normal().string();
  std::vector<std::shared_ptr<Component>> out;
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& c : components_)
    if (c->file == abs) out.push_back(c);
  return out;
}

// ---- handles ---------------------------------------------------------------------------

CallLock::CallLock(const Component& c) {
  if (c.desc->thread_safety == SINSR_THREAD_SERIAL) mutex_ = c.serial;
  else if (c.desc->thread_safety == SINSR_THREAD_PER_INSTANCE) mutex_ = std::make_shared<std::mutex>();
}

std::unique_lock<std::mutex> CallLock::lock() const {
  return mutex_ ? std::unique_lock<std::mutex>(*mutex_) : std::unique_lock<std::mutex>();
}

Tape::~Tape() {
  if (tape_ && release_) release_(tape_);
}

sinsr_call_options call_options_for(const at::Tensor& t) {
  sinsr_call_options o{};
  o.struct_size = sizeof(o);
  o.cuda_stream = nullptr;
#if defined(SINSR_WITH_CUDA)
  // The ABI never assumes a stream: a plugin runs on the one the host is using.
  if (t.defined() && t.is_cuda()) o.cuda_stream = c10::cuda::getCurrentCUDAStream(t.device().index()).stream();
#else
  (void)t;
#endif
  return o;
}

std::string TimestepKind::describe() const {
  if (kind == SINSR_TIMESTEP_INDEX) return "int64 step indices";
  if (kind == SINSR_TIMESTEP_NOISE_LEVEL) return "noise levels in '" + unit + "'";
  return "timesteps of unknown kind " + std::to_string(kind);
}

namespace {

using sdk::from_dlpack;
using sdk::throw_if_error;
using sdk::to_dlpack;

template <class VT>
const VT* vtable_of(const Component& c, int32_t kind) {
  require(c.kind() == kind, SINSR_ERR_INVALID_ARGUMENT,
          "component '" + c.name() + "' is a " + sinsr_kind_name(c.kind()) + ", not a " + sinsr_kind_name(kind));
  return static_cast<const VT*>(c.desc->vtable);
}

std::string ctx(const Component& c, const char* what) { return c.name() + " " + what; }

DLDevice dl_device(c10::Device d) {
  DLDevice out;
  out.device_type = d.is_cuda() ? kDLCUDA : kDLCPU;
  out.device_id = d.has_index() ? d.index() : 0;
  return out;
}

DLDataType dl_dtype(at::ScalarType t) {
  DLDataType d;
  d.lanes = 1;
  switch (t) {
    case at::kHalf: d.code = kDLFloat; d.bits = 16; break;
    case at::kBFloat16: d.code = kDLBfloat; d.bits = 16; break;
    case at::kDouble: d.code = kDLFloat; d.bits = 64; break;
    case at::kFloat: d.code = kDLFloat; d.bits = 32; break;
    default:
      throw Error(SINSR_ERR_INVALID_ARGUMENT, std::string("models run in float16, bfloat16, float32 or float64, not ") +
                                                  c10::toString(t));
  }
  return d;
}

// A timestep_kind() answer, checked: a known kind, and a unit for noise levels.
TimestepKind timestep_kind_of(const Component& c, const sinsr_timestep_info& info) {
  const std::string who = std::string(sinsr_kind_name(c.kind())) + " '" + c.name() + "'";
  TimestepKind k;
  k.kind = info.kind;
  if (info.kind == SINSR_TIMESTEP_INDEX) return k;
  require(info.kind == SINSR_TIMESTEP_NOISE_LEVEL, SINSR_ERR_FORMAT,
          who + " declares an unknown timestep kind " + std::to_string(info.kind));
  require(info.unit != nullptr && *info.unit != '\0', SINSR_ERR_FORMAT,
          who + " declares noise-level timesteps without naming their unit");
  k.unit = info.unit;
  return k;
}

sinsr_timestep_info empty_timestep_info() {
  sinsr_timestep_info info{};
  info.struct_size = sizeof(info);
  info.kind = SINSR_TIMESTEP_INDEX;
  info.unit = nullptr;
  return info;
}

template <class Handle, class VT, class Self>
Self* create_instance(const Component& c, const VT* vt, const json& config) {
  Self* self = nullptr;
  std::string text = with_defaults(c, config).dump();
  throw_if_error(vt->create(text.c_str(), &self), ctx(c, "create"));
  require(self != nullptr, SINSR_ERR_RUNTIME, ctx(c, "create") + ": plugin returned no instance");
  return self;
}

}  // namespace

BackboneHandle::BackboneHandle(std::shared_ptr<Component> c, const json& config)
    : component_(std::move(c)),
      vt_(vtable_of<sinsr_backbone_vtable>(*component_, SINSR_KIND_BACKBONE)),
      lock_(*component_) {
  self_ = create_instance<BackboneHandle, sinsr_backbone_vtable, sinsr_backbone>(*component_, vt_, config);
}

BackboneHandle::~BackboneHandle() {
  if (self_) vt_->destroy(self_);
}

void BackboneHandle::load_weights(const std::string& path, const json& options) {
  auto l = lock_.lock();
  std::string opts = options.dump();
  throw_if_error(vt_->load_weights(self_, path.c_str(), opts.c_str()), ctx(*component_, "load_weights"));
}

void BackboneHandle::save_weights(const std::string& path) {
  auto l = lock_.lock();
  throw_if_error(vt_->save_weights(self_, path.c_str()), ctx(*component_, "save_weights"));
}

at::Tensor BackboneHandle::forward(const at::Tensor& x, const at::Tensor& cond, const at::Tensor& t) {
  auto l = lock_.lock();
  DLManagedTensor* out = nullptr;
  const sinsr_call_options opts = call_options_for(x);
  throw_if_error(vt_->forward(self_, &opts, to_dlpack(x), to_dlpack(cond), to_dlpack(t), &out, nullptr),
                 ctx(*component_, "forward"));
  return from_dlpack(out);
}

std::pair<at::Tensor, std::unique_ptr<Tape>> BackboneHandle::forward_train(const at::Tensor& x, const at::Tensor& cond,
                                                                           const at::Tensor& t) {
  auto l = lock_.lock();
  DLManagedTensor* out = nullptr;
  sinsr_tape* tape = nullptr;
  const sinsr_call_options opts = call_options_for(x);
  throw_if_error(vt_->forward(self_, &opts, to_dlpack(x), to_dlpack(cond), to_dlpack(t), &out, &tape),
                 ctx(*component_, "forward"));
  auto vt = vt_;
  auto self = self_;
  std::unique_ptr<Tape> tp(new Tape([vt, self](sinsr_tape* tt) { vt->tape_release(self, tt); }, tape));
  return {from_dlpack(out), std::move(tp)};
}

std::pair<at::Tensor, at::Tensor> BackboneHandle::backward(std::unique_ptr<Tape> tape, const at::Tensor& grad_out,
                                                           bool want_input_grads) {
  require(tape != nullptr, SINSR_ERR_INVALID_ARGUMENT, "backward without a tape");
  auto l = lock_.lock();
  DLManagedTensor* gx = nullptr;
  DLManagedTensor* gc = nullptr;
  const sinsr_call_options opts = call_options_for(grad_out);
  throw_if_error(vt_->backward(self_, &opts, tape->take(), to_dlpack(grad_out), want_input_grads ? &gx : nullptr,
                               want_input_grads ? &gc : nullptr),
                 ctx(*component_, "backward"));
  return {from_dlpack(gx), from_dlpack(gc)};
}

std::vector<NamedTensor> BackboneHandle::state() {
  auto l = lock_.lock();
  size_t n = 0;
  throw_if_error(vt_->state_count(self_, &n), ctx(*component_, "state_count"));
  std::vector<NamedTensor> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    sinsr_named_tensor nt{};
    nt.struct_size = sizeof(nt);
    throw_if_error(vt_->state_get(self_, i, &nt), ctx(*component_, "state_get"));
    NamedTensor e;
    e.name = nt.name ? nt.name : "";
    e.is_parameter = nt.is_parameter != 0;
    e.value = from_dlpack(nt.value);
    e.grad = from_dlpack(nt.grad);
    out.push_back(std::move(e));
  }
  return out;
}

void BackboneHandle::zero_grad() {
  auto l = lock_.lock();
  throw_if_error(vt_->zero_grad(self_), ctx(*component_, "zero_grad"));
}

void BackboneHandle::set_training(bool training) {
  auto l = lock_.lock();
  throw_if_error(vt_->set_training(self_, training ? 1 : 0), ctx(*component_, "set_training"));
}

void BackboneHandle::to(c10::Device device, at::ScalarType dtype) {
  auto l = lock_.lock();
  throw_if_error(vt_->to(self_, dl_device(device), dl_dtype(dtype)), ctx(*component_, "to"));
}

TimestepKind BackboneHandle::timestep_kind() {
  if (!SINSR_HAS_FIELD(vt_, sinsr_backbone_vtable, timestep_kind) || vt_->timestep_kind == nullptr)
    return TimestepKind();  // a 1.0 table: int64 step indices
  auto l = lock_.lock();
  sinsr_timestep_info info = empty_timestep_info();
  throw_if_error(vt_->timestep_kind(self_, &info), ctx(*component_, "timestep_kind"));
  return timestep_kind_of(*component_, info);
}

CodecHandle::CodecHandle(std::shared_ptr<Component> c, const json& config)
    : component_(std::move(c)), vt_(vtable_of<sinsr_codec_vtable>(*component_, SINSR_KIND_CODEC)), lock_(*component_) {
  self_ = create_instance<CodecHandle, sinsr_codec_vtable, sinsr_codec>(*component_, vt_, config);
}

CodecHandle::~CodecHandle() {
  if (self_) vt_->destroy(self_);
}

void CodecHandle::load_weights(const std::string& path, const json& options) {
  auto l = lock_.lock();
  std::string opts = options.dump();
  throw_if_error(vt_->load_weights(self_, path.c_str(), opts.c_str()), ctx(*component_, "load_weights"));
}

sinsr_codec_info CodecHandle::info() {
  auto l = lock_.lock();
  sinsr_codec_info info{};
  info.struct_size = sizeof(info);
  throw_if_error(vt_->info(self_, &info), ctx(*component_, "info"));
  return info;
}

at::Tensor CodecHandle::encode(const at::Tensor& image) {
  auto l = lock_.lock();
  DLManagedTensor* out = nullptr;
  const sinsr_call_options opts = call_options_for(image);
  throw_if_error(vt_->encode(self_, &opts, to_dlpack(image), &out), ctx(*component_, "encode"));
  return from_dlpack(out);
}

at::Tensor CodecHandle::decode(const at::Tensor& latent) {
  auto l = lock_.lock();
  DLManagedTensor* out = nullptr;
  const sinsr_call_options opts = call_options_for(latent);
  throw_if_error(vt_->decode(self_, &opts, to_dlpack(latent), &out), ctx(*component_, "decode"));
  return from_dlpack(out);
}

void CodecHandle::to(c10::Device device, at::ScalarType dtype) {
  auto l = lock_.lock();
  throw_if_error(vt_->to(self_, dl_device(device), dl_dtype(dtype)), ctx(*component_, "to"));
}

SamplerHandle::SamplerHandle(std::shared_ptr<Component> c, const json& config, int steps)
    : component_(std::move(c)),
      vt_(vtable_of<sinsr_sampler_vtable>(*component_, SINSR_KIND_SAMPLER)),
      lock_(*component_) {
  require(steps >= 0, SINSR_ERR_INVALID_ARGUMENT, "sampler '" + component_->name() + "': steps must be >= 0");
  self_ = create_instance<SamplerHandle, sinsr_sampler_vtable, sinsr_sampler>(*component_, vt_, config);
  if (steps == 0) return;
  try {
    respace(steps);
  } catch (...) {
    vt_->destroy(self_);  // the destructor does not run for a constructor that throws
    self_ = nullptr;
    throw;
  }
}

void SamplerHandle::respace(int steps) {
  const std::string who = "sampler '" + component_->name() + "' cannot respace to " + std::to_string(steps) + " steps";
  if (!SINSR_HAS_FIELD(vt_, sinsr_sampler_vtable, respace) || vt_->respace == nullptr)
    throw Error(SINSR_ERR_UNSUPPORTED, who + ": its function table has no respace call (plugin " +
                                           component_->file + ", ABI " + version_text(component_->abi_version) +
                                           "), so it runs only its own " + std::to_string(num_steps()) + " steps");
  {
    auto l = lock_.lock();
    throw_if_error(vt_->respace(self_, steps), who);
  }
  const int n = num_steps();
  require(n == steps, SINSR_ERR_RUNTIME,
          "sampler '" + component_->name() + "' accepted respace(" + std::to_string(steps) + ") but reports " +
              std::to_string(n) + " steps");
}

TimestepKind SamplerHandle::timestep_kind() {
  if (!SINSR_HAS_FIELD(vt_, sinsr_sampler_vtable, timestep_kind) || vt_->timestep_kind == nullptr)
    return TimestepKind();  // a 1.0 table: int64 step indices
  auto l = lock_.lock();
  sinsr_timestep_info info = empty_timestep_info();
  throw_if_error(vt_->timestep_kind(self_, &info), ctx(*component_, "timestep_kind"));
  return timestep_kind_of(*component_, info);
}

void check_timesteps(SamplerHandle& sampler, BackboneHandle& backbone) {
  const TimestepKind passes = sampler.timestep_kind(), takes = backbone.timestep_kind();
  if (passes == takes) return;
  throw Error(SINSR_ERR_INVALID_ARGUMENT, "sampler '" + sampler.component().name() + "' passes " + passes.describe() +
                                              " as the timestep, but backbone '" + backbone.component().name() +
                                              "' takes " + takes.describe() + ": pick a sampler and a backbone that agree");
}

SamplerHandle::~SamplerHandle() {
  if (self_) vt_->destroy(self_);
}

int SamplerHandle::num_steps() {
  auto l = lock_.lock();
  int32_t n = 0;
  throw_if_error(vt_->num_steps(self_, &n), ctx(*component_, "num_steps"));
  return n;
}

at::Tensor SamplerHandle::schedule(const std::string& key) {
  auto l = lock_.lock();
  DLManagedTensor* out = nullptr;
  throw_if_error(vt_->schedule(self_, key.c_str(), &out), ctx(*component_, "schedule"));
  return from_dlpack(out);
}

at::Tensor SamplerHandle::prior(const at::Tensor& y, const at::Tensor& noise) {
  auto l = lock_.lock();
  DLManagedTensor* out = nullptr;
  const sinsr_call_options opts = call_options_for(y);
  throw_if_error(vt_->prior(self_, &opts, to_dlpack(y), to_dlpack(noise), &out), ctx(*component_, "prior"));
  return from_dlpack(out);
}

namespace {
// Bridges C callbacks to the C++ ones; an exception inside becomes a status for the plugin.
struct CallbackBridge {
  const sdk::SampleCallbacks* cb;

  static sinsr_status* denoise(void* user, DLManagedTensor* x_in, DLManagedTensor* t, DLManagedTensor** out) {
    auto* self = static_cast<CallbackBridge*>(user);
    return sdk::guard("denoise", [&] {
      at::Tensor x = from_dlpack(x_in);
      at::Tensor tt = from_dlpack(t);
      *out = to_dlpack(self->cb->denoise(x, tt));
    });
  }
  static sinsr_status* noise(void* user, const DLTensor* like, DLManagedTensor** out) {
    auto* self = static_cast<CallbackBridge*>(user);
    return sdk::guard("noise", [&] {
      require(self->cb->noise != nullptr, SINSR_ERR_INVALID_ARGUMENT, "no noise source given");
      std::vector<int64_t> shape(like->shape, like->shape + like->ndim);
      at::Tensor proto = at::empty(shape, at::TensorOptions()
                                               .dtype(sdk::scalar_type_of(like->dtype))
                                               .device(sdk::device_of(like->device)));
      *out = to_dlpack(self->cb->noise(proto));
    });
  }
  static int32_t progress(void* user, int32_t step, int32_t total) {
    auto* self = static_cast<CallbackBridge*>(user);
    try {
      return (!self->cb->progress || self->cb->progress(step, total)) ? 0 : 1;
    } catch (...) {
      return 1;
    }
  }
  static sinsr_status* uniform(void* user, int64_t count, double* out) {
    auto* self = static_cast<CallbackBridge*>(user);
    return sdk::guard("uniform", [&] {
      require(self->cb->uniform != nullptr, SINSR_ERR_INVALID_ARGUMENT, "no uniform source given");
      require(count >= 0 && (count == 0 || out != nullptr), SINSR_ERR_INVALID_ARGUMENT, "bad uniform request");
      at::Tensor u = self->cb->uniform(count).to(at::kCPU, at::kDouble).contiguous();
      require(u.numel() == count, SINSR_ERR_RUNTIME, "the uniform source returned the wrong count");
      std::copy_n(u.data_ptr<double>(), count, out);
    });
  }
  sinsr_sample_callbacks table() {
    sinsr_sample_callbacks t{};
    t.struct_size = sizeof(t);
    t.user = this;
    t.denoise = &CallbackBridge::denoise;
    t.noise = &CallbackBridge::noise;
    t.progress = &CallbackBridge::progress;
    t.uniform = &CallbackBridge::uniform;
    return t;
  }
};
}  // namespace

at::Tensor SamplerHandle::sample(const at::Tensor& y, const at::Tensor& x_T, const sdk::SampleCallbacks& callbacks) {
  auto l = lock_.lock();
  CallbackBridge bridge{&callbacks};
  const sinsr_sample_callbacks cb = bridge.table();
  DLManagedTensor* out = nullptr;
  const sinsr_call_options opts = call_options_for(y);
  throw_if_error(vt_->sample(self_, &opts, to_dlpack(y), to_dlpack(x_T), &cb, &out), ctx(*component_, "sample"));
  return from_dlpack(out);
}

sdk::TrainingExample SamplerHandle::training_example(const at::Tensor& x0, const at::Tensor& y,
                                                    const sdk::SampleCallbacks& draws) {
  require(SINSR_HAS_FIELD(vt_, sinsr_sampler_vtable, training_example) && vt_->training_example != nullptr,
          SINSR_ERR_UNSUPPORTED,
          "sampler '" + component_->name() + "' cannot train a network (it has no training_example call, ABI 1.2)");
  auto l = lock_.lock();
  CallbackBridge bridge{&draws};
  const sinsr_sample_callbacks cb = bridge.table();
  sinsr_training_example ex{};
  ex.struct_size = sizeof(ex);
  const sinsr_call_options opts = call_options_for(x0);
  throw_if_error(vt_->training_example(self_, &opts, to_dlpack(x0), to_dlpack(y), &cb, &ex),
                 ctx(*component_, "training_example"));
  require(ex.x_in != nullptr && ex.t != nullptr && ex.target != nullptr, SINSR_ERR_RUNTIME,
          "sampler '" + component_->name() + "' returned an incomplete training example");
  return {from_dlpack(ex.x_in), from_dlpack(ex.t), from_dlpack(ex.target)};
}

at::Tensor SamplerHandle::q_sample(const at::Tensor& x0, const at::Tensor& y, const at::Tensor& t,
                                   const at::Tensor& noise) {
  auto l = lock_.lock();
  DLManagedTensor* out = nullptr;
  const sinsr_call_options opts = call_options_for(x0);
  throw_if_error(vt_->q_sample(self_, &opts, to_dlpack(x0), to_dlpack(y), to_dlpack(t), to_dlpack(noise), &out),
                 ctx(*component_, "q_sample"));
  return from_dlpack(out);
}

at::Tensor SamplerHandle::scale_input(const at::Tensor& x_t, const at::Tensor& t) {
  auto l = lock_.lock();
  DLManagedTensor* out = nullptr;
  const sinsr_call_options opts = call_options_for(x_t);
  throw_if_error(vt_->scale_input(self_, &opts, to_dlpack(x_t), to_dlpack(t), &out), ctx(*component_, "scale_input"));
  return from_dlpack(out);
}

LossHandle::LossHandle(std::shared_ptr<Component> c, const json& config)
    : component_(std::move(c)), vt_(vtable_of<sinsr_loss_vtable>(*component_, SINSR_KIND_LOSS)), lock_(*component_) {
  self_ = create_instance<LossHandle, sinsr_loss_vtable, sinsr_loss>(*component_, vt_, config);
}

LossHandle::~LossHandle() {
  if (self_) vt_->destroy(self_);
}

at::Tensor LossHandle::forward(const at::Tensor& pred, const at::Tensor& target) {
  auto l = lock_.lock();
  DLManagedTensor* out = nullptr;
  const sinsr_call_options opts = call_options_for(pred);
  throw_if_error(vt_->forward(self_, &opts, to_dlpack(pred), to_dlpack(target), &out, nullptr),
                 ctx(*component_, "forward"));
  return from_dlpack(out);
}

std::pair<at::Tensor, std::unique_ptr<Tape>> LossHandle::forward_train(const at::Tensor& pred, const at::Tensor& target) {
  auto l = lock_.lock();
  DLManagedTensor* out = nullptr;
  sinsr_tape* tape = nullptr;
  const sinsr_call_options opts = call_options_for(pred);
  throw_if_error(vt_->forward(self_, &opts, to_dlpack(pred), to_dlpack(target), &out, &tape),
                 ctx(*component_, "forward"));
  auto vt = vt_;
  auto self = self_;
  std::unique_ptr<Tape> tp(new Tape([vt, self](sinsr_tape* tt) { vt->tape_release(self, tt); }, tape));
  return {from_dlpack(out), std::move(tp)};
}

at::Tensor LossHandle::backward(std::unique_ptr<Tape> tape, const at::Tensor& grad_loss) {
  require(tape != nullptr, SINSR_ERR_INVALID_ARGUMENT, "backward without a tape");
  auto l = lock_.lock();
  DLManagedTensor* out = nullptr;
  const sinsr_call_options opts = call_options_for(grad_loss);
  throw_if_error(vt_->backward(self_, &opts, tape->take(), to_dlpack(grad_loss), &out), ctx(*component_, "backward"));
  return from_dlpack(out);
}

}  // namespace host
}  // namespace sinsr
