// Image files through OpenImageIO: exact round trips at 8/16 bit and float, gray/alpha, the
// official rounding, atomic writes, and errors that name the file.
#include "errors.hpp"
#include "host_run.hpp"
#include "parity.hpp"

#include "io/image_io.hpp"

#include <sinsr/sdk.hpp>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace fs = std::filesystem;

namespace {

using sinsr_test::expect_error;
using sinsr_test::fresh_dir;

using sinsr::io::Image;
using sinsr::io::read_image;
using sinsr::io::write_image;

// Pixels that an n-bit file holds exactly: k / (2^n - 1).
at::Tensor levels(std::vector<int64_t> shape, int bits) {
  const double top = bits == 8 ? 255.0 : 65535.0;
  return at::randint(0, int64_t(top) + 1, shape, at::kLong).to(at::kDouble).div(top).to(at::kFloat);
}

TEST(ImageIO, LosslessRoundTrips) {
  fs::path d = fresh_dir("roundtrip");
  struct Case {
    std::string file;
    int64_t channels;
    int bits;
  };
  for (const Case& c : std::vector<Case>{{"rgb8.png", 3, 8},
                                         {"rgb16.png", 3, 16},
                                         {"gray8.png", 1, 8},
                                         {"gray16.png", 1, 16},
                                         {"ga8.png", 2, 8},
                                         {"rgba8.png", 4, 8},
                                         {"rgba16.png", 4, 16},
                                         {"rgb8.tif", 3, 8},
                                         {"rgb16.tiff", 3, 16},
                                         {"gray16.tif", 1, 16},
                                         {"rgba8.TIF", 4, 8},
                                         {"rgb8.bmp", 3, 8}}) {
    at::Tensor x = levels({c.channels, 13, 17}, c.bits);
    write_image((d / c.file).string(), x, c.bits);
    auto img = read_image((d / c.file).string());
    EXPECT_EQ(img.bits, c.bits) << c.file;
    EXPECT_EQ(img.pixels.scalar_type(), at::kFloat);
    ASSERT_EQ(img.pixels.sizes(), x.sizes()) << c.file;
    EXPECT_TRUE(sinsr_test::all_close(img.pixels, x, 1e-7)) << c.file;
  }
}

TEST(ImageIO, FloatExrKeepsValuesOutsideTheUnitRange) {
  fs::path d = fresh_dir("exr");
  for (int64_t ch : {1, 3, 4}) {
    at::Tensor x = at::randn({ch, 9, 11});
    std::string f = (d / ("f" + std::to_string(ch) + ".exr")).string();
    write_image(f, x, 32);
    auto img = read_image(f);
    EXPECT_EQ(img.bits, 32);
    EXPECT_TRUE(at::equal(img.pixels, x)) << ch;
  }
  // bits = 8 into EXR still clamps and quantises first (EXR then stores half floats).
  at::Tensor y = at::rand({3, 5, 5}) * 2 - 0.5;
  write_image((d / "q.exr").string(), y, 8);
  at::Tensor back = read_image((d / "q.exr").string()).pixels;
  EXPECT_TRUE(sinsr_test::all_close(back, y.clamp(0, 1).mul(255).round().div(255), 5e-4));
}

TEST(ImageIO, JpegIsCloseAndDropsAlpha) {
  fs::path d = fresh_dir("jpeg");
  // Smooth content so that the lossy codec stays close.
  at::Tensor ramp = at::linspace(0.1, 0.9, 32).view({1, 1, 32}).expand({3, 24, 32}).contiguous();
  at::Tensor rgba = at::cat({ramp, at::ones({1, 24, 32})});
  write_image((d / "a.jpg").string(), rgba);
  auto img = read_image((d / "a.jpg").string());
  EXPECT_EQ(img.pixels.size(0), 3);
  EXPECT_LT((img.pixels - ramp).abs().max().item<double>(), 4.0 / 255);
}

TEST(ImageIO, QuantisationIsTheOfficialRoundHalfToEven) {
  // Find values whose float32 product with 255 is exactly k + 0.5: numpy's round (and
  // tensor2img) sends them to the even neighbour.
  std::vector<float> vals;
  std::vector<uint8_t> want;
  for (int k = 0; k < 255; ++k) {
    float x = float((k + 0.5) / 255.0);
    if (x * 255.0f == float(k) + 0.5f) {
      vals.push_back(x);
      want.push_back(uint8_t(k % 2 == 0 ? k : k + 1));
    }
  }
  ASSERT_GE(vals.size(), 10u);
  at::Tensor x = at::tensor(vals).view({1, 1, int64_t(vals.size())});
  at::Tensor u8 = sinsr::io::to_uint8_hwc(x);
  EXPECT_EQ(u8.sizes(), (at::IntArrayRef{1, int64_t(vals.size()), 1}));
  for (size_t i = 0; i < vals.size(); ++i) EXPECT_EQ(u8[0][int64_t(i)][0].item<int>(), want[i]) << vals[i];
  // The same rounding in files; out-of-range and NaN values clamp.
  fs::path d = fresh_dir("rounding");
  write_image((d / "r.png").string(), x);
  at::Tensor back = read_image((d / "r.png").string()).pixels.mul(255).round().to(at::kByte).view({-1});
  EXPECT_TRUE(at::equal(back, u8.view({-1})));
  at::Tensor odd = at::tensor({-0.5f, 1.5f, std::nanf("")}).view({1, 1, 3});
  EXPECT_TRUE(at::equal(sinsr::io::to_uint8_hwc(odd).view({-1}), at::tensor({0, 255, 0}, at::kByte)));
  write_image((d / "odd16.png").string(), odd, 16);
  EXPECT_TRUE(at::equal(read_image((d / "odd16.png").string()).pixels.view({-1}), at::tensor({0.f, 1.f, 0.f})));
}

TEST(ImageIO, CorruptTruncatedAndMissingFilesNameTheFile) {
  fs::path d = fresh_dir("corrupt");
  std::string garbage = (d / "garbage.png").string();
  std::ofstream(garbage) << "this is not a PNG file at all";
  expect_error([&] { read_image(garbage); }, SINSR_ERR_FORMAT, {garbage});

  // A real PNG cut in half.
  std::string good = (d / "good.png").string(), cut = (d / "cut.png").string();
  write_image(good, at::rand({3, 64, 64}));
  auto size = fs::file_size(good);
  fs::copy_file(good, cut);
  fs::resize_file(cut, size / 2);
  expect_error([&] { read_image(cut); }, SINSR_ERR_FORMAT, {cut});

  // A PNG signature followed by zeros: refused by the chunk walk, before libpng (which printed its
  // own "libpng error" line to stderr beside ours).
  std::string zeros = (d / "zeros.png").string();
  std::ofstream(zeros, std::ios::binary) << std::string("\x89PNG\r\n\x1a\n", 8) << std::string(40, '\0');
  expect_error([&] { read_image(zeros); }, SINSR_ERR_FORMAT, {zeros + ": no valid PNG chunk type at byte 12"});

  std::string empty = (d / "empty.tif").string();
  std::ofstream{empty};
  expect_error([&] { read_image(empty); }, SINSR_ERR_FORMAT, {empty});

  std::string missing = (d / "missing.png").string();
  expect_error([&] { read_image(missing); }, SINSR_ERR_IO, {missing});
  expect_error([&] { read_image(d.string()); }, SINSR_ERR_IO, {});
}

TEST(ImageIO, WritesAtomicallyAndCreatesNoFolders) {
  fs::path d = fresh_dir("atomic");
  std::string f = (d / "x.png").string();
  write_image(f, at::zeros({3, 8, 8}));
  write_image(f, at::ones({3, 8, 8}));  // replaces the old file in one step
  EXPECT_TRUE(at::equal(read_image(f).pixels, at::ones({3, 8, 8})));
  size_t entries = 0;
  for (auto& e : fs::directory_iterator(d)) {
    ++entries;
    EXPECT_EQ(e.path().filename(), "x.png");
  }
  EXPECT_EQ(entries, 1u);  // no temporary left behind

  std::string nested = (d / "no" / "such" / "dir" / "y.png").string();
  expect_error([&] { write_image(nested, at::zeros({3, 4, 4})); }, SINSR_ERR_IO, {nested});
  EXPECT_FALSE(fs::exists(d / "no"));

  expect_error([&] { write_image((d / "z.unknownext").string(), at::zeros({3, 4, 4})); }, SINSR_ERR_UNSUPPORTED, {});
  expect_error([&] { write_image((d / "z.png").string(), at::zeros({5, 4, 4})); }, SINSR_ERR_INVALID_ARGUMENT, {});
  expect_error(
      [&] {
        write_image((d / "z.png").string(), at::zeros({3, 4, 4}, at::kByte));
      },
      SINSR_ERR_INVALID_ARGUMENT, {});
  expect_error([&] { write_image((d / "z.png").string(), at::zeros({3, 4, 4}), 12); }, SINSR_ERR_INVALID_ARGUMENT, {});
  EXPECT_FALSE(fs::exists(d / "z.png"));
}

TEST(ImageIO, ListsImagesSortedAndNotRecursively) {
  fs::path d = fresh_dir("list");
  for (const char* n : {"b.png", "a.JPG", "c.tiff", "notes.txt", "d.Exr"}) std::ofstream(d / n) << "x";
  fs::create_directories(d / "sub");
  std::ofstream(d / "sub" / "e.png") << "x";
  fs::create_directories(d / "folder.png");
  auto files = sinsr::io::list_images(d.string());
  std::vector<std::string> names;
  for (auto& f : files) names.push_back(fs::path(f).filename().string());
  EXPECT_EQ(names, (std::vector<std::string>{"a.JPG", "b.png", "c.tiff", "d.Exr"}));
  EXPECT_TRUE(sinsr::io::has_image_extension("x.WebP"));
  EXPECT_TRUE(sinsr::io::has_image_extension("dir.v2/x.jpeg"));
  EXPECT_FALSE(sinsr::io::has_image_extension("x.png.txt"));
  EXPECT_FALSE(sinsr::io::has_image_extension("png"));
  expect_error([&] { sinsr::io::list_images((d / "nope").string()); }, SINSR_ERR_IO, {});
}

TEST(ImageIO, ReadsTheSharedDataSets) {
  // Every file there opens; set14/bridge is 8-bit gray, two RealSet65 files carry alpha.
  fs::path data(sinsr_test::data_dir());
  if (!fs::exists(data / "set14")) GTEST_SKIP() << "no data in " << data;
  auto bridge = read_image((data / "set14" / "hr" / "bridge.png").string());
  EXPECT_EQ(bridge.pixels.size(0), 1);
  EXPECT_EQ(bridge.bits, 8);
  auto baby = read_image((data / "set5" / "hr" / "baby.png").string());
  EXPECT_EQ(baby.pixels.size(0), 3);
  if (fs::exists(data / "realset65" / "flower2.jpeg")) {  // a PNG with a .jpeg name, RGBA
    auto f = read_image((data / "realset65" / "flower2.jpeg").string());
    EXPECT_EQ(f.pixels.size(0), 4);
    EXPECT_EQ(f.pixels[3].min().item<float>(), 1.0f);
  }
}

}  // namespace

