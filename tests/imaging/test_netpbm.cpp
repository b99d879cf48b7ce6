// netpbm, the project's own reader and writer, in every build (with and without OpenImageIO):
// exact round trips, the six kinds as other programs write them, hostile headers refused before
// anything is allocated, and what a build without OpenImageIO says about other formats.
#include "errors.hpp"
#include "host_run.hpp"

#include "io/image_io.hpp"

#include <sinsr/sdk.hpp>

#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;

namespace {

using sinsr::io::read_image;
using sinsr::io::write_image;
using sinsr_test::expect_error;
using sinsr_test::fresh_dir;

std::string write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary) << bytes;
  return p.string();
}

at::Tensor levels(std::vector<int64_t> shape, int bits) {
  const double top = bits == 8 ? 255.0 : 65535.0;
  return at::randint(0, int64_t(top) + 1, shape, at::kLong).to(at::kDouble).div(top).to(at::kFloat);
}

std::string read_bytes(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace

TEST(Netpbm, RoundTripsAreExactAt8And16Bits) {
  fs::path d = fresh_dir("netpbm_rt");
  for (int bits : {8, 16})
    for (int64_t c : {1, 3}) {
      const std::string f =
          (d / ("x" + std::to_string(bits) + "_" + std::to_string(c) + (c == 3 ? ".ppm" : ".pgm"))).string();
      at::Tensor x = levels({c, 7, 11}, bits);
      write_image(f, x, bits);
      const std::string head = read_bytes(f).substr(0, 2);
      EXPECT_EQ(head, c == 3 ? "P6" : "P5") << f;
      auto img = read_image(f);
      EXPECT_EQ(img.bits, bits) << f;
      ASSERT_EQ(img.pixels.sizes(), x.sizes()) << f;
      EXPECT_TRUE(at::allclose(img.pixels, x, 0, 1e-7)) << f;
    }
  // The header and the big-endian 16-bit samples, byte for byte.
  const std::string two = (d / "two.pgm").string();
  write_image(two, at::tensor({0.0f, 1.0f}).view({1, 1, 2}), 16);
  EXPECT_EQ(read_bytes(two), std::string("P5\n2 1\n65535\n\x00\x00\xff\xff", 17));
  // No alpha in netpbm: it is dropped; no float either.
  const std::string rgba = (d / "rgba.ppm").string();
  write_image(rgba, levels({4, 3, 5}, 8));
  EXPECT_EQ(read_image(rgba).pixels.size(0), 3);
  expect_error(
      [&] {
        write_image((d / "f.ppm").string(), levels({3, 3, 5}, 8), 32);
      },
      SINSR_ERR_INVALID_ARGUMENT, {"f.ppm: netpbm holds 8 or 16 bits"});
}

TEST(Netpbm, ReadsTheSixKindsWithCommentsAndOddMaxvals) {
  fs::path d = fresh_dir("netpbm_kinds");
  // P1: 1 is black, digits need no separators; comments anywhere in the header.
  auto p1 = read_image(write_bytes(d / "a.pbm", "P1\n# a comment\n3 2\n1 0 1\n010\n"));
  EXPECT_TRUE(at::equal(p1.pixels, at::tensor({0.f, 1.f, 0.f, 1.f, 0.f, 1.f}).view({1, 2, 3})));
  // P4: the same, packed, each row padded to a byte.
  auto p4 = read_image(write_bytes(d / "b.pbm", std::string("P4 3 2\n\xa0\x40", 9)));
  EXPECT_TRUE(at::equal(p4.pixels, p1.pixels));
  // P2 with maxval 4: samples scaled by it.
  auto p2 = read_image(write_bytes(d / "c.pgm", "P2 2 1 4 #c\n0 4\n"));
  EXPECT_TRUE(at::equal(p2.pixels, at::tensor({0.f, 1.f}).view({1, 1, 2})));
  // P3 and P6 agree.
  auto p3 = read_image(write_bytes(d / "d.ppm", "P3\n1 1\n255\n255 0 51\n"));
  auto p6 = read_image(write_bytes(d / "e.ppm", std::string("P6\n1 1\n255\n\xff\x00\x33", 14)));
  EXPECT_TRUE(at::allclose(p3.pixels, at::tensor({1.f, 0.f, 0.2f}).view({3, 1, 1})));
  EXPECT_TRUE(at::equal(p3.pixels, p6.pixels));
  EXPECT_EQ(p6.bits, 8);
  // P5 with maxval 1000 is a 16-bit file (two bytes per sample).
  auto p5 = read_image(write_bytes(d / "f.pgm", std::string("P5 1 1 1000\n\x01\xf4", 14)));
  EXPECT_EQ(p5.bits, 16);
  EXPECT_NEAR(p5.pixels.item<float>(), 0.5f, 1e-6);
}

TEST(Netpbm, HostileHeadersAreRefusedNamingTheFile) {
  fs::path d = fresh_dir("netpbm_bad");
  struct Case {
    std::string name, bytes, expect;
  };
  const std::vector<Case> cases{
      {"huge.ppm", "P6\n200000 200000\n255\n", "the header declares 200000x200000"},
      {"trunc.ppm", "P6\n4 4\n255\n" + std::string(10, 'x'), "truncated netpbm raster (48 bytes declared, 10 present)"},
      {"trunc16.pgm", "P5 2 2 65535\n" + std::string(7, 'x'), "truncated netpbm raster (8 bytes declared, 7 present)"},
      {"maxval0.pgm", "P5 1 1 0\nx", "maximum value of 0"},
      {"maxval.pgm", "P5 1 1 70000\nxx", "maximum value of 70000"},
      {"empty.pgm", "P5 0 3 255\n", "empty image"},
      {"digits.pgm", "P5 99999999999 1 255\n", "more than 10 digits"},
      {"noheight.pgm", "P5 3", "without its height"},
      {"plain.pgm", "P2 2 2 255\n1 2 3", "without its samples"},
      {"bits.pbm", "P1 2 1\n0 7\n", "other than 0 and 1"},
      {"nospace.pgm", "P5 1 1 255x", "not followed by whitespace"},
  };
  for (const auto& c : cases) {
    const std::string path = write_bytes(d / c.name, c.bytes);
    expect_error([&] { read_image(path); }, SINSR_ERR_FORMAT, {path + ": ", c.expect});
  }
}

// Without OpenImageIO the other formats are refused by name, and every command that takes images
// works on netpbm; with it, a netpbm file and a PNG of the same pixels read the same.
TEST(Netpbm, OtherFormatsFollowTheBuild) {
  fs::path d = fresh_dir("netpbm_build");
  at::Tensor x = levels({3, 6, 9}, 8);
  write_image((d / "x.ppm").string(), x);
  const std::string png = (d / "x.png").string();
#if SINSR_WITH_IMAGE_IO
  write_image(png, x);
  EXPECT_TRUE(at::equal(read_image(png).pixels, read_image((d / "x.ppm").string()).pixels));
#else
  expect_error([&] { write_image(png, x); }, SINSR_ERR_UNSUPPORTED,
               {png + ": this build writes netpbm (.ppm, .pgm) only"});
  EXPECT_FALSE(fs::exists(png));
  std::ofstream(png, std::ios::binary) << std::string("\x89PNG\r\n\x1a\n", 8) << std::string(40, '\0');
  expect_error([&] { read_image(png); }, SINSR_ERR_UNSUPPORTED, {png + ": a png file, which this build cannot read"});
#endif
}
