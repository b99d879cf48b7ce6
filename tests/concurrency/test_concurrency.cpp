// Several threads upscaling through the host C API at once, on the shipped model (student +
// space_to_depth + resshift samplers, all declared SINSR_THREAD_PARALLEL or serialised by the
// host): no crash, and every result equal, bit for bit, to the one-thread result. The noise of
// a stochastic sampler comes from the pipeline's seed per image, so it is deterministic too.
#include "sinsr_host.h"

#include "runtime/runtime.hpp"

#include <ATen/ATen.h>
#include <ATen/DLConvertor.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <dlfcn.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Runtime {
  sinsr_runtime* rt = nullptr;
  Runtime() {
    sinsr_runtime_options o{sizeof(o), 1, 0};
    expect_ok(sinsr_runtime_create(&o, &rt));
    expect_ok(sinsr_runtime_load(rt, SINSR_PLUGIN_DIR));
  }
  ~Runtime() { sinsr_runtime_destroy(rt); }
  static void expect_ok(sinsr_status* st) {
    if (st) {
      ADD_FAILURE() << sinsr_status_message(st);
      sinsr_status_release(st);
    }
  }
};

sinsr_pipeline* make_pipeline(sinsr_runtime* rt, const std::string& spec) {
  sinsr_pipeline* p = nullptr;
  Runtime::expect_ok(sinsr_pipeline_create(rt, spec.c_str(), &p));
  return p;
}

// One [H,W,C] image through the pipeline; an undefined tensor on failure.
at::Tensor run(sinsr_pipeline* p, const at::Tensor& hwc) {
  DLManagedTensor* out = nullptr;
  sinsr_status* st = sinsr_pipeline_run(p, at::toDLPack(hwc.clone()), &out);
  if (st) {
    ADD_FAILURE() << sinsr_status_message(st);
    sinsr_status_release(st);
    return at::Tensor();
  }
  return at::fromDLPack(out).clone();
}

const char* kSpecs[] = {
    R"({"backbone": "student"})",                                       // the shipped one-step model
    R"({"backbone": "student", "sampler": "stochastic", "steps": 2})",  // noise drawn per image
};

at::Tensor input(int64_t seed) {
  at::manual_seed(seed);
  return at::rand({16, 20, 3});
}

