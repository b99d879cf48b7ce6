// Freezes the layout of every struct of ABI v1 (LP64). Tables and structs may only grow at
// the end: a new field goes after the last one here, and these offsets never change.
#include "sinsr_host.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>

#if UINTPTR_MAX == 0xFFFFFFFFFFFFFFFFu
#define FROZEN(type, field, offset) static_assert(offsetof(type, field) == (offset), #type "." #field " moved")
#define FROZEN_SIZE_AT_LEAST(type, size) static_assert(sizeof(type) >= (size), #type " shrank")

FROZEN(sinsr_host_api, struct_size, 0);
FROZEN(sinsr_host_api, abi_version, 8);
FROZEN(sinsr_host_api, status_create, 16);
FROZEN(sinsr_host_api, status_code, 24);
FROZEN(sinsr_host_api, status_message, 32);
FROZEN(sinsr_host_api, status_release, 40);
FROZEN(sinsr_host_api, log, 48);
FROZEN_SIZE_AT_LEAST(sinsr_host_api, 56);

FROZEN(sinsr_call_options, struct_size, 0);
FROZEN(sinsr_call_options, cuda_stream, 8);
FROZEN_SIZE_AT_LEAST(sinsr_call_options, 16);

// ABI 1.1
FROZEN(sinsr_timestep_info, struct_size, 0);
FROZEN(sinsr_timestep_info, kind, 8);
FROZEN(sinsr_timestep_info, unit, 16);
FROZEN_SIZE_AT_LEAST(sinsr_timestep_info, 24);
static_assert(SINSR_TIMESTEP_INDEX == 0 && SINSR_TIMESTEP_NOISE_LEVEL == 1, "sinsr_timestep_kind values moved");
static_assert(SINSR_PREDICTION_UNDECLARED == 0 && SINSR_PREDICTION_X0 == 1 && SINSR_PREDICTION_NOISE == 2 &&
                  SINSR_PREDICTION_OTHER == 3,
              "sinsr_prediction values moved");

FROZEN(sinsr_named_tensor, struct_size, 0);
FROZEN(sinsr_named_tensor, name, 8);
FROZEN(sinsr_named_tensor, is_parameter, 16);
FROZEN(sinsr_named_tensor, value, 24);
FROZEN(sinsr_named_tensor, grad, 32);
FROZEN_SIZE_AT_LEAST(sinsr_named_tensor, 40);

FROZEN(sinsr_backbone_vtable, struct_size, 0);
FROZEN(sinsr_backbone_vtable, create, 8);
FROZEN(sinsr_backbone_vtable, destroy, 16);
FROZEN(sinsr_backbone_vtable, load_weights, 24);
FROZEN(sinsr_backbone_vtable, save_weights, 32);
FROZEN(sinsr_backbone_vtable, forward, 40);
FROZEN(sinsr_backbone_vtable, backward, 48);
FROZEN(sinsr_backbone_vtable, tape_release, 56);
FROZEN(sinsr_backbone_vtable, state_count, 64);
FROZEN(sinsr_backbone_vtable, state_get, 72);
FROZEN(sinsr_backbone_vtable, zero_grad, 80);
FROZEN(sinsr_backbone_vtable, set_training, 88);
FROZEN(sinsr_backbone_vtable, to, 96);
// ABI 1.1
FROZEN(sinsr_backbone_vtable, timestep_kind, 104);
// ABI 1.2
FROZEN(sinsr_backbone_vtable, detect_config, 112);
// ABI 1.3
FROZEN(sinsr_backbone_vtable, create_with, 120);
// ABI 1.4
FROZEN(sinsr_backbone_vtable, prediction, 128);
FROZEN_SIZE_AT_LEAST(sinsr_backbone_vtable, 136);

