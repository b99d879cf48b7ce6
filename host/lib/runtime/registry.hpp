// The plugin loader and registry: loads plugin libraries, checks their descriptors against this
// host's ABI, and keeps their components by kind and name (resolving shipped models onto their
// base). The handles that call a component live in handles.hpp; runtime.hpp includes both.
#pragma once

#include "sinsr_host.h"

#include <sinsr/sdk.hpp>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace sinsr {
namespace host {

using json = nlohmann::json;

// The host's own service table (statuses, logging), handed to every plugin.
const sinsr_host_api* host_api();
// A message through the same log the plugins use: the callback of sinsr_log_set, else stderr
// as "[level] source: message". Messages under the minimum level are dropped.
void log(int32_t level, const std::string& source, const std::string& message);
// sinsr_log_set: callback NULL restores stderr.
void set_log(sinsr_log_callback callback, void* user, int32_t min_level);

// An ABI version as "major.minor".
std::string version_string(uint32_t v);

struct Component {
  const sinsr_component* desc = nullptr;
  std::string file;  // library path
  std::string plugin_name;
  std::string plugin_version;
  uint32_t abi_version = 0;
  std::shared_ptr<void> library;       // keeps the library loaded while handles live
  std::shared_ptr<std::mutex> serial;  // for SINSR_THREAD_SERIAL components
  std::shared_ptr<void> storage;       // a resolved model's host-owned descriptor and strings

  int32_t kind() const { return desc->kind; }
  std::string name() const { return desc->name; }
  std::string default_weights_path() const;  // resolved beside the library, or ""
  json default_config() const;               // {} when none
  // ABI 1.1 fields (empty / {} / false for a 1.0 component).
  std::string base() const;         // a shipped model: the component implementing it
  json preferred_pipeline() const;  // what the model was trained with
  bool needs_weights() const;       // false: SINSR_COMPONENT_NO_WEIGHTS
};

// A model manifest's file name ends with this (loaded from the plugin folders and by --plugin).
constexpr const char* kModelManifestSuffix = ".model.json";
// What a caller who names no component gets is data, not code: a plugin folder's file of this
// name (models/defaults.json in this project), read by load_dir; see Runtime::defaults().
constexpr const char* kDefaultsFileName = "defaults.json";

// The CPU thread count when the caller gives none (0): the cores this process may run on (its
// affinity mask), whatever else runs. Not the idle cores: output bytes depend on the thread count
// (LibTorch splits sums by thread), and the same command must give the same bytes. Beside a busy
// process the default is slower than -j 1 (OpenMP threads wait for a taken core); say -j 1 there.
int default_threads();

// A thread count is capped at this many per core (set_threads).
constexpr int kMaxThreadsPerCore = 4;

// Sets the CPU thread count of LibTorch's pool and of the BLAS library it calls: Debian's
// LibTorch uses OpenBLAS, whose own pthread pool ignores at::set_num_threads, so a `-j 1` run
// still kept a second core busy in every matrix product (attention, linear layers). n <= 0:
// default_threads(); more than kMaxThreadsPerCore per core: that many.
void set_threads(int n);

// A thread count applied around one piece of work, then the previous one restored: the C API's
// pipelines run at their own count without changing the process's for good. LibTorch's OpenMP
// pool follows the calling thread's setting; OpenBLAS's count is one per process, restored when
// the last overlapping scope ends, so pipelines of different counts running at once share
// whichever was set last (abi/sinsr_host.h says so). n <= 0: leave the counts as they are.
class ThreadScope {
 public:
  explicit ThreadScope(int n);
  ~ThreadScope();
  ThreadScope(const ThreadScope&) = delete;
  ThreadScope& operator=(const ThreadScope&) = delete;

