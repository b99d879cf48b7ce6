// The SinSR plugin SDK: write a component as a C++ class over LibTorch, register it, and the
// SDK produces the C function tables, converts tensors (DLPack, zero copy), records autograd
// tapes and turns every exception into a status. Nothing from here crosses the ABI.
//
//   struct MyNet : sinsr::sdk::Backbone { ... };
//   SINSR_PLUGIN("my_plugin", "1.0.0") {
//     plugin.add_backbone<MyNet>({"my_net", "1.0.0", "what it is", schema_json});
//   }
#pragma once

// LibTorch's DLPack header must come first: torch 2.x bundles a newer dlpack.h under the same
// include guard as the system one the ABI header includes.
#include <ATen/ATen.h>
#include <ATen/DLConvertor.h>

#include "sinsr_plugin.h"

#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace torch {
namespace nn {
class Module;
}
}  // namespace torch

namespace sinsr {
namespace sdk {

using json = nlohmann::json;

// ---- errors and statuses ---------------------------------------------------------------

// Throw this to report a specific code; any other exception becomes SINSR_ERR_RUNTIME.
class Error : public std::runtime_error {
 public:
  Error(sinsr_code code, const std::string& message) : std::runtime_error(message), code_(code) {}
  sinsr_code code() const noexcept { return code_; }

 private:
  sinsr_code code_;
};

// The host's services, as handed to sinsr_plugin_entry (the host library sets its own).
const sinsr_host_api* host() noexcept;
void set_host(const sinsr_host_api* api) noexcept;

sinsr_status* make_status(sinsr_code code, const std::string& message) noexcept;
// Converts the exception in flight (call only inside a catch block).
sinsr_status* status_from_current_exception(const char* where) noexcept;

// Runs f and converts every exception to a status; `where` prefixes the message.
template <class F>
sinsr_status* guard(const char* where, F&& f) noexcept {
  try {
    f();
    return nullptr;
  } catch (...) {
    return status_from_current_exception(where);
  }
}

// Throws sinsr::sdk::Error carrying a received status (and releases it). No-op on NULL.
void throw_if_error(sinsr_status* status, const std::string& context = "");

void require(bool condition, sinsr_code code, const std::string& message);

// ---- logging ---------------------------------------------------------------------------

// Sends a message to the host's log (sinsr_host_api.log) with the plugin's name as its source;
// the host decides what to show (sinsr-host prints info and above on stderr). Never throws.
void log(sinsr_log_level level, const std::string& message) noexcept;

// ---- tensors -------------------------------------------------------------------------

// Takes ownership of m (its deleter runs when the tensor's storage dies). NULL -> undefined.
at::Tensor from_dlpack(DLManagedTensor* m);
// Zero-copy export keeping t alive until the consumer calls the deleter. Undefined -> NULL.
DLManagedTensor* to_dlpack(const at::Tensor& t);
// Calls m->deleter if m is not NULL (for inputs a failing call never got to consume).
void release(DLManagedTensor* m) noexcept;

at::ScalarType scalar_type_of(DLDataType dtype);
c10::Device device_of(DLDevice device);

// Runs the body with the CUDA stream of the call options made current (no-op on CPU builds).
void with_stream(const sinsr_call_options* options, const c10::Device& device, const std::function<void()>& body);

// ---- component interfaces ------------------------------------------------------------

// What a network's t means (ABI 1.1 timestep_kind): int64 step indices (the default) or a
// float noise level in a named unit. A sampler declares what it passes to denoise, a backbone
// what forward() takes; the host refuses a pair that disagrees.
struct Timesteps {
  sinsr_timestep_kind kind = SINSR_TIMESTEP_INDEX;
  std::string unit;  // noise levels only, e.g. "sigma"