namespace {

uint32_t crc32(const std::string& bytes) {
  uint32_t c = 0xffffffffu;
  for (unsigned char b : bytes) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
  }
  return ~c;
}

std::string be32(uint32_t v) { return {char(v >> 24), char((v >> 16) & 0xff), char((v >> 8) & 0xff), char(v & 0xff)}; }

std::string chunk(const std::string& type, const std::string& data) {
  return be32(uint32_t(data.size())) + type + data + be32(crc32(type + data));
}

// A PNG whose header declares w x h RGB pixels and whose data is a few bytes of nothing.
std::string png_declaring(uint32_t w, uint32_t h) {
  std::string ihdr = be32(w) + be32(h) + std::string("\x08\x02\x00\x00\x00", 5);
  return std::string("\x89PNG\r\n\x1a\n", 8) + chunk("IHDR", ihdr) +
         chunk("IDAT", std::string("\x78\x9c\x03\x00\x00\x00\x00\x01", 8)) + chunk("IEND", "");
}

}  // namespace

// Issue 16: a PNG declaring 20000 x 20000 made the reader allocate 4.8 GB before any check.
TEST(ImageIO, DimensionsAreCheckedBeforeDecoding) {
  fs::path d = fresh_dir("huge");
  const std::string path = (d / "huge.png").string();
  std::ofstream(path, std::ios::binary) << png_declaring(20000, 20000);
  expect_error([&] { read_image(path); }, SINSR_ERR_FORMAT, {path, "20000x20000", "SINSR_MAX_IMAGE_PIXELS"});
  // The limit is the user's to change: a 13x17 image refused under a 100-pixel limit, read without it.
  const std::string small = (d / "small.png").string();
  write_image(small, levels({3, 13, 17}, 8));
  ::setenv("SINSR_MAX_IMAGE_PIXELS", "100", 1);
  expect_error([&] { read_image(small); }, SINSR_ERR_FORMAT, {small});
  ::unsetenv("SINSR_MAX_IMAGE_PIXELS");
  EXPECT_EQ(read_image(small).pixels.size(2), 17);
}