 private:
  int previous_ = 0;  // this thread's LibTorch count before; 0: nothing to restore
};

// The BLAS library under LibTorch's matrix products and the kernel set it runs, for benchmark
// headers: "OpenBLAS 0.3.21 ... (kernels: Haswell)"; "not OpenBLAS" where it is another (MKL).
std::string blas_description();

class Runtime {
 public:
  // Applies num_threads (0: default_threads()) to the process (set_threads): for programs that
  // own their process, as the CLI. ThreadsLeft::Alone leaves the process's counts as they are
  // (the C API: each pipeline applies its count around its own work, ThreadScope).
  enum class ThreadsLeft { Applied, Alone };
  explicit Runtime(int num_threads = 0, ThreadsLeft threads = ThreadsLeft::Applied);
  // The count given at creation, 0 resolved to default_threads().
  int threads() const { return threads_; }
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // Loads one library, or a model manifest (NAME.model.json, load_manifest); throws Error with
  // the refusal reason (the registry is unchanged).
  void load_file(const std::string& path);
  // A model without code: a JSON file naming its base backbone, config, weights (beside it),
  // preferred pipeline, scale, the input it is for and a summary; registered as a built model
  // plugin's model is (ABI 1.1 `base`), so both resolve the same way.
  //   {"sinsr_model": 1, "name": "mine", "base": "unet_swin", "config": {...} | "file.json",
  //    "weights": "mine.pth", "pipeline": {...} | "file.json", "scale": 4,
  //    "input": "real-world" | "bicubic", "summary": "..."}
  void load_manifest(const std::string& path);
  // Loads every shared library and model manifest in a folder, and its defaults file; returns
  // the refusal messages (others still load).
  std::vector<std::string> load_dir(const std::string& path);
  // File or folder, chosen by the caller (--plugin, sinsr_runtime_load): its backbone becomes the
  // default one and its defaults file wins over those of the default paths. A folder's refusals
  // are joined into one Error after the rest loaded.
  void load(const std::string& path);
  // A defaults file: {"sinsr_defaults": 1, "infer": {"backbone": ["a", "b"], "codec": ...}, ...}.
  // Its keys fill the runtime's defaults where unset, or win over them (`wins`: a file the caller
  // chose). Refused whole, naming the file, when it is not such an object.
  void load_defaults(const std::string& path, bool wins);
  // SINSR_PLUGIN_PATH entries, then the plugin folder of this install/build tree. Returns refusals.
  std::vector<std::string> load_default_paths();

  const std::vector<std::shared_ptr<Component>>& components() const { return components_; }
  // Throws SINSR_ERR_NOT_FOUND listing the available names of that kind. A shipped model
  // (ABI 1.1 `base`) comes back resolved: its base's function table with the model's name,
  // merged default config, weights and preferred pipeline.
  std::shared_ptr<Component> find(int32_t kind, const std::string& name) const;
  std::shared_ptr<Component> find_or_null(int32_t kind, const std::string& name) const;
  // The single component of a kind a library provides (for `--plugin student.so` defaults).
  std::vector<std::shared_ptr<Component>> from_file(const std::string& path) const;

  // The defaults files loaded so far, merged: those the caller loaded (load) first, then
  // SINSR_PLUGIN_PATH's, then the install's. {} when none was found.
  json defaults() const;
  // defaults()[section][key] as a list of names ("codec": "vq_f4" -> {"vq_f4"}); empty when unset.
  std::vector<std::string> default_names(const std::string& section, const std::string& key) const;
  // The same from any merged defaults (installed_defaults(), for --help).
  static std::vector<std::string> names_in(const json& defaults, const std::string& section, const std::string& key);
  // The first of default_names(section, key) that is loaded, else its last (so that a lookup
  // names what is missing); "" when no defaults file names one.
  std::string default_name(const std::string& section, const std::string& key, int32_t kind) const;
  // The backbone to run when the caller names none: the last backbone of the files the caller
  // loaded (a `--plugin student.so`), else default_name("infer", "backbone"). SINSR_ERR_NOT_FOUND
  // when neither names one.
  std::string default_backbone() const;
  // The last backbone of the files the caller loaded; "" when they hold none.
  std::string chosen_backbone() const;
  // The install's defaults file, read without loading anything (for --help); {} when absent.
  static json installed_defaults();

  // The folder the installed/built plugins live in, derived from libsinsr_host's location.
  static std::string builtin_plugin_dir();

 private:
  struct Library;
  std::vector<std::shared_ptr<Library>> libraries_;
  std::vector<std::shared_ptr<Component>> components_;
  std::vector<std::string> chosen_;  // paths the caller loaded (load), in order
  json defaults_ = json::object();
  int threads_ = 0;
  std::vector<std::string> load_dir(const std::string& path, bool chosen);
  mutable std::map<const Component*, std::shared_ptr<Component>> resolved_;  // models, resolved once
  mutable std::mutex mutex_;
  std::shared_ptr<Component> resolve_locked(const std::shared_ptr<Component>& model) const;
};

// Merges a component's default_config under the caller's config (caller wins; a "config_file"
// the caller names is read first, and its keys win too).
json with_defaults(const Component& c, const json& config);
// A config as the component reads it: a "config_file" (or an official config given inline) made
// the component's params (its section of an official file; a native file's contents), the
// other keys over them.
json resolve_config(const Component& c, const json& config);

}  // namespace host
}  // namespace sinsr
