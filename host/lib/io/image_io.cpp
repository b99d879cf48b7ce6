#include "imaging/quantise.hpp"
#include "io/codecs.hpp"

#include <sinsr/sdk.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include <fcntl.h>
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

// The largest image read_image() decodes, in pixels: 2^26 (8192 x 8192; 1 GiB as float RGBA).
// A header may declare any size, so this is checked before anything is allocated; the
// environment variable SINSR_MAX_IMAGE_PIXELS raises (or lowers) it.
int64_t max_image_pixels() {
  const char* env = std::getenv("SINSR_MAX_IMAGE_PIXELS");
  if (env && *env) {
    char* end = nullptr;
    const long long v = std::strtoll(env, &end, 10);
    if (end && *end == '\0' && v > 0) return v;
  }
  return int64_t(1) << 26;
}

// The format a file's first bytes name, as OpenImageIO calls its reader. Only that reader sees
// the file: given a name alone, OpenImageIO offers content it does not recognise to every reader
// it has (camera raw, DICOM, ...), a wider surface for a stranger's file and slower to refuse.
struct Sniffed {
  const char* format = nullptr;   // nullptr: no format read_image accepts
  int64_t width = 0, height = 0;  // declared by a header read here (WebP, GIF), else 0
};

Sniffed sniff(const unsigned char* d, size_t n) {
  auto starts = [&](const char* magic, size_t k, size_t at = 0) {
    return n >= at + k && std::memcmp(d + at, magic, k) == 0;
  };
  static const struct {
    const char* magic;
    size_t size;
    const char* format;
  } kMagic[] = {{"\x89PNG\r\n\x1a\n", 8, "png"},
                {"\xff\xd8\xff", 3, "jpeg"},
                {"II*\0", 4, "tiff"},
                {"MM\0*", 4, "tiff"},
                {"II+\0", 4, "tiff"},
                {"MM\0+", 4, "tiff"},
                {"BM", 2, "bmp"},
                {"v/1\x01", 4, "openexr"},
                {"GIF87a", 6, "gif"},
                {"GIF89a", 6, "gif"},
                {"#?RADIANCE", 10, "hdr"},
                {"#?RGBE", 6, "hdr"}};
  Sniffed s;
  for (const auto& m : kMagic)
    if (starts(m.magic, m.size)) {
      s.format = m.format;
      break;
    }
  if (!s.format && n >= 2 && d[0] == 'P' && d[1] >= '1' && d[1] <= '6') s.format = "pnm";
  // The readers that allocate what the header declares when they open the file: GIF (its canvas,
  // the screen size) and WebP (the whole image decoded, up to 2^24 x 2^24).
  if (s.format && std::strcmp(s.format, "gif") == 0 && n >= 10) {
    s.width = le_bits(d + 6, 2);
    s.height = le_bits(d + 8, 2);
  }
  if (starts("RIFF", 4) && starts("WEBP", 4, 8)) {
    s.format = "webp";
    if (starts("VP8 ", 4, 12) && n >= 30) {
      s.width = le_bits(d + 26, 2) & 0x3fff;
      s.height = le_bits(d + 28, 2) & 0x3fff;
    } else if (starts("VP8L", 4, 12) && n >= 25) {
      const uint32_t b = le_bits(d + 21, 4);
      s.width = int64_t(b & 0x3fff) + 1;
      s.height = int64_t((b >> 14) & 0x3fff) + 1;
    } else if (starts("VP8X", 4, 12) && n >= 30) {
      s.width = int64_t(le_bits(d + 24, 3)) + 1;
      s.height = int64_t(le_bits(d + 27, 3)) + 1;
    }
  }
  return s;
}

}  // namespace

std::string size_refusal(const std::string& path, int64_t w, int64_t h, int64_t channels, int64_t limit,
                         const std::string& hint) {
  if (channels > 64)
    return path + ": the header declares " + std::to_string(channels) + " channels, beyond the limit of 64";
  return path + ": the header declares " + std::to_string(w) + "x" + std::to_string(h) + ", beyond the limit of " +
         std::to_string(limit) + " pixels (" + hint + ")";
}

