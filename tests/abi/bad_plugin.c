/* One source, one defect per build (selected by a DEFECT_* define): each library is a plugin
 * the host must refuse with a clear message, or one whose component fails on create. */
#include "sinsr_plugin.h"

#include <stdlib.h>

static const sinsr_host_api* g_host;

static sinsr_status* create_fails(const char* config_json, sinsr_loss** out) {
  (void)config_json;
  *out = NULL;
  return g_host->status_create(SINSR_ERR_INVALID_ARGUMENT, "refusing to create: bad config");
}
static void destroy(sinsr_loss* self) { (void)self; }

#ifdef DEFECT_SMALL_VTABLE
#define VTABLE_SIZE 8
#else
#define VTABLE_SIZE sizeof(sinsr_loss_vtable)
#endif
static const sinsr_loss_vtable vtable = {VTABLE_SIZE, create_fails, destroy, NULL, NULL, NULL};

#ifdef DEFECT_UNKNOWN_KIND
#define KIND 42
#else
#define KIND SINSR_KIND_LOSS
#endif
#ifdef DEFECT_SMALL_COMPONENT
#define COMPONENT_SIZE 16
#else
#define COMPONENT_SIZE sizeof(sinsr_component)
#endif
#ifndef COMPONENT_NAME
#define COMPONENT_NAME "broken"
#endif
static const sinsr_component component = {
    COMPONENT_SIZE, KIND,   SINSR_THREAD_SERIAL, COMPONENT_NAME, "0.0.1", "a deliberately broken plugin", "{}", NULL,
    NULL,           &vtable};
static const sinsr_component* const components[] = {&component};

#ifdef DEFECT_BAD_MAJOR
#define ABI SINSR_MAKE_VERSION(SINSR_ABI_VERSION_MAJOR + 1, 0)
#else
#define ABI SINSR_ABI_VERSION
#endif
#ifdef DEFECT_SMALL_INFO
#define INFO_SIZE 8
#else
#define INFO_SIZE sizeof(sinsr_plugin_info)
#endif
static const sinsr_plugin_info info = {INFO_SIZE, ABI, SINSR_MAKE_VERSION(1, 0), "broken", "0.0.1", 1, components};

#ifdef DEFECT_NO_ENTRY
SINSR_EXPORT int not_a_sinsr_plugin(void) { return 0; }
#else
SINSR_EXPORT sinsr_status* sinsr_plugin_entry(const sinsr_host_api* host, const sinsr_plugin_info** out) {
  g_host = host;
#ifdef DEFECT_ENTRY_FAILS
  (void)out;
  return host->status_create(SINSR_ERR_RUNTIME, "cannot start: missing licence file");
#else
  *out = &info;
  return NULL;
#endif
}
#endif
