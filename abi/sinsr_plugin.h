/*
 * sinsr_plugin.h - the SinSR plugin ABI, version 1.4.
 *
 * Plain C99. A plugin is a shared library exporting one symbol, sinsr_plugin_entry, which
 * describes the components it provides (backbones, codecs, samplers, losses). Each
 * component publishes a function table for its kind.
 *
 * Rules that hold for every call:
 *  - Every struct that crosses starts with struct_size; the reader only touches fields that
 *    struct_size covers (SINSR_HAS_FIELD). Tables and structs grow only at the end.
 *  - Every call that can fail returns sinsr_status*: NULL means success, anything else is an
 *    error made by host->status_create() and released by whoever receives it.
 *  - Tensors cross as DLPack DLManagedTensor. A DLManagedTensor* argument is handed over: the
 *    callee calls its deleter exactly once (possibly later, e.g. when a tape dies), also when
 *    the call fails. A DLManagedTensor** result is handed to the caller the same way.
 *  - Every compute call takes a sinsr_call_options (may be NULL) carrying the CUDA stream;
 *    no stream is ever assumed.
 *  - No C++ exception, no STL type and no at::Tensor crosses this boundary.
 */
#ifndef SINSR_PLUGIN_H
#define SINSR_PLUGIN_H

#include <dlpack/dlpack.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- versions ------------------------------------------------------------------------ */

/* Changelog (within a major version the ABI only grows; a 1.0 plugin runs on every 1.x host):
 *  1.0  first release.
 *  1.1  sinsr_component gains `base`, `preferred_pipeline` and `flags`: a component may be a
 *       shipped model (a configured, weighted instance of another component, with the pipeline
 *       it was trained for), and may declare that it has no weights.
 *       The contracts the host relies on are stated here, not in any component's config keys:
 *       - losses: forward returns a 0-d batch loss or [N] per-sample values; the host accepts
 *         both and never adds config keys (1.0 losses that return 0-d now train);
 *       - sinsr_sampler_vtable gains `respace` (the step count the caller asks for) and
 *         `timestep_kind`; sinsr_backbone_vtable gains `timestep_kind`; new struct
 *         sinsr_timestep_info and enum sinsr_timestep_kind. Absent calls mean a sampler that
 *         cannot respace and int64 step indices (the 1.0 meaning), respectively;
 *       - the host passes sinsr_call_options on every compute call, with its current CUDA
 *         stream when the tensors are on CUDA.
 *  1.2  Training is the sampler's: sinsr_sampler_vtable gains `training_example` (the network
 *       input, timestep and target for a batch of clean data, so the host trains any
 *       parameterisation -- x0, noise, a continuous noise level -- without knowing it), and
 *       sinsr_sample_callbacks gains `uniform` (replayable uniform draws, e.g. for timesteps).
 *       New struct sinsr_training_example. A sampler without the call cannot train a network;
 *       a 1.1 plugin loads and runs as before.
 *       Checkpoints that describe their network: sinsr_backbone_vtable and sinsr_codec_vtable
 *       gain `detect_config`, a static call (no instance) of the plugin that owns the network:
 *       from the names and shapes of a state dict it writes the config that builds a matching
 *       network, or refuses keys that are not its network's. New struct sinsr_tensor_shape and
 *       types sinsr_text_writer, sinsr_detect_config_fn. Absent: no detection (the caller must
 *       be given the config).
 *  1.3  Start-up: sinsr_backbone_vtable and sinsr_codec_vtable gain `create_with`, create()
 *       with options; {"init": "none"} says that a complete state dict is loaded next, so the
 *       parameters need not be drawn (most of a full-size pipeline's start-up). Absent: the
 *       host calls create().
 *  1.4  What a network predicts: sinsr_backbone_vtable gains `prediction` (what this instance's
 *       forward() returns: the clean sample, the noise, ...) and sinsr_sampler_vtable gains
 *       `prediction` (what this instance needs its denoise callback to return); new enum
 *       sinsr_prediction. The host refuses a pair that declare different things, naming both,
 *       before any compute, and SinSR distillation refuses a network that does not predict the
 *       clean sample. Absent (or SINSR_PREDICTION_UNDECLARED): not checked, as before.
 *  1.5  Distillation is the sampler's too: sinsr_sampler_vtable gains `distillation_example`
 *       (the teacher's trajectory from a prior draw, and the steps the one-step student is
 *       trained at), so the host distils without knowing the chain's steps; new struct
 *       sinsr_distillation_example. Absent: the sampler cannot distil a student. */

