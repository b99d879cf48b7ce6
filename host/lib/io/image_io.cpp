#include "io/image_io.hpp"
#include "imaging/quantise.hpp"

#include <sinsr/sdk.hpp>

#include <OpenImageIO/filesystem.h>
#include <OpenImageIO/imageio.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>

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

// OpenImageIO keeps its messages per thread; fetching them also clears them.
std::string oiio_error(const std::string& fallback) {
  std::string e = OIIO::geterror();
  return e.empty() ? fallback : e;
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

// Writes all of `bytes` to `file` and syncs it; on any failure the file is removed and the error
// names `shown`.
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

// The format a file's first bytes name, as OpenImageIO calls its reader. Only that reader sees
// the file: given a name alone, OpenImageIO offers content it does not recognise to every reader
// it has (camera raw, DICOM, ...), a wider surface for a stranger's file and slower to refuse.
struct Sniffed {
  const char* format = nullptr;   // nullptr: no format read_image accepts
  int64_t width = 0, height = 0;  // declared by a header read here (WebP, GIF), else 0
};

uint32_t le_bits(const unsigned char* p, int bytes) { return uint32_t(sdk::read_uint(p, bytes)); }

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

// `channels` 0: a header read here, which names no channel count.
std::string size_refusal(const std::string& path, int64_t w, int64_t h, int64_t channels, int64_t limit,
                         const std::string& hint) {
  if (channels > 64)
    return path + ": the header declares " + std::to_string(channels) + " channels, beyond the limit of 64";
  return path + ": the header declares " + std::to_string(w) + "x" + std::to_string(h) + ", beyond the limit of " +
         std::to_string(limit) + " pixels (" + hint + ")";
}

int64_t le_i32(const unsigned char* p) { return int32_t(le_bits(p, 4)); }

// OpenEXR (3.1) makes each attribute's buffer as large as the file says before reading it (a
// 400-byte file made it allocate 1.7 GB), and its chunk tables as large as the data window: both
// are read here first, bounded by the file's length and the pixel limit.
void check_exr_header(std::istream& in, int64_t file_size, const std::string& path, int64_t limit,
                      const std::string& hint) {
  in.clear();
  in.seekg(0);
  auto truncated = [&] { return Error(SINSR_ERR_FORMAT, path + ": a truncated OpenEXR header"); };
  auto check_window = [&](const unsigned char* b) {
    const int64_t w = le_i32(b + 8) - le_i32(b) + 1, h = le_i32(b + 12) - le_i32(b + 4) + 1;
    if (w <= 0 || h <= 0) throw Error(SINSR_ERR_FORMAT, path + ": empty image (an empty OpenEXR data window)");
    if (w > limit / h) throw Error(SINSR_ERR_FORMAT, size_refusal(path, w, h, 0, limit, hint));
  };
  unsigned char head[8];
  if (!in.read(reinterpret_cast<char*>(head), 8)) throw truncated();
  const bool multipart = le_bits(head + 4, 4) & 0x1000;
  auto read_name = [&] {
    std::string name;
    for (int ch = in.get(); ch != 0; ch = in.get()) {
      if (ch == EOF) throw truncated();
      if (name.size() == 255) throw Error(SINSR_ERR_FORMAT, path + ": an OpenEXR header name longer than 255 bytes");
      name.push_back(char(ch));
    }
    return name;
  };
  for (bool more = true; more;) {  // one header, or a multi-part file's headers up to an empty one
    more = false;
    for (std::string name = read_name(); !name.empty(); name = read_name()) {
      more = multipart;
      const std::string type = read_name();
      unsigned char n[4];
      if (!in.read(reinterpret_cast<char*>(n), 4)) throw truncated();
      const int64_t size = le_i32(n), at = int64_t(in.tellg());
      if (size < 0 || size > file_size - at)
        throw Error(SINSR_ERR_FORMAT, path + ": the OpenEXR attribute '" + name + "' declares " + std::to_string(size) +
                                          " bytes, beyond the end of the file");
      if (name == "dataWindow" && type == "box2i" && size == 16) {
        unsigned char b[16];
        if (!in.read(reinterpret_cast<char*>(b), 16)) throw truncated();
        check_window(b);
      } else if (type == "chlist") {
        // OpenEXR reads a channel list entry by entry up to an empty name, whatever size it
        // declares, and goes on from there: so does this walk (a fuzz input hid its data window
        // behind a channel list longer than declared).
        while (!read_name().empty()) in.seekg(16, std::ios::cur);
      } else {
        in.seekg(size, std::ios::cur);
      }
    }
  }
  // Whatever a reader makes of a malformed header, every data window written in its first MiB
  // is within the limit.
  in.clear();
  in.seekg(0);
  std::string head_bytes(size_t(std::min<int64_t>(file_size, 1 << 20)), '\0');
  in.read(head_bytes.data(), std::streamsize(head_bytes.size()));
  head_bytes.resize(size_t(in.gcount()));
  static const std::string kWindow("dataWindow\0box2i\0\x10\0\0\0", 21);
  for (size_t at = head_bytes.find(kWindow); at != std::string::npos && at + kWindow.size() + 16 <= head_bytes.size();
       at = head_bytes.find(kWindow, at + 1))
    check_window(reinterpret_cast<const unsigned char*>(head_bytes.data()) + at + kWindow.size());
}

std::string printable(std::string s) {
  for (char& ch : s)
    if (ch < 0x20 || ch > 0x7e) ch = '?';
  return s;
}

// A BMP's compression must fit its bit depth: OpenImageIO 2.4 reads run-length data of a 24-bit
// file (RLE4 declared with 24 bits per pixel) past its buffer (found by the image fuzz target).
void check_bmp_header(std::istream& in, const std::string& path) {
  in.clear();
  unsigned char h[34] = {};
  if (!in.seekg(0) || !in.read(reinterpret_cast<char*>(h), sizeof h)) return;  // too short: the reader says so
  const uint32_t info_size = le_bits(h + 14, 4);
  if (info_size < 40) return;  // an OS/2 core header has no compression field
  const int bits = h[28] | h[29] << 8;
  const uint32_t compression = le_bits(h + 30, 4);
  const bool fits = compression == 0 || (compression == 1 && bits == 8) || (compression == 2 && bits == 4) ||
                    (compression == 3 && (bits == 16 || bits == 32)) ||
                    (compression == 6 && (bits == 16 || bits == 32));
  if (!fits)
    throw Error(SINSR_ERR_FORMAT, path + ": a BMP whose compression (" + std::to_string(compression) +
                                      ") does not fit its " + std::to_string(bits) + " bits per pixel");
}

// Bilevel TIFF: OpenImageIO 2.4 hands back the packed bytes of a 1-bit image as 8-bit samples
// (noise), with or without the BitsPerSample tag (whose TIFF default is 1, as PIL writes them).
// The uncompressed strip layout is decoded here; other 1-bit layouts are refused.
std::optional<at::Tensor> read_bilevel_tiff(std::istream& in, int64_t file_size, const std::string& path, int64_t limit,
                                            const std::string& hint) {
  auto bytes = [&](int64_t at, size_t n) {
    std::string b(n, '\0');
    in.clear();
    if (at < 0 || at + int64_t(n) > file_size || !in.seekg(at) || !in.read(&b[0], std::streamsize(n)))
      throw Error(SINSR_ERR_FORMAT, path + ": a TIFF whose directory points past the end of the file");
    return b;
  };
  const std::string head = bytes(0, 8);
  const bool le = head[0] == 'I';
  auto num = [&](const std::string& b, size_t at, int n) { return uint32_t(sdk::read_uint(b.data() + at, n, !le)); };
  if (num(head, 2, 2) != 42) return std::nullopt;  // BigTIFF: OpenImageIO's
  const uint32_t ifd = num(head, 4, 4);
  const uint32_t count = num(bytes(ifd, 2), 0, 2);
  const std::string dir = bytes(int64_t(ifd) + 2, size_t(count) * 12);
  std::map<uint16_t, std::pair<uint32_t, uint32_t>> tags;  // tag -> (count, first value)
  for (uint32_t k = 0; k < count; ++k) {
    const size_t e = size_t(k) * 12;
    const uint16_t tag = uint16_t(num(dir, e, 2)), type = uint16_t(num(dir, e + 2, 2));
    const uint32_t n = num(dir, e + 4, 4);
    uint32_t value = type == 3 ? num(dir, e + 8, 2) : num(dir, e + 8, 4);
    if (type == 3 && n > 2) value = num(bytes(num(dir, e + 8, 4), 2), 0, 2);  // the first of a list
    tags[tag] = {n, value};
  }
  auto get = [&](uint16_t tag, uint32_t fallback) { return tags.count(tag) ? tags[tag].second : fallback; };
  if (get(258, 1) != 1) return std::nullopt;  // not bilevel: OpenImageIO reads it
  const uint32_t w = get(256, 0), h = get(257, 0), samples = get(277, 1), compression = get(259, 1);
  const uint32_t photometric = get(262, 0), rows_per_strip = std::min(get(278, h), h);
  if (samples != 1 || compression != 1 || tags.count(322) || get(266, 1) != 1 || !tags.count(273) ||
      tags[273].first != 1 || rows_per_strip < h)
    throw Error(SINSR_ERR_FORMAT, path + ": a 1-bit TIFF in a layout this reader does not decode (compression " +
                                      std::to_string(compression) + ", " + std::to_string(samples) +
                                      " samples, tiles or several strips): save it as 8-bit");
  if (w == 0 || h == 0 || int64_t(w) > limit / int64_t(h))  // no product: both may be 2^32 - 1
    throw Error(SINSR_ERR_FORMAT, size_refusal(path, w, h, 1, limit, hint));
  const size_t stride = (size_t(w) + 7) / 8;
  const std::string data = bytes(get(273, 0), stride * h);
  at::Tensor out = at::empty({1, int64_t(h), int64_t(w)}, at::kFloat);
  float* o = out.data_ptr<float>();
  const bool white_is_zero = photometric == 0;
  for (uint32_t y = 0; y < h; ++y)
    for (uint32_t x = 0; x < w; ++x) {
      const bool bit = (uint8_t(data[y * stride + x / 8]) >> (7 - x % 8)) & 1;
      o[size_t(y) * w + x] = bit != white_is_zero ? 1.0f : 0.0f;
    }
  return out;
}

constexpr int kMaxPngTextChunks = 64;
constexpr size_t kMaxJpegScans = 200;

// A PNG chunk's buffer is as large as its header says (libpng): a 316-byte file whose tEXt chunk
// declared 1.8 GB cost 2 GB of memory and seconds. No chunk may run past the end of the file.
void check_png_chunks(std::istream& in, int64_t file_size, const std::string& path) {
  in.clear();
  int64_t at = 8;
  int text_chunks = 0;
  unsigned char h[8];
  while (in.seekg(at) && in.read(reinterpret_cast<char*>(h), 8)) {
    const int64_t length = int64_t(sdk::read_uint(h, 4, /*big=*/true));
    const std::string type(reinterpret_cast<const char*>(h + 4), 4);
    // A chunk type is four ASCII letters; libpng printed its own "libpng error" line to stderr
    // for any other before ours, so such a file is refused here first.
    if (!std::all_of(type.begin(), type.end(), [](char c) { return std::isalpha(static_cast<unsigned char>(c)); }))
      throw Error(SINSR_ERR_FORMAT, path + ": no valid PNG chunk type at byte " + std::to_string(at + 4) + " ('" +
                                        printable(type) + "')");
    if (length > file_size - at - 12)
      throw Error(SINSR_ERR_FORMAT, path + ": the PNG chunk '" + printable(type) + "' declares " +
                                        std::to_string(length) + " bytes, beyond the end of the file");
    if (type == "IEND") break;
    // libpng inflates every compressed text chunk (up to 8 MB each) into memory: 1000 of them in
    // a 7.7 MB file took 7 GB. Real files carry a handful.
    if ((type == "zTXt" || type == "iTXt" || type == "tEXt") && ++text_chunks > kMaxPngTextChunks)
      throw Error(SINSR_ERR_FORMAT, path + ": more than " + std::to_string(kMaxPngTextChunks) + " PNG text chunks");
    at += 12 + length;
  }
}

// A JPEG's markers, walked before libjpeg sees the file: a file cut short (no end-of-image marker
// after its scans) decoded to grey rows with no error, and a progressive file repeating one scan
// 15,000 times took a minute to decode. Entropy-coded data never holds 0xFF followed by anything
// but 0x00 or a restart marker, so the walk needs no decoding.
void check_jpeg_markers(std::istream& in, int64_t file_size, const std::string& path) {
  in.clear();
  in.seekg(0);
  std::vector<unsigned char> b(size_t(std::max<int64_t>(file_size, 0)));
  in.read(reinterpret_cast<char*>(b.data()), std::streamsize(b.size()));
  const size_t n = size_t(in.gcount());
  size_t i = 2, scans = 0;  // after SOI
  while (i + 1 < n) {
    if (b[i] != 0xFF) return;  // not a marker where one must be: libjpeg reports it
    const unsigned char m = b[i + 1];
    if (m == 0xFF) {
      ++i;
      continue;
    }                       // fill byte
    if (m == 0xD9) return;  // EOI: complete
    if (m == 0x01 || (m >= 0xD0 && m <= 0xD7)) {
      i += 2;
      continue;
    }
    if (i + 3 >= n) break;
    const size_t len = size_t(sdk::read_uint(&b[i + 2], 2, /*big=*/true));
    i += 2 + len;
    if (m == 0xDA) {  // SOS: skip the entropy-coded data to the next marker
      if (++scans > kMaxJpegScans)
        throw Error(SINSR_ERR_FORMAT, path + ": more than " + std::to_string(kMaxJpegScans) + " JPEG scans");
      while (i + 1 < n && !(b[i] == 0xFF && b[i + 1] != 0x00 && !(b[i + 1] >= 0xD0 && b[i + 1] <= 0xD7))) ++i;
    }
  }
  throw Error(SINSR_ERR_FORMAT, path + ": truncated JPEG (the file ends before its end-of-image marker)");
}

// EXIF orientation (1..8) applied to [C,H,W] pixels: the stored image turned upright.
at::Tensor upright(const at::Tensor& chw, int orientation) {
  switch (orientation) {
    case 2: return chw.flip({2}).contiguous();                     // mirrored left-right
    case 3: return chw.flip({1, 2}).contiguous();                  // rotated 180
    case 4: return chw.flip({1}).contiguous();                     // mirrored top-bottom
    case 5: return chw.transpose(1, 2).contiguous();               // transposed
    case 6: return chw.transpose(1, 2).flip({2}).contiguous();     // rotate 90 clockwise to view
    case 7: return chw.transpose(1, 2).flip({1, 2}).contiguous();  // transverse
    case 8: return chw.transpose(1, 2).flip({1}).contiguous();     // rotate 90 counter-clockwise
    default: return chw;
  }
}

// Metadata about the picture (carried to the upscale) rather than about its encoding, layout or
// size (which the writer sets for the new file).
bool describes_the_picture(const std::string& name) {
  static const char* encoding[] = {"oiio:", "jpeg:", "png:", "tiff:", "openexr:", "webp:", "bmp:", "pnm:", "hdr:"};
  for (const char* prefix : encoding)
    if (name.rfind(prefix, 0) == 0) return false;
  static const char* layout[] = {"Orientation",  "Compression", "Exif:PixelXDimension", "Exif:PixelYDimension",
                                 "XResolution",  "YResolution", "ResolutionUnit",       "PixelAspectRatio",
                                 "planarconfig", "compression", "Exif:ColorSpace",      "oiio:ColorSpace"};
  for (const char* key : layout)
    if (name == key) return false;
  return true;
}

}  // namespace

