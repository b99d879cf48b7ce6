/*
 * sinsr_host.h - the C API of the SinSR runtime (libsinsr_host).
 *
 * For applications and other languages: create a runtime, load plugins, list components,
 * build an inference pipeline and run it on an image held in a DLPack tensor. Plain C99.
 * Every call that can fail returns sinsr_status* (NULL = success); release it with
 * sinsr_status_release(). sinsr_last_error() repeats the message of the last failure on the
 * calling thread, for callers that only check for NULL.
 */
#ifndef SINSR_HOST_H
#define SINSR_HOST_H

#include "sinsr_plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define SINSR_API __declspec(dllimport)
#elif defined(SINSR_BUILDING_HOST)
#define SINSR_API __attribute__((visibility("default")))
#else
#define SINSR_API
#endif

typedef struct sinsr_runtime sinsr_runtime;
typedef struct sinsr_pipeline sinsr_pipeline;

SINSR_API uint32_t sinsr_abi_version(void);
SINSR_API const char* sinsr_version(void);
SINSR_API const char* sinsr_kind_name(int32_t kind); /* "backbone", ... or "unknown" */

SINSR_API int32_t sinsr_status_code(const sinsr_status* status);
SINSR_API const char* sinsr_status_message(const sinsr_status* status);
SINSR_API void sinsr_status_release(sinsr_status* status);
SINSR_API const char* sinsr_last_error(void);

/* Log messages of the host and its plugins (sinsr_log_level). callback NULL: stderr, as
   "[level] source: message" (the default). Messages under min_level are dropped. Process-wide;
   the callback may be called from any thread, one call at a time. */
typedef void (*sinsr_log_callback)(void* user, int32_t level, const char* source, const char* message);
SINSR_API void sinsr_log_set(sinsr_log_callback callback, void* user, int32_t min_level);

typedef struct sinsr_runtime_options {
  size_t struct_size;
  int32_t num_threads;        /* CPU threads (LibTorch and its BLAS); 0 = the cores this process may use */
  int32_t load_default_paths; /* non-zero: load SINSR_PLUGIN_PATH and the install's plugin folder */
} sinsr_runtime_options;

/* The defaults, as llama.cpp's *_default_params: struct_size set, threads 0, default paths on. */
SINSR_API sinsr_runtime_options sinsr_runtime_default_options(void);

/* options may be NULL: default threads, no default paths. */
SINSR_API sinsr_status* sinsr_runtime_create(const sinsr_runtime_options* options, sinsr_runtime** out);
SINSR_API void sinsr_runtime_destroy(sinsr_runtime* runtime);
/* A plugin library or a folder of them. A refused library leaves the runtime as it was. */
SINSR_API sinsr_status* sinsr_runtime_load(sinsr_runtime* runtime, const char* path);
SINSR_API sinsr_status* sinsr_runtime_component_count(const sinsr_runtime* runtime, size_t* count);

typedef struct sinsr_component_info {
  size_t struct_size;
  int32_t kind;
  int32_t thread_safety;
  const char* name;
  const char* version;
  const char* summary;
  const char* config_schema;
  const char* file; /* the library it came from */
  const char* plugin_name;
  uint32_t abi_version; /* the ABI the plugin was built with */
} sinsr_component_info;

/* Strings stay valid while the runtime lives. */
SINSR_API sinsr_status* sinsr_runtime_component_info(const sinsr_runtime* runtime, size_t index,
                                                     sinsr_component_info* out);
/* Direct access to a component's function table, for callers driving it themselves. */
SINSR_API sinsr_status* sinsr_runtime_find(const sinsr_runtime* runtime, int32_t kind, const char* name,
                                           const sinsr_component** out);
SINSR_API const sinsr_host_api* sinsr_runtime_host_api(const sinsr_runtime* runtime);

/*
 * spec_json, e.g.
 *   {"backbone": {"name": "unet_swin", "config": {...} | "config_file": "x.yaml", "weights": "w.pth"},
 *    "codec":    {"name": "vq_f4", ...},            (null or "none": pixel space)
 *    "sampler":  {"name": "deterministic", "config": {...}, "steps": 1},
 *    "scale": 4, "seed": 0, "device": "cpu", "precision": "fp32",
 *    "chop_size": 0, "chop_stride": 0}
 * Every key may be left out; `sinsr-host infer` resolves the same way. A part without a name is
 * named by, in order: for the backbone, the last library loaded with sinsr_runtime_load that has
 * one, then what its weights store or its plugin detects; a model's preferred pipeline (codec,
 * sampler, steps, scale, tiles; keys given in the spec win over it); then the defaults.json of the
 * plugin folders ("infer": backbone, codec, sampler). "{}" runs the default model.
 */
SINSR_API sinsr_status* sinsr_pipeline_create(sinsr_runtime* runtime, const char* spec_json, sinsr_pipeline** out);
/* image: float32 in [0, 1], [H,W,C] or [N,C,H,W] (CPU). The result has the same layout,
   scaled by the pipeline's factor. */
SINSR_API sinsr_status* sinsr_pipeline_run(sinsr_pipeline* pipeline, DLManagedTensor* image, DLManagedTensor** out);
SINSR_API void sinsr_pipeline_destroy(sinsr_pipeline* pipeline);

/* The settings the pipeline resolved from its spec, the model's preferred pipeline, what its
   weights store or its plugins detect, and the defaults: a JSON object with the keys of the spec
   ("backbone", "codec", "sampler" with name/config/weights; "steps", "scale", "seed", "device",
   "precision", "pad_multiple", "chop_size", "chop_stride", "chop_batch", "strength") and
   "described" (one line per weights file that supplied a part). Valid while the pipeline lives. */
SINSR_API sinsr_status* sinsr_pipeline_settings(const sinsr_pipeline* pipeline, const char** json);

/* Per run: progress(user, done, total) after each batch of tiles of each image (done counts
   over the whole run); returning 0 cancels the run (SINSR_ERR_CANCELLED, nothing returned). */
typedef struct sinsr_run_options {
  size_t struct_size;
  int32_t (*progress)(void* user, int32_t done, int32_t total);
  void* user;
} sinsr_run_options;

/* sinsr_pipeline_run with options (may be NULL: the same as sinsr_pipeline_run). */
SINSR_API sinsr_status* sinsr_pipeline_run_with(sinsr_pipeline* pipeline, DLManagedTensor* image,
                                                const sinsr_run_options* options, DLManagedTensor** out);

/*
 * Image files, read and written as `sinsr-host infer` does (OpenImageIO: PNG, JPEG, TIFF, EXR,
 * WebP, BMP, ...); SINSR_ERR_UNSUPPORTED in a build without image I/O. Thread-safe.
 * read: *out is float32 [H,W,C] in [0, 1] (C = 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA; float files
 * unclamped), the EXIF orientation applied; the caller owns it (call its deleter). *bits (may be
 * NULL) is the file's sample depth, 8, 16 or 32 (float): the depth the CLI writes its upscale with.
 * Errors name the file: SINSR_ERR_IO (missing, unreadable), SINSR_ERR_FORMAT (not an image).
 */
SINSR_API sinsr_status* sinsr_image_read(const char* path, DLManagedTensor** out, int32_t* bits);
/* image: floating [H,W,C] (C = 1..4) on the CPU, consumed (its deleter runs, on errors too);
   clamped to [0, 1] and rounded half to even to bits = 8 or 16 (32: float where the format has
   it). The format follows the extension; the file appears whole (written aside, then renamed). */
SINSR_API sinsr_status* sinsr_image_write(const char* path, DLManagedTensor* image, int32_t bits);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* SINSR_HOST_H */
