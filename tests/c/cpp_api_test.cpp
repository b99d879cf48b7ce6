// The header-only C++ wrapper (abi/sinsr_host.hpp) over the C API, linked against libsinsr_host
// only: its handles release what they own exactly once, its results equal the C API's bytes, and
// failures (a status, a cancelled run, an exception thrown by a progress callback) come back as
// C++ exceptions on this side of the library.
#include "sinsr_host.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

int deletions = 0;

// A caller-made tensor whose deleter counts.
DLManagedTensor* counted(float* data, int64_t* shape, int32_t ndim) {
  auto* m = new DLManagedTensor{};
  m->dl_tensor.data = data;
  m->dl_tensor.device.device_type = kDLCPU;
  m->dl_tensor.ndim = ndim;
  m->dl_tensor.dtype = DLDataType{static_cast<uint8_t>(kDLFloat), 32, 1};
  m->dl_tensor.shape = shape;
  m->deleter = [](DLManagedTensor* self) {
    ++deletions;
    delete self;
  };
  return m;
}

// The toy pipeline of the C test: a test network, 8-pixel tiles, x4.
const char* kToySpec =
    "{\"backbone\": {\"name\": \"local_blur\", \"weights\": \"none\"}, \"sampler\": \"single-step\", "
    "\"chop_size\": 8, \"pad_multiple\": 8}";

sinsr::Runtime toy_runtime() {
  sinsr::RuntimeOptions options;
  options.threads = 1;
  options.default_paths = false;
  sinsr::Runtime runtime(options);
  runtime.load(SINSR_TEST_RESSHIFT);
  runtime.load(SINSR_TEST_COMPONENTS);
  return runtime;
}

std::vector<float> ramp(size_t n) {
  std::vector<float> v(n);
  for (size_t k = 0; k < n; ++k) v[k] = float(k % 7) / 7.0f;
  return v;
}

TEST(CppApi, VersionsAndFormatsAreTheCApis) {
  EXPECT_EQ(sinsr::version(), sinsr_version());
  const std::vector<std::string> formats = sinsr::image_formats();
  ASSERT_FALSE(formats.empty());
  std::string joined;
  for (const auto& f : formats) joined += (joined.empty() ? "" : " ") + f;
  EXPECT_EQ(joined, sinsr_image_formats());
}

TEST(CppApi, TensorsRunTheirDeleterOnce) {
  float data[6] = {0};
  int64_t shape[3] = {1, 2, 3};
  deletions = 0;
  {
    sinsr::Tensor a(counted(data, shape, 3));
    EXPECT_EQ(a.shape(), (std::vector<int64_t>{1, 2, 3}));
    EXPECT_EQ(a.numel(), 6);
    sinsr::Tensor b(std::move(a));
    EXPECT_FALSE(a);
    sinsr::Tensor c;
    c = std::move(b);
    EXPECT_EQ(deletions, 0);
  }
  EXPECT_EQ(deletions, 1);
  sinsr::Tensor d(counted(data, shape, 3));
  DLManagedTensor* raw = d.release();
  d = sinsr::Tensor();
  EXPECT_EQ(deletions, 1);
  raw->deleter(raw);
  EXPECT_EQ(deletions, 2);
  // copy_of keeps its own samples; data<T> refuses another type.
  const uint16_t wide[4] = {0, 1, 65535, 7};
  sinsr::Tensor w = sinsr::Tensor::copy_of(wide, {2, 2, 1});
  EXPECT_EQ(w.data<uint16_t>()[2], 65535);
  EXPECT_THROW(w.data<float>(), sinsr::Error);
}

