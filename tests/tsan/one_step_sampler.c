/* A PARALLEL sampler in plain C: x_T is the condition y itself and sample() makes one denoise
 * call at t = 0, returning the network's output. No state is shared between instances or calls,
 * so the host may call it from any number of threads at once (thread tests, tools/tsan.sh). */
#include "c_tensor.h"

static const sinsr_host_api* g_host;

static sinsr_status* fail(int32_t code, const char* message) { return g_host->status_create(code, message); }

static sinsr_status* one_create(const char* config_json, sinsr_sampler** out) {
  (void)config_json;
  *out = (sinsr_sampler*)malloc(1);
  return *out ? NULL : fail(SINSR_ERR_OUT_OF_MEMORY, "one_step: out of memory");
}

static void one_destroy(sinsr_sampler* self) { free(self); }

static sinsr_status* one_num_steps(sinsr_sampler* self, int32_t* out) {
  (void)self;
  *out = 1;
  return NULL;
}

static sinsr_status* one_schedule(sinsr_sampler* self, const char* key, DLManagedTensor** out) {
  (void)self;
  (void)key;
  *out = NULL;
  return fail(SINSR_ERR_NOT_FOUND, "one_step: no schedules");
}

static sinsr_status* one_prior(sinsr_sampler* self, const sinsr_call_options* options, DLManagedTensor* y,
                               DLManagedTensor* noise, DLManagedTensor** x_T) {
  (void)self;
  (void)options;
  *x_T = c_tensor_copy(&y->dl_tensor);
  c_tensor_release(y);
  c_tensor_release(noise);
  return *x_T ? NULL : fail(SINSR_ERR_UNSUPPORTED, "one_step: y must be a contiguous CPU float32 tensor");
}

static sinsr_status* one_sample(sinsr_sampler* self, const sinsr_call_options* options, DLManagedTensor* y,
                                DLManagedTensor* x_T, const sinsr_sample_callbacks* callbacks, DLManagedTensor** x0) {
  (void)self;
  (void)options;
  const int64_t n = x_T->dl_tensor.shape[0];
  DLManagedTensor* t = c_tensor_new(1, &n, kDLInt, 64);
  c_tensor_release(y);
  *x0 = NULL;
  if (!t) {
    c_tensor_release(x_T);
    return fail(SINSR_ERR_OUT_OF_MEMORY, "one_step: out of memory");
  }
  if (callbacks->progress && callbacks->progress(callbacks->user, 0, 1)) {
    c_tensor_release(x_T);
    c_tensor_release(t);
    return fail(SINSR_ERR_CANCELLED, "one_step: cancelled");
  }
  return callbacks->denoise(callbacks->user, x_T, t, x0); /* x_T and t are the callee's now */
}

static sinsr_status* one_unsupported3(DLManagedTensor* a, DLManagedTensor* b, DLManagedTensor* c) {
  c_tensor_release(a);
  c_tensor_release(b);
  c_tensor_release(c);
  return fail(SINSR_ERR_UNSUPPORTED, "one_step: inference only");
}

static sinsr_status* one_q_sample(sinsr_sampler* self, const sinsr_call_options* options, DLManagedTensor* x0,
                                  DLManagedTensor* y, DLManagedTensor* t, DLManagedTensor* noise,
                                  DLManagedTensor** x_t) {
  (void)self;
  (void)options;
  *x_t = NULL;
  c_tensor_release(noise);
  return one_unsupported3(x0, y, t);
}

static sinsr_status* one_scale_input(sinsr_sampler* self, const sinsr_call_options* options, DLManagedTensor* x_t,
                                     DLManagedTensor* t, DLManagedTensor** x_in) {
  (void)self;
  (void)options;
  *x_in = NULL;
  return one_unsupported3(x_t, t, NULL);
}

/* An ABI 1.0 table. */
static const sinsr_sampler_vtable one_vtable = {offsetof(sinsr_sampler_vtable, respace),
                                                one_create,
                                                one_destroy,
                                                one_num_steps,
                                                one_schedule,
                                                one_prior,
                                                one_sample,
                                                one_q_sample,
                                                one_scale_input};

static const sinsr_component one_component = {sizeof(sinsr_component),
                                              SINSR_KIND_SAMPLER,
                                              SINSR_THREAD_PARALLEL,
                                              "one_step",
                                              "1.0.0",
                                              "x_T = y, one network call (PARALLEL, plain C: thread tests)",
                                              "{}",
                                              NULL,
                                              NULL,
                                              &one_vtable,
                                              NULL,
                                              NULL,
                                              0u};

static const sinsr_component* const components[] = {&one_component};

static const sinsr_plugin_info info = {
    sizeof(sinsr_plugin_info), SINSR_ABI_VERSION, SINSR_MAKE_VERSION(1, 0), "one_step", "1.0.0", 1, components};

SINSR_EXPORT sinsr_status* sinsr_plugin_entry(const sinsr_host_api* host, const sinsr_plugin_info** out) {
  if (!host || !host->status_create) return NULL;
  g_host = host;
  *out = &info;
  return NULL;
}