void write_file(const std::string& file, const std::vector<unsigned char>& bytes, const std::string& shown) {
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) throw Error(SINSR_ERR_IO, shown + ": cannot write (" + std::strerror(errno) + ")");
  size_t done = 0;
  int err = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      err = n < 0 ? errno : EIO;
      break;
    }
    done += size_t(n);
  }
  if (!err && ::fsync(fd) != 0) err = errno;
  if (::close(fd) != 0 && !err) err = errno;
  if (err) {
    ::unlink(file.c_str());
    throw Error(SINSR_ERR_IO, shown + ": write failed (" + std::strerror(err) + ")");
  }
}

const char* formats() {
#if SINSR_WITH_IMAGE_IO
  return "png jpg tif exr webp bmp ppm";
#else
  return "ppm";
#endif
}

const char* default_format() {
  static const std::string first = [] {
    const std::string all = formats();
    return all.substr(0, all.find(' '));
  }();
  return first.c_str();
}

bool has_image_extension(const std::string& path) {
  static const char* exts[] = {".png", ".jpg",  ".jpeg", ".tif", ".tiff", ".exr",
                               ".bmp", ".webp", ".pgm",  ".ppm", ".pnm",  ".pbm"};
  std::string e = lower_ext(path);
  return std::any_of(std::begin(exts), std::end(exts), [&](const char* x) { return e == x; });
}

std::vector<std::string> list_images(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw Error(SINSR_ERR_IO, dir + ": not a folder");
  std::vector<std::string> out;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec))
    if (it->is_regular_file(ec) && has_image_extension(it->path().string())) out.push_back(it->path().string());
  if (ec) throw Error(SINSR_ERR_IO, dir + ": cannot list the folder: " + ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

Image read_image(const std::string& path) { return read_image(path, ReadLimits{}); }

Image read_image(const std::string& path, const ReadLimits& limits) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error(SINSR_ERR_IO, path + ": no such file");
  if (fs::is_directory(path, ec)) throw Error(SINSR_ERR_IO, path + ": is a folder, not an image file");
  // A FIFO or a device would block or never end: only regular files are opened.
  if (!fs::is_regular_file(path, ec)) throw Error(SINSR_ERR_IO, path + ": not a regular file (a pipe or a device)");
  if (::access(path.c_str(), R_OK) != 0) throw Error(SINSR_ERR_IO, path + ": not readable (permissions)");
  // One stream for the checks made here; OpenImageIO opens the file again by name.
  std::ifstream file(path, std::ios::binary);
  if (!file) throw Error(SINSR_ERR_IO, path + ": cannot open (" + std::strerror(errno) + ")");
  file.seekg(0, std::ios::end);
  const int64_t file_size = int64_t(file.tellg());
  file.seekg(0);
  unsigned char head[32] = {};
  file.read(reinterpret_cast<char*>(head), sizeof head);
  const Sniffed kind = sniff(head, size_t(file.gcount()));
  if (!kind.format)
    throw Error(SINSR_ERR_FORMAT, path +
                                      ": not a readable image (the content is none of PNG, JPEG, TIFF, BMP, "
                                      "OpenEXR, WebP, PNM, GIF, HDR)");
  const int64_t limit = limits.max_pixels > 0 ? limits.max_pixels : max_image_pixels();
  const std::string hint = limits.raise_hint.empty() ? "SINSR_MAX_IMAGE_PIXELS raises it" : limits.raise_hint;
  if (kind.width * kind.height > limit)
    throw Error(SINSR_ERR_FORMAT, size_refusal(path, kind.width, kind.height, 0, limit, hint));
  const ReadContext ctx{path, file, file_size, limit, hint};
  if (std::strcmp(kind.format, "pnm") == 0) return netpbm::read(ctx);
#if SINSR_WITH_IMAGE_IO
  return oiio::read(ctx, kind.format);
#else
  throw Error(SINSR_ERR_UNSUPPORTED, path + ": a " + kind.format +
                                         " file, which this build cannot read: it was built without OpenImageIO "
                                         "(SINSR_WITH_IMAGE_IO off) and reads netpbm (.ppm, .pgm) only");
#endif
}

at::Tensor to_uint8_hwc(const at::Tensor& chw01) {
  sdk::require(chw01.dim() == 3, SINSR_ERR_INVALID_ARGUMENT, "to_uint8_hwc: expected a [C,H,W] image");
  return imaging::to_uint8(chw01).permute({1, 2, 0}).contiguous();
}