#define SINSR_ABI_VERSION_MAJOR 1
#define SINSR_ABI_VERSION_MINOR 5
#define SINSR_MAKE_VERSION(major, minor) ((((uint32_t)(major)) << 16) | ((uint32_t)(minor)&0xffffu))
#define SINSR_VERSION_GET_MAJOR(v) (((uint32_t)(v)) >> 16)
#define SINSR_VERSION_GET_MINOR(v) (((uint32_t)(v)) & 0xffffu)
#define SINSR_ABI_VERSION SINSR_MAKE_VERSION(SINSR_ABI_VERSION_MAJOR, SINSR_ABI_VERSION_MINOR)

/* True when a struct received from the other side is large enough to hold `field`. */
#define SINSR_HAS_FIELD(ptr, type, field) \
  ((ptr) != NULL && (ptr)->struct_size >= offsetof(type, field) + sizeof(((type*)0)->field))

#if defined(_WIN32)
#define SINSR_EXPORT __declspec(dllexport)
#else
#define SINSR_EXPORT __attribute__((visibility("default")))
#endif

/* ---- status ---------------------------------------------------------------------------- */

typedef enum sinsr_code {
  SINSR_OK = 0,
  SINSR_ERR_INVALID_ARGUMENT = 1, /* null pointer, bad shape, bad config value */
  SINSR_ERR_NOT_FOUND = 2,        /* file, component, key */
  SINSR_ERR_UNSUPPORTED = 3,      /* valid request this build or component cannot serve */
  SINSR_ERR_ABI = 4,              /* version or struct-size mismatch */
  SINSR_ERR_IO = 5,               /* reading or writing a file */
  SINSR_ERR_FORMAT = 6,           /* corrupt or refused file content */
  SINSR_ERR_OUT_OF_MEMORY = 7,
  SINSR_ERR_CANCELLED = 8, /* a progress callback asked to stop */
  SINSR_ERR_RUNTIME = 9    /* anything else raised inside a component */
} sinsr_code;

typedef struct sinsr_status sinsr_status; /* opaque; NULL is success */

/* ---- kinds and thread safety --------------------------------------------------------- */

typedef enum sinsr_kind {
  SINSR_KIND_BACKBONE = 1,
  SINSR_KIND_CODEC = 2,
  SINSR_KIND_SAMPLER = 3,
  SINSR_KIND_LOSS = 4
} sinsr_kind;

typedef enum sinsr_thread_safety {
  SINSR_THREAD_PARALLEL = 1,     /* any call, any instance, any thread, concurrently */
  SINSR_THREAD_PER_INSTANCE = 2, /* instances are independent; calls on one instance are serialised */
  SINSR_THREAD_SERIAL = 3        /* every call on every instance is serialised by the host */
} sinsr_thread_safety;

/* ---- services the host gives to plugins ---------------------------------------------- */

typedef enum sinsr_log_level {
  SINSR_LOG_DEBUG = 0,
  SINSR_LOG_INFO = 1,
  SINSR_LOG_WARNING = 2,
  SINSR_LOG_ERROR = 3
} sinsr_log_level;

typedef struct sinsr_host_api {
  size_t struct_size;
  uint32_t abi_version;
  sinsr_status* (*status_create)(int32_t code, const char* message);
  int32_t (*status_code)(const sinsr_status* status);
  const char* (*status_message)(const sinsr_status* status);
  void (*status_release)(sinsr_status* status);
  /* level: sinsr_log_level; source: who speaks (the SDK's sinsr::sdk::log passes the plugin's
     name). The host decides what to show. */
  void (*log)(int32_t level, const char* source, const char* message);
} sinsr_host_api;

/* Per-call execution context. Since 1.1 the host passes one on every compute call, with
   cuda_stream set to its current stream on the tensors' device when they are on CUDA (NULL
   for CPU tensors). A plugin must accept NULL options (a 1.0 host, or another caller). */
