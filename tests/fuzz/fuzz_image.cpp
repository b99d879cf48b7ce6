// Image decoding through the project's reader (io::read_image over OpenImageIO): any file gives
// pixels or sdk::Error, and a header declaring a huge image is refused before allocation
// (libFuzzer's -rss_limit_mb catches a reader that allocates what a header claims).
#include "fuzz_common.hpp"

#include "io/image_io.hpp"

#include <cstring>

namespace {

// The extension OpenImageIO picks its reader by: taken from the content, as a user's file named
// after its content would be.
const char* suffix_for(const uint8_t* d, size_t n) {
  auto starts = [&](const char* magic, size_t k) { return n >= k && std::memcmp(d, magic, k) == 0; };
  if (starts("\x89PNG", 4)) return ".png";
  if (starts("\xff\xd8", 2)) return ".jpg";
  if (starts("II*\0", 4) || starts("MM\0*", 4)) return ".tif";
  if (starts("BM", 2)) return ".bmp";
  if (starts("v/1\x01", 4)) return ".exr";
  if (n >= 12 && starts("RIFF", 4) && std::memcmp(d + 8, "WEBP", 4) == 0) return ".webp";
  if (starts("P5", 2) || starts("P2", 2)) return ".pgm";
  if (starts("P6", 2) || starts("P3", 2)) return ".ppm";
  return ".png";
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  sinsr_fuzz::init_torch();
  // 4 MPix: enough for any seed, small enough that a lying header is caught cheaply.
  ::setenv("SINSR_MAX_IMAGE_PIXELS", "4194304", 0);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = sinsr_fuzz::write_temp(data, size, suffix_for(data, size));
  sinsr_fuzz::expect_sdk_errors_only("read_image", [&] {
    auto img = sinsr::io::read_image(path);
    volatile float s = img.pixels.sum().item<float>();
    (void)s;
  });
  return 0;
}
