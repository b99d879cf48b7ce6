/* A shipped-model plugin for the CLI tests: the test plugin's local_blur trained (so it says)
   for x2 in pixel space, no weights. It lets `-s` be checked against a model's fixed factor
   without the real student model. */
#include "sinsr_plugin.h"

#include <stddef.h>

static const sinsr_component model = {
    sizeof(sinsr_component),
    SINSR_KIND_BACKBONE,
    SINSR_THREAD_SERIAL,
    "cli_x2_model",
    "0.1.0",
    "x2 test model over local_blur",
    "{}",
    "{}",
    NULL,
    NULL,
    "local_blur",
    "{\"codec\": null, \"sampler\": \"single-step\", \"scale\": 2, \"pad_multiple\": 4}",
    SINSR_COMPONENT_NO_WEIGHTS};
static const sinsr_component* const components[] = {&model};
static const sinsr_plugin_info info = {
    sizeof(sinsr_plugin_info), SINSR_ABI_VERSION, SINSR_MAKE_VERSION(1, 1), "cli_x2_model", "0.1.0", 1, components};

SINSR_EXPORT sinsr_status* sinsr_plugin_entry(const sinsr_host_api* host, const sinsr_plugin_info** out) {
  (void)host;
  *out = &info;
  return NULL;
}