bool has_image_extension(const std::string& path) {
  static const char* exts[] = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".exr", ".bmp", ".webp", ".pgm", ".ppm"};
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
  if (std::strcmp(kind.format, "openexr") == 0) check_exr_header(file, file_size, path, limit, hint);
  if (std::strcmp(kind.format, "png") == 0) check_png_chunks(file, file_size, path);
  if (std::strcmp(kind.format, "jpeg") == 0) check_jpeg_markers(file, file_size, path);
  if (std::strcmp(kind.format, "bmp") == 0) check_bmp_header(file, path);
  if (std::strcmp(kind.format, "tiff") == 0)
    if (std::optional<at::Tensor> bilevel = read_bilevel_tiff(file, file_size, path, limit, hint)) {
      Image img;
      img.pixels = *bilevel;
      img.metadata = std::make_shared<OIIO::ParamValueList>();
      return img;
    }
  file.close();
  std::unique_ptr<OIIO::ImageInput> in = OIIO::ImageInput::create(kind.format);
  if (!in)
    throw Error(SINSR_ERR_FORMAT, path + ": a " + kind.format + " file, which this build of OpenImageIO cannot read (" +
                                      oiio_error("no reader") + ")");
  // Colour stays as stored (unassociated with alpha): OpenImageIO would premultiply PNG colour.
  OIIO::ImageSpec config, opened;
  config.attribute("oiio:UnassociatedAlpha", 1);
  if (!in->open(path, opened, config)) {
    std::string err = in->geterror();
    throw Error(SINSR_ERR_FORMAT,
                path + ": not a readable image (" + (err.empty() ? oiio_error("corrupt header") : err) + ")");
  }
  const OIIO::ImageSpec spec = in->spec();
  const int64_t w = spec.width, h = spec.height, c = spec.nchannels;
  if (w <= 0 || h <= 0 || c <= 0) throw Error(SINSR_ERR_FORMAT, path + ": empty image (no pixels or channels)");
  // The header's word only so far: nothing is allocated before these checks.
  if (spec.depth > 1)
    throw Error(SINSR_ERR_FORMAT, path + ": a volume image (depth " + std::to_string(spec.depth) + ")");
  if (w * h > limit || c > 64) throw Error(SINSR_ERR_FORMAT, size_refusal(path, w, h, c, limit, hint));
  // The reader allocates one tile whatever the image size: a 16x16 TIFF declaring 16384^2 tiles
  // took 4 GB. Tiles may exceed a small image (they come in multiples of 16), not by this much.
  const int64_t tile_area = int64_t(std::max(spec.tile_width, 1)) * std::max(spec.tile_height, 1);
  if (tile_area > std::max<int64_t>(4 * w * h, 1024 * 1024))
    throw Error(SINSR_ERR_FORMAT, path + ": declares tiles of " + std::to_string(spec.tile_width) + "x" +
                                      std::to_string(spec.tile_height) + " for a " + std::to_string(w) + "x" +
                                      std::to_string(h) + " image");
  // A decoder holds one strip or tile of every channel at a time, whatever is kept: one 1 GiB
  // strip (4096^2, 64 channels, deflated to 1 MB) took 7 GB and 90 s. 256 MiB is a float RGBA
  // 4096^2 image in one strip.
  const int64_t rows = spec.tile_width > 0 ? spec.tile_height : spec.get_int_attribute("tiff:RowsPerStrip", int(h));
  const int64_t cols = spec.tile_width > 0 ? spec.tile_width : w;
  const int64_t chunk =
      std::min<int64_t>(std::max<int64_t>(rows, 1), std::max<int64_t>(h, 1)) * cols * c * int64_t(spec.format.size());
  if (chunk > (int64_t(256) << 20))
    throw Error(SINSR_ERR_FORMAT, path + ": decodes " + std::to_string(chunk >> 20) + " MB at a time (" +
                                      std::to_string(rows) + " rows of " + std::to_string(cols) + " pixels x " +
                                      std::to_string(c) + " channels per " + (spec.tile_width > 0 ? "tile" : "strip") +
                                      "), over the 256 MB allowed");
  // Colour (+ alpha) only, and only those channels are decoded (64 channels of a 4096^2 TIFF
  // took 4.4 GB as float). With four or more channels, the fourth is kept only as alpha.
  int64_t keep = std::min<int64_t>(c, 4);
  if (c >= 4 && spec.alpha_channel != 3) keep = 3;
  if (c == 2 && spec.alpha_channel != 1) keep = 1;
  at::Tensor hwc = at::empty({h, w, keep}, at::kFloat);
  if (!in->read_image(0, 0, 0, int(keep), OIIO::TypeDesc::FLOAT, hwc.data_ptr<float>())) {
    std::string err = in->geterror();
    throw Error(SINSR_ERR_FORMAT,
                path + ": corrupt or truncated image (" + (err.empty() ? std::string("read failed") : err) + ")");
  }
  in->close();
  Image img;
  switch (spec.format.basetype) {
    case OIIO::TypeDesc::UINT8:
    case OIIO::TypeDesc::INT8: img.bits = 8; break;
    case OIIO::TypeDesc::UINT16:
    case OIIO::TypeDesc::INT16: img.bits = 16; break;
    default: img.bits = 32;
  }
  img.pixels = hwc.permute({2, 0, 1}).contiguous();
  img.orientation = spec.get_int_attribute("Orientation", 1);
  if (img.orientation < 1 || img.orientation > 8) img.orientation = 1;
  img.pixels = upright(img.pixels, img.orientation);
  auto meta = std::make_shared<OIIO::ParamValueList>();
  for (const auto& p : spec.extra_attribs)
    if (describes_the_picture(p.name().string())) meta->push_back(p);
  img.metadata = meta;
  if (img.bits != 32) {
    img.pixels.clamp_(0.0, 1.0);  // signed integer formats map to [-1,1]
  } else {
    // Float files (TIFF, EXR, HDR) may hold anything: one NaN or infinite sample used to turn
    // the whole output black. Those are refused, naming how many; finite values outside [0, 1]
    // are kept (HDR), and the pipeline clamps what it upscales.
    const int64_t bad = (~img.pixels.isfinite()).sum().item<int64_t>();
    if (bad > 0) throw Error(SINSR_ERR_FORMAT, path + ": " + std::to_string(bad) + " sample(s) are NaN or infinite");
  }
  return img;
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
  if ((ext == ".jpg" || ext == ".jpeg") && (img.size(0) == 2 || img.size(0) == 4))
    img = img.narrow(0, 0, img.size(0) - 1);
  const int c = int(img.size(0)), h = int(img.size(1)), w = int(img.size(2));
  at::Tensor hwc = img.permute({1, 2, 0});
  const OIIO::TypeDesc type = bits == 8    ? OIIO::TypeDesc::UINT8
                              : bits == 16 ? OIIO::TypeDesc::UINT16
                                           : OIIO::TypeDesc::FLOAT;
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
  auto out = OIIO::ImageOutput::create(tmp.string());
  if (!out)
    throw Error(SINSR_ERR_UNSUPPORTED,
                path + ": no writer for this file type (" + oiio_error("unknown extension") + ")");
  OIIO::ImageSpec spec(w, h, c, type);
  if (source.metadata)
    for (const auto& p : *static_cast<const OIIO::ParamValueList*>(source.metadata.get()))
      spec.extra_attribs.push_back(p);
  if (source.orientation != 1) spec.attribute("Orientation", 1);  // the pixels are upright now
  if (c == 2 || c == 4) {
    spec.alpha_channel = c - 1;
    spec.attribute("oiio:UnassociatedAlpha", 1);  // our colour is not premultiplied
  }
  std::error_code ec;
  // Encoded in memory, then written by checked system calls: OpenImageIO's PNG writer reports
  // success when the disk fills up (a truncated file would replace the old one) and its JPEG
  // writer crashes there (both found by the interrupted-write test).
  std::vector<unsigned char> encoded;
  OIIO::Filesystem::IOVecOutput memory(encoded);
  const bool in_memory = out->supports("ioproxy") && out->set_ioproxy(&memory);
  if (!out->open(tmp.string(), spec)) {
    std::string err = out->geterror();
    fs::remove(tmp, ec);
    throw Error(SINSR_ERR_IO, path + ": cannot write (" + err + ")");
  }
  bool ok = out->write_image(type, data.data_ptr());
  ok = out->close() && ok;
  if (!ok) {
    std::string err = out->geterror();
    fs::remove(tmp, ec);
    throw Error(SINSR_ERR_IO, path + ": write failed (" + err + ")");
  }
  if (in_memory) write_file(tmp.string(), encoded, path);
  fs::rename(tmp, target, ec);
  if (ec) {
    std::error_code ignore;
    fs::remove(tmp, ignore);
    throw Error(SINSR_ERR_IO, path + ": cannot move the written file into place: " + ec.message());
  }
}

}  // namespace io
}  // namespace sinsr
