/* An L1 loss plugin written in plain C99: no LibTorch, no C++. It proves that the ABI is
 * language-neutral and training-capable (forward with a tape, backward). CPU float32 only. */
#include "sinsr_plugin.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const sinsr_host_api* g_host;

static sinsr_status* fail(int32_t code, const char* message) { return g_host->status_create(code, message); }

static void release(DLManagedTensor* m) {
  if (m && m->deleter) m->deleter(m);
}

/* A tensor this plugin allocates: one block holding the manager, the shape and the data. */
typedef struct owned_tensor {
  DLManagedTensor managed;
  int64_t shape[8];
} owned_tensor;

static void owned_deleter(DLManagedTensor* self) {
  free(self->dl_tensor.data);
  free(self);
}

static DLManagedTensor* new_float_tensor(int ndim, const int64_t* shape) {
  owned_tensor* t = (owned_tensor*)calloc(1, sizeof(owned_tensor));
  int64_t n = 1;
  int i;
  if (!t || ndim > 8) {
    free(t);
    return NULL;
  }
  for (i = 0; i < ndim; ++i) {
    t->shape[i] = shape[i];
    n *= shape[i];
  }
  t->managed.dl_tensor.data = calloc((size_t)(n > 0 ? n : 1), sizeof(float));
  if (!t->managed.dl_tensor.data) {
    free(t);
    return NULL;
  }
  t->managed.dl_tensor.device.device_type = kDLCPU;
  t->managed.dl_tensor.ndim = ndim;
  t->managed.dl_tensor.dtype.code = kDLFloat;
  t->managed.dl_tensor.dtype.bits = 32;
  t->managed.dl_tensor.dtype.lanes = 1;
  t->managed.dl_tensor.shape = t->shape;
  t->managed.deleter = owned_deleter;
  return &t->managed;
}

static int64_t numel(const DLTensor* t) {
  int64_t n = 1;
  int i;
  for (i = 0; i < t->ndim; ++i) n *= t->shape[i];
  return n;
}

/* Only dense row-major CPU float32 is accepted. */
static int is_dense_f32(const DLTensor* t) {
  int64_t expect = 1;
  int i;
  if (t->device.device_type != kDLCPU || t->dtype.code != kDLFloat || t->dtype.bits != 32 || t->dtype.lanes != 1)
    return 0;
  if (t->strides == NULL) return 1;
  for (i = t->ndim - 1; i >= 0; --i) {
    if (t->shape[i] != 1 && t->strides[i] != expect) return 0;
    expect *= t->shape[i];
  }
  return 1;
}

static const float* data_of(const DLTensor* t) { return (const float*)((const char*)t->data + t->byte_offset); }

typedef struct l1_loss {
  int reserved;
} l1_loss;

typedef struct l1_tape {
  DLManagedTensor* pred;
  DLManagedTensor* target;
} l1_tape;

static sinsr_status* l1_create(const char* config_json, sinsr_loss** out) {
  (void)config_json;
  if (!out) return fail(SINSR_ERR_INVALID_ARGUMENT, "l1_c create: out is null");
  *out = (sinsr_loss*)calloc(1, sizeof(l1_loss));
  if (*out && g_host->log) g_host->log(SINSR_LOG_INFO, "l1_c", "created"); /* the host's log (c_api_test reads it) */
  return *out ? NULL : fail(SINSR_ERR_OUT_OF_MEMORY, "l1_c create: out of memory");
}

static void l1_destroy(sinsr_loss* self) { free(self); }

static sinsr_status* l1_forward(sinsr_loss* self, const sinsr_call_options* options, DLManagedTensor* pred,
                                DLManagedTensor* target, DLManagedTensor** loss, sinsr_tape** tape) {
  const float *p, *q;
  double sum = 0.0;
  int64_t n, i;
  DLManagedTensor* out;
  (void)options;
  if (tape) *tape = NULL;
  if (!self || !pred || !target || !loss) {
    release(pred);
    release(target);
    return fail(SINSR_ERR_INVALID_ARGUMENT, "l1_c forward: null argument");
  }
  if (!is_dense_f32(&pred->dl_tensor) || !is_dense_f32(&target->dl_tensor) ||
      numel(&pred->dl_tensor) != numel(&target->dl_tensor) || numel(&pred->dl_tensor) == 0) {
    release(pred);
    release(target);
    return fail(SINSR_ERR_INVALID_ARGUMENT, "l1_c forward: needs two dense CPU float32 tensors of equal size");
  }
  n = numel(&pred->dl_tensor);
  p = data_of(&pred->dl_tensor);
  q = data_of(&target->dl_tensor);
  for (i = 0; i < n; ++i) sum += fabs((double)p[i] - (double)q[i]);
  out = new_float_tensor(0, NULL); /* a 0-d batch loss: the header lets the host train on it */
  if (!out) {
    release(pred);
    release(target);
    return fail(SINSR_ERR_OUT_OF_MEMORY, "l1_c forward: out of memory");
  }
  ((float*)out->dl_tensor.data)[0] = (float)(sum / (double)n);
  *loss = out;
  if (tape) {
    l1_tape* t = (l1_tape*)malloc(sizeof(l1_tape));
    if (!t) {
      release(out);
      *loss = NULL;
      release(pred);
      release(target);
      return fail(SINSR_ERR_OUT_OF_MEMORY, "l1_c forward: out of memory");
    }
    t->pred = pred; /* the tape keeps the inputs until backward */
    t->target = target;
    *tape = (sinsr_tape*)t;
    return NULL;
  }
  release(pred);
  release(target);
  return NULL;
}