typedef struct sinsr_call_options {
  size_t struct_size;
  void* cuda_stream; /* cudaStream_t the call must run on (CUDA tensors); NULL = legacy default stream */
} sinsr_call_options;

/* ---- timesteps (ABI 1.1) --------------------------------------------------------------- */

/* What the `t` a network is given means. A sampler instance declares what it passes to its
   denoise callback, a backbone instance what its forward() takes; the host refuses to pair
   a sampler and a backbone that disagree (kind, or unit for noise levels), naming both. A
   component without the timestep_kind call uses SINSR_TIMESTEP_INDEX. */
typedef enum sinsr_timestep_kind {
  SINSR_TIMESTEP_INDEX = 0,      /* int64 [N]: step indices of the chain the network was trained on */
  SINSR_TIMESTEP_NOISE_LEVEL = 1 /* float32 [N]: a continuous noise level, in the unit `unit` names */
} sinsr_timestep_kind;

/* Filled by a timestep_kind() call. The caller sets struct_size; the callee writes only the
   fields it covers. */
typedef struct sinsr_timestep_info {
  size_t struct_size;
  int32_t kind;     /* sinsr_timestep_kind */
  const char* unit; /* SINSR_TIMESTEP_NOISE_LEVEL: the unit, e.g. "sqrt_alpha_bar" (SR3's gamma),
                       "sigma", "log_snr"; compared as a string. NULL for indices. Valid while
                       the instance lives. */
} sinsr_timestep_info;

/* ---- predictions (ABI 1.4) --------------------------------------------------------------- */

/* What a network's output is (a backbone instance's forward) and what a sampler instance needs
   its denoise callback to return. */
typedef enum sinsr_prediction {
  SINSR_PREDICTION_UNDECLARED = 0, /* not said: never checked (every 1.0-1.3 component) */
  SINSR_PREDICTION_X0 = 1,         /* the clean sample x0 (ResShift "xstart", SinSR) */
  SINSR_PREDICTION_NOISE = 2,      /* the noise of the forward process (DDPM epsilon) */
  SINSR_PREDICTION_OTHER = 3       /* anything else (a residual, a scaled noise): pairs only with UNDECLARED */
} sinsr_prediction;

/* Autograd record of one forward call, released by backward() or tape_release(). */
typedef struct sinsr_tape sinsr_tape;

/* One entry of a component's state (parameters and buffers, official key names). */
typedef struct sinsr_named_tensor {
  size_t struct_size;
  const char* name;       /* valid while the instance lives */
  int32_t is_parameter;   /* 0 for buffers: no gradient, not optimised */
  DLManagedTensor* value; /* zero-copy view; in-place writes change the model */
  DLManagedTensor* grad;  /* zero-copy view of the accumulated gradient (zeros before any
                             backward); NULL for buffers */
} sinsr_named_tensor;

/* ---- architecture detection (ABI 1.2) ------------------------------------------------ */

/* One entry of a state dict as detect_config sees it: its name and shape, no data. */
typedef struct sinsr_tensor_shape {
  size_t struct_size;
  const char* name; /* the key, wrapper prefixes ("module.", "_orig_mod.") stripped */
  int32_t ndim;
  const int64_t* shape; /* ndim sizes; may be NULL when ndim is 0 */
} sinsr_tensor_shape;

/* Receives text from a call; `text` (NUL-terminated) is valid only during the call. */
typedef void (*sinsr_text_writer)(void* user, const char* text);

/* detect_config(entries, count, write, user), in the backbone and codec tables: static (no
   instance), callable from any thread, concurrently, any time after sinsr_plugin_entry.
   `entries` points to `count` pointers, one per state-dict entry (the parameters and whichever
   buffers the file holds: a file may lack buffers the network recomputes). On success the
   callee calls write(user, json) exactly once before returning, with
     {"config": {...}, "assumed": ["key", ...], "assumed_from": "..."}
   "config": what create() takes to build a network whose state dict has these names and
   shapes (the weights then load strictly); "assumed": the config keys the shapes cannot tell
   (nested keys as "a.b"), set to the values of "assumed_from" (optional, e.g. "the official
   SinSR.yaml"). On error write is not called: SINSR_ERR_NOT_FOUND when the keys are not this
   component's network, SINSR_ERR_UNSUPPORTED when they are but describe a variant it cannot
   build, SINSR_ERR_INVALID_ARGUMENT or SINSR_ERR_ABI for bad arguments. */
