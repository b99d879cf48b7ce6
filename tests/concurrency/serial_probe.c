/* A SERIAL loss plugin in plain C that counts how often two of its calls overlapped: every entry
 * of its table (create, destroy, forward, backward, tape_release) marks itself inside for a
 * moment. The host promises SERIAL components one call at a time across all their instances, so
 * the count must stay 0. forward returns the count so far as the loss value. */
#include "sinsr_plugin.h"

#include <stdlib.h>
#include <time.h>

static const sinsr_host_api* g_host;
static int g_inside, g_overlaps;

static void enter(void) {
  struct timespec pause = {0, 200000}; /* 0.2 ms: long enough for another thread to collide */
  if (__atomic_fetch_add(&g_inside, 1, __ATOMIC_SEQ_CST) != 0) __atomic_fetch_add(&g_overlaps, 1, __ATOMIC_SEQ_CST);
  nanosleep(&pause, NULL);
}

static void leave(void) { __atomic_fetch_sub(&g_inside, 1, __ATOMIC_SEQ_CST); }

static void release(DLManagedTensor* m) {
  if (m && m->deleter) m->deleter(m);
}

typedef struct scalar_tensor {
  DLManagedTensor managed;
  float value;
} scalar_tensor;

static void scalar_deleter(DLManagedTensor* self) { free(self); }

static DLManagedTensor* scalar(float v) {
  scalar_tensor* t = (scalar_tensor*)calloc(1, sizeof(scalar_tensor));
  if (!t) return NULL;
  t->value = v;
  t->managed.dl_tensor.data = &t->value;
  t->managed.dl_tensor.device.device_type = kDLCPU;
  t->managed.dl_tensor.ndim = 0;
  t->managed.dl_tensor.dtype.code = kDLFloat;
  t->managed.dl_tensor.dtype.bits = 32;
  t->managed.dl_tensor.dtype.lanes = 1;
  t->managed.deleter = scalar_deleter;
  return &t->managed;
}

static sinsr_status* probe_create(const char* config_json, sinsr_loss** out) {
  (void)config_json;
  enter();
  *out = (sinsr_loss*)malloc(1);
  leave();
  return *out ? NULL : g_host->status_create(SINSR_ERR_OUT_OF_MEMORY, "serial_probe: out of memory");
}

static void probe_destroy(sinsr_loss* self) {
  enter();
  free(self);
  leave();
}

static sinsr_status* probe_forward(sinsr_loss* self, const sinsr_call_options* options, DLManagedTensor* pred,
                                   DLManagedTensor* target, DLManagedTensor** loss, sinsr_tape** tape) {
  (void)self;
  (void)options;
  enter();
  release(pred);
  release(target);
  *loss = scalar((float)__atomic_load_n(&g_overlaps, __ATOMIC_SEQ_CST));
  if (tape) *tape = (sinsr_tape*)malloc(1);
  leave();
  return NULL;
}

static void probe_tape_release(sinsr_loss* self, sinsr_tape* tape) {
  (void)self;
  enter();
  free(tape);
  leave();
}

static sinsr_status* probe_backward(sinsr_loss* self, const sinsr_call_options* options, sinsr_tape* tape,
                                    DLManagedTensor* grad_loss, DLManagedTensor** grad_pred) {
  (void)self;
  (void)options;
  (void)grad_pred;
  release(grad_loss);
  enter();
  free(tape);
  leave();
  return g_host->status_create(SINSR_ERR_UNSUPPORTED, "serial_probe: no backward");
}

static const sinsr_loss_vtable probe_vtable = {
    sizeof(sinsr_loss_vtable), probe_create, probe_destroy, probe_forward, probe_backward, probe_tape_release};

static const sinsr_component probe_component = {offsetof(sinsr_component, base),
                                                SINSR_KIND_LOSS,
                                                SINSR_THREAD_SERIAL,
                                                "serial_probe",
                                                "1.0.0",
                                                "counts overlapping calls (SERIAL locking test)",
                                                "{}",
                                                NULL,
                                                NULL,
                                                &probe_vtable,
                                                NULL,
                                                NULL,
                                                0u};

static const sinsr_component* const components[] = {&probe_component};

static const sinsr_plugin_info info = {sizeof(sinsr_plugin_info),
                                       SINSR_MAKE_VERSION(1, 0),
                                       SINSR_MAKE_VERSION(1, 0),
                                       "serial_probe",
                                       "1.0.0",
                                       1,
                                       components};

SINSR_EXPORT sinsr_status* sinsr_plugin_entry(const sinsr_host_api* host, const sinsr_plugin_info** out) {
  if (!host || !host->status_create) return NULL;
  g_host = host;
  *out = &info;
  return NULL;
}
