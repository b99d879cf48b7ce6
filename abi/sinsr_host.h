/*
 * sinsr_host.h - the C API of the SinSR runtime (libsinsr_host, which exports nothing else).
 *
 * For applications and other languages: create a runtime, load plugins, list components,
 * build an inference pipeline and run it on an image held in a DLPack tensor. Plain C99.
 * Every call that can fail returns sinsr_status* (NULL = success); release it with
 * sinsr_status_release(). sinsr_last_error() repeats the message of the last failure on the
 * calling thread, for callers that only check for NULL. No C++ exception leaves a call.
 *
 * Threads: every call may be made from any thread. A runtime may be shared by threads (loading,
 * listing and creating pipelines lock it); a pipeline may be run by several threads at once (the
 * components' declared modes are kept: SERIAL ones one call at a time in the whole process).
 * Destroying an object while another thread uses it is the caller's error.
 * Ownership: a DLManagedTensor passed in is consumed (its deleter runs, on errors too); one
 * returned is the caller's (call its deleter). Strings returned live as long as the object they
 * come from, unless a call says otherwise.
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

/* Static strings. */
SINSR_API uint32_t sinsr_abi_version(void);
SINSR_API const char* sinsr_version(void);
SINSR_API const char* sinsr_kind_name(int32_t kind); /* "backbone", ... or "unknown" */

/* A status is the caller's until released; its message lives as long as it. NULL is success
   (code SINSR_OK, message ""). */
SINSR_API int32_t sinsr_status_code(const sinsr_status* status);
SINSR_API const char* sinsr_status_message(const sinsr_status* status);
SINSR_API void sinsr_status_release(sinsr_status* status);
/* The calling thread's last failure message ("" when none); valid until its next failure. */
SINSR_API const char* sinsr_last_error(void);

/* Log messages of the host and its plugins (sinsr_log_level). callback NULL: stderr, as
   "[level] source: message" (the default). Messages under min_level are dropped. Process-wide;
   the callback may be called from any thread, one call at a time; `source` and `message` live
   for the call only. */
typedef void (*sinsr_log_callback)(void* user, int32_t level, const char* source, const char* message);
SINSR_API void sinsr_log_set(sinsr_log_callback callback, void* user, int32_t min_level);

typedef struct sinsr_runtime_options {
  size_t struct_size;
  /* CPU threads (LibTorch and its BLAS) of the pipelines made from this runtime, unless their
     spec says "threads"; 0 = the cores this process may use. Creating a runtime changes no
     process-wide setting: each pipeline applies its count around its own work and restores the
     previous one. LibTorch's OpenMP pool follows the calling thread's count, so that is set for
     the calling thread only. What cannot be kept apart: OpenBLAS has one count per process, so
     pipelines of different counts running at the same moment share the one set last (it is
     restored when the last of them ends). */
  int32_t num_threads;
  int32_t load_default_paths; /* non-zero: load SINSR_PLUGIN_PATH and the install's plugin folder */
} sinsr_runtime_options;

/* The defaults, as llama.cpp's *_default_params: struct_size set, threads 0, default paths on. */
SINSR_API sinsr_runtime_options sinsr_runtime_default_options(void);

/* options may be NULL: default threads, no default paths. *out is the caller's: destroy it after
   every pipeline made from it. */
SINSR_API sinsr_status* sinsr_runtime_create(const sinsr_runtime_options* options, sinsr_runtime** out);
SINSR_API void sinsr_runtime_destroy(sinsr_runtime* runtime); /* NULL: nothing */
/* A plugin library, a model manifest (NAME.model.json), a defaults.json, or a folder of them
   (with its defaults.json). What is loaded here is the caller's choice: its backbone becomes the
   default backbone, its defaults.json wins over those of the default paths. A refused library
   leaves the runtime as it was. */
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

/* index < the count. Strings stay valid while the runtime lives. */
SINSR_API sinsr_status* sinsr_runtime_component_info(const sinsr_runtime* runtime, size_t index,
                                                     sinsr_component_info* out);
/* Direct access to a component's function table, for callers driving it themselves (then the
   table's thread-safety mode is theirs to keep). *out lives as long as the runtime. */
SINSR_API sinsr_status* sinsr_runtime_find(const sinsr_runtime* runtime, int32_t kind, const char* name,
                                           const sinsr_component** out);
/* The service table plugins get (statuses, log); static. */
SINSR_API const sinsr_host_api* sinsr_runtime_host_api(const sinsr_runtime* runtime);

/*
 * spec_json, e.g.
 *   {"backbone": {"name": "unet_swin", "config": {...} | "config_file": "x.yaml", "weights": "w.pth"},
 *    "codec":    {"name": "vq_f4", ...},            (null or "none": pixel space)
 *    "sampler":  {"name": "deterministic", "config": {...}, "steps": 1},  (or "steps" at the top, not both)
 *    "scale": 4, "seed": 0, "device": "cpu", "precision": "fp32",
 *    "chop_size": 0, "chop_stride": 0, "self_ensemble": false, "threads": 2}
 * Every key may be left out; `sinsr-host infer` resolves the same way. A part without a name is
 * named by, in order: for the backbone, the last library loaded with sinsr_runtime_load that has
 * one, then what its weights store or its plugin detects; a model's preferred pipeline (codec,
 * sampler, steps, scale, tiles; keys given in the spec win over it); then the defaults.json of the
 * plugin folders ("infer": backbone, codec, sampler). "{}" runs the default model.
 */
