/* A model plugin for the ABI 1.1 tests: no code, a base component, a config, default weights
   and a preferred pipeline, each set per build by a compile definition. */
#include "sinsr_plugin.h"

#ifndef MODEL_NAME
#define MODEL_NAME "tiny_model"
#endif
#ifndef MODEL_BASE
#define MODEL_BASE "unet_swin"
#endif
#ifdef BAD_PIPELINE
#define MODEL_PIPELINE "{\"sampler\": \"deterministic\", \"stepz\": 1}"
#else
#define MODEL_PIPELINE "{\"sampler\": \"deterministic\", \"steps\": 3, \"pad_multiple\": 8, \"chop_size\": 40}"
#endif
#ifndef MODEL_WEIGHTS
#define MODEL_WEIGHTS "tiny_model.pth"
#endif
/* The parity tiny UNet's sizes, except the one key a model overrides here. */
#define MODEL_CONFIG                                                                                                 \
  "{\"image_size\": 64, \"in_channels\": 6, \"model_channels\": 32, \"out_channels\": 3, \"channel_mult\": [1, 1, "  \
  "2], "                                                                                                             \
  "\"num_res_blocks\": [2, 1, 1], \"attention_resolutions\": [64, 16], \"swin_embed_dim\": 64, \"window_size\": 4, " \
  "\"mlp_ratio\": 4}"

static const sinsr_component model = {sizeof(sinsr_component),
                                      SINSR_KIND_BACKBONE,
                                      SINSR_THREAD_SERIAL,
                                      MODEL_NAME,
                                      "0.1.0",
                                      "a test model",
                                      "{}",
                                      MODEL_CONFIG,
                                      MODEL_WEIGHTS,
                                      NULL,
                                      MODEL_BASE,
                                      MODEL_PIPELINE,
                                      0u};
static const sinsr_component* const components[] = {&model};
static const sinsr_plugin_info info = {
    sizeof(sinsr_plugin_info), SINSR_ABI_VERSION, SINSR_MAKE_VERSION(1, 1), MODEL_NAME, "0.1.0", 1, components};

SINSR_EXPORT sinsr_status* sinsr_plugin_entry(const sinsr_host_api* host, const sinsr_plugin_info** out) {
  (void)host;
  *out = &info;
  return NULL;
}