at::Tensor color_uint8_hwc(const at::Tensor& chw01) {
  sdk::require(chw01.dim() == 3, SINSR_ERR_INVALID_ARGUMENT, "color_uint8_hwc: expected a [C,H,W] image");
  const int64_t c = chw01.size(0);
  return to_uint8_hwc(c == 2 || c == 4 ? chw01.narrow(0, 0, c - 1) : chw01);
}

void write_image(const std::string& path, const at::Tensor& chw01, int bits) {
  write_image(path, chw01, bits, Image{});
}

void write_image(const std::string& path, const at::Tensor& chw01, int bits, const Image& source) {
  if (!chw01.defined() || chw01.dim() != 3 || chw01.size(0) < 1 || chw01.size(0) > 4 || chw01.size(1) < 1 ||
      chw01.size(2) < 1)
    throw Error(SINSR_ERR_INVALID_ARGUMENT, path + ": expected a non-empty [C,H,W] image with 1 to 4 channels");
  if (!chw01.is_floating_point())
    throw Error(SINSR_ERR_INVALID_ARGUMENT, path + ": expected floating-point pixels in [0,1], got an integer tensor");
  if (bits != 8 && bits != 16 && bits != 32)
    throw Error(SINSR_ERR_INVALID_ARGUMENT, path + ": bit depth must be 8, 16 or 32, not " + std::to_string(bits));
  at::Tensor img = chw01.to(at::kCPU);
  const std::string ext = lower_ext(path);
  const bool pnm = netpbm::is_netpbm_extension(ext);
#if !SINSR_WITH_IMAGE_IO
  if (!pnm)
    throw Error(SINSR_ERR_UNSUPPORTED, path +
                                           ": this build writes netpbm (.ppm, .pgm) only: it was built without "
                                           "OpenImageIO (SINSR_WITH_IMAGE_IO off)");
#endif
  if (pnm && bits == 32)
    throw Error(SINSR_ERR_INVALID_ARGUMENT, path + ": netpbm holds 8 or 16 bits per sample, not float");
  // JPEG and netpbm have no alpha: it is dropped there.
  if ((pnm || ext == ".jpg" || ext == ".jpeg") && (img.size(0) == 2 || img.size(0) == 4))
    img = img.narrow(0, 0, img.size(0) - 1);
  const int c = int(img.size(0)), h = int(img.size(1)), w = int(img.size(2));
  at::Tensor hwc = img.permute({1, 2, 0});
  at::Tensor data = at::empty({h, w, c}, bits == 8 ? at::kByte : bits == 16 ? at::kShort : at::kFloat);
  // A band of rows at a time: converting a whole 16384^2 output at once held four float copies
  // of it (nan_to_num, clamp, mul, round), 13 GB beside the 3 GB image.
  const int64_t band = std::max<int64_t>(1, (int64_t(16) << 20) / (int64_t(w) * c * 4));
  for (int64_t r = 0; r < h; r += band) {
    const int64_t n = std::min<int64_t>(band, h - r);
    at::Tensor part = hwc.narrow(0, r, n);
    if (bits == 8) {
      data.narrow(0, r, n).copy_(imaging::to_uint8(part));
    } else if (bits == 16) {
      // Values 0..65535 do not fit int16; the bytes of the low half of int32 are the uint16 bits.
      at::Tensor v = imaging::quantise(part, 65535.0).to(at::kInt).contiguous();
      const int32_t* src = v.data_ptr<int32_t>();
      uint16_t* dst = reinterpret_cast<uint16_t*>(data.narrow(0, r, n).data_ptr<int16_t>());
      for (int64_t i = 0, k = v.numel(); i < k; ++i) dst[i] = uint16_t(src[i]);
    } else {
      data.narrow(0, r, n).copy_(part);
    }
  }
  static std::atomic<unsigned> counter{0};
  fs::path target(path);
  // Keep the real name at the end: OpenImageIO picks the writer from the extension.
  fs::path tmp = target.parent_path() / (".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" +
                                         target.filename().string());
  if (pnm) {
    write_file(tmp.string(), netpbm::encode(data, bits), path);
  } else {
#if SINSR_WITH_IMAGE_IO
    oiio::write(path, tmp.string(), data, bits, source);
#else
    (void)source;
#endif
  }
  std::error_code ec;
  fs::rename(tmp, target, ec);
  if (ec) {
    std::error_code ignore;
    fs::remove(tmp, ignore);
    throw Error(SINSR_ERR_IO, path + ": cannot move the written file into place: " + ec.message());
  }
}

}  // namespace io
}  // namespace sinsr
