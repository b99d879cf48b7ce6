// Architecture detection for VQModelTorch (ABI 1.2 detect_config): the official
// autoencoder.params of the network a state dict holds, from its names and shapes alone.
#pragma once

#include "vq_f4.hpp"

#include <sinsr/sdk.hpp>

namespace sinsr {
namespace vq_f4 {

// Throws sdk::Error: SINSR_ERR_NOT_FOUND when the keys are not a VQModelTorch's,
// SINSR_ERR_UNSUPPORTED when they are but this codec cannot build that variant (e.g. double_z;
// the detected config is checked by rebuilding the full name -> shape map from it).
sdk::Detection detect(const sdk::ShapeMap& shapes);

// The names and shapes of the state dict of VQModel(o), without allocating the network.
sdk::ShapeMap expected_shapes(const Options& o);

}  // namespace vq_f4
}  // namespace sinsr
