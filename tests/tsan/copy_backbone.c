/* A SERIAL backbone in plain C: forward returns a copy of x (the sampler's input), so a pipeline
 * over it upscales by the host's bicubic alone. Every table entry bumps one plain counter with
 * no lock of its own: the host's promise (one call at a time over all instances of a SERIAL
 * component, create and destroy included) is all that keeps it race-free, which is what
 * ThreadSanitizer checks in tools/tsan.sh. */
#include "c_tensor.h"

static const sinsr_host_api* g_host;
static long g_calls; /* guarded by the host's SERIAL lock only */

static sinsr_status* fail(int32_t code, const char* message) { return g_host->status_create(code, message); }

static sinsr_status* copy_create(const char* config_json, sinsr_backbone** out) {
  (void)config_json;
  ++g_calls;
  *out = (sinsr_backbone*)malloc(1);
  return *out ? NULL : fail(SINSR_ERR_OUT_OF_MEMORY, "copy_backbone: out of memory");
}

static void copy_destroy(sinsr_backbone* self) {
  ++g_calls;
  free(self);
}

static sinsr_status* copy_load_weights(sinsr_backbone* self, const char* path, const char* options_json) {
  (void)self;
  (void)path;
  (void)options_json;
  ++g_calls;
  return fail(SINSR_ERR_UNSUPPORTED, "copy_backbone: has no weights");
}

static sinsr_status* copy_save_weights(sinsr_backbone* self, const char* path) {
  (void)self;
  (void)path;
  return fail(SINSR_ERR_UNSUPPORTED, "copy_backbone: has no weights");
}

static sinsr_status* copy_forward(sinsr_backbone* self, const sinsr_call_options* options, DLManagedTensor* x,
                                  DLManagedTensor* cond, DLManagedTensor* t, DLManagedTensor** out, sinsr_tape** tape) {
  (void)self;
  (void)options;
  ++g_calls;
  sinsr_status* st = NULL;
  *out = c_tensor_copy(&x->dl_tensor);
  if (!*out) st = fail(SINSR_ERR_UNSUPPORTED, "copy_backbone: x must be a contiguous CPU float32 tensor");
  if (tape) *tape = NULL;
  c_tensor_release(x);
  c_tensor_release(cond);
  c_tensor_release(t);
  return st;
}

static sinsr_status* copy_backward(sinsr_backbone* self, const sinsr_call_options* options, sinsr_tape* tape,
                                   DLManagedTensor* grad_out, DLManagedTensor** grad_x, DLManagedTensor** grad_cond) {
  (void)self;
  (void)options;
  (void)tape;
  (void)grad_x;
  (void)grad_cond;
  c_tensor_release(grad_out);
  return fail(SINSR_ERR_UNSUPPORTED, "copy_backbone: inference only");
}

static void copy_tape_release(sinsr_backbone* self, sinsr_tape* tape) {
  (void)self;
  (void)tape;
  ++g_calls;
}

static sinsr_status* copy_state_count(sinsr_backbone* self, size_t* count) {
  (void)self;
  *count = 0;
  return NULL;
}

static sinsr_status* copy_state_get(sinsr_backbone* self, size_t index, sinsr_named_tensor* out) {
  (void)self;
  (void)index;
  (void)out;
  return fail(SINSR_ERR_INVALID_ARGUMENT, "copy_backbone: no state");
}

static sinsr_status* copy_zero_grad(sinsr_backbone* self) {
  (void)self;
  return NULL;
}

static sinsr_status* copy_set_training(sinsr_backbone* self, int32_t training) {
  (void)self;
  (void)training;
  ++g_calls;
  return NULL;
}

static sinsr_status* copy_to(sinsr_backbone* self, DLDevice device, DLDataType dtype) {
  (void)self;
  if (device.device_type != kDLCPU || dtype.code != kDLFloat || dtype.bits != 32)
    return fail(SINSR_ERR_UNSUPPORTED, "copy_backbone: CPU float32 only");
  return NULL;
}

/* An ABI 1.0 table: the host fills in the defaults of later calls. */
static const sinsr_backbone_vtable copy_vtable = {offsetof(sinsr_backbone_vtable, timestep_kind),
                                                  copy_create,
                                                  copy_destroy,
                                                  copy_load_weights,
                                                  copy_save_weights,
                                                  copy_forward,
                                                  copy_backward,
                                                  copy_tape_release,
                                                  copy_state_count,
                                                  copy_state_get,
                                                  copy_zero_grad,
                                                  copy_set_training,
                                                  copy_to};

static const sinsr_component copy_component = {sizeof(sinsr_component),
                                               SINSR_KIND_BACKBONE,
                                               SINSR_THREAD_SERIAL,
                                               "copy_backbone",
                                               "1.0.0",
                                               "returns its input (SERIAL, plain C: thread tests)",
                                               "{}",
                                               NULL,
                                               NULL,
                                               &copy_vtable,
                                               NULL,
                                               NULL,
                                               SINSR_COMPONENT_NO_WEIGHTS};

static const sinsr_component* const components[] = {&copy_component};

static const sinsr_plugin_info info = {
    sizeof(sinsr_plugin_info), SINSR_ABI_VERSION, SINSR_MAKE_VERSION(1, 0), "copy_backbone", "1.0.0", 1, components};

SINSR_EXPORT sinsr_status* sinsr_plugin_entry(const sinsr_host_api* host, const sinsr_plugin_info** out) {
  if (!host || !host->status_create) return NULL;
  g_host = host;
  *out = &info;
  return NULL;
}