// Threads belong to whoever asked (issue 35): creating a runtime changes no process-wide count;
// a pipeline's count (the runtime's, or its spec's "threads") holds for LibTorch's pool and for
// the BLAS library under it (Debian's LibTorch calls OpenBLAS, whose own pool at::set_num_threads
// leaves alone) while it runs, and the previous counts come back after.
TEST(Concurrency, APipelineAppliesItsThreadCountAroundItsRunOnly) {
  using GetThreads = int (*)();
  const auto blas = reinterpret_cast<GetThreads>(::dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  sinsr::host::set_threads(3);
  const int before = at::get_num_threads(), blas_before = blas ? blas() : 0;
  for (int n : {2, 1}) {
    sinsr_runtime* rt = nullptr;
    sinsr_runtime_options o{sizeof(o), n, 0};
    Runtime::expect_ok(sinsr_runtime_create(&o, &rt));
    EXPECT_EQ(at::get_num_threads(), before) << "creating a runtime changed the process's count";
    Runtime::expect_ok(sinsr_runtime_load(rt, SINSR_PLUGIN_DIR));
    for (const std::string spec : {std::string(kSpecs[0]), std::string(R"({"backbone": "student", "threads": 1})")}) {
      const int want = spec.find("threads") != std::string::npos ? 1 : n;
      sinsr_pipeline* p = make_pipeline(rt, spec);
      struct Seen {
        GetThreads blas;
        int torch = 0, blas_count = 0;
      } seen{blas};
      sinsr_run_options ro{sizeof(ro),
                           [](void* user, int32_t, int32_t) -> int32_t {
                             auto* s = static_cast<Seen*>(user);
                             s->torch = at::get_num_threads();
                             s->blas_count = s->blas ? s->blas() : 0;
                             return 1;
                           },
                           &seen};
      DLManagedTensor* out = nullptr;
      Runtime::expect_ok(sinsr_pipeline_run_with(p, at::toDLPack(input(1)), &ro, &out));
      if (out) out->deleter(out);
      EXPECT_EQ(seen.torch, want) << spec;
      if (blas) EXPECT_EQ(seen.blas_count, want) << spec;
      EXPECT_EQ(at::get_num_threads(), before) << "the run did not restore the count";
      if (blas) EXPECT_EQ(blas(), blas_before);
      sinsr_pipeline_destroy(p);
    }
    sinsr_runtime_destroy(rt);
  }
  if (!blas) GTEST_SKIP() << "this LibTorch calls no OpenBLAS";
}

// Each thread its own pipeline over one shared runtime.
TEST(Concurrency, PipelinesSharingARuntime) {
  Runtime r;
  for (const char* spec : kSpecs) {
    sinsr_pipeline* solo = make_pipeline(r.rt, spec);
    ASSERT_NE(solo, nullptr) << spec;
    std::vector<at::Tensor> inputs, expected;
    for (int i = 0; i < 3; ++i) {
      inputs.push_back(input(i));
      expected.push_back(run(solo, inputs.back()));
    }
    sinsr_pipeline_destroy(solo);
    std::atomic<int> mismatches{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 3; ++t)
      threads.emplace_back([&, t] {
        sinsr_pipeline* p = make_pipeline(r.rt, spec);
        for (int k = 0; k < 3 && p; ++k) {
          const int i = (t + k) % 3;
          at::Tensor y = run(p, inputs[i]);
          if (!y.defined() || !y.equal(expected[i])) ++mismatches;
        }
        sinsr_pipeline_destroy(p);
      });
    for (auto& th : threads) th.join();
    EXPECT_EQ(mismatches.load(), 0) << spec;
  }
}

// Threads sharing one pipeline: its components are parallel-safe or serialised by the host.
TEST(Concurrency, ThreadsSharingAPipeline) {
  Runtime r;
  for (const char* spec : kSpecs) {
    sinsr_pipeline* p = make_pipeline(r.rt, spec);
    ASSERT_NE(p, nullptr) << spec;
    std::vector<at::Tensor> inputs, expected;
    for (int i = 0; i < 3; ++i) {
      inputs.push_back(input(10 + i));
      expected.push_back(run(p, inputs.back()));
    }
    std::atomic<int> mismatches{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 3; ++t)
      threads.emplace_back([&, t] {
        for (int k = 0; k < 3; ++k) {
          const int i = (t + k) % 3;
          at::Tensor y = run(p, inputs[i]);
          if (!y.defined() || !y.equal(expected[i])) ++mismatches;
        }
      });
    for (auto& th : threads) th.join();
    EXPECT_EQ(mismatches.load(), 0) << spec;
    sinsr_pipeline_destroy(p);
  }
}

// Creating and destroying runtimes and pipelines from many threads at once.
TEST(Concurrency, CreateAndDestroyInParallel) {
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int k = 0; k < 2; ++k) {
        Runtime r;
        sinsr_pipeline* p = make_pipeline(r.rt, kSpecs[0]);
        if (!p) ++failures;
        sinsr_pipeline_destroy(p);
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

// SINSR_THREAD_SERIAL: one call at a time over all instances of the component, create, destroy
// and tape release included (they ran outside the lock). The probe plugin counts overlapping
// calls and returns the count as its loss value.
TEST(Concurrency, SerialComponentsGetOneCallAtATimeCreateAndDestroyIncluded) {
  sinsr::host::Runtime rt(1);
  rt.load_file(SINSR_TEST_PLUGIN_DIR "/serial_probe.so");
  auto probe = rt.find(SINSR_KIND_LOSS, "serial_probe");
  std::vector<std::thread> threads;
  for (int k = 0; k < 4; ++k)
    threads.emplace_back([&] {
      for (int i = 0; i < 25; ++i) {
        sinsr::host::LossHandle h(probe, nlohmann::json::object());
        auto value_and_tape = h.forward_train(at::zeros({1}), at::zeros({1}));
        (void)value_and_tape;  // the tape is released through the table when dropped, then h is destroyed
      }
    });
  for (auto& t : threads) t.join();
  sinsr::host::LossHandle h(probe, nlohmann::json::object());
  EXPECT_EQ(h.forward(at::zeros({1}), at::zeros({1})).item<float>(), 0.0f) << "calls of a SERIAL component overlapped";
}

}  // namespace

namespace {

// Two runtimes that load one library share its code and globals, so SERIAL holds across them
// (each runtime had its own lock; ThreadSanitizer found the overlap, tools/tsan.sh).
TEST(Concurrency, SerialHoldsAcrossRuntimesLoadingOneLibrary) {
  sinsr::host::Runtime a(1), b(1);
  a.load_file(SINSR_TEST_PLUGIN_DIR "/serial_probe.so");
  b.load_file(SINSR_TEST_PLUGIN_DIR "/serial_probe.so");
  std::vector<std::thread> threads;
  for (int k = 0; k < 4; ++k)
    threads.emplace_back([&, k] {
      auto probe = (k % 2 ? a : b).find(SINSR_KIND_LOSS, "serial_probe");
      for (int i = 0; i < 25; ++i) {
        sinsr::host::LossHandle h(probe, nlohmann::json::object());
        h.forward(at::zeros({1}), at::zeros({1}));
      }
    });
  for (auto& t : threads) t.join();
  sinsr::host::LossHandle h(a.find(SINSR_KIND_LOSS, "serial_probe"), nlohmann::json::object());
  EXPECT_EQ(h.forward(at::zeros({1}), at::zeros({1})).item<float>(), 0.0f) << "calls of a SERIAL component overlapped";
}

}  // namespace
