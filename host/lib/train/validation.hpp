// Validation during training: upscale LR images with the live model and score them against
// HR images of the same name (PSNR/SSIM on the Y channel, as the official trainer).
#pragma once

#include "train/trainer.hpp"

#include <string>

namespace sinsr {
namespace train {

struct Validation {
  std::string summary;
  json metrics;  // {"psnr": .., "ssim": .., "images": n}
};

Validation validate(Trainer& trainer, const TrainerOptions& options, const std::string& lr_dir,
                    const std::string& hr_dir, int limit);

}  // namespace train
}  // namespace sinsr
