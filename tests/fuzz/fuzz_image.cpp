// Image decoding through the project's reader (io::read_image over OpenImageIO, the reader chosen
// by the content, not the name): any file gives pixels or sdk::Error, and a header declaring a
// huge image is refused before allocation (libFuzzer's -rss_limit_mb catches a reader that
// allocates what a header claims). Built once per format as well (fuzz_image_tiff, _jpeg, _png,
// _pnm: SINSR_FUZZ_TIFF / _JPEG / _PNG / _PNM put the format's signature in front of an input that lacks it), so that
// every execution reaches that format's decoder, where the second hostile-input probe found
// things: TIFF tiles and channels, progressive JPEG scans, PNG text chunks; and netpbm, whose
// reader is the project's own.
#include "fuzz_common.hpp"

#include "io/image_io.hpp"

#if SINSR_FUZZ_TIFF
#define SINSR_FUZZ_MAGIC "II*\0"
#elif SINSR_FUZZ_JPEG
#define SINSR_FUZZ_MAGIC "\xff\xd8"
#elif SINSR_FUZZ_PNG
#define SINSR_FUZZ_MAGIC "\x89PNG\r\n\x1a\n"
#elif SINSR_FUZZ_PNM  // the project's own netpbm reader; the next byte picks P1..P6
#define SINSR_FUZZ_MAGIC "P"
#endif

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  sinsr_fuzz::init_torch();
  // 2^18 pixels (512 x 512): enough for any seed, small enough that a header lying within the
  // limit costs little (ASan poisons every large allocation twice).
  ::setenv("SINSR_MAX_IMAGE_PIXELS", "262144", 0);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
#ifdef SINSR_FUZZ_MAGIC
  static const std::string magic(SINSR_FUZZ_MAGIC, sizeof SINSR_FUZZ_MAGIC - 1);
  std::string bytes(reinterpret_cast<const char*>(data), size);
  if (bytes.compare(0, magic.size(), magic) != 0) bytes = magic + bytes;
  const std::string path = sinsr_fuzz::write_temp(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), ".img");
#else
  const std::string path = sinsr_fuzz::write_temp(data, size, ".img");
#endif
  sinsr_fuzz::expect_sdk_errors_only("read_image", [&] {
    auto img = sinsr::io::read_image(path);
    volatile float s = img.pixels.sum().item<float>();
    (void)s;
  });
  return 0;
}