TEST(CppApi, ComponentsAndLoadFailures) {
  sinsr::Runtime runtime = toy_runtime();
  bool found = false;
  for (const sinsr::Component& c : runtime.components())
    if (c.name == "local_blur") {
      found = true;
      EXPECT_EQ(c.kind_name, "backbone");
      EXPECT_NE(c.file.find("test_components"), std::string::npos) << c.file;
    }
  EXPECT_TRUE(found);
  try {
    runtime.load("no_such_plugin.so");
    ADD_FAILURE() << "a missing plugin loaded";
  } catch (const sinsr::Error& e) {
    EXPECT_NE(e.code(), SINSR_OK);
    EXPECT_NE(std::string(e.what()).find("no_such_plugin.so"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(runtime.components());  // the runtime is as it was
}

TEST(CppApi, RunsGiveTheCApisBytes) {
  sinsr::Runtime runtime = toy_runtime();
  sinsr::Pipeline pipeline(runtime, kToySpec);
  EXPECT_NE(pipeline.settings().find("\"local_blur\""), std::string::npos) << pipeline.settings();
  const std::vector<float> lr = ramp(16 * 16 * 3);
  sinsr::Tensor sr = pipeline.run(sinsr::Tensor::copy_of(lr.data(), {16, 16, 3}));
  ASSERT_EQ(sr.shape(), (std::vector<int64_t>{64, 64, 3}));
  // The same through the C API by hand.
  std::vector<float> copy = lr;
  int64_t shape[3] = {16, 16, 3};
  DLManagedTensor* out = nullptr;
  deletions = 0;
  ASSERT_EQ(sinsr_pipeline_run(pipeline.get(), counted(copy.data(), shape, 3), &out), nullptr);
  EXPECT_EQ(deletions, 1);
  sinsr::Tensor by_hand(out);
  ASSERT_EQ(by_hand.shape(), sr.shape());
  EXPECT_EQ(std::memcmp(by_hand.data<float>(), sr.data<float>(), sizeof(float) * size_t(sr.numel())), 0);
  // uint8 in, uint8 out.
  std::vector<uint8_t> bytes(16 * 16 * 3);
  for (size_t k = 0; k < bytes.size(); ++k) bytes[k] = uint8_t(k * 37);
  sinsr::Tensor sr8 = pipeline.run(sinsr::Tensor::copy_of(bytes.data(), {16, 16, 3}));
  EXPECT_EQ(sr8.dtype().bits, 8);
  EXPECT_EQ(sr8.shape(), (std::vector<int64_t>{64, 64, 3}));
  // A refused spec throws, with the C API's code.
  try {
    sinsr::Pipeline bad(runtime, "{\"backbone\": {\"name\": \"no_such_network\"}}");
    ADD_FAILURE() << "an unknown backbone made a pipeline";
  } catch (const sinsr::Error& e) {
    EXPECT_NE(e.code(), SINSR_OK);
    EXPECT_NE(std::string(e.what()).find("no_such_network"), std::string::npos) << e.what();
  }
}

TEST(CppApi, ProgressCancelsAndItsExceptionsComeBack) {
  sinsr::Runtime runtime = toy_runtime();
  sinsr::Pipeline pipeline(runtime, kToySpec);
  const std::vector<float> batch = ramp(3 * 3 * 16 * 16);
  int calls = 0, total = 0;
  sinsr::Tensor sr = pipeline.run(sinsr::Tensor::copy_of(batch.data(), {3, 3, 16, 16}), [&](int32_t, int32_t t) {
    ++calls;
    total = t;
    return true;
  });
  EXPECT_EQ(sr.shape(), (std::vector<int64_t>{3, 3, 64, 64}));
  EXPECT_EQ(calls, total);
  EXPECT_GE(total, 3);
  calls = 0;
  try {
    pipeline.run(sinsr::Tensor::copy_of(batch.data(), {3, 3, 16, 16}), [&](int32_t done, int32_t) {
      ++calls;
      return done < 2;
    });
    ADD_FAILURE() << "a run returning false went on";
  } catch (const sinsr::Error& e) {
    EXPECT_EQ(e.code(), SINSR_ERR_CANCELLED) << e.what();
  }
  EXPECT_EQ(calls, 2);
  // An exception from the callback stops the run at once and is the one the caller gets.
  calls = 0;
  EXPECT_THROW(pipeline.run(sinsr::Tensor::copy_of(batch.data(), {3, 3, 16, 16}),
                            [&](int32_t, int32_t) -> bool {
                              ++calls;
                              throw std::out_of_range("stop here");
                            }),
               std::out_of_range);
  EXPECT_EQ(calls, 1);
  // The pipeline is still whole.
  EXPECT_EQ(pipeline.run(sinsr::Tensor::copy_of(batch.data(), {3, 3, 16, 16})).shape(), sr.shape());
}

TEST(CppApi, FilesAsTheCliWritesThem) {
  sinsr::Runtime runtime = toy_runtime();
  sinsr::Pipeline pipeline(runtime, kToySpec);
  const std::string ext = sinsr::image_formats().front();  // whatever this build writes
  const std::string lr = "cpp_api_test_lr." + ext, sr = "cpp_api_test_sr." + ext;
  std::vector<uint8_t> bytes(12 * 10 * 3);
  for (size_t k = 0; k < bytes.size(); ++k) bytes[k] = uint8_t(k * 13);
  sinsr::image_write(lr, sinsr::Tensor::copy_of(bytes.data(), {12, 10, 3}), 8);
  int32_t bits = 0;
  sinsr::Tensor back = sinsr::image_read_samples(lr, &bits);
  EXPECT_EQ(bits, 8);
  ASSERT_EQ(back.shape(), (std::vector<int64_t>{12, 10, 3}));
  EXPECT_EQ(std::memcmp(back.data<uint8_t>(), bytes.data(), bytes.size()), 0);
  pipeline.upscale_file(lr, sr);
  EXPECT_EQ(sinsr::image_read(sr).shape(), (std::vector<int64_t>{48, 40, 3}));
  sinsr_file_options small = sinsr_file_default_options();
  small.max_pixels = 100;
  try {
    pipeline.upscale_file(lr, sr, small);
    ADD_FAILURE() << "an image over max_pixels was upscaled";
  } catch (const sinsr::Error& e) {
    EXPECT_EQ(e.code(), SINSR_ERR_FORMAT);
    EXPECT_NE(std::string(e.what()).find("(max_pixels raises it)"), std::string::npos) << e.what();
  }
  try {
    sinsr::image_read("cpp_api_test_missing." + ext);
    ADD_FAILURE() << "a missing file was read";
  } catch (const sinsr::Error& e) {
    EXPECT_EQ(e.code(), SINSR_ERR_IO);
    EXPECT_NE(std::string(e.what()).find("cpp_api_test_missing"), std::string::npos) << e.what();
  }
  std::remove(lr.c_str());
  std::remove(sr.c_str());
}

}  // namespace
