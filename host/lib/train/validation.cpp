#include "train/validation.hpp"

#include "imaging/metrics.hpp"
#include "io/image_io.hpp"
#include "io/pairs.hpp"

#include <sstream>

namespace sinsr {
namespace train {

Validation validate(Trainer& trainer, const TrainerOptions& options, const std::string& lr_dir,
                    const std::string& hr_dir, int limit) {
  Validation v;
  host::PipelineOptions po;
  po.scale = options.scale;
  po.seed = options.seed;
  po.device = options.device;
  po.chop_size = 0;
  host::Pipeline pipeline(trainer.model(), trainer.codec(), trainer.inference_sampler(), po);
  double sum_p = 0, sum_s = 0;
  int n = 0, scored = 0;
  // With HR images: the LR images that have one of the same name (io::pair_by_stem, as eval
  // pairs); without: every LR image, upscaled only.
  std::vector<io::ImagePair> work;
  if (hr_dir.empty()) {
    for (const auto& lr : io::list_images(lr_dir)) work.push_back({"", lr, ""});
  } else {
    work = io::pair_by_stem(lr_dir, hr_dir, "LR image", "HR image").pairs;
  }
  for (const auto& item : work) {
    if (n >= limit) break;
    at::Tensor sr = pipeline.upscale_any(io::read_image(item.first).pixels);
    ++n;
    if (item.second.empty()) continue;
    at::Tensor g = io::read_image(item.second).pixels;
    if (g.size(1) != sr.size(1) || g.size(2) != sr.size(2)) continue;
    // As `sinsr-host eval` scores them: 8-bit, Y channel, the scale as border.
    metrics::Scores m =
        metrics::evaluate(io::color_uint8_hwc(sr), io::color_uint8_hwc(g), options.scale, metrics::Mode::y);
    sum_p += m.psnr;
    sum_s += m.ssim;
    ++scored;
  }
  std::ostringstream s;
  s << n << " images";
  v.metrics = {{"images", n}};
  if (scored) {
    s << ", PSNR " << sum_p / scored << " dB, SSIM " << sum_s / scored << " (Y, " << scored << " with HR)";
    v.metrics["psnr"] = sum_p / scored;
    v.metrics["ssim"] = sum_s / scored;
  }
  v.summary = s.str();
  return v;
}

}  // namespace train
}  // namespace sinsr
