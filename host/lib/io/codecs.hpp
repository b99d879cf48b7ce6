// Inside image_io: the two ways a file is decoded and encoded. netpbm (.ppm/.pgm/.pnm) is read
// and written here in every build; everything else goes through OpenImageIO, which a build may
// leave out (SINSR_WITH_IMAGE_IO off: netpbm and the JPEG round trip of the degradation remain).
#pragma once

#include "io/image_io.hpp"

#include <sinsr/sdk.hpp>

#include <cstdint>
#include <istream>
#include <string>
#include <vector>

namespace sinsr {
namespace io {

// What read_image has checked before a codec sees the file.
struct ReadContext {
  const std::string& path;
  std::istream& file;
  int64_t file_size;
  int64_t limit;  // pixels
  const std::string& hint;
};

// Little-endian unsigned of 1..4 bytes.
inline uint32_t le_bits(const unsigned char* p, int bytes) { return uint32_t(sdk::read_uint(p, bytes)); }

// "<path>: the header declares WxH, beyond the limit of N pixels (hint)"; `channels` 0: unknown.
std::string size_refusal(const std::string& path, int64_t w, int64_t h, int64_t channels, int64_t limit,
                         const std::string& hint);

namespace netpbm {
bool is_netpbm_extension(const std::string& lower_ext);
// P1..P6, any maxval up to 65535; values scaled to [0,1].
Image read(const ReadContext& in);
// hwc: [H,W,C] uint8 (bits 8) or int16 holding the uint16 bits (bits 16); C = 1 or 3.
std::vector<unsigned char> encode(const at::Tensor& hwc, int bits);
}  // namespace netpbm

#if SINSR_WITH_IMAGE_IO
namespace oiio {
// format: OpenImageIO's reader name, told from the content (read_image's sniffing).
Image read(const ReadContext& in, const char* format);
// data: [H,W,C] uint8 / int16 (holding uint16 bits) / float; written to `tmp` (whose extension
// picks the writer) with `source`'s metadata.
void write(const std::string& path, const std::string& tmp, const at::Tensor& data, int bits, const Image& source);
}  // namespace oiio
#endif

// Writes all of `bytes` to `file` and syncs it; on failure the file is removed and the error
// names `shown`.
void write_file(const std::string& file, const std::vector<unsigned char>& bytes, const std::string& shown);

}  // namespace io
}  // namespace sinsr