// The reader is chosen by content, and the headers of the readers that allocate what they declare
// when they open a file (WebP: up to 16383 x 16383 x 4 bytes from a 45-byte file; GIF; OpenEXR)
// are read by the project first. The fuzz inputs that found them are regressions.
TEST(ImageIO, FormatsAreToldByContentAndLyingHeadersReadFirst) {
  fs::path d = fresh_dir("sniff");
  auto le32 = [](uint32_t v) {
    return std::string{char(v & 0xff), char((v >> 8) & 0xff), char((v >> 16) & 0xff), char(v >> 24)};
  };
  const uint32_t bits = (16383 - 1) | ((16383u - 1) << 14);
  const std::string vp8l = std::string("\x2f", 1) + le32(bits) + std::string(16, '\0');
  const std::string webp = "RIFF" + le32(uint32_t(12 + vp8l.size())) + "WEBPVP8L" + le32(uint32_t(vp8l.size())) + vp8l;
  const std::string path = (d / "lying.webp").string();
  std::ofstream(path, std::ios::binary) << webp;
  expect_error([&] { read_image(path); }, SINSR_ERR_FORMAT, {path + ": the header declares 16383x16383"});

  // GIF: OpenImageIO makes the screen-sized canvas when it opens the file (fuzz input).
  const std::string gif = (d / "screen.gif").string();
  std::ofstream(gif, std::ios::binary) << std::string("GIF89a\x00\x2d\x76\xa3\x01\x02\x04", 13) << "comprehension";
  expect_error([&] { read_image(gif); }, SINSR_ERR_FORMAT, {gif + ": the header declares 11520x41846"});

  // OpenEXR sizes an attribute's buffer by the size the file declares: a 2 GB string in a small
  // file, and a data window of 2^32 x 2 pixels, are refused before OpenEXR reads the header.
  write_image((d / "real.exr").string(), levels({3, 5, 7}, 8));
  std::ifstream exr_in((d / "real.exr").string(), std::ios::binary);
  const std::string exr((std::istreambuf_iterator<char>(exr_in)), std::istreambuf_iterator<char>());
  const size_t attr = exr.find("channels");
  ASSERT_NE(attr, std::string::npos);
  std::string lying = exr;
  lying.replace(attr + 16, 4, le32(0x7fff0000u));  // after "channels\0chlist\0"
  const std::string big_attr = (d / "big-attribute.exr").string();
  std::ofstream(big_attr, std::ios::binary) << lying;
  expect_error([&] { read_image(big_attr); }, SINSR_ERR_FORMAT,
               {big_attr + ": the OpenEXR attribute 'channels' declares 2147418112 bytes"});
  const size_t window = exr.find("dataWindow");
  ASSERT_NE(window, std::string::npos);
  lying = exr;
  lying.replace(window + 21, 16, le32(0x80000000u) + le32(0) + le32(0x7fffffffu) + le32(1));
  const std::string wide = (d / "wide.exr").string();
  std::ofstream(wide, std::ios::binary) << lying;
  expect_error([&] { read_image(wide); }, SINSR_ERR_FORMAT, {wide + ": the header declares 4294967296x2"});

  // A channel list longer than it declares hides a data window from a walk that trusts sizes,
  // not from OpenEXR (fuzz input): the window is found and refused all the same.
  const size_t chlist = exr.find("channels");
  lying = exr;
  lying.replace(window + 21, 16, le32(0) + le32(0) + le32(3997703) + le32(5));
  lying.replace(chlist + 16, 4, le32(1));
  const std::string hidden = (d / "hidden-window.exr").string();
  std::ofstream(hidden, std::ios::binary) << lying;
  ::setenv("SINSR_MAX_IMAGE_PIXELS", "262144", 1);
  expect_error([&] { read_image(hidden); }, SINSR_ERR_FORMAT, {hidden + ": the header declares 3997704x6"});
  ::unsetenv("SINSR_MAX_IMAGE_PIXELS");

  // PNG: libpng makes a chunk's buffer as large as the chunk declares (a 316-byte fuzz input
  // asked for 1.8 GB in a tEXt chunk).
  write_image((d / "real.png").string(), levels({3, 5, 7}, 8));
  std::ifstream png_in((d / "real.png").string(), std::ios::binary);
  std::string png((std::istreambuf_iterator<char>(png_in)), std::istreambuf_iterator<char>());
  const std::string chunk = std::string("\x6d\xb6\x4a\x8b", 4) + "tEXtComment";  // declares 1840663179 bytes
  png.insert(33, chunk);                                                         // after the signature and IHDR
  const std::string long_text = (d / "long-text.png").string();
  std::ofstream(long_text, std::ios::binary) << png;
  expect_error([&] { read_image(long_text); }, SINSR_ERR_FORMAT,
               {long_text + ": the PNG chunk 'tEXt' declares 1840663179 bytes"});
  EXPECT_EQ(read_image((d / "real.png").string()).pixels.size(2), 7);

  // A PNG under another format's name is read as what it is; a text file under an image's name is
  // refused naming the formats there are.
  const at::Tensor px = levels({3, 5, 7}, 8);
  write_image((d / "real.png").string(), px);
  fs::copy_file(d / "real.png", d / "named.jpg");
  EXPECT_TRUE(sinsr_test::all_close(read_image((d / "named.jpg").string()).pixels, px, 1e-7));
  const std::string text = (d / "notes.tif").string();
  std::ofstream(text) << "P is for PNG? no: just some words";
  expect_error([&] { read_image(text); }, SINSR_ERR_FORMAT, {text + ": not a readable image", "WebP"});
}

