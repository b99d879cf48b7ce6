// sinsr_image_*: image files through the host's own reader and writer, so that other languages
// read a file (EXIF orientation, bit depth, gray, alpha) exactly as `sinsr-host infer` does.
#include "capi/c_api.hpp"

#include <sinsr/sdk.hpp>

#ifdef SINSR_WITH_IMAGE_IO
#include "io/image_io.hpp"
#endif

using sinsr::host::c_guard;
using sinsr::sdk::require;

namespace {
[[noreturn]] void no_image_io() {
  throw sinsr::sdk::Error(SINSR_ERR_UNSUPPORTED, "this libsinsr_host was built without image I/O (OpenImageIO)");
}
}  // namespace

extern "C" {

SINSR_API sinsr_status* sinsr_image_read(const char* path, DLManagedTensor** out, int32_t* bits) {
  return c_guard("sinsr_image_read", [&] {
    require(out != nullptr, SINSR_ERR_INVALID_ARGUMENT, "out is null");
    *out = nullptr;
    require(path != nullptr && *path, SINSR_ERR_INVALID_ARGUMENT, "path is null or empty");
#ifdef SINSR_WITH_IMAGE_IO
    sinsr::io::Image im = sinsr::io::read_image(path);
    if (bits) *bits = im.bits;
    *out = sinsr::sdk::to_dlpack(im.pixels.permute({1, 2, 0}).contiguous());
#else
    (void)bits;
    no_image_io();
#endif
  });
}

SINSR_API sinsr_status* sinsr_image_write(const char* path, DLManagedTensor* image, int32_t bits) {
  at::Tensor in;  // owned first, so the deleter runs on every path
  sinsr_status* st = c_guard("sinsr_image_write", [&] { in = sinsr::sdk::from_dlpack(image); });
  if (st) return st;
  return c_guard("sinsr_image_write", [&] {
    require(path != nullptr && *path, SINSR_ERR_INVALID_ARGUMENT, "path is null or empty");
    require(in.defined() && in.dim() == 3 && in.size(2) >= 1 && in.size(2) <= 4, SINSR_ERR_INVALID_ARGUMENT,
            "image must be [H,W,C] with C = 1..4, got " + sinsr::sdk::describe_shape(in));
    require(in.device().is_cpu() && in.is_floating_point(), SINSR_ERR_INVALID_ARGUMENT,
            "image must be a floating-point CPU tensor in [0, 1]");
    require(bits == 8 || bits == 16 || bits == 32, SINSR_ERR_INVALID_ARGUMENT,
            "bits must be 8, 16 or 32, not " + std::to_string(bits));
#ifdef SINSR_WITH_IMAGE_IO
    sinsr::io::write_image(path, in.permute({2, 0, 1}), bits);
#else
    no_image_io();
#endif
  });
}

}  // extern "C"