typedef sinsr_status* (*sinsr_detect_config_fn)(const sinsr_tensor_shape* const* entries, size_t count,
                                                sinsr_text_writer write, void* user);

/* ---- backbone: f(x_t, cond, t) -> x0, differentiable --------------------------------- */

typedef struct sinsr_backbone sinsr_backbone;

typedef struct sinsr_backbone_vtable {
  size_t struct_size;
  sinsr_status* (*create)(const char* config_json, sinsr_backbone** out);
  void (*destroy)(sinsr_backbone* self);
  /* options_json: {"strict": true} (default) or false; may be NULL. */
  sinsr_status* (*load_weights)(sinsr_backbone* self, const char* path, const char* options_json);
  sinsr_status* (*save_weights)(sinsr_backbone* self, const char* path);
  /* x: [N,C,H,W]; cond: conditioning image or NULL; t: [N] timesteps, int64 step indices
     unless timestep_kind (1.1) says otherwise. tape: NULL for inference; otherwise receives a
     tape for backward(). */
  sinsr_status* (*forward)(sinsr_backbone* self, const sinsr_call_options* options, DLManagedTensor* x,
                           DLManagedTensor* cond, DLManagedTensor* t, DLManagedTensor** out, sinsr_tape** tape);
  /* Consumes the tape. Accumulates parameter gradients; grad_x / grad_cond may be NULL when
     not wanted. */
  sinsr_status* (*backward)(sinsr_backbone* self, const sinsr_call_options* options, sinsr_tape* tape,
                            DLManagedTensor* grad_out, DLManagedTensor** grad_x, DLManagedTensor** grad_cond);
  void (*tape_release)(sinsr_backbone* self, sinsr_tape* tape);
  sinsr_status* (*state_count)(sinsr_backbone* self, size_t* count);
  sinsr_status* (*state_get)(sinsr_backbone* self, size_t index, sinsr_named_tensor* out);
  sinsr_status* (*zero_grad)(sinsr_backbone* self);
  sinsr_status* (*set_training)(sinsr_backbone* self, int32_t training);
  /* dtype is the compute precision (float32, float16, bfloat16); the component keeps the parts
     the official code keeps in float32. */
  sinsr_status* (*to)(sinsr_backbone* self, DLDevice device, DLDataType dtype);

  /* ---- ABI 1.1 (check with SINSR_HAS_FIELD; NULL is the same as absent) ---- */

  /* What forward()'s t means for this instance. Absent: int64 step indices. */
  sinsr_status* (*timestep_kind)(sinsr_backbone* self, sinsr_timestep_info* out);

  /* ---- ABI 1.2 (check with SINSR_HAS_FIELD; NULL is the same as absent) ---- */

  /* Static: the config of the network a state dict describes (sinsr_detect_config_fn). */
  sinsr_detect_config_fn detect_config;

  /* ---- ABI 1.3 (check with SINSR_HAS_FIELD; NULL is the same as absent) ---- */

  /* create() with options_json (may be NULL: the same as create()). {"init": "none"}: the
     parameters are allocated but not initialised; the caller loads a complete state dict
     (strictly) before any other call. Unknown option keys are refused. */
  sinsr_status* (*create_with)(const char* config_json, const char* options_json, sinsr_backbone** out);

  /* ---- ABI 1.4 (check with SINSR_HAS_FIELD; NULL is the same as absent) ---- */

  /* What this instance's forward() returns (sinsr_prediction), from its config. */
  sinsr_status* (*prediction)(sinsr_backbone* self, int32_t* out);
} sinsr_backbone_vtable;

/* ---- codec: latent autoencoder ------------------------------------------------------- */

typedef struct sinsr_codec sinsr_codec;

typedef struct sinsr_codec_info {
  size_t struct_size;
  int32_t downscale; /* spatial factor image -> latent */
  int32_t latent_channels;
  int32_t image_channels;
} sinsr_codec_info;

