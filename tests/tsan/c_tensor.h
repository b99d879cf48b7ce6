/* Small DLPack helpers for the plain-C test plugins: float32/int64 CPU tensors owned by one
 * malloc block (header, shape and data), so that the deleter is a single free(). */
#ifndef SINSR_TEST_C_TENSOR_H
#define SINSR_TEST_C_TENSOR_H

#include "sinsr_plugin.h"

#include <stdlib.h>
#include <string.h>

typedef struct c_tensor {
  DLManagedTensor managed;
  int64_t shape[8];
} c_tensor;

static inline void c_tensor_free(DLManagedTensor* self) { free(self); }

static inline void c_tensor_release(DLManagedTensor* m) {
  if (m && m->deleter) m->deleter(m);
}

static inline int64_t c_tensor_numel(const DLTensor* t) {
  int64_t n = 1;
  for (int32_t k = 0; k < t->ndim; ++k) n *= t->shape[k];
  return n;
}

/* A new CPU tensor of the given shape and type (code: kDLFloat or kDLInt, 32 or 64 bits); its
   data zeroed. NULL when out of memory or more than 8 dimensions. */
static inline DLManagedTensor* c_tensor_new(int32_t ndim, const int64_t* shape, uint8_t code, uint8_t bits) {
  if (ndim < 0 || ndim > 8) return NULL;
  int64_t n = 1;
  for (int32_t k = 0; k < ndim; ++k) n *= shape[k];
  const size_t bytes = (size_t)n * (bits / 8u);
  c_tensor* t = (c_tensor*)calloc(1, sizeof(c_tensor) + bytes);
  if (!t) return NULL;
  memcpy(t->shape, shape, (size_t)ndim * sizeof(int64_t));
  t->managed.dl_tensor.data = (void*)(t + 1);
  t->managed.dl_tensor.device.device_type = kDLCPU;
  t->managed.dl_tensor.ndim = ndim;
  t->managed.dl_tensor.shape = t->shape;
  t->managed.dl_tensor.dtype.code = code;
  t->managed.dl_tensor.dtype.bits = bits;
  t->managed.dl_tensor.dtype.lanes = 1;
  t->managed.deleter = c_tensor_free;
  return &t->managed;
}

/* A dense copy of a contiguous CPU float32 tensor; NULL when it is not one (or no memory). */
static inline DLManagedTensor* c_tensor_copy(const DLTensor* src) {
  if (src->device.device_type != kDLCPU || src->dtype.code != kDLFloat || src->dtype.bits != 32) return NULL;
  if (src->strides) {
    int64_t expect = 1;
    for (int32_t k = src->ndim - 1; k >= 0; --k) {
      if (src->shape[k] != 1 && src->strides[k] != expect) return NULL;
      expect *= src->shape[k];
    }
  }
  DLManagedTensor* out = c_tensor_new(src->ndim, src->shape, kDLFloat, 32);
  if (out)
    memcpy(out->dl_tensor.data, (const char*)src->data + src->byte_offset, (size_t)c_tensor_numel(src) * sizeof(float));
  return out;
}

#endif /* SINSR_TEST_C_TENSOR_H */
