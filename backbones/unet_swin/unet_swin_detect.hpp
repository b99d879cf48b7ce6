// Architecture detection for UNetModelSwin (ABI 1.2 detect_config): the official model.params
// of the network a state dict holds, from its names and shapes alone.
#pragma once

#include "unet_swin.hpp"

#include <sinsr/sdk.hpp>

namespace sinsr {
namespace unet_swin {

// Throws sdk::Error: SINSR_ERR_NOT_FOUND when the keys are not a UNetModelSwin's,
// SINSR_ERR_UNSUPPORTED when they are but this backbone cannot build that variant (the detected
// config is checked by rebuilding the full name -> shape map from it).
sdk::Detection detect(const sdk::ShapeMap& shapes);

// The names and shapes of the state dict of UNetModelSwin(o), parameters and buffers, without
// allocating the network.
sdk::ShapeMap expected_shapes(const Options& o);

// True for the buffers the network recomputes from its config (a file may lack them).
bool is_derived_buffer(const std::string& key);

}  // namespace unet_swin
}  // namespace sinsr