typedef struct sinsr_codec_vtable {
  size_t struct_size;
  sinsr_status* (*create)(const char* config_json, sinsr_codec** out);
  void (*destroy)(sinsr_codec* self);
  sinsr_status* (*load_weights)(sinsr_codec* self, const char* path, const char* options_json);
  sinsr_status* (*info)(sinsr_codec* self, sinsr_codec_info* out);
  /* image in [-1, 1], [N,C,H,W] -> latent */
  sinsr_status* (*encode)(sinsr_codec* self, const sinsr_call_options* options, DLManagedTensor* image,
                          DLManagedTensor** latent);
  sinsr_status* (*decode)(sinsr_codec* self, const sinsr_call_options* options, DLManagedTensor* latent,
                          DLManagedTensor** image);
  sinsr_status* (*to)(sinsr_codec* self, DLDevice device, DLDataType dtype);

  /* ---- ABI 1.2 (check with SINSR_HAS_FIELD; NULL is the same as absent) ---- */

  /* Static: the config of the network a state dict describes (sinsr_detect_config_fn). */
  sinsr_detect_config_fn detect_config;

  /* ---- ABI 1.3 (check with SINSR_HAS_FIELD; NULL is the same as absent) ---- */

  /* create() with options_json (may be NULL: the same as create()). {"init": "none"}: the
     parameters are allocated but not initialised; the caller loads a complete state dict
     (strictly) before any other call. Unknown option keys are refused. */
  sinsr_status* (*create_with)(const char* config_json, const char* options_json, sinsr_codec** out);
} sinsr_codec_vtable;

/* ---- sampler: schedule and sampling rule; never owns a network ----------------------- */

typedef struct sinsr_sampler sinsr_sampler;

typedef struct sinsr_sample_callbacks {
  size_t struct_size;
  void* user;
  /* x_in is already scaled for the network; t: [N] in the network's own timesteps (int64
     indices, or what the sampler's timestep_kind (1.1) declares). Returns the network output
     (x0 or noise, as the sampler's config says). */
  sinsr_status* (*denoise)(void* user, DLManagedTensor* x_in, DLManagedTensor* t, DLManagedTensor** out);
  /* Standard normal noise with the shape, dtype and device of `like`. */
  sinsr_status* (*noise)(void* user, const DLTensor* like, DLManagedTensor** out);
  /* Optional (may be NULL). Return non-zero to cancel. */
  int32_t (*progress)(void* user, int32_t step, int32_t total);

  /* ---- ABI 1.2 (check with SINSR_HAS_FIELD; NULL is the same as absent) ---- */

  /* `count` independent draws from U[0, 1) into out (float64), replayable like noise. */
  sinsr_status* (*uniform)(void* user, int64_t count, double* out);
} sinsr_sample_callbacks;

/* What a sampler makes from a batch of clean data for one training step (ABI 1.2). Each field
   is handed to the caller. */
typedef struct sinsr_training_example {
  size_t struct_size;
  DLManagedTensor* x_in;   /* the network input, scaled as sample() scales it: [N,C,H,W] */
  DLManagedTensor* t;      /* [N] timesteps as the denoise callback gets them (timestep_kind) */
  DLManagedTensor* target; /* what the network output is trained towards: x0, the noise, ... */
} sinsr_training_example;

/* What a sampler makes for one step of SinSR distillation (ABI 1.5): a draw x_T of its prior, the
   end x0 of the teacher's trajectory from it, and the steps the student is asked at. The student
   learns x_in at t_student -> x0 (its one step), and the inverse x0 -> x_T, asked at t_inverse on
   x0 scaled as at t_student (as the official code does). Each field is handed to the caller. */
typedef struct sinsr_distillation_example {
  size_t struct_size;
  DLManagedTensor* x_T;       /* the prior draw: the trajectory's start, the inverse's target */
  DLManagedTensor* x0;        /* the teacher's trajectory end: the student's target */
  DLManagedTensor* x_in;      /* x_T as the student's one step sees it (scaled at t_student) */
  DLManagedTensor* t_student; /* [N] the student's step (the trajectory's first) */
  DLManagedTensor* t_inverse; /* [N] the step the inverse mapping x0 -> x_T is asked at */
} sinsr_distillation_example;