  static Timesteps indices() { return {}; }
  static Timesteps noise_level(std::string unit) { return {SINSR_TIMESTEP_NOISE_LEVEL, std::move(unit)}; }
};

struct ComponentMeta {
  std::string name;
  std::string version;
  std::string summary;
  std::string config_schema = "{}";
  int32_t thread_safety = SINSR_THREAD_PER_INSTANCE;
  std::string default_config;   // empty: none
  std::string default_weights;  // empty: none; relative paths are beside the plugin library
  // ABI 1.1
  std::string base;                // a shipped model: the component implementing it (add_model)
  std::string preferred_pipeline;  // JSON: the codec/sampler/steps the model was trained with
  uint32_t flags = 0;              // SINSR_COMPONENT_* bits
};

// ---- architecture detection (ABI 1.2 detect_config) -------------------------------------

// A state dict's names and shapes, without data (wrapper prefixes such as "module." stripped).
using ShapeMap = std::map<std::string, std::vector<int64_t>>;

// What a network class says about a state dict: the config its constructor takes to build a
// network with exactly these names and shapes, and the config keys the shapes cannot tell
// (nested keys as "a.b"), set to the values of `assumed_from`. Keys keep their order.
struct Detection {
  nlohmann::ordered_json config = nlohmann::ordered_json::object();
  std::vector<std::string> assumed;
  std::string assumed_from;  // e.g. "the official SinSR.yaml"; may be empty
};

// For detect(): checks that the network a detected config builds (`expected`, its names and
// shapes) is exactly the one `given` describes; entries for which `optional` is true (buffers
// the network recomputes) may be absent from `given`. Otherwise throws
// Error(SINSR_ERR_UNSUPPORTED, "<what>: <the first difference>").
void check_detected(const ShapeMap& given, const ShapeMap& expected, const std::string& what,
                    const std::function<bool(const std::string&)>& optional = nullptr);
// "[640, 160]"
std::string describe_shape(at::IntArrayRef shape);

// A network f(x, cond, t). Override module() and forward(); the SDK provides tapes, state
// listing, gradients, train/eval and checkpoint loading through sinsr::ckpt.
//
// Optionally, a class that can recognise its own checkpoints declares
//   static sinsr::sdk::Detection detect(const sinsr::sdk::ShapeMap& shapes);
// (the same for a Codec): add_backbone / add_codec pick it up and publish it as the table's
// detect_config. It throws Error(SINSR_ERR_NOT_FOUND) when the keys are not its network's and
// Error(SINSR_ERR_UNSUPPORTED) for a variant of its network it cannot build.
class Backbone {
 public:
  virtual ~Backbone() = default;
  virtual torch::nn::Module& module() = 0;
  virtual at::Tensor forward(const at::Tensor& x, const at::Tensor& cond, const at::Tensor& t) = 0;
  virtual void load_weights(const std::string& path, const json& options);
  virtual void save_weights(const std::string& path);
  virtual void to(c10::Device device, at::ScalarType dtype);
  // What forward()'s t means; override for a network conditioned on a noise level.
  virtual Timesteps timesteps() const { return Timesteps::indices(); }
  // ABI 1.4: what forward() returns (x0, noise, ...); UNDECLARED is never checked.
  virtual sinsr_prediction prediction() const { return SINSR_PREDICTION_UNDECLARED; }
};

class Codec {
 public:
  virtual ~Codec() = default;
  virtual torch::nn::Module& module() = 0;
  virtual sinsr_codec_info info() const = 0;
  virtual at::Tensor encode(const at::Tensor& image) = 0;
  virtual at::Tensor decode(const at::Tensor& latent) = 0;
  virtual void load_weights(const std::string& path, const json& options);
  virtual void to(c10::Device device, at::ScalarType dtype);
};

// Callbacks of one sample() call, already converted to tensors.
struct SampleCallbacks {
  std::function<at::Tensor(const at::Tensor& x_in, const at::Tensor& t)> denoise;
  std::function<at::Tensor(const at::Tensor& like)> noise;
  std::function<bool(int step, int total)> progress;  // false = cancel
  // ABI 1.2: `count` draws from U[0, 1) as a float64 CPU tensor [count].
  std::function<at::Tensor(int64_t count)> uniform;
};

// One SinSR distillation step's data (ABI 1.5 distillation_example; fields as the struct's).
struct DistillationExample {
  at::Tensor x_T, x0, x_in, t_student, t_inverse;
};

// One training step's worth of data for the network (ABI 1.2 training_example).
struct TrainingExample {
  at::Tensor x_in;    // network input, scaled as sample() scales it
  at::Tensor t;       // [N] timesteps as denoise gets them
  at::Tensor target;  // what the network output is trained towards
};

class Sampler {
 public:
  virtual ~Sampler() = default;
  virtual int num_steps() const = 0;
  virtual at::Tensor schedule(const std::string& key) const = 0;
  virtual at::Tensor prior(const at::Tensor& y, const at::Tensor& noise) = 0;
  virtual at::Tensor sample(const at::Tensor& y, const at::Tensor& x_T, const SampleCallbacks& cb) = 0;
  virtual at::Tensor q_sample(const at::Tensor& x0, const at::Tensor& y, const at::Tensor& t,
                              const at::Tensor& noise) = 0;
  virtual at::Tensor scale_input(const at::Tensor& x_t, const at::Tensor& t) = 0;
  // Makes num_steps() == steps (>= 1); the host calls it once, right after construction, when a
  // step count is asked for (--steps, a distilled student's one step). The default refuses
  // (SINSR_ERR_UNSUPPORTED): override it when the chain can be respaced.
  virtual void respace(int steps);
  // What this sampler passes as t to the denoise callback; q_sample and scale_input always
  // take int64 indices of its own chain.
  virtual Timesteps timesteps() const { return Timesteps::indices(); }
  // ABI 1.4: what the denoise callback must return (x0, noise, ...); UNDECLARED is never checked.
  virtual sinsr_prediction prediction() const { return SINSR_PREDICTION_UNDECLARED; }
  // Training data for the network from clean x0 and the condition y (what prior() takes), on
  // the chain the network is trained on. Draw randomness only through cb.uniform and cb.noise
  // (the host replays them). The default refuses (SINSR_ERR_UNSUPPORTED).
  virtual TrainingExample training_example(const at::Tensor& x0, const at::Tensor& y, const SampleCallbacks& cb);
  // ABI 1.5: SinSR distillation's data from the condition y and standard normal noise; the
  // teacher is cb.denoise. The default refuses (SINSR_ERR_UNSUPPORTED).
  virtual DistillationExample distillation_example(const at::Tensor& y, const at::Tensor& noise,
                                                   const SampleCallbacks& cb);
};

// An unsigned integer of `bytes` (1..8) bytes at p, least significant first (big: most
// significant first), as file headers store them. The one reader of such fields in the project.
inline uint64_t read_uint(const void* p, int bytes, bool big = false) {
  const unsigned char* b = static_cast<const unsigned char*>(p);
  uint64_t v = 0;
  for (int k = 0; k < bytes; ++k) v = (v << 8) | b[big ? k : bytes - 1 - k];
  return v;
}

// What the samplers of every family need alike.
// "[1, 3, 64, 64]", or "undefined".
std::string describe_shape(const at::Tensor& t);
// A callback's result (`what`: "denoise", "noise") checked to have `like`'s shape, else
// Error(SINSR_ERR_INVALID_ARGUMENT) naming `who`, the callback and the step (step < 0: outside
// the sampling loop); returned on like's device in like's dtype.
at::Tensor callback_result(const at::Tensor& v, const at::Tensor& like, const std::string& who, const char* what,
                           int64_t step);
// table[t] for a batch of step indices t, shaped [N, 1, ..., 1] to broadcast over `like`, on its device.
at::Tensor coef_at(const at::Tensor& table, const at::Tensor& t, const at::Tensor& like);
// numpy.linspace(start, stop, num) in float64, bit for bit: i * step + start, the last entry
// set to stop exactly (one entry: start).
std::vector<double> linspace(double start, double stop, int num);
// `steps` (1..size) step indices of a chain of `size`, evenly spaced with both ends kept
// (round(k * (size - 1) / (steps - 1))); one step keeps the last. SinSR's and the DDPM
// references' respacing.
std::vector<int64_t> evenly_spaced_steps(int64_t size, int64_t steps);
// Reports `done` of `total` steps; throws Error(SINSR_ERR_CANCELLED) when `progress` says stop.
void report_progress(const std::function<bool(int, int)>& progress, int done, int total);

// A differentiable loss; backward() comes from LibTorch autograd through the tape. forward()
// returns a 0-d batch loss or [N] per-sample values (N = pred.size(0)); the host takes either.
class Loss {
 public:
  virtual ~Loss() = default;
  virtual at::Tensor forward(const at::Tensor& pred, const at::Tensor& target) = 0;
};

// ---- registration --------------------------------------------------------------------

namespace detail {
template <class Base, class T>
Base* construct(const json& config) {
  return new T(config);
}
// options: the create_with options (ABI 1.3) or nullptr.
sinsr_status* create_backbone(Backbone* (*factory)(const json&), const char* config, const char* options,
                              sinsr_backbone** out) noexcept;
sinsr_status* create_codec(Codec* (*factory)(const json&), const char* config, const char* options,
                           sinsr_codec** out) noexcept;
sinsr_status* create_sampler(Sampler* (*factory)(const json&), const char* config, sinsr_sampler** out) noexcept;
sinsr_status* create_loss(Loss* (*factory)(const json&), const char* config, sinsr_loss** out) noexcept;

// One C entry point per registered class: the tables' create slots cannot capture.
template <class T>
sinsr_status* backbone_create(const char* c, sinsr_backbone** out) {
  return create_backbone(&construct<Backbone, T>, c, nullptr, out);
}
template <class T>
sinsr_status* backbone_create_with(const char* c, const char* o, sinsr_backbone** out) {
  return create_backbone(&construct<Backbone, T>, c, o, out);
}
template <class T>
sinsr_status* codec_create(const char* c, sinsr_codec** out) {
  return create_codec(&construct<Codec, T>, c, nullptr, out);
}
template <class T>
sinsr_status* codec_create_with(const char* c, const char* o, sinsr_codec** out) {
  return create_codec(&construct<Codec, T>, c, o, out);
}
template <class T>
sinsr_status* sampler_create(const char* c, sinsr_sampler** out) {
  return create_sampler(&construct<Sampler, T>, c, out);
}
template <class T>
sinsr_status* loss_create(const char* c, sinsr_loss** out) {
  return create_loss(&construct<Loss, T>, c, out);
}

// detect_config over a class's static detect(): converts the entries, writes the JSON answer.
using DetectFn = Detection (*)(const ShapeMap&);
sinsr_status* detect_config(DetectFn detect, const sinsr_tensor_shape* const* entries, size_t count,
                            sinsr_text_writer write, void* user) noexcept;
template <class T, class = void>
struct has_detect : std::false_type {};
template <class T>
struct has_detect<T, std::void_t<decltype(static_cast<DetectFn>(&T::detect))>> : std::true_type {};
template <class T>
sinsr_status* detect_entry(const sinsr_tensor_shape* const* entries, size_t count, sinsr_text_writer write,
                           void* user) {
  return detect_config(static_cast<DetectFn>(&T::detect), entries, count, write, user);
}
// The table entry for T: NULL when T has no static detect().
template <class T>
sinsr_detect_config_fn detect_entry_of() {
  if constexpr (has_detect<T>::value)
    return &detect_entry<T>;
  else
    return nullptr;
}
}  // namespace detail

class PluginBuilder {
 public:
  // T is constructed from the component's JSON config (parsed, defaults not applied).
  template <class T>
  PluginBuilder& add_backbone(ComponentMeta meta) {
    return add(
        SINSR_KIND_BACKBONE, std::move(meta),
        backbone_vtable(&detail::backbone_create<T>, &detail::backbone_create_with<T>, detail::detect_entry_of<T>()));
  }
  template <class T>
  PluginBuilder& add_codec(ComponentMeta meta) {
    return add(SINSR_KIND_CODEC, std::move(meta),
               codec_vtable(&detail::codec_create<T>, &detail::codec_create_with<T>, detail::detect_entry_of<T>()));
  }
  template <class T>
  PluginBuilder& add_sampler(ComponentMeta meta) {
    // distillation_example is in the table only where T overrides it: the host refuses a sampler
    // without it before any compute.
    constexpr bool distills =
        !std::is_same_v<decltype(&T::distillation_example), decltype(&Sampler::distillation_example)>;
    return add(SINSR_KIND_SAMPLER, std::move(meta), sampler_vtable(&detail::sampler_create<T>, distills));
  }
  template <class T>
  PluginBuilder& add_loss(ComponentMeta meta) {
    return add(SINSR_KIND_LOSS, std::move(meta), loss_vtable(&detail::loss_create<T>));
  }
  // A shipped model: meta.base names the component of `kind` that implements it; the host
  // creates that with meta.default_config and loads meta.default_weights. No code of its own.
  PluginBuilder& add_model(int32_t kind, ComponentMeta meta) { return add(kind, std::move(meta), nullptr); }

