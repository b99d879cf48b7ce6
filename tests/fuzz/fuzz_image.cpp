// Image decoding through the project's reader (io::read_image over OpenImageIO, the reader chosen
// by the content, not the name): any file gives pixels or sdk::Error, and a header declaring a
// huge image is refused before allocation (libFuzzer's -rss_limit_mb catches a reader that
// allocates what a header claims).
#include "fuzz_common.hpp"

#include "io/image_io.hpp"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  sinsr_fuzz::init_torch();
  // 2^18 pixels (512 x 512): enough for any seed, small enough that a header lying within the
  // limit costs little (ASan poisons every large allocation twice).
  ::setenv("SINSR_MAX_IMAGE_PIXELS", "262144", 0);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = sinsr_fuzz::write_temp(data, size, ".img");
  sinsr_fuzz::expect_sdk_errors_only("read_image", [&] {
    auto img = sinsr::io::read_image(path);
    volatile float s = img.pixels.sum().item<float>();
    (void)s;
  });
  return 0;
}
