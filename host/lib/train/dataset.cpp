#include "train/dataset.hpp"
#include "imaging/quantise.hpp"
#include "runtime/seed.hpp"

#include <sinsr/sdk.hpp>

#include "imaging/imresize.hpp"
#include "io/image_io.hpp"
#include "runtime/registry.hpp"

#include <algorithm>
#include <filesystem>
#include <future>
#include <iostream>
#include <map>
#include <mutex>

namespace sinsr {
namespace train {

namespace fs = std::filesystem;
using sdk::Error;

struct Dataset::Impl {
  DatasetOptions o;
  std::vector<std::string> files;
  std::vector<at::Tensor> images;  // uint8 [3,H,W], decoded once: draws never depend on I/O
  std::mutex mutex;
  std::map<int64_t, std::shared_future<Batch>> pending;

  Batch make(int64_t step) const;
};

Dataset::Dataset(DatasetOptions options) : impl_(new Impl) {
  auto& im = *impl_;
  im.o = std::move(options);
  auto& o = im.o;
  if (o.batch_size < 1 || o.gt_size < 1 || o.scale < 1)
    throw Error(SINSR_ERR_INVALID_ARGUMENT, "batch_size, gt_size and scale must be positive");
  if (o.gt_size % o.scale != 0) throw Error(SINSR_ERR_INVALID_ARGUMENT, "gt_size must be a multiple of the scale");
  if (o.max_sides.empty())
    throw Error(SINSR_ERR_INVALID_ARGUMENT, "max_sides must name at least one size (0: as they are)");
  for (int side : o.max_sides)
    if (side < 0 || (side != 0 && side < o.gt_size))
      throw Error(SINSR_ERR_INVALID_ARGUMENT, "max_side (" + std::to_string(side) +
                                                  ") must be 0 or at least the crop size " + std::to_string(o.gt_size));
  if (o.degradation == "realesrgan")
    degrade::validate(o.degradation_options);
  else if (o.degradation != "bicubic")
    throw Error(SINSR_ERR_INVALID_ARGUMENT, "unknown degradation '" + o.degradation + "' (bicubic or realesrgan)");
  std::vector<std::string> all;
  for (const auto& folder : o.folders) {
    std::error_code ec;
    if (!fs::is_directory(folder, ec)) throw Error(SINSR_ERR_NOT_FOUND, folder + ": not a folder");
    for (auto it = fs::recursive_directory_iterator(folder, ec); it != fs::recursive_directory_iterator();
         it.increment(ec))
      if (it->is_regular_file(ec) && io::has_image_extension(it->path().string())) all.push_back(it->path().string());
  }
  std::sort(all.begin(), all.end());
  for (size_t i = size_t(o.rank); i < all.size(); i += size_t(std::max(1, o.world_size))) {
    try {
      io::Image img = io::read_image(all[i]);
      at::Tensor px = img.pixels;
      if (px.size(0) <= 2) px = px.narrow(0, 0, 1).expand({3, -1, -1});  // gray (+alpha): replicate
      if (px.size(0) == 4) px = px.narrow(0, 0, 3);
      const int64_t side = std::max(px.size(1), px.size(2));
      std::vector<int64_t> kept;  // longer sides of the copies of this photo
      for (int max_side : o.max_sides) {
        const int64_t target = max_side > 0 ? std::min<int64_t>(side, max_side) : side;
        if (std::find(kept.begin(), kept.end(), target) != kept.end()) continue;
        kept.push_back(target);
        at::Tensor copy =
            target < side ? imaging::imresize(px.contiguous(), double(target) / double(side)).clamp(0, 1) : px;
        if (copy.size(1) < o.gt_size || copy.size(2) < o.gt_size) {
          host::log(SINSR_LOG_WARNING, "train",
                    all[i] + (target < side ? " shrunk to " + std::to_string(target) + " px" : std::string()) +
                        ": smaller than the crop size " + std::to_string(o.gt_size) + ", skipped");
          continue;
        }
        im.images.push_back(imaging::to_uint8(copy).contiguous());
        im.files.push_back(all[i]);
      }
    } catch (const std::exception& e) {
      host::log(SINSR_LOG_WARNING, "train", std::string("skipping unreadable training image: ") + e.what());
    }
  }
}

Dataset::~Dataset() = default;

size_t Dataset::size() const { return impl_->images.size(); }

Batch Dataset::Impl::make(int64_t step) const {
  Batch b;
  b.index = step;
  std::vector<at::Tensor> hrs, lrs;
  const uint64_t base = mix_seed(mix_seed(o.seed, uint64_t(o.rank)), uint64_t(step));
  for (int k = 0; k < o.batch_size; ++k) {
    uint64_t r = mix_seed(base, uint64_t(k));
    const at::Tensor& img = images[r % images.size()];
    int64_t h = img.size(1), w = img.size(2);
    int64_t y = int64_t(mix_seed(r, 1) % uint64_t(h - o.gt_size + 1));
    int64_t x = int64_t(mix_seed(r, 2) % uint64_t(w - o.gt_size + 1));
    at::Tensor hr = img.narrow(1, y, o.gt_size).narrow(2, x, o.gt_size).to(at::kFloat).div(255);
    if (o.flips) {
      uint64_t f = mix_seed(r, 3);
      if (f & 1) hr = hr.flip({2});
      if (f & 2) hr = hr.flip({1});
      if (f & 4) hr = hr.transpose(1, 2);
    }
    hr = hr.contiguous();
    // The degradation draws from its own seed, so crops do not shift when its options change.
    at::Tensor lr = o.degradation == "realesrgan" ? degrade::degrade(hr, o.scale, mix_seed(r, 4), o.degradation_options)
                                                  : imaging::imresize(hr, 1.0 / o.scale);
    hrs.push_back(hr);
    lrs.push_back(lr.clamp(0, 1));
  }
  b.hr = at::stack(hrs).sub(0.5).div(0.5);
  b.lr = at::stack(lrs).sub(0.5).div(0.5);
  return b;
}

Batch Dataset::batch(int64_t step) {
  auto& im = *impl_;
  if (im.images.empty()) throw Error(SINSR_ERR_NOT_FOUND, "no usable training images");
  std::shared_future<Batch> mine;
  {
    std::lock_guard<std::mutex> lock(im.mutex);
    // Keep `prefetch` batches in flight on worker threads (bounded by `workers`).
    for (int64_t s = step; s < step + std::max(1, im.o.prefetch); ++s) {
      if (im.pending.count(s)) continue;
      if (int64_t(im.pending.size()) >= std::max(1, im.o.workers) + 1 && s != step) break;
      const Impl* self = &im;
      im.pending[s] = std::async(std::launch::async, [self, s] { return self->make(s); }).share();
    }
    mine = im.pending[step];
  }
  Batch b = mine.get();
  std::lock_guard<std::mutex> lock(im.mutex);
  im.pending.erase(im.pending.begin(), im.pending.upper_bound(step));
  return b;
}

}  // namespace train
}  // namespace sinsr