namespace {

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Runs `body` in a child whose files may not grow beyond `max_bytes`; returns its wait status.
template <class F>
int with_file_limit(rlim_t max_bytes, bool ignore_sigxfsz, F&& body) {
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    struct rlimit lim = {max_bytes, max_bytes};
    ::setrlimit(RLIMIT_FSIZE, &lim);
    if (ignore_sigxfsz) std::signal(SIGXFSZ, SIG_IGN);
    ::_exit(body());
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return status;
}

}  // namespace

// Issue 16, no silent data loss: an image write cut midway (the process killed inside write(2),
// or the write failing as on a full disk) leaves the previous file as it was.
TEST(ImageIO, AnInterruptedWriteLeavesThePreviousFile) {
  fs::path d = fresh_dir("interrupted");
  // (Not EXR: OpenEXR's writer waits on its thread pool, which a forked child does not have. The
  // bytes take the same path for every format.)
  for (const char* name : {"out.png", "out.tif", "out.jpg", "out.bmp"}) {
    const std::string path = (d / name).string();
    write_image(path, levels({3, 8, 8}, 8));
    const std::string before = file_bytes(path);
    at::manual_seed(1);
    // Noise compresses badly: ~30 kB in every format, far past the 4 kB limit. Small enough that
    // no tensor operation runs on a thread pool, which a forked child could not use.
    const at::Tensor noisy = at::rand({3, 100, 100});
    for (bool ignore : {false, true}) {
      const int status = with_file_limit(4 << 10, ignore, [&] {
        try {
          write_image(path, noisy);
        } catch (const sinsr::sdk::Error& e) {
          return e.code() == SINSR_ERR_IO ? 42 : 2;
        } catch (...) {
          return 3;
        }
        return 1;  // the write claimed success
      });
      if (ignore) {
        ASSERT_TRUE(WIFEXITED(status)) << name << ": killed by signal " << WTERMSIG(status);
        EXPECT_EQ(WEXITSTATUS(status), 42) << name << ": 1 = a cut write reported success, 2/3 = wrong error";
      }
      EXPECT_EQ(file_bytes(path), before) << name << (ignore ? " (failed write)" : " (killed)");
    }
  }
}