// ABI 1.2
FROZEN(sinsr_tensor_shape, struct_size, 0);
FROZEN(sinsr_tensor_shape, name, 8);
FROZEN(sinsr_tensor_shape, ndim, 16);
FROZEN(sinsr_tensor_shape, shape, 24);
FROZEN_SIZE_AT_LEAST(sinsr_tensor_shape, 32);

FROZEN(sinsr_codec_info, struct_size, 0);
FROZEN(sinsr_codec_info, downscale, 8);
FROZEN(sinsr_codec_info, latent_channels, 12);
FROZEN(sinsr_codec_info, image_channels, 16);
FROZEN_SIZE_AT_LEAST(sinsr_codec_info, 24);

FROZEN(sinsr_codec_vtable, struct_size, 0);
FROZEN(sinsr_codec_vtable, create, 8);
FROZEN(sinsr_codec_vtable, destroy, 16);
FROZEN(sinsr_codec_vtable, load_weights, 24);
FROZEN(sinsr_codec_vtable, info, 32);
FROZEN(sinsr_codec_vtable, encode, 40);
FROZEN(sinsr_codec_vtable, decode, 48);
FROZEN(sinsr_codec_vtable, to, 56);
// ABI 1.2
FROZEN(sinsr_codec_vtable, detect_config, 64);
// ABI 1.3
FROZEN(sinsr_codec_vtable, create_with, 72);
FROZEN_SIZE_AT_LEAST(sinsr_codec_vtable, 80);

FROZEN(sinsr_sample_callbacks, struct_size, 0);
FROZEN(sinsr_sample_callbacks, user, 8);
FROZEN(sinsr_sample_callbacks, denoise, 16);
FROZEN(sinsr_sample_callbacks, noise, 24);
FROZEN(sinsr_sample_callbacks, progress, 32);
// ABI 1.2
FROZEN(sinsr_sample_callbacks, uniform, 40);
FROZEN_SIZE_AT_LEAST(sinsr_sample_callbacks, 48);

// ABI 1.2
FROZEN(sinsr_training_example, struct_size, 0);
FROZEN(sinsr_training_example, x_in, 8);
FROZEN(sinsr_training_example, t, 16);
FROZEN(sinsr_training_example, target, 24);
FROZEN_SIZE_AT_LEAST(sinsr_training_example, 32);

FROZEN(sinsr_sampler_vtable, struct_size, 0);
FROZEN(sinsr_sampler_vtable, create, 8);
FROZEN(sinsr_sampler_vtable, destroy, 16);
FROZEN(sinsr_sampler_vtable, num_steps, 24);
FROZEN(sinsr_sampler_vtable, schedule, 32);
FROZEN(sinsr_sampler_vtable, prior, 40);
FROZEN(sinsr_sampler_vtable, sample, 48);
FROZEN(sinsr_sampler_vtable, q_sample, 56);
FROZEN(sinsr_sampler_vtable, scale_input, 64);
// ABI 1.1
FROZEN(sinsr_sampler_vtable, respace, 72);
FROZEN(sinsr_sampler_vtable, timestep_kind, 80);
// ABI 1.2
FROZEN(sinsr_sampler_vtable, training_example, 88);
// ABI 1.4
FROZEN(sinsr_sampler_vtable, prediction, 96);
// ABI 1.5
FROZEN(sinsr_sampler_vtable, distillation_example, 104);
FROZEN_SIZE_AT_LEAST(sinsr_sampler_vtable, 112);

FROZEN(sinsr_distillation_example, struct_size, 0);
FROZEN(sinsr_distillation_example, x_T, 8);
FROZEN(sinsr_distillation_example, x0, 16);
FROZEN(sinsr_distillation_example, x_in, 24);
FROZEN(sinsr_distillation_example, t_student, 32);
FROZEN(sinsr_distillation_example, t_inverse, 40);
FROZEN_SIZE_AT_LEAST(sinsr_distillation_example, 48);