  // Used by SINSR_PLUGIN; the result lives for the life of the library.
  const sinsr_plugin_info* finish(const char* plugin_name, const char* plugin_version);

 private:
  // create_with: the ABI 1.3 entry; detect: the ABI 1.2 detect_config entry, or NULL.
  static const void* backbone_vtable(sinsr_status* (*create)(const char*, sinsr_backbone**),
                                     sinsr_status* (*create_with)(const char*, const char*, sinsr_backbone**),
                                     sinsr_detect_config_fn detect);
  static const void* codec_vtable(sinsr_status* (*create)(const char*, sinsr_codec**),
                                  sinsr_status* (*create_with)(const char*, const char*, sinsr_codec**),
                                  sinsr_detect_config_fn detect);
  static const void* sampler_vtable(sinsr_status* (*create)(const char*, sinsr_sampler**), bool distills);
  static const void* loss_vtable(sinsr_status* (*create)(const char*, sinsr_loss**));
  PluginBuilder& add(int32_t kind, ComponentMeta meta, const void* vtable);

  struct Entry {
    ComponentMeta meta;
    int32_t kind;
    const void* vtable;
  };
  std::vector<Entry> entries_;
};

// Implements sinsr_plugin_entry: records the host, checks its ABI major, builds the
// descriptor once (registration exceptions become a status).
sinsr_status* plugin_entry(const sinsr_host_api* host, const sinsr_plugin_info** out, const char* name,
                           const char* version, void (*register_fn)(PluginBuilder&)) noexcept;

}  // namespace sdk
}  // namespace sinsr

#define SINSR_PLUGIN(plugin_name, plugin_version)                                                          \
  static void sinsr_register_components(::sinsr::sdk::PluginBuilder& plugin);                              \
  extern "C" SINSR_EXPORT sinsr_status* sinsr_plugin_entry(const sinsr_host_api* host,                     \
                                                           const sinsr_plugin_info** out) {                \
    return ::sinsr::sdk::plugin_entry(host, out, plugin_name, plugin_version, &sinsr_register_components); \
  }                                                                                                        \
  static void sinsr_register_components(::sinsr::sdk::PluginBuilder& plugin)