/* The pipeline keeps what it needs of the runtime; destroy it before the runtime. */
SINSR_API sinsr_status* sinsr_pipeline_create(sinsr_runtime* runtime, const char* spec_json, sinsr_pipeline** out);
/* image (consumed): [H,W,C] or [N,C,H,W] on the CPU, C = 1..4 (gray, gray+alpha, RGB, RGBA);
   uint8 or uint16 samples (scaled as the image reader scales a file's) or floating in [0, 1].
   The result (the caller's) has the same layout and sample type, scaled by the pipeline's
   factor; integer samples are rounded as `sinsr-host infer` writes files (half to even). */
SINSR_API sinsr_status* sinsr_pipeline_run(sinsr_pipeline* pipeline, DLManagedTensor* image, DLManagedTensor** out);
SINSR_API void sinsr_pipeline_destroy(sinsr_pipeline* pipeline); /* NULL: nothing */

/* The settings the pipeline resolved from its spec, the model's preferred pipeline, what its
   weights store or its plugins detect, and the defaults: a JSON object with the keys of the spec
   ("backbone", "codec", "sampler" with name/config/weights; "steps", "scale", "seed", "device",
   "precision", "pad_multiple", "chop_size", "chop_stride", "chop_batch", "strength", "self_ensemble",
   "threads"),
   "blend_with" (the model `strength` blends with, "" for none), "input" (what the model declares
   it is for: "real-world", "bicubic", or "") and "described" (one line per weights file that
   supplied a part). Valid while the pipeline lives. */
SINSR_API sinsr_status* sinsr_pipeline_settings(const sinsr_pipeline* pipeline, const char** json);

/* Per run: progress(user, done, total) after each batch of tiles of each image (done counts
   over the whole run), on the thread that called the run; returning 0 cancels the run
   (SINSR_ERR_CANCELLED, nothing returned). */
typedef struct sinsr_run_options {
  size_t struct_size;
  int32_t (*progress)(void* user, int32_t done, int32_t total);
  void* user;
} sinsr_run_options;

/* sinsr_pipeline_run with options (may be NULL: the same as sinsr_pipeline_run). */
SINSR_API sinsr_status* sinsr_pipeline_run_with(sinsr_pipeline* pipeline, DLManagedTensor* image,
                                                const sinsr_run_options* options, DLManagedTensor** out);

/* One image file upscaled into another exactly as `sinsr-host infer` does each file (the same
   code: the same bytes for the same pipeline): the header checked against max_pixels before
   decoding, the upscale, an optional final bicubic factor, written at the input's depth with its
   metadata (EXIF, ICC profile), whole or not at all. The output format follows its extension.
   Formats as sinsr_image_formats() says. */
typedef struct sinsr_file_options {
  size_t struct_size;
  int64_t max_pixels; /* inputs with more pixels are refused from their header: SINSR_ERR_FORMAT,
                         the message ending in "(max_pixels raises it)" */
  double outscale;    /* > 0: the pipeline's factor, then bicubic to this one (at most 64) */
  int32_t bits;       /* 8 or 16; 0: 16 for 16-bit and float inputs, else 8 */
} sinsr_file_options;

/* The CLI's defaults: max_pixels 4096 x 4096, outscale 0, bits 0. */
SINSR_API sinsr_file_options sinsr_file_default_options(void);
/* options, run: may be NULL (defaults; no progress). */
SINSR_API sinsr_status* sinsr_pipeline_upscale_file(sinsr_pipeline* pipeline, const char* input, const char* output,
                                                    const sinsr_file_options* options, const sinsr_run_options* run);

/*
 * Image files, read and written as `sinsr-host infer` does: PNG, JPEG, TIFF, EXR, WebP, BMP through
 * OpenImageIO, and netpbm (.ppm, .pgm) by the host's own code in every build; a build without
 * OpenImageIO (SINSR_WITH_IMAGE_IO off) answers the other formats with SINSR_ERR_UNSUPPORTED.
 * Thread-safe.
 * read: *out is float32 [H,W,C] in [0, 1] (C = 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA; float files
 * unclamped), the EXIF orientation applied; the caller owns it (call its deleter). *bits (may be
 * NULL) is the file's sample depth, 8, 16 or 32 (float): the depth the CLI writes its upscale with.
 * Errors name the file: SINSR_ERR_IO (missing, unreadable), SINSR_ERR_FORMAT (not an image).
 */
SINSR_API sinsr_status* sinsr_image_read(const char* path, DLManagedTensor** out, int32_t* bits);
/* As sinsr_image_read, but in the samples the file holds: uint8 (8-bit files), uint16 (16-bit,
   DLPack kDLUInt 16), float32 (float files). */
SINSR_API sinsr_status* sinsr_image_read_samples(const char* path, DLManagedTensor** out, int32_t* bits);
/* image (consumed): [H,W,C] (C = 1..4) on the CPU, uint8, uint16 or floating in [0, 1]; clamped
   and rounded half to even to bits = 8 or 16 (32: float where the format has it; 0: the
   samples' own depth, float as 32). The format follows the extension; the file appears whole
   (written aside, then renamed). */
SINSR_API sinsr_status* sinsr_image_write(const char* path, DLManagedTensor* image, int32_t bits);
/* The extensions this build writes any image to, space-separated, the default first: "png jpg tif
   exr webp bmp ppm", or "ppm" without OpenImageIO (.pgm takes gray images). It reads these and
   .jpeg, .tiff, .pgm, .pnm, .pbm. Static storage; never NULL. */
SINSR_API const char* sinsr_image_formats(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* SINSR_HOST_H */
