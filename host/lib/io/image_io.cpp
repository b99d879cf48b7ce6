#include "image_io.hpp"

#include <sinsr/sdk.hpp>

#include <OpenImageIO/imageio.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <unistd.h>

namespace sinsr {
namespace io {

namespace fs = std::filesystem;
using sdk::Error;

namespace {
std::string lower_ext(const std::string& path) {
  std::string e = fs::path(path).extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return e;
}
}  // namespace

bool has_image_extension(const std::string& path) {
  static const char* exts[] = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".exr", ".bmp", ".webp", ".pgm", ".ppm"};
  std::string e = lower_ext(path);
  return std::any_of(std::begin(exts), std::end(exts), [&](const char* x) { return e == x; });
}

std::vector<std::string> list_images(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file(ec) && has_image_extension(e.path().string())) out.push_back(e.path().string());
  if (ec) throw Error(SINSR_ERR_IO, dir + ": cannot list the folder: " + ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

Image read_image(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error(SINSR_ERR_NOT_FOUND, path + ": no such file");
  auto in = OIIO::ImageInput::open(path);
  if (!in) throw Error(SINSR_ERR_FORMAT, path + ": not a readable image (" + OIIO::geterror() + ")");
  const OIIO::ImageSpec& spec = in->spec();
  const int w = spec.width, h = spec.height, c = spec.nchannels;
  if (w <= 0 || h <= 0 || c <= 0) throw Error(SINSR_ERR_FORMAT, path + ": empty image");
  std::vector<float> px(size_t(w) * size_t(h) * size_t(c));
  if (!in->read_image(0, 0, 0, c, OIIO::TypeDesc::FLOAT, px.data())) {
    std::string err = in->geterror();
    throw Error(SINSR_ERR_FORMAT, path + ": corrupt or truncated image (" + err + ")");
  }
  in->close();
  Image img;
  switch (spec.format.basetype) {
    case OIIO::TypeDesc::UINT8: case OIIO::TypeDesc::INT8: img.bits = 8; break;
    case OIIO::TypeDesc::UINT16: case OIIO::TypeDesc::INT16: img.bits = 16; break;
    default: img.bits = 32;
  }
  at::Tensor hwc = at::from_blob(px.data(), {h, w, c}, at::kFloat).clone();
  // Keep colour (+ alpha); extra channels (e.g. depth in EXR) are dropped.
  int keep = c >= 4 ? 4 : c;
  if (c >= 4 && spec.alpha_channel != 3) keep = 3;
  img.pixels = hwc.narrow(2, 0, keep).permute({2, 0, 1}).contiguous();
  if (img.bits != 32) img.pixels.clamp_(0.0, 1.0);
  return img;
}

at::Tensor to_uint8_hwc(const at::Tensor& chw01) {
  return chw01.clamp(0.0, 1.0).mul(255.0).round().to(at::kByte).permute({1, 2, 0}).contiguous();
}

void write_image(const std::string& path, const at::Tensor& chw01, int bits) {
  if (chw01.dim() != 3 || chw01.size(0) < 1 || chw01.size(0) > 4)
    throw Error(SINSR_ERR_INVALID_ARGUMENT, path + ": expected a [C,H,W] image with 1 to 4 channels");
  const int c = int(chw01.size(0)), h = int(chw01.size(1)), w = int(chw01.size(2));
  at::Tensor hwc = chw01.to(at::kCPU, at::kFloat).permute({1, 2, 0}).contiguous();
  OIIO::TypeDesc type = OIIO::TypeDesc::FLOAT;
  at::Tensor data;
  if (bits == 8) {
    type = OIIO::TypeDesc::UINT8;
    data = hwc.clamp(0.0, 1.0).mul(255.0).round().to(at::kByte).contiguous();
  } else if (bits == 16) {
    type = OIIO::TypeDesc::UINT16;
    data = hwc.clamp(0.0, 1.0).mul(65535.0).round().to(at::kInt).contiguous();
    std::vector<uint16_t> v(size_t(data.numel()));
    const int32_t* src = data.data_ptr<int32_t>();
    for (size_t i = 0; i < v.size(); ++i) v[i] = uint16_t(src[i]);
    data = at::from_blob(v.data(), {int64_t(v.size())}, at::kShort).clone();
  } else {
    data = hwc;
  }
  // Same extension for the temporary file: OpenImageIO picks the format from it.
  fs::path target(path);
  fs::path tmp = target.parent_path() / (".tmp-" + std::to_string(::getpid()) + "-" + target.filename().string());
  auto out = OIIO::ImageOutput::create(tmp.string());
  if (!out) throw Error(SINSR_ERR_UNSUPPORTED, path + ": no writer for this file type (" + OIIO::geterror() + ")");
  OIIO::ImageSpec spec(w, h, c, type);
  if (c == 2 || c == 4) spec.alpha_channel = c - 1;
  if (!out->open(tmp.string(), spec)) throw Error(SINSR_ERR_IO, path + ": cannot write (" + out->geterror() + ")");
  bool ok = out->write_image(type, data.data_ptr());
  ok = out->close() && ok;
  std::error_code ec;
  if (!ok) {
    fs::remove(tmp, ec);
    throw Error(SINSR_ERR_IO, path + ": write failed (" + out->geterror() + ")");
  }
  fs::rename(tmp, target, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw Error(SINSR_ERR_IO, path + ": cannot move the written file into place: " + ec.message());
  }
}

}  // namespace io
}  // namespace sinsr