namespace {

// Float files with NaN or infinite samples are refused naming how many (one used to blacken the
// whole output); a huge finite value is read as it is and the pipeline clamps it.
TEST(ImageIO, NonFiniteFloatSamplesAreRefused) {
  fs::path d = fresh_dir("nonfinite");
  for (float v : {std::nanf(""), std::numeric_limits<float>::infinity()}) {
    at::Tensor x = at::rand({3, 6, 6});
    x[1][2][3] = v;
    const std::string f = (d / "bad.tif").string();
    write_image(f, x, 32);
    try {
      read_image(f);
      ADD_FAILURE() << "read a non-finite sample";
    } catch (const sinsr::sdk::Error& e) {
      EXPECT_NE(std::string(e.what()).find("bad.tif: 1 sample(s) are NaN or infinite"), std::string::npos) << e.what();
    }
  }
  at::Tensor big = at::rand({3, 6, 6});
  big[0][0][0] = 3e38f;
  write_image((d / "big.tif").string(), big, 32);
  EXPECT_EQ(read_image((d / "big.tif").string()).pixels[0][0][0].item<float>(), 3e38f);
}

}  // namespace

namespace {

std::string bytes_of(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}
void put(const fs::path& p, const std::string& b) { std::ofstream(p, std::ios::binary | std::ios::trunc) << b; }
std::string read_error(const fs::path& p) {
  try {
    read_image(p.string());
  } catch (const sinsr::sdk::Error& e) {
    return e.what();
  }
  return "";
}

// A JPEG cut short is an error (it decoded to grey rows with no word); one that repeats its scan
// hundreds of times is refused before decoding; a PNG with hundreds of text chunks before libpng
// inflates them.
TEST(ImageIO, TruncatedJpegsScanBombsAndTextChunkBombsAreRefused) {
  fs::path d = fresh_dir("hostile2");
  write_image((d / "good.jpg").string(), at::rand({3, 64, 48}));
  const std::string jpg = bytes_of(d / "good.jpg");
  EXPECT_NO_THROW(read_image((d / "good.jpg").string()));
  put(d / "half.jpg", jpg.substr(0, jpg.size() / 2));
  EXPECT_NE(read_error(d / "half.jpg").find("half.jpg: truncated JPEG"), std::string::npos)
      << read_error(d / "half.jpg");
  // The scan (SOS to EOI) written 300 times.
  const size_t sos = jpg.find("\xFF\xDA"), eoi = jpg.rfind("\xFF\xD9");
  ASSERT_TRUE(sos != std::string::npos && eoi != std::string::npos && sos < eoi);
  std::string bomb = jpg.substr(0, sos);
  for (int k = 0; k < 300; ++k) bomb += jpg.substr(sos, eoi - sos);
  put(d / "scans.jpg", bomb + "\xFF\xD9");
  EXPECT_NE(read_error(d / "scans.jpg").find("more than 200 JPEG scans"), std::string::npos);
  // A Photoshop APP13 segment's IPTC block and records are read by the sizes they declare (a heap
  // over-read under the fuzz target): they must fit the segment. A well-formed one is read.
  auto with_app13 = [&](const std::string& block, uint16_t declared) {
    std::string seg = std::string(
        "Photoshop 3.0\0"
        "8BIM\x04\x04\0\0\0\0",
        24);
    seg += char(declared >> 8);
    seg += char(declared & 0xFF);
    seg += block;
    const size_t len = seg.size() + 2;
    return jpg.substr(0, 2) + "\xFF\xED" + char(len >> 8) + char(len & 0xFF) + seg + jpg.substr(2);
  };
  const std::string caption = std::string("\x1C\x02\x78\x00\x05", 5) + "hello";
  put(d / "iptc.jpg", with_app13(caption, uint16_t(caption.size())));
  EXPECT_EQ(read_image((d / "iptc.jpg").string()).pixels.size(1), 64);
  put(d / "iptc_block.jpg", with_app13(caption, 1000));
  EXPECT_NE(read_error(d / "iptc_block.jpg").find("iptc_block.jpg: a Photoshop (APP13) segment declares an IPTC block"),
            std::string::npos)
      << read_error(d / "iptc_block.jpg");
  const std::string long_record = std::string("\x1C\x02\x78\x01\xF4", 5) + "hello";  // declares 500 bytes
  put(d / "iptc_record.jpg", with_app13(long_record, uint16_t(long_record.size())));
  EXPECT_NE(read_error(d / "iptc_record.jpg").find("holds an IPTC record of 500 bytes where 5 remain"),
            std::string::npos)
      << read_error(d / "iptc_record.jpg");
  // libjpeg allocates the whole image's buffers when the file is opened: the frame header's size
  // is checked first (a fuzz input declaring 65k x 3k asked for 1 GB).
  const size_t sof = jpg.find("\xFF\xC0");
  ASSERT_NE(sof, std::string::npos);
  std::string wide = jpg;
  wide.replace(sof + 5, 4, std::string("\x0F\xA0\xFD\xE8", 4));  // 4000 rows of 65000
  put(d / "wide.jpg", wide);
  EXPECT_NE(read_error(d / "wide.jpg").find("wide.jpg: the header declares 65000x4000"), std::string::npos)
      << read_error(d / "wide.jpg");
  // 0xFF 0x00 is no marker: libjpeg discards the pair and reads on to the frame header, and so
  // must the walk (which took it for a segment and skipped the frame: fuzz input).
  put(d / "stuffed.jpg", wide.substr(0, 2) + std::string("\xFF\x00", 2) + wide.substr(2));
  EXPECT_NE(read_error(d / "stuffed.jpg").find("stuffed.jpg: the header declares 65000x4000"), std::string::npos)
      << read_error(d / "stuffed.jpg");

  write_image((d / "good.png").string(), at::rand({3, 8, 8}));
  const std::string png = bytes_of(d / "good.png");
  const size_t after_ihdr = 8 + 25;  // signature, then IHDR (4 + 4 + 13 + 4)
  std::string chunk = std::string("\0\0\0\x05tEXta\0bcd", 13) + std::string(4, '\0');
  std::string text = png.substr(0, after_ihdr);
  for (int k = 0; k < 100; ++k) text += chunk;
  put(d / "text.png", text + png.substr(after_ihdr));
  EXPECT_NE(read_error(d / "text.png").find("more than 64 PNG text chunks"), std::string::npos)
      << read_error(d / "text.png");
}

}  // namespace

