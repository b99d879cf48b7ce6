#include "io/jpeg.hpp"

#include "io/image_io.hpp"

#include <sinsr/sdk.hpp>

#include <OpenImageIO/filesystem.h>
#include <OpenImageIO/imageio.h>

#include <string>
#include <vector>

namespace sinsr {
namespace io {

using sdk::Error;

at::Tensor jpeg_round_trip(const at::Tensor& chw01, int quality) {
  sdk::require(quality >= 1 && quality <= 100, SINSR_ERR_INVALID_ARGUMENT,
               "jpeg: quality must be in 1..100, got " + std::to_string(quality));
  sdk::require(chw01.dim() == 3 && (chw01.size(0) == 1 || chw01.size(0) == 3), SINSR_ERR_INVALID_ARGUMENT,
               "jpeg: expected a [C,H,W] image with 1 or 3 channels");
  using namespace OIIO;
  const int c = int(chw01.size(0)), h = int(chw01.size(1)), w = int(chw01.size(2));
  const at::Tensor hwc = to_uint8_hwc(chw01);
  std::vector<unsigned char> encoded;
  {
    Filesystem::IOVecOutput sink(encoded);
    ImageSpec spec(w, h, c, TypeDesc::UINT8);
    spec.attribute("Compression", "jpeg:" + std::to_string(quality));
    spec.attribute("jpeg:subsampling", "4:2:0");
    void* proxy = &sink;
    spec.attribute("oiio:ioproxy", TypeDesc::PTR, &proxy);
    auto out = ImageOutput::create("jpg");
    if (!out || !out->supports("ioproxy") || !out->open("degrade.jpg", spec) ||
        !out->write_image(TypeDesc::UINT8, hwc.data_ptr<uint8_t>()) || !out->close())
      throw Error(SINSR_ERR_RUNTIME, "jpeg: encoding failed: " + (out ? out->geterror() : OIIO::geterror()));
  }
  Filesystem::IOMemReader source(encoded.data(), encoded.size());
  ImageSpec config;
  void* proxy = &source;
  config.attribute("oiio:ioproxy", TypeDesc::PTR, &proxy);
  auto in = ImageInput::open("degrade.jpg", &config);
  if (!in) throw Error(SINSR_ERR_RUNTIME, "jpeg: decoding failed: " + OIIO::geterror());
  const ImageSpec& got = in->spec();
  if (got.width != w || got.height != h || got.nchannels != c)
    throw Error(SINSR_ERR_RUNTIME, "jpeg: decoded image has another shape");
  at::Tensor dec = at::empty({h, w, c}, at::kByte);
  if (!in->read_image(0, 0, 0, c, TypeDesc::UINT8, dec.data_ptr<uint8_t>()))
    throw Error(SINSR_ERR_RUNTIME, "jpeg: decoding failed: " + in->geterror());
  in->close();
  return dec.permute({2, 0, 1}).to(chw01.scalar_type()).div(255.0).contiguous();
}

}  // namespace io
}  // namespace sinsr