typedef struct sinsr_sampler_vtable {
  size_t struct_size;
  sinsr_status* (*create)(const char* config_json, sinsr_sampler** out);
  void (*destroy)(sinsr_sampler* self);
  /* Number of network calls one sample() makes. */
  sinsr_status* (*num_steps)(sinsr_sampler* self, int32_t* out);
  /* A named float64 schedule vector, e.g. "sqrt_etas", "etas", "timestep_map" (int64). */
  sinsr_status* (*schedule)(sinsr_sampler* self, const char* key, DLManagedTensor** out);
  /* x_T from the conditioning latent y and standard normal noise. */
  sinsr_status* (*prior)(sinsr_sampler* self, const sinsr_call_options* options, DLManagedTensor* y,
                         DLManagedTensor* noise, DLManagedTensor** x_T);
  sinsr_status* (*sample)(sinsr_sampler* self, const sinsr_call_options* options, DLManagedTensor* y,
                          DLManagedTensor* x_T, const sinsr_sample_callbacks* callbacks, DLManagedTensor** x0);
  /* Forward process: x_t ~ q(x_t | x0, y) with the given noise; t: int64 [N]. */
  sinsr_status* (*q_sample)(sinsr_sampler* self, const sinsr_call_options* options, DLManagedTensor* x0,
                            DLManagedTensor* y, DLManagedTensor* t, DLManagedTensor* noise, DLManagedTensor** x_t);
  /* The network input for x_t at timestep t (e.g. ResShift's x_t / sqrt(eta_t kappa^2 + 1)). */
  sinsr_status* (*scale_input)(sinsr_sampler* self, const sinsr_call_options* options, DLManagedTensor* x_t,
                               DLManagedTensor* t, DLManagedTensor** x_in);

  /* ---- ABI 1.1 (check with SINSR_HAS_FIELD; NULL is the same as absent) ---- */

  /* The step count is part of the sampler contract, not of its config: when the caller asks
     for `steps` (>= 1) network calls, the host calls respace() once, right after create() and
     before any other call on the instance. Afterwards num_steps() returns `steps`, sample()
     makes that many denoise calls (still passing the network's own timesteps), and schedule(),
     q_sample() and scale_input() index the respaced chain. A sampler that cannot serve
     `steps` returns SINSR_ERR_INVALID_ARGUMENT (out of range) or SINSR_ERR_UNSUPPORTED.
     Absent: the sampler has a fixed step count and the host refuses to respace it. */
  sinsr_status* (*respace)(sinsr_sampler* self, int32_t steps);
  /* What this instance passes as t to the denoise callback. Absent: int64 step indices.
     q_sample() and scale_input() take int64 indices of the sampler's own chain either way. */
  sinsr_status* (*timestep_kind)(sinsr_sampler* self, sinsr_timestep_info* out);

  /* ---- ABI 1.2 (check with SINSR_HAS_FIELD; NULL is the same as absent) ---- */

  /* One training example per sample of x0: clean data in the space the sampler works in (the
     codec's latent, or the image), y: the condition in that space (what prior() takes). The
     sampler draws the timesteps and the noise of the chain the network is trained on (never a
     respaced one) through callbacks->uniform and callbacks->noise only (denoise and progress
     are not called), so a host that replays those draws replays the step. The host trains the
     backbone output for (x_in, its own conditioning, t) towards target with its losses. The
     caller sets out->struct_size; the callee fills the fields it covers. Absent: the sampler
     cannot train a network. */
  sinsr_status* (*training_example)(sinsr_sampler* self, const sinsr_call_options* options, DLManagedTensor* x0,
                                    DLManagedTensor* y, const sinsr_sample_callbacks* callbacks,
                                    sinsr_training_example* out);

  /* ---- ABI 1.4 (check with SINSR_HAS_FIELD; NULL is the same as absent) ---- */

  /* What this instance needs its denoise callback to return (sinsr_prediction). */
  sinsr_status* (*prediction)(sinsr_sampler* self, int32_t* out);

  /* ---- ABI 1.5 (check with SINSR_HAS_FIELD; NULL is the same as absent) ---- */

  /* One SinSR distillation step's data from the condition y and standard normal noise shaped
     like y: x_T from prior(y, noise), the teacher run over this instance's whole (deterministic)
     trajectory through callbacks->denoise without gradients, and the student's steps. The
     caller sets out->struct_size; the callee fills the fields it covers. Absent: the sampler
     cannot distil a student. */
  sinsr_status* (*distillation_example)(sinsr_sampler* self, const sinsr_call_options* options, DLManagedTensor* y,
                                        DLManagedTensor* noise, const sinsr_sample_callbacks* callbacks,
                                        sinsr_distillation_example* out);
} sinsr_sampler_vtable;

