// Training data: HR images from folders, random gt_size crops and flips, LR made by the
// MATLAB-style bicubic resize (or the RealESRGAN degradation), prefetched on worker threads.
#pragma once

#include "imaging/degradation.hpp"

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sinsr {
namespace train {

struct DatasetOptions {
  std::vector<std::string> folders;  // HR images, searched recursively; any readable format
  int gt_size = 256;                 // HR crop size
  // Photos whose longer side exceeds this are first shrunk to it (MATLAB bicubic, once at load):
  // a small crop of a 2560-pixel wallpaper is mostly smooth sky. 0: keep the photos as they are.
  // Several sizes keep one copy of each photo per size (multi-scale data, as Real-ESRGAN's
  // DF2K_multiscale): a few photos then give several times the distinct content. A copy equal to
  // another (the photo is not larger than the size) is kept once.
  std::vector<int> max_sides = {0};
  int scale = 4;                         // LR = HR / scale
  int batch_size = 4;                    // per rank
  bool flips = true;                     // horizontal/vertical flips and 90-degree rotations
  std::string degradation = "bicubic";   // "bicubic" or "realesrgan"
  degrade::Options degradation_options;  // for "realesrgan"; the official values by default
  uint64_t seed = 0;
  int rank = 0;  // data sharding: rank r takes files r, r+W, ...
  int world_size = 1;
  int workers = 2;   // prefetch threads
  int prefetch = 4;  // batches kept ready
};

struct Batch {
  at::Tensor hr;      // [B,3,gt,gt] float32 in [-1, 1]
  at::Tensor lr;      // [B,3,gt/scale,gt/scale] float32 in [-1, 1]
  int64_t index = 0;  // batch number (deterministic given seed and index)
};

class Dataset {
 public:
  explicit Dataset(DatasetOptions options);
  ~Dataset();
  // The batch for a given step: a pure function of (seed, rank, step), so a resumed run sees
  // the same data as an uninterrupted one. Unreadable images are reported once and skipped.
  Batch batch(int64_t step);
  size_t size() const;  // usable images for this rank

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace train
}  // namespace sinsr