FROZEN(sinsr_loss_vtable, struct_size, 0);
FROZEN(sinsr_loss_vtable, create, 8);
FROZEN(sinsr_loss_vtable, destroy, 16);
FROZEN(sinsr_loss_vtable, forward, 24);
FROZEN(sinsr_loss_vtable, backward, 32);
FROZEN(sinsr_loss_vtable, tape_release, 40);
FROZEN_SIZE_AT_LEAST(sinsr_loss_vtable, 48);

FROZEN(sinsr_component, struct_size, 0);
FROZEN(sinsr_component, kind, 8);
FROZEN(sinsr_component, thread_safety, 12);
FROZEN(sinsr_component, name, 16);
FROZEN(sinsr_component, version, 24);
FROZEN(sinsr_component, summary, 32);
FROZEN(sinsr_component, config_schema, 40);
FROZEN(sinsr_component, default_config, 48);
FROZEN(sinsr_component, default_weights, 56);
FROZEN(sinsr_component, vtable, 64);
// ABI 1.1
FROZEN(sinsr_component, base, 72);
FROZEN(sinsr_component, preferred_pipeline, 80);
FROZEN(sinsr_component, flags, 88);
FROZEN_SIZE_AT_LEAST(sinsr_component, 92);

FROZEN(sinsr_plugin_info, struct_size, 0);
FROZEN(sinsr_plugin_info, abi_version, 8);
FROZEN(sinsr_plugin_info, min_abi_version, 12);
FROZEN(sinsr_plugin_info, name, 16);
FROZEN(sinsr_plugin_info, version, 24);
FROZEN(sinsr_plugin_info, num_components, 32);
FROZEN(sinsr_plugin_info, components, 40);
FROZEN_SIZE_AT_LEAST(sinsr_plugin_info, 48);

FROZEN(sinsr_runtime_options, struct_size, 0);
FROZEN(sinsr_runtime_options, num_threads, 8);
FROZEN(sinsr_runtime_options, load_default_paths, 12);
FROZEN_SIZE_AT_LEAST(sinsr_runtime_options, 16);

FROZEN(sinsr_component_info, struct_size, 0);
FROZEN(sinsr_component_info, kind, 8);
FROZEN(sinsr_component_info, thread_safety, 12);
FROZEN(sinsr_component_info, name, 16);
FROZEN(sinsr_component_info, version, 24);
FROZEN(sinsr_component_info, summary, 32);
FROZEN(sinsr_component_info, config_schema, 40);
FROZEN(sinsr_component_info, file, 48);
FROZEN(sinsr_component_info, plugin_name, 56);
FROZEN(sinsr_component_info, abi_version, 64);
FROZEN_SIZE_AT_LEAST(sinsr_component_info, 72);

#endif

TEST(AbiLayout, VersionMacrosRoundTrip) {
  EXPECT_EQ(SINSR_VERSION_GET_MAJOR(SINSR_MAKE_VERSION(3, 7)), 3u);
  EXPECT_EQ(SINSR_VERSION_GET_MINOR(SINSR_MAKE_VERSION(3, 7)), 7u);
  EXPECT_EQ(SINSR_VERSION_GET_MAJOR(SINSR_ABI_VERSION), static_cast<uint32_t>(SINSR_ABI_VERSION_MAJOR));
  EXPECT_EQ(sinsr_abi_version(), static_cast<uint32_t>(SINSR_ABI_VERSION));
}

TEST(AbiLayout, HasFieldRespectsStructSize) {
  sinsr_component c{};
  c.struct_size = offsetof(sinsr_component, default_config);
  EXPECT_TRUE(SINSR_HAS_FIELD(&c, sinsr_component, config_schema));
  EXPECT_FALSE(SINSR_HAS_FIELD(&c, sinsr_component, default_config));
  EXPECT_FALSE(SINSR_HAS_FIELD(&c, sinsr_component, vtable));
  const sinsr_component* none = nullptr;
  EXPECT_FALSE(SINSR_HAS_FIELD(none, sinsr_component, kind));
}
