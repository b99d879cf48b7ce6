// sinsr_image_*: image files through the host's own reader and writer, so that other languages
// read a file (EXIF orientation, bit depth, gray, alpha) exactly as `sinsr-host infer` does.
#include "capi/c_api.hpp"

#include "imaging/quantise.hpp"

#include <sinsr/sdk.hpp>

#include "io/image_io.hpp"

using sinsr::host::c_guard;
using sinsr::sdk::require;

namespace sinsr {
namespace host {

Samples take_samples(DLManagedTensor* m) {
  Samples s;
  const bool u16 =
      m && m->dl_tensor.dtype.code == kDLUInt && m->dl_tensor.dtype.bits == 16 && m->dl_tensor.dtype.lanes == 1;
  if (u16) m->dl_tensor.dtype.code = kDLInt;  // the same bits as int16; the sign is undone below
  at::Tensor t = sdk::from_dlpack(m);
  if (!t.defined()) return s;
  require(t.device().is_cpu(), SINSR_ERR_INVALID_ARGUMENT, "pixels must be on the CPU");
  if (u16) {
    s.bits = 16;
    s.pixels = imaging::from_levels(t.to(at::kInt).bitwise_and(0xFFFF), 65535.0);
  } else if (t.scalar_type() == at::kByte) {
    s.bits = 8;
    s.pixels = imaging::from_levels(t, 255.0);
  } else {
    require(t.is_floating_point(), SINSR_ERR_INVALID_ARGUMENT,
            std::string("pixels must be uint8, uint16 or floating point, not ") + c10::toString(t.scalar_type()));
    s.pixels = t;
    s.dtype = t.scalar_type();
  }
  return s;
}

DLManagedTensor* give_samples(const at::Tensor& pixels01, int bits, at::ScalarType dtype) {
  if (bits == 8) return sdk::to_dlpack(imaging::to_uint8(pixels01).contiguous());
  if (bits == 16) {
    // 0..65535 as int16 bits (the cast wraps), handed out as uint16.
    DLManagedTensor* m = sdk::to_dlpack(imaging::quantise(pixels01, 65535.0).to(at::kInt).to(at::kShort).contiguous());
    m->dl_tensor.dtype.code = kDLUInt;
    return m;
  }
  return sdk::to_dlpack(pixels01.to(dtype).contiguous());
}

}  // namespace host
}  // namespace sinsr

namespace {

// A file as float [H,W,C] in [0, 1], or (samples) in the sample type it holds.
sinsr_status* read_file(const char* where, const char* path, DLManagedTensor** out, int32_t* bits, bool samples) {
  return c_guard(where, [&] {
    require(out != nullptr, SINSR_ERR_INVALID_ARGUMENT, "out is null");
    *out = nullptr;
    require(path != nullptr && *path, SINSR_ERR_INVALID_ARGUMENT, "path is null or empty");
    sinsr::io::Image im = sinsr::io::read_image(path);
    if (bits) *bits = im.bits;
    const at::Tensor hwc = im.pixels.permute({1, 2, 0});
    *out = samples ? sinsr::host::give_samples(hwc, im.bits, at::kFloat) : sinsr::sdk::to_dlpack(hwc.contiguous());
  });
}

}  // namespace

extern "C" {

SINSR_API const char* sinsr_image_formats(void) { return sinsr::io::formats(); }

SINSR_API sinsr_status* sinsr_image_read(const char* path, DLManagedTensor** out, int32_t* bits) {
  return read_file("sinsr_image_read", path, out, bits, false);
}

SINSR_API sinsr_status* sinsr_image_read_samples(const char* path, DLManagedTensor** out, int32_t* bits) {
  return read_file("sinsr_image_read_samples", path, out, bits, true);
}

SINSR_API sinsr_status* sinsr_image_write(const char* path, DLManagedTensor* image, int32_t bits) {
  sinsr::host::Samples in;  // owned first, so the deleter runs on every path
  sinsr_status* st = c_guard("sinsr_image_write", [&] { in = sinsr::host::take_samples(image); });
  if (st) return st;
  return c_guard("sinsr_image_write", [&] {
    require(path != nullptr && *path, SINSR_ERR_INVALID_ARGUMENT, "path is null or empty");
    require(in.pixels.defined() && in.pixels.dim() == 3 && in.pixels.size(2) >= 1 && in.pixels.size(2) <= 4,
            SINSR_ERR_INVALID_ARGUMENT,
            "image must be [H,W,C] with C = 1..4, got " + sinsr::sdk::describe_shape(in.pixels));
    require(bits == 0 || bits == 8 || bits == 16 || bits == 32, SINSR_ERR_INVALID_ARGUMENT,
            "bits must be 0 (the samples' own depth), 8, 16 or 32, not " + std::to_string(bits));
    if (bits == 0) bits = in.bits;
    sinsr::io::write_image(path, in.pixels.permute({2, 0, 1}), bits);
  });
}

}  // extern "C"
