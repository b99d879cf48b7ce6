// The DLPack import (sdk::from_dlpack): a DLManagedTensor described by hostile bytes (ndim,
// shape, strides, dtype, device, byte_offset, null data) over a buffer the harness owns. The
// import gives a tensor or sdk::Error, releases the input exactly once either way, and a tensor
// whose described extent lies inside the buffer reads back without leaving it.
#include "fuzz_common.hpp"

#include <dlpack/dlpack.h>

#include <cstring>
#include <vector>

namespace {

struct Reader {
  const uint8_t* p;
  size_t n;
  template <class T>
  T take() {
    T v{};
    const size_t k = std::min(sizeof(T), n);
    std::memcpy(&v, p, k);
    p += k;
    n -= k;
    return v;
  }
};

alignas(64) uint8_t g_buffer[4096];

struct Owned {
  DLManagedTensor m{};
  std::vector<int64_t> shape, strides;
  int* released = nullptr;
};

void deleter(DLManagedTensor* m) {
  Owned* o = static_cast<Owned*>(m->manager_ctx);
  ++*o->released;
  delete o;
}

// [lo, hi) in bytes of what the tensor may address, or false when it overflows.
bool extent(const at::Tensor& t, int64_t& lo, int64_t& hi) {
  const int64_t item = int64_t(t.element_size());
  lo = hi = 0;
  if (t.numel() == 0) return true;
  __int128 low = 0, high = 0;
  for (int64_t d = 0; d < t.dim(); ++d) {
    const __int128 span = __int128(t.size(d) - 1) * t.stride(d);
    (span < 0 ? low : high) += span;
  }
  const uint8_t* base = static_cast<const uint8_t*>(t.data_ptr());
  const __int128 start = __int128(base - g_buffer) + low * item, end = __int128(base - g_buffer) + (high + 1) * item;
  if (start < 0 || end > __int128(sizeof(g_buffer))) return false;
  lo = int64_t(start);
  hi = int64_t(end);
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  sinsr_fuzz::init_torch();
  for (size_t i = 0; i < sizeof(g_buffer); ++i) g_buffer[i] = uint8_t(i * 131u);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader in{data, size};
  int released = 0;
  auto* o = new Owned;
  o->released = &released;
  DLTensor& t = o->m.dl_tensor;
  const uint8_t flags = in.take<uint8_t>();
  t.ndim = in.take<int8_t>();
  t.dtype.code = in.take<uint8_t>();
  t.dtype.bits = in.take<uint8_t>();
  t.dtype.lanes = in.take<uint16_t>();
  t.device.device_type = (flags & 1) ? DLDeviceType(in.take<uint8_t>()) : kDLCPU;
  t.device.device_id = in.take<int8_t>();
  t.byte_offset = (flags & 2) ? in.take<uint64_t>() : in.take<uint8_t>();
  const int dims = std::max(0, std::min<int>(t.ndim, 16));
  for (int d = 0; d < dims; ++d) o->shape.push_back((flags & 4) ? in.take<int64_t>() : in.take<int8_t>());
  for (int d = 0; d < dims; ++d) o->strides.push_back((flags & 8) ? in.take<int64_t>() : in.take<int8_t>());
  // ndim beyond the arrays: shape must still hold ndim entries, so a lying ndim only comes with
  // a null shape (the caller's error the importer must not read through).
  if (t.ndim > dims) t.ndim = dims;
  t.shape = dims ? o->shape.data() : nullptr;
  t.strides = (flags & 16) ? nullptr : (dims ? o->strides.data() : nullptr);
  t.data = (flags & 32) ? nullptr : g_buffer + (flags & 64 ? 1 : 0);
  o->m.manager_ctx = o;
  o->m.deleter = deleter;
  {
    at::Tensor x;
    sinsr_fuzz::expect_sdk_errors_only("from_dlpack", [&] { x = sinsr::sdk::from_dlpack(&o->m); });
    if (x.defined()) {
      int64_t lo = 0, hi = 0;
      if (x.is_cpu() && extent(x, lo, hi) && x.numel() < (1 << 20)) {
        volatile double s = x.to(at::kDouble).sum().item<double>();
        (void)s;
        DLManagedTensor* back = sinsr::sdk::to_dlpack(x);
        sinsr::sdk::release(back);
      }
    }
  }
  if (released != 1) {
    std::fprintf(stderr, "from_dlpack released its input %d times\n", released);
    std::abort();
  }
  return 0;
}
