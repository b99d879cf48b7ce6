#include "io/codecs.hpp"

#include <sinsr/sdk.hpp>

#include <OpenImageIO/filesystem.h>
#include <OpenImageIO/imageio.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>

namespace sinsr {
namespace io {

namespace fs = std::filesystem;
using sdk::Error;

namespace {

// OpenImageIO keeps its messages per thread; fetching them also clears them.
std::string oiio_error(const std::string& fallback) {
  std::string e = OIIO::geterror();
  return e.empty() ? fallback : e;
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
      // OpenEXR reads a value of a type it knows by the type, whatever size the attribute
      // declares, and goes on from there: so does this walk (fuzz inputs hid a lying attribute
      // behind a channel list longer than declared and behind a box2i declaring 0 or 272 bytes).
      static const std::map<std::string, int> kFixed = {{"box2f", 16},        {"chromaticities", 32},
                                                        {"compression", 1},   {"double", 8},
                                                        {"envmap", 1},        {"float", 4},
                                                        {"int", 4},           {"keycode", 28},
                                                        {"lineOrder", 1},     {"m33f", 36},
                                                        {"m33d", 72},         {"m44f", 64},
                                                        {"m44d", 128},        {"rational", 8},
                                                        {"tiledesc", 9},      {"timecode", 8},
                                                        {"v2i", 8},           {"v2f", 8},
                                                        {"v2d", 16},          {"v3i", 12},
                                                        {"v3f", 12},          {"v3d", 24},
                                                        {"deepImageState", 1}};
      if (type == "box2i") {
        unsigned char b[16];
        if (!in.read(reinterpret_cast<char*>(b), 16)) throw truncated();
        if (name == "dataWindow") check_window(b);
      } else if (auto fixed = kFixed.find(type); fixed != kFixed.end()) {
        in.seekg(fixed->second, std::ios::cur);
      } else if (type == "chlist") {
        while (!read_name().empty()) in.seekg(16, std::ios::cur);
      } else if (type == "preview") {  // width, height, then 4 bytes a pixel: allocated as declared
        unsigned char wh[8];
        if (!in.read(reinterpret_cast<char*>(wh), 8)) throw truncated();
        const int64_t w = int64_t(le_bits(wh, 4)), h = int64_t(le_bits(wh + 4, 4));
        if (w > 0 && h > (file_size - at) / 4 / w)  // no product: both may be 2^32 - 1
          throw Error(SINSR_ERR_FORMAT, path + ": the OpenEXR preview '" + name + "' declares " + std::to_string(w) +
                                            "x" + std::to_string(h) + " pixels, beyond the end of the file");
        in.seekg(w * h * 4, std::ios::cur);
      } else {
        in.seekg(size, std::ios::cur);
      }
      if (!in) throw truncated();
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

// OpenImageIO 2.4 reads a Photoshop APP13 segment's IPTC block, and each record in it, by the
// sizes they declare, past the segment (a heap over-read under the JPEG fuzz target). Its walk is
// repeated here on the segment's bytes: wherever it would read beyond them, the file is refused.
void check_photoshop_iptc(const unsigned char* d, size_t n, const std::string& path) {
  static const unsigned char kHead[] = "Photoshop 3.0\0008BIM";  // then the type, 4 bytes, the size
  auto refuse = [&](const std::string& what) {
    throw Error(SINSR_ERR_FORMAT, path + ": a Photoshop (APP13) segment " + what);
  };
  const size_t head = std::min<size_t>(n, 18);
  if (std::memcmp(d, kHead, head) != 0) return;  // not one: the reader stops at the first difference
  if (n < 26) refuse("cut short (" + std::to_string(n) + " bytes)");
  if ((d[18] << 8 | d[19]) != 1028) return;  // not an IPTC block
  const size_t size = size_t(d[24] << 8 | d[25]);
  if (26 + size > n)
    refuse("declares an IPTC block of " + std::to_string(size) + " bytes in " + std::to_string(n - 26));
  size_t at = 26, left = size;
  while (left >= 5 && d[at] == 0x1C && (d[at + 1] == 1 || d[at + 1] == 2)) {
    const size_t record = size_t(d[at + 3] << 8 | d[at + 4]);
    at += 5, left -= 5;
    if (record > left)
      refuse("holds an IPTC record of " + std::to_string(record) + " bytes where " + std::to_string(left) + " remain");
    at += record, left -= record;
  }
}

// A JPEG's markers, walked before libjpeg sees the file: a file cut short (no end-of-image marker
// after its scans) decoded to grey rows with no error, and a progressive file repeating one scan
// 15,000 times took a minute to decode. Entropy-coded data never holds 0xFF followed by anything
// but 0x00 or a restart marker, so the walk needs no decoding.
void check_jpeg_markers(std::istream& in, int64_t file_size, const std::string& path, int64_t limit,
                        const std::string& hint) {
  in.clear();
  in.seekg(0);
  std::vector<unsigned char> b(size_t(std::max<int64_t>(file_size, 0)));
  in.read(reinterpret_cast<char*>(b.data()), std::streamsize(b.size()));
  const size_t n = size_t(in.gcount());
  size_t i = 2, scans = 0;  // after SOI
  while (i + 1 < n) {
    if (b[i] != 0xFF) {  // bytes where a marker must be: libjpeg warns and skips to the next 0xFF, so do we
      ++i;
      continue;
    }
    const unsigned char m = b[i + 1];
    if (m == 0xFF) {
      ++i;
      continue;
    }                       // fill byte
    if (m == 0xD9) return;  // EOI: complete
    // No length after these: TEM, RSTn, a second SOI (libjpeg refuses it), and 0xFF 0x00, which is
    // no marker: libjpeg discards the pair and looks further (a fuzz input hid its frame header
    // behind one, which this walk took for a 224-byte segment).
    if (m == 0x00 || m == 0x01 || (m >= 0xD0 && m <= 0xD8)) {
      i += 2;
      continue;
    }
    if (i + 3 >= n) break;
    const size_t len = size_t(sdk::read_uint(&b[i + 2], 2, /*big=*/true));
    if (m == 0xED && len >= 2 && i + 2 + len <= n) check_photoshop_iptc(&b[i + 4], len - 2, path);
    // A frame header (SOF0..15 but DHT, JPG, DAC): libjpeg allocates the whole image's buffers as
    // it opens the file (a 342-byte progressive fuzz input declaring 60160x9488 asked for 1 GB).
    const bool frame = m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
    if (frame && i + 8 < n) {
      const int64_t h = int64_t(sdk::read_uint(&b[i + 5], 2, true)), w = int64_t(sdk::read_uint(&b[i + 7], 2, true));
      if (w * h > limit) throw Error(SINSR_ERR_FORMAT, size_refusal(path, w, h, 0, limit, hint));
    }
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

namespace oiio {

Image read(const ReadContext& ctx, const char* format) {
  const std::string& path = ctx.path;
  std::istream& file = ctx.file;
  const int64_t file_size = ctx.file_size, limit = ctx.limit;
  const std::string& hint = ctx.hint;
  if (std::strcmp(format, "openexr") == 0) check_exr_header(file, file_size, path, limit, hint);
  if (std::strcmp(format, "png") == 0) check_png_chunks(file, file_size, path);
  if (std::strcmp(format, "jpeg") == 0) check_jpeg_markers(file, file_size, path, limit, hint);
  if (std::strcmp(format, "bmp") == 0) check_bmp_header(file, path);
  if (std::strcmp(format, "tiff") == 0)
    if (std::optional<at::Tensor> bilevel = read_bilevel_tiff(file, file_size, path, limit, hint)) {
      Image img;
      img.pixels = *bilevel;
      img.metadata = std::make_shared<OIIO::ParamValueList>();
      return img;
    }
  std::unique_ptr<OIIO::ImageInput> in = OIIO::ImageInput::create(format);
  if (!in)
    throw Error(SINSR_ERR_FORMAT, path + ": a " + format + " file, which this build of OpenImageIO cannot read (" +
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
  // A TIFF's tile depth counts too, even in a flat image (a tile is width x height x depth).
  const int64_t tile_depth = spec.tile_width > 0 ? std::max(spec.tile_depth, 1) : 1;
  const int64_t tile_area = int64_t(std::max(spec.tile_width, 1)) * std::max(spec.tile_height, 1) * tile_depth;
  if (tile_area > std::max<int64_t>(4 * w * h, 1024 * 1024))
    throw Error(SINSR_ERR_FORMAT, path + ": declares tiles of " + std::to_string(spec.tile_width) + "x" +
                                      std::to_string(spec.tile_height) + " for a " + std::to_string(w) + "x" +
                                      std::to_string(h) + " image");
  // A decoder holds one strip or tile of every channel at a time, whatever is kept: one 1 GiB
  // strip (4096^2, 64 channels, deflated to 1 MB) took 7 GB and 90 s. 256 MiB is a float RGBA
  // 4096^2 image in one strip.
  const int64_t rows = spec.tile_width > 0 ? spec.tile_height : spec.get_int_attribute("tiff:RowsPerStrip", int(h));
  const int64_t cols = spec.tile_width > 0 ? spec.tile_width : w;
  const int64_t chunk = std::min<int64_t>(std::max<int64_t>(rows, 1), std::max<int64_t>(h, 1)) * cols * tile_depth * c *
                        int64_t(spec.format.size());
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
  // A converted read is buffered by OpenImageIO in whole strips, as many rows as the file declares
  // per strip even past the image's height (a fuzz input: 50208 rows per strip for 8 rows, 2 GB):
  // its buffer is computed here as its read_scanlines does (about 64 MB of rows, at least 256,
  // rounded up to whole strips).
  if (spec.tile_width <= 0) {
    const int64_t sample = int64_t(spec.format.size()), rps = spec.get_int_attribute("tiff:RowsPerStrip", 64);
    int64_t rows_read = std::max<int64_t>((int64_t(1) << 26) / std::max<int64_t>(w * c * sample, 1), 256);
    if (rps > 0) rows_read = (rows_read + rps - 1) / rps * rps;
    const int64_t buffer = rows_read * w * keep * sample;
    if (buffer > (int64_t(256) << 20))
      throw Error(SINSR_ERR_FORMAT, path + ": declares " + std::to_string(rps) + " rows per strip for " +
                                        std::to_string(h) + " rows, which the reader would buffer whole (" +
                                        std::to_string(buffer >> 20) + " MB, over the 256 MB allowed)");
  }
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

void write(const std::string& path, const std::string& tmp_name, const at::Tensor& data, int bits,
           const Image& source) {
  const fs::path tmp(tmp_name);
  const int h = int(data.size(0)), w = int(data.size(1)), c = int(data.size(2));
  const OIIO::TypeDesc type = bits == 8    ? OIIO::TypeDesc::UINT8
                              : bits == 16 ? OIIO::TypeDesc::UINT16
                                           : OIIO::TypeDesc::FLOAT;
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
}

}  // namespace oiio
}  // namespace io
}  // namespace sinsr
