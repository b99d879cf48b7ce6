// The host C API driven by a byte stream of calls: runtime create/load/find/info, pipeline
// create/run/destroy, with hostile arguments (NULLs, bad indices, struct sizes, spec text,
// image shapes). Every call returns a status or a value; destroy(NULL) is a no-op. Double
// destroy is the caller's error (documented) and is not generated.
#include "fuzz_common.hpp"

#include "sinsr_host.h"

#include <dlpack/dlpack.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

namespace {

struct Bytes {
  const uint8_t* p;
  size_t n;
  uint8_t u8() {
    if (!n) return 0;
    --n;
    return *p++;
  }
  // A string of up to `max` bytes, length first.
  std::string text(size_t max) {
    size_t len = std::min<size_t>(u8(), std::min(max, n));
    std::string s(reinterpret_cast<const char*>(p), len);
    p += len;
    n -= len;
    return s;
  }
};

void check(sinsr_status* st) {
  if (!st) return;
  // The message and the code are readable, and the same text is the thread's last error.
  if (std::strcmp(sinsr_status_message(st), sinsr_last_error()) != 0) {
    std::fprintf(stderr, "last_error differs from the status message\n");
    std::abort();
  }
  (void)sinsr_status_code(st);
  sinsr_status_release(st);
}

// Spec texts the stream picks from, then mutates with its own bytes.
const char* kSpecs[] = {
    R"({"sampler": "single-step", "codec": {"name": "space_to_depth", "config": {"factor": 2}}, "backbone": "local_blur"})",
    R"({"backbone": "local_blur", "sampler": {"name": "deterministic", "config": {"steps": 4}}, "steps": 2, "scale": 4})",
    R"({"backbone": {"name": "tiny_convnet", "config": {"seed": 3}}, "sampler": "stochastic", "steps": 1})",
    R"({"backbone": "thrower", "codec": "space_to_depth", "seed": 1, "device": "cpu", "precision": "bf16"})",
    R"({"backbone": "local_blur", "chop_size": 8, "chop_stride": 4, "pad_multiple": 3, "scale": 2})",
};

struct Tensor {
  DLManagedTensor m{};
  std::vector<int64_t> shape;
  std::vector<float> data;
};

void free_tensor(DLManagedTensor* m) { delete static_cast<Tensor*>(m->manager_ctx); }

DLManagedTensor* make_image(Bytes& b) {
  auto* t = new Tensor;
  const int dims = b.u8() % 2 ? 3 : 4;
  for (int d = 0; d < dims; ++d) t->shape.push_back(b.u8() % 9);
  int64_t numel = 1;
  for (auto s : t->shape) numel *= s;
  // Never a null data pointer: an empty tensor with null data is fuzz_dlpack's case.
  t->data.assign(size_t(std::max<int64_t>(numel, 1)), 0.5f);
  t->m.dl_tensor.data = t->data.data();
  t->m.dl_tensor.device = {kDLCPU, 0};
  t->m.dl_tensor.ndim = dims;
  t->m.dl_tensor.dtype = {kDLFloat, 32, 1};
  t->m.dl_tensor.shape = t->shape.data();
  t->m.manager_ctx = t;
  t->m.deleter = free_tensor;
  return &t->m;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  sinsr_fuzz::init_torch();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Bytes b{data, size};
  sinsr_runtime* rt = nullptr;
  sinsr_runtime_options opts{sizeof(opts), 1, 0};
  opts.struct_size = b.u8() % 2 ? sizeof(opts) : b.u8() % 24;
  check(sinsr_runtime_create(b.u8() % 8 == 0 ? nullptr : &opts, &rt));
  std::vector<sinsr_pipeline*> pipelines;
  for (int step = 0; step < 16 && b.n; ++step) {
    switch (b.u8() % 10) {
      case 0:  // load: the in-tree plugins, a bad path, or NULLs
        switch (b.u8() % 4) {
          case 0: check(sinsr_runtime_load(rt, SINSR_PLUGIN_DIR)); break;
          case 1: check(sinsr_runtime_load(rt, SINSR_TEST_PLUGIN)); break;
          case 2: check(sinsr_runtime_load(rt, (std::string(SINSR_PLUGIN_DIR) + "/" + b.text(16)).c_str())); break;
          default: check(sinsr_runtime_load(b.u8() % 2 ? rt : nullptr, nullptr)); break;
        }
        break;
      case 1: {
        size_t count = 0;
        check(sinsr_runtime_component_count(b.u8() % 8 ? rt : nullptr, b.u8() % 8 ? &count : nullptr));
        break;
      }
      case 2: {
        sinsr_component_info info{};
        info.struct_size = b.u8() % 2 ? sizeof(info) : b.u8();
        const size_t index = b.u8() % 2 ? b.u8() : size_t(-1) - b.u8();
        check(sinsr_runtime_component_info(rt, index, b.u8() % 8 ? &info : nullptr));
        if (info.name) (void)std::strlen(info.name);
        break;
      }
      case 3: {
        const sinsr_component* c = nullptr;
        const std::string name = b.text(24);
        check(sinsr_runtime_find(rt, int32_t(b.u8()) - 8, b.u8() % 8 ? name.c_str() : nullptr, &c));
        break;
      }
      case 4: {
        std::string spec = kSpecs[b.u8() % (sizeof(kSpecs) / sizeof(kSpecs[0]))];
        // A few byte edits, or a spec of the stream's own.
        const int edits = b.u8() % 4;
        for (int e = 0; e < edits && !spec.empty(); ++e) spec[b.u8() % spec.size()] = char(b.u8());
        if (b.u8() % 4 == 0) spec = b.text(64);
        sinsr_pipeline* p = nullptr;
        check(sinsr_pipeline_create(b.u8() % 8 ? rt : nullptr, b.u8() % 8 ? spec.c_str() : nullptr, &p));
        if (p) pipelines.push_back(p);
        break;
      }
      case 5: {
        if (pipelines.empty()) break;
        DLManagedTensor* out = nullptr;
        DLManagedTensor* image = b.u8() % 8 ? make_image(b) : nullptr;
        check(sinsr_pipeline_run(pipelines[b.u8() % pipelines.size()], image, b.u8() % 8 ? &out : nullptr));
        if (out) out->deleter(out);
        break;
      }
      case 6: {
        DLManagedTensor* out = nullptr;
        check(sinsr_pipeline_run(nullptr, make_image(b), &out));  // the input is released anyway
        break;
      }
      case 7:
        if (!pipelines.empty()) {
          const size_t i = b.u8() % pipelines.size();
          sinsr_pipeline_destroy(pipelines[i]);
          pipelines.erase(pipelines.begin() + long(i));
        }
        break;
      case 8:
        sinsr_pipeline_destroy(nullptr);
        sinsr_runtime_destroy(nullptr);
        break;
      default:
        (void)sinsr_kind_name(int32_t(b.u8()) - 8);
        (void)sinsr_version();
        (void)sinsr_abi_version();
        break;
    }
  }
  for (auto* p : pipelines) sinsr_pipeline_destroy(p);
  sinsr_runtime_destroy(rt);
  return 0;
}