/* ---- loss: L(pred, target) -> scalar or per-sample values, with the gradient w.r.t. pred */

typedef struct sinsr_loss sinsr_loss;

typedef struct sinsr_loss_vtable {
  size_t struct_size;
  sinsr_status* (*create)(const char* config_json, sinsr_loss** out);
  void (*destroy)(sinsr_loss* self);
  /* pred and target: [N,...], the same shape. loss: a float tensor of one of two shapes, and
     the host takes either (it adds nothing to the loss's config to choose):
       0-d  the loss of the whole batch; the host trains on it as it is (no division by N);
       [N]  one value per sample; the host trains on their mean (and may use the values).
     tape: NULL when no gradient is wanted. */
  sinsr_status* (*forward)(sinsr_loss* self, const sinsr_call_options* options, DLManagedTensor* pred,
                           DLManagedTensor* target, DLManagedTensor** loss, sinsr_tape** tape);
  /* grad_loss: dL_total/dloss, the shape forward() returned (0-d, or [N]). Consumes the tape. */
  sinsr_status* (*backward)(sinsr_loss* self, const sinsr_call_options* options, sinsr_tape* tape,
                            DLManagedTensor* grad_loss, DLManagedTensor** grad_pred);
  void (*tape_release)(sinsr_loss* self, sinsr_tape* tape);
} sinsr_loss_vtable;

/* ---- component and plugin descriptors ------------------------------------------------ */

typedef struct sinsr_component {
  size_t struct_size;
  int32_t kind;                /* sinsr_kind */
  int32_t thread_safety;       /* sinsr_thread_safety */
  const char* name;            /* unique per kind across all loaded plugins */
  const char* version;         /* the component's own version, e.g. "1.0.0" */
  const char* summary;         /* one line */
  const char* config_schema;   /* JSON object: key -> {"type", "default", "doc"} */
  const char* default_config;  /* JSON used when the caller gives none; may be NULL */
  const char* default_weights; /* file beside the plugin library loaded when no weights are
                                  named; may be NULL */
  const void* vtable;          /* sinsr_<kind>_vtable*, chosen by kind; NULL when `base` is set */

  /* ---- ABI 1.1 (check with SINSR_HAS_FIELD) ---- */

  /* A shipped model: the name of another component of the same kind that implements it. The
     host creates `base` with this component's default_config (under the caller's config) and
     loads this component's default_weights; name, version and summary are this one's. NULL for
     a component with its own function table. */
  const char* base;
  /* JSON object: the pipeline the component was trained for, used for every part the caller
     leaves unset. Keys: "codec" and "sampler" (a name, or {"name", "config"}), "steps", "scale",
     "pad_multiple", "chop_size". May be NULL. */
  const char* preferred_pipeline;
  uint32_t flags; /* SINSR_COMPONENT_* bits */
} sinsr_component;

/* The component has no weights to load (a fixed transform, e.g. a lossless codec). */
#define SINSR_COMPONENT_NO_WEIGHTS 0x1u

typedef struct sinsr_plugin_info {
  size_t struct_size;
  uint32_t abi_version;     /* SINSR_ABI_VERSION the plugin was built with */
  uint32_t min_abi_version; /* oldest host ABI the plugin can run on */
  const char* name;
  const char* version;
  size_t num_components;
  const sinsr_component* const* components;
} sinsr_plugin_info;

/* The one exported symbol. `host` stays valid until the library is unloaded. The plugin
   may refuse (e.g. a host ABI below its minimum) by returning a status. */
#define SINSR_PLUGIN_ENTRY_SYMBOL "sinsr_plugin_entry"
typedef sinsr_status* (*sinsr_plugin_entry_fn)(const sinsr_host_api* host, const sinsr_plugin_info** out);
SINSR_EXPORT sinsr_status* sinsr_plugin_entry(const sinsr_host_api* host, const sinsr_plugin_info** out);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* SINSR_PLUGIN_H */