namespace {

// OpenImageIO 2.4 read a BMP declaring RLE4 compression at 24 bits per pixel past its buffer
// (a SEGV under the image fuzz target; the input is tests/fuzz/regressions/image): a compression
// that does not fit the bit depth is refused before the reader sees the file.
TEST(ImageIO, BmpCompressionMustFitTheBitDepth) {
  fs::path d = fresh_dir("bmp_rle");
  write_image((d / "good.bmp").string(), at::rand({3, 6, 8}));
  EXPECT_NO_THROW(read_image((d / "good.bmp").string()));
  std::string b = bytes_of(d / "good.bmp");
  b[30] = 2;  // RLE4 on a 24-bit image
  put(d / "rle4.bmp", b);
  EXPECT_NE(read_error(d / "rle4.bmp").find("rle4.bmp: a BMP whose compression (2) does not fit its 24 bits per pixel"),
            std::string::npos)
      << read_error(d / "rle4.bmp");
}

// A little-endian baseline TIFF, uncompressed, one IFD: `samples` channels of `bits` bits
// (8 or 1; 1 packs 8 pixels a byte, rows padded to bytes, white is 1 as BlackIsZero says), in one
// strip, or in tiles of tile x tile when tile > 0 (the tile data is that of the first tile only,
// repeated: enough for the reader to start). bits_tag false leaves BitsPerSample out (its
// default is 1); `compression` is only declared (8: deflate), the data stays as given;
// rows_per_strip 0 declares h.
std::string tiff(uint32_t w, uint32_t h, int samples, int bits, const std::vector<uint8_t>& pixels, int tile = 0,
                 bool bits_tag = true, uint32_t compression = 1, uint32_t rows_per_strip = 0) {
  struct Entry {
    uint16_t tag, type;
    uint32_t count, value;
  };
  std::string out = std::string("II*\0", 4) + std::string(4, '\0');
  auto u16 = [](uint32_t v) { return std::string{char(v & 255), char((v >> 8) & 255)}; };
  auto u32 = [&](uint32_t v) { return u16(v & 0xffff) + u16(v >> 16); };
  const uint32_t data_at = 8;
  std::string data(pixels.begin(), pixels.end());
  out += data;
  std::vector<Entry> e = {{256, 4, 1, w}, {257, 4, 1, h}};
  uint32_t bps_at = 0;
  if (bits_tag) {
    if (samples <= 2) {
      e.push_back({258, 3, uint32_t(samples), uint32_t(bits) | (samples == 2 ? uint32_t(bits) << 16 : 0)});
    } else {
      bps_at = uint32_t(out.size());
      for (int k = 0; k < samples; ++k) out += u16(uint32_t(bits));
      e.push_back({258, 3, uint32_t(samples), bps_at});
    }
  }
  e.push_back({259, 3, 1, compression});
  e.push_back({262, 3, 1, samples >= 3 ? 2u : 1u});
  if (tile > 0) {
    e.push_back({277, 3, 1, uint32_t(samples)});
    e.push_back({284, 3, 1, 1});
    e.push_back({322, 3, 1, uint32_t(tile)});
    e.push_back({323, 3, 1, uint32_t(tile)});
    e.push_back({324, 4, 1, data_at});
    e.push_back({325, 4, 1, uint32_t(data.size())});
  } else {
    e.push_back({273, 4, 1, data_at});
    e.push_back({277, 3, 1, uint32_t(samples)});
    e.push_back({278, 4, 1, rows_per_strip ? rows_per_strip : h});
    e.push_back({279, 4, 1, uint32_t(data.size())});
    e.push_back({284, 3, 1, 1});
  }
  if (out.size() % 2) out += '\0';
  const uint32_t ifd = uint32_t(out.size());
  out.replace(4, 4, u32(ifd));
  out += u16(uint32_t(e.size()));
  for (const auto& x : e) out += u16(x.tag) + u16(x.type) + u32(x.count) + u32(x.value);
  out += u32(0);
  return out;
}

// A TIFF's tiles are checked against its size before the reader allocates one (a 16x16 image
// declaring 16384^2 tiles took 4 GB), and only the channels kept are decoded (64 channels of a
// 4096^2 image took 4.4 GB as float).
TEST(ImageIO, TiffTilesAndChannelsAreBoundedByTheImage) {
  fs::path d = fresh_dir("tiff_bounds");
  put(d / "tiles.tif", tiff(16, 16, 1, 8, std::vector<uint8_t>(256, 7), 16384));
  EXPECT_NE(read_error(d / "tiles.tif").find("tiles.tif: declares tiles of 16384x16384 for a 16x16 image"),
            std::string::npos)
      << read_error(d / "tiles.tif");
  put(d / "small_tiles.tif", tiff(8, 8, 1, 8, std::vector<uint8_t>(16 * 16, 200), 16));
  EXPECT_EQ(read_image((d / "small_tiles.tif").string()).pixels.sizes(), at::IntArrayRef({1, 8, 8}));
  std::vector<uint8_t> many(4 * 3 * 64);
  for (size_t k = 0; k < many.size(); ++k) many[k] = uint8_t(k % 64 * 4);  // sample k of a pixel: 4k
  put(d / "channels.tif", tiff(4, 3, 64, 8, many));
  Image im = read_image((d / "channels.tif").string());
  ASSERT_LE(im.pixels.size(0), 4);  // colour, and the fourth as alpha where the reader says so
  ASSERT_EQ(im.pixels.size(1), 3);
  ASSERT_EQ(im.pixels.size(2), 4);
  EXPECT_NEAR(im.pixels[2][1][1].item<float>(), 8.0f / 255.0f, 1e-6);
  // A decoder holds a whole compressed strip of every channel: one deflated strip of 4096^2 x 64
  // channels (1 GiB in 1 MB) took 7 GB and 90 s; it is refused from the header. (libtiff cuts an
  // uncompressed strip into rows itself.)
  put(d / "one_strip.tif", tiff(4096, 4096, 64, 8, std::vector<uint8_t>(64, 0), 0, true, 8));
  EXPECT_NE(read_error(d / "one_strip.tif").find("one_strip.tif: decodes 1024 MB at a time"), std::string::npos)
      << read_error(d / "one_strip.tif");
  // The reader buffers a converted read in whole declared strips, even strips longer than the
  // image (fuzz input: 50208 rows per strip for 8 rows took 2 GB): refused from the header; a strip
  // a little longer than the image is read.
  // PackBits (32773), literal runs of at most 128 bytes: compressed, so libtiff does not cut the
  // strip into rows as it does an uncompressed one.
  std::vector<uint8_t> wide;
  for (int k = 0; k < 10504 * 8; k += 128) {
    const int n = std::min(128, 10504 * 8 - k);
    wide.push_back(uint8_t(n - 1));
    for (int j = 0; j < n; ++j) wide.push_back(uint8_t((k + j) % 251));
  }
  put(d / "long_strips.tif", tiff(10504, 8, 1, 8, wide, 0, true, 32773, 50208));
  EXPECT_NE(read_error(d / "long_strips.tif")
                .find("long_strips.tif: declares 50208 rows per strip for 8 rows, which the reader would buffer whole"),
            std::string::npos)
      << read_error(d / "long_strips.tif");
  put(d / "longer_strip.tif", tiff(10504, 8, 1, 8, wide, 0, true, 32773, 16));
  const at::Tensor longer = read_image((d / "longer_strip.tif").string()).pixels;
  ASSERT_EQ(longer.sizes(), at::IntArrayRef({1, 8, 10504}));
  EXPECT_NEAR(longer[0][7][10503].item<float>(), float((7 * 10504 + 10503) % 251) / 255.0f, 1e-6);
}

// A bilevel TIFF without BitsPerSample (PIL writes them so) is 1 bit a sample by the TIFF
// default; it was read as 8-bit bytes: noise.
TEST(ImageIO, OneBitTiffFollowsTheTiffDefaults) {
  fs::path d = fresh_dir("tiff_1bit");
  const int w = 10, h = 3;                                           // rows of 2 bytes, the last 6 bits padding
  std::vector<uint8_t> rows = {0xff, 0xc0, 0x00, 0x00, 0xaa, 0x80};  // white, black, alternating
  for (bool tag : {true, false}) {
    put(d / "bw.tif", tiff(w, h, 1, 1, rows, 0, tag));
    Image im = read_image((d / "bw.tif").string());
    ASSERT_EQ(im.pixels.sizes(), at::IntArrayRef({1, h, w})) << "BitsPerSample tag " << tag;
    EXPECT_TRUE(im.pixels[0][0].eq(1).all().item<bool>()) << im.pixels;
    EXPECT_TRUE(im.pixels[0][1].eq(0).all().item<bool>()) << im.pixels;
    for (int x = 0; x < w; ++x) EXPECT_EQ(im.pixels[0][2][x].item<float>(), x % 2 ? 0.0f : 1.0f) << x;
  }
  // The caller's pixel limit holds for the bilevel reader too (a CLI's --max-pixels).
  try {
    read_image((d / "bw.tif").string(), {20, "--max-pixels raises it"});
    ADD_FAILURE() << "a 10x3 bilevel TIFF passed a 20-pixel limit";
  } catch (const sinsr::sdk::Error& e) {
    EXPECT_NE(std::string(e.what()).find("beyond the limit of 20 pixels (--max-pixels raises it)"), std::string::npos)
        << e.what();
  }
  // Sizes near 2^32 each: their product overflowed the 64-bit size check (found by
  // fuzz_image_tiff; UBSan), now refused as too large.
  put(d / "huge.tif", tiff(4294947840u, 3961389059u, 1, 1, rows, 0, false));
  EXPECT_NE(read_error(d / "huge.tif").find("huge.tif: the header declares 4294947840x3961389059"), std::string::npos)
      << read_error(d / "huge.tif");
}

}  // namespace
