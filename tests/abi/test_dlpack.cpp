// sdk::from_dlpack on descriptions a caller got wrong (the fuzz findings of
// tests/fuzz/regressions/dlpack, and their neighbours): each is an sdk::Error naming the problem
// and releases the input exactly once; an empty tensor with null data imports.
#include <gtest/gtest.h>

#include <sinsr/sdk.hpp>

#include <dlpack/dlpack.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace {

struct Described {
  DLManagedTensor m{};
  std::vector<int64_t> shape;
  int released = 0;
  float data[8] = {1, 2, 3, 4, 5, 6, 7, 8};

  explicit Described(std::vector<int64_t> dims) : shape(std::move(dims)) {
    DLTensor& t = m.dl_tensor;
    t.data = data;
    t.device = {kDLCPU, 0};
    t.ndim = int32_t(shape.size());
    t.dtype = {kDLFloat, 32, 1};
    t.shape = shape.empty() ? nullptr : shape.data();
    m.manager_ctx = this;
    m.deleter = [](DLManagedTensor* self) { ++static_cast<Described*>(self->manager_ctx)->released; };
  }
};

// The refusal's message, or "" when it imported.
std::string import_error(Described& d) {
  try {
    at::Tensor t = sinsr::sdk::from_dlpack(&d.m);
    return "";
  } catch (const sinsr::sdk::Error& e) {
    EXPECT_EQ(e.code(), SINSR_ERR_INVALID_ARGUMENT);
    return e.what();
  }
}

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(DlpackImport, RefusesWhatItCannotReadAndReleasesOnce) {
  {
    Described d({2, 2});
    d.m.dl_tensor.dtype.lanes = 0;  // was a c10::Error escaping as a foreign exception
    EXPECT_TRUE(has(import_error(d), "0 lanes"));
    EXPECT_EQ(d.released, 1);
  }
  {
    const int64_t big = int64_t(1) << 40;
    Described d({big, big, big});  // the element count overflowed a signed product
    d.m.dl_tensor.data = nullptr;
    EXPECT_TRUE(has(import_error(d), "sizes beyond 64 bits"));
    EXPECT_EQ(d.released, 1);
  }
  {
    Described d({0, int64_t(1) << 40, int64_t(1) << 40});  // empty, but its strides would overflow
    d.m.dl_tensor.data = nullptr;
    EXPECT_TRUE(has(import_error(d), "sizes beyond 64 bits"));
    EXPECT_EQ(d.released, 1);
  }
  {
    Described d({3, -1});
    EXPECT_TRUE(has(import_error(d), "negative size -1 in dimension 1"));
    EXPECT_EQ(d.released, 1);
  }
  {
    Described d({2, 2});
    d.m.dl_tensor.shape = nullptr;
    EXPECT_TRUE(has(import_error(d), "null shape"));
    EXPECT_EQ(d.released, 1);
  }
  {
    Described d({2, 2});
    d.m.dl_tensor.data = nullptr;
    EXPECT_TRUE(has(import_error(d), "null data for 4 elements"));
    EXPECT_EQ(d.released, 1);
  }
  {
    Described d({3, 2});  // LibTorch would accept it, then fail in the next operation
    int64_t strides[] = {1, -1};
    d.m.dl_tensor.strides = strides;
    EXPECT_TRUE(has(import_error(d), "negative stride -1 in dimension 1"));
    EXPECT_EQ(d.released, 1);
  }
  {
    Described d({0, 2});  // empty, yet LibTorch cannot hold the stride
    int64_t strides[] = {-(int64_t(5) << 60), 1};
    d.m.dl_tensor.strides = strides;
    EXPECT_TRUE(has(import_error(d), "negative stride"));
    EXPECT_EQ(d.released, 1);
  }
  {
    const int64_t big = int64_t(1) << 62;
    Described d({3, 2});
    int64_t strides[] = {big, 1};
    d.m.dl_tensor.strides = strides;
    EXPECT_TRUE(has(import_error(d), "beyond 64 bits"));
    EXPECT_EQ(d.released, 1);
  }
  {
    Described d({2});
    d.m.dl_tensor.dtype = {kDLFloat, 8, 1};  // no such float: the importer's refusal, converted
    EXPECT_NE(import_error(d), "");
    EXPECT_EQ(d.released, 1);
  }
}

TEST(DlpackImport, EmptyWithNullDataImportsAndReleasesAtOnce) {
  Described d({0, 3});
  d.m.dl_tensor.data = nullptr;  // was never released
  at::Tensor t = sinsr::sdk::from_dlpack(&d.m);
  EXPECT_EQ(d.released, 1);
  EXPECT_EQ(t.sizes(), at::IntArrayRef({0, 3}));
  EXPECT_EQ(t.scalar_type(), at::kFloat);
}

TEST(DlpackImport, AGoodTensorIsBorrowedUntilItDies) {
  Described d({2, 4});
  {
    at::Tensor t = sinsr::sdk::from_dlpack(&d.m);
    EXPECT_EQ(t.data_ptr<float>(), d.data);
    EXPECT_EQ(t.sum().item<float>(), 36.0f);
    EXPECT_EQ(d.released, 0);
  }
  EXPECT_EQ(d.released, 1);
}

}  // namespace