static void l1_tape_release(sinsr_loss* self, sinsr_tape* tape) {
  l1_tape* t = (l1_tape*)tape;
  (void)self;
  if (!t) return;
  release(t->pred);
  release(t->target);
  free(t);
}

/* d mean|p - q| / dp = sign(p - q) / n, scaled by the incoming gradient. */
static sinsr_status* l1_backward(sinsr_loss* self, const sinsr_call_options* options, sinsr_tape* tape,
                                 DLManagedTensor* grad_loss, DLManagedTensor** grad_pred) {
  l1_tape* t = (l1_tape*)tape;
  float scale = 1.0f;
  const float *p, *q;
  float* g;
  int64_t n, i;
  DLManagedTensor* out;
  (void)options;
  if (!self || !t || !grad_pred) {
    release(grad_loss);
    l1_tape_release(self, tape);
    return fail(SINSR_ERR_INVALID_ARGUMENT, "l1_c backward: null argument");
  }
  if (grad_loss) {
    if (!is_dense_f32(&grad_loss->dl_tensor) || numel(&grad_loss->dl_tensor) != 1) {
      release(grad_loss);
      l1_tape_release(self, tape);
      return fail(SINSR_ERR_INVALID_ARGUMENT, "l1_c backward: grad_loss must be one float32 value");
    }
    scale = data_of(&grad_loss->dl_tensor)[0];
    release(grad_loss);
  }
  n = numel(&t->pred->dl_tensor);
  out = new_float_tensor(t->pred->dl_tensor.ndim, t->pred->dl_tensor.shape);
  if (!out) {
    l1_tape_release(self, tape);
    return fail(SINSR_ERR_OUT_OF_MEMORY, "l1_c backward: out of memory");
  }
  p = data_of(&t->pred->dl_tensor);
  q = data_of(&t->target->dl_tensor);
  g = (float*)out->dl_tensor.data;
  for (i = 0; i < n; ++i) {
    float d = p[i] - q[i];
    g[i] = (d > 0.0f ? 1.0f : (d < 0.0f ? -1.0f : 0.0f)) * scale / (float)n;
  }
  *grad_pred = out;
  l1_tape_release(self, tape);
  return NULL;
}

static const sinsr_loss_vtable l1_vtable = {
    sizeof(sinsr_loss_vtable), l1_create, l1_destroy, l1_forward, l1_backward, l1_tape_release};

/* Written as an ABI 1.0 plugin: its struct_size stops before the 1.1 fields, so the host must
   not read them (the 1.1 fields are spelled out only to satisfy -Wmissing-field-initializers). */
static const sinsr_component l1_component = {offsetof(sinsr_component, base),
                                             SINSR_KIND_LOSS,
                                             SINSR_THREAD_PARALLEL,
                                             "l1_c",
                                             "1.0.0",
                                             "mean absolute error, written in C",
                                             "{}",
                                             NULL,
                                             NULL,
                                             &l1_vtable,
                                             NULL,
                                             NULL,
                                             0u};

static const sinsr_component* const components[] = {&l1_component};

static const sinsr_plugin_info info = {
    sizeof(sinsr_plugin_info), SINSR_MAKE_VERSION(1, 0), SINSR_MAKE_VERSION(1, 0), "l1_c", "1.0.0", 1, components};

SINSR_EXPORT sinsr_status* sinsr_plugin_entry(const sinsr_host_api* host, const sinsr_plugin_info** out) {
  if (!host || host->struct_size < sizeof(sinsr_host_api) || !host->status_create) return NULL;
  if (SINSR_VERSION_GET_MAJOR(host->abi_version) != SINSR_ABI_VERSION_MAJOR)
    return host->status_create(SINSR_ERR_ABI, "l1_c needs plugin ABI 1.x");
  g_host = host;
  *out = &info;
  return NULL;
}
