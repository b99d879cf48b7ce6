// netpbm (P1-P6) in every build: the one image format a build without OpenImageIO reads and
// writes, so that such a build (a GPU machine with no OpenImageIO) still trains, upscales and
// scores; also used for .ppm/.pgm where OpenImageIO is present, so one reader serves both.
#include "io/codecs.hpp"

#include <sinsr/sdk.hpp>

#include <algorithm>
#include <cctype>
#include <string>

namespace sinsr {
namespace io {
namespace netpbm {

using sdk::Error;

namespace {

struct Reader {
  const ReadContext& ctx;
  int peek() { return ctx.file.peek(); }
  int get() { return ctx.file.get(); }
  [[noreturn]] void fail(const std::string& what) const { throw Error(SINSR_ERR_FORMAT, ctx.path + ": " + what); }

  // Whitespace and '#' comments (to the end of the line) before a token.
  void skip_space() {
    for (int ch = peek(); ch != EOF; ch = peek()) {
      if (ch == '#') {
        while (ch != EOF && ch != '\n' && ch != '\r') ch = (get(), peek());
      } else if (std::isspace(ch)) {
        get();
      } else {
        return;
      }
    }
  }
  // A decimal number of at most 10 digits; `what` names it in the error.
  int64_t number(const char* what) {
    skip_space();
    int64_t v = 0;
    int digits = 0;
    for (int ch = peek(); ch != EOF && std::isdigit(ch) && digits < 11; ch = peek(), ++digits)
      v = v * 10 + (get() - '0');
    if (digits == 0) fail(std::string("a netpbm header or plain raster without its ") + what);
    if (digits > 10) fail(std::string("a netpbm ") + what + " of more than 10 digits");
    return v;
  }
};

}  // namespace

bool is_netpbm_extension(const std::string& e) { return e == ".ppm" || e == ".pgm" || e == ".pnm" || e == ".pbm"; }

Image read(const ReadContext& ctx) {
  std::istream& in = ctx.file;
  in.clear();
  in.seekg(0);
  Reader r{ctx};
  if (r.get() != 'P') r.fail("not a netpbm file");
  const int kind = r.get() - '0';
  if (kind < 1 || kind > 6) r.fail("not a netpbm file (P1 to P6)");
  const bool bitmap = kind == 1 || kind == 4, plain = kind <= 3;
  const int64_t channels = (kind == 3 || kind == 6) ? 3 : 1;
  const int64_t w = r.number("width"), h = r.number("height");
  const int64_t maxval = bitmap ? 1 : r.number("maximum value");
  if (w <= 0 || h <= 0) r.fail("empty image (" + std::to_string(w) + "x" + std::to_string(h) + ")");
  // Whatever limit a user sets, sizes stay far from 64-bit overflow (2^40 pixels: 6 TB as 16-bit RGB).
  const int64_t limit = std::min<int64_t>(ctx.limit, int64_t(1) << 40);
  if (w > limit / h) throw Error(SINSR_ERR_FORMAT, size_refusal(ctx.path, w, h, 0, limit, ctx.hint));
  if (maxval < 1 || maxval > 65535) r.fail("a netpbm maximum value of " + std::to_string(maxval) + " (1 to 65535)");
  const int64_t n = w * h * channels;
  if (!plain) {
    // One whitespace character ends the header; the raster follows.
    if (!std::isspace(r.get())) r.fail("a netpbm header not followed by whitespace");
    const int64_t bytes = bitmap ? (w + 7) / 8 * h : n * (maxval > 255 ? 2 : 1);
    if (bytes > ctx.file_size - int64_t(in.tellg()))
      r.fail("truncated netpbm raster (" + std::to_string(bytes) + " bytes declared, " +
             std::to_string(std::max<int64_t>(0, ctx.file_size - int64_t(in.tellg()))) + " present)");
  } else if (n > ctx.file_size) {  // at least one character per sample
    r.fail("truncated netpbm raster (" + std::to_string(n) + " samples declared in a file of " +
           std::to_string(ctx.file_size) + " bytes)");
  }
  at::Tensor hwc = at::empty({h, w, channels}, at::kFloat);
  float* out = hwc.data_ptr<float>();
  const float scale = 1.0f / float(maxval);
  if (kind == 4) {
    const int64_t stride = (w + 7) / 8;
    std::string row(size_t(stride), '\0');
    for (int64_t y = 0; y < h; ++y) {
      in.read(&row[0], std::streamsize(stride));
      for (int64_t x = 0; x < w; ++x) out[y * w + x] = (uint8_t(row[size_t(x / 8)]) >> (7 - x % 8)) & 1 ? 0.0f : 1.0f;
    }
  } else if (!plain) {
    const int64_t sample_bytes = maxval > 255 ? 2 : 1, row_bytes = w * channels * sample_bytes;
    std::string row(size_t(row_bytes), '\0');
    for (int64_t y = 0; y < h; ++y) {
      in.read(&row[0], std::streamsize(row_bytes));
      const auto* b = reinterpret_cast<const unsigned char*>(row.data());
      for (int64_t i = 0, k = w * channels; i < k; ++i) {
        const int64_t v = sample_bytes == 2 ? int64_t(b[2 * i]) << 8 | b[2 * i + 1] : b[i];
        out[y * w * channels + i] = std::min(1.0f, float(v) * scale);  // a sample above maxval is white
      }
    }
  } else {
    for (int64_t i = 0; i < n; ++i) {
      if (kind == 1) {  // digits need no separator in a plain bitmap
        r.skip_space();
        const int ch = r.get();
        if (ch != '0' && ch != '1') r.fail("a plain netpbm bitmap ends or holds something other than 0 and 1");
        out[i] = ch == '1' ? 0.0f : 1.0f;
      } else {
        out[i] = std::min(1.0f, float(r.number("samples")) * scale);
      }
    }
  }
  Image img;
  img.bits = maxval > 255 ? 16 : 8;
  img.pixels = hwc.permute({2, 0, 1}).contiguous();
  return img;
}

std::vector<unsigned char> encode(const at::Tensor& hwc, int bits) {
  const int64_t h = hwc.size(0), w = hwc.size(1), c = hwc.size(2);
  sdk::require(c == 1 || c == 3, SINSR_ERR_INVALID_ARGUMENT, "netpbm: 1 or 3 channels");
  sdk::require(bits == 8 || bits == 16, SINSR_ERR_INVALID_ARGUMENT, "netpbm: 8 or 16 bits");
  const std::string header = std::string(c == 3 ? "P6" : "P5") + "\n" + std::to_string(w) + " " + std::to_string(h) +
                             "\n" + (bits == 8 ? "255" : "65535") + "\n";
  const int64_t samples = h * w * c;
  std::vector<unsigned char> bytes(header.begin(), header.end());
  const at::Tensor data = hwc.contiguous();
  if (bits == 8) {
    const uint8_t* p = data.data_ptr<uint8_t>();
    bytes.insert(bytes.end(), p, p + samples);
  } else {
    const auto* p = reinterpret_cast<const uint16_t*>(data.data_ptr<int16_t>());
    bytes.reserve(bytes.size() + size_t(samples) * 2);
    for (int64_t i = 0; i < samples; ++i) {  // big-endian
      bytes.push_back(uint8_t(p[i] >> 8));
      bytes.push_back(uint8_t(p[i] & 0xff));
    }
  }
  return bytes;
}

}  // namespace netpbm
}  // namespace io
}  // namespace sinsr
