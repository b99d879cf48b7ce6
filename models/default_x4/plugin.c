/* The shipped default model, "student": a SinSR one-step student distilled here (see
 * MODEL_CARD.md). It has no code of its own: through ABI 1.1 it names its base backbone
 * (unet_swin), the config to build it with, the weights beside this library and the pipeline
 * it was trained for (space_to_depth codec, deterministic sampler, one step). Plain C: a model
 * plugin needs no SDK. */
#include "sinsr_plugin.h"
#include "model.h"

static const sinsr_component student = {
    sizeof(sinsr_component),
    SINSR_KIND_BACKBONE,
    SINSR_THREAD_PER_INSTANCE, /* the base's mode applies once resolved */
    "student",
    "1.0.0",
    "SinSR x4 one-step student (1.9 M params, UNetModelSwin over a space_to_depth latent), trained here",
    "{}",
    SINSR_MODEL_CONFIG,
    "student.pth",
    NULL, /* no function table: the base's */
    "unet_swin",
    SINSR_MODEL_PIPELINE,
    0u};

static const sinsr_component* const components[] = {&student};

static const sinsr_plugin_info info = {sizeof(sinsr_plugin_info), SINSR_ABI_VERSION, SINSR_MAKE_VERSION(1, 1),
                                       "student", "1.0.0", 1, components};

SINSR_EXPORT sinsr_status* sinsr_plugin_entry(const sinsr_host_api* host, const sinsr_plugin_info** out) {
  if (!host || host->struct_size < sizeof(sinsr_host_api) || !host->status_create) return NULL;
  if (SINSR_VERSION_GET_MAJOR(host->abi_version) != SINSR_ABI_VERSION_MAJOR ||
      SINSR_VERSION_GET_MINOR(host->abi_version) < 1)
    return host->status_create(SINSR_ERR_ABI, "the student model needs a host with plugin ABI 1.1 or newer");
  *out = &info;
  return NULL;
}
