/* Threads on the C API with two plain-C plugins: copy_backbone (SERIAL) and one_step (PARALLEL).
 * Run plainly by ctest (c_api_threads) and under ThreadSanitizer by tools/tsan.sh, where a data
 * race in the host (a call outside the SERIAL lock: create, destroy, tape release included) or in
 * the runtime's registry is a report and a non-zero exit.
 *   1. threads sharing one pipeline;
 *   2. threads each with their own pipeline on one runtime;
 *   3. threads each creating and destroying runtimes and pipelines, loading the plugins;
 *   4. a pipeline created and destroyed while another thread runs one.
 * Every result must equal the one-thread result of the same image.
 * Usage: c_api_threads PLUGIN_FOLDER */
#include "sinsr_host.h"

#include "c_tensor.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { kThreads = 4, kRuns = 6, kImages = 3, kH = 12, kW = 10, kC = 3 };

static const char* g_dir;
static int g_failed; /* set under g_lock */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static float g_expected[kImages][kH * 2][kW * 2][kC];

static const char* kSpec =
    "{\"backbone\": \"copy_backbone\", \"codec\": null, \"sampler\": \"one_step\", \"scale\": 2,"
    " \"chop_size\": 0, \"pad_multiple\": 4, \"seed\": 3}";

static void fail(const char* what, sinsr_status* st) {
  pthread_mutex_lock(&g_lock);
  fprintf(stderr, "c_api_threads: %s failed: %s\n", what, st ? sinsr_status_message(st) : "(wrong result)");
  ++g_failed;
  pthread_mutex_unlock(&g_lock);
  sinsr_status_release(st);
}

static sinsr_runtime* runtime_new(void) {
  sinsr_runtime_options o = sinsr_runtime_default_options();
  o.num_threads = 1;
  o.load_default_paths = 0;
  sinsr_runtime* rt = NULL;
  sinsr_status* st = sinsr_runtime_create(&o, &rt);
  if (st) {
    fail("sinsr_runtime_create", st);
    return NULL;
  }
  char path[4096];
  const char* names[] = {"copy_backbone.so", "one_step.so"};
  for (int k = 0; k < 2; ++k) {
    snprintf(path, sizeof path, "%s/%s", g_dir, names[k]);
    if ((st = sinsr_runtime_load(rt, path)) != NULL) fail(path, st);
  }
  return rt;
}

static sinsr_pipeline* pipeline_new(sinsr_runtime* rt) {
  sinsr_pipeline* p = NULL;
  sinsr_status* st = rt ? sinsr_pipeline_create(rt, kSpec, &p) : NULL;
  if (st) fail("sinsr_pipeline_create", st);
  return p;
}

/* Image i: [kH, kW, kC] float32 in [0, 1], different for each i. */
static DLManagedTensor* image(int i) {
  const int64_t shape[3] = {kH, kW, kC};
  DLManagedTensor* m = c_tensor_new(3, shape, kDLFloat, 32);
  float* v = (float*)m->dl_tensor.data;
  for (int k = 0; k < kH * kW * kC; ++k) v[k] = (float)((k * 7 + i * 13) % 29) / 28.0f;
  return m;
}

/* Runs image i; 1 when the result equals the expected one (or, with `store`, stores it). */
static int run_and_check(sinsr_pipeline* p, int i, int store) {
  DLManagedTensor* out = NULL;
  sinsr_status* st = sinsr_pipeline_run(p, image(i), &out);
  if (st) {
    fail("sinsr_pipeline_run", st);
    return 0;
  }
  const DLTensor* t = &out->dl_tensor;
  int ok = t->ndim == 3 && t->shape[0] == kH * 2 && t->shape[1] == kW * 2 && t->shape[2] == kC &&
           t->dtype.code == kDLFloat && t->dtype.bits == 32;
  if (ok && store) memcpy(g_expected[i], t->data, sizeof g_expected[i]);
  if (ok && !store) ok = memcmp(g_expected[i], t->data, sizeof g_expected[i]) == 0;
  c_tensor_release(out);
  if (!ok) fail("a result", NULL);
  return ok;
}

static sinsr_pipeline* g_shared;

static void* shared_pipeline(void* arg) {
  const int t = (int)(size_t)arg;
  for (int k = 0; k < kRuns; ++k) run_and_check(g_shared, (t + k) % kImages, 0);
  return NULL;
}

static sinsr_runtime* g_runtime;

static void* own_pipeline(void* arg) {
  const int t = (int)(size_t)arg;
  sinsr_pipeline* p = pipeline_new(g_runtime);
  for (int k = 0; k < kRuns && p; ++k) run_and_check(p, (t + k) % kImages, 0);
  sinsr_pipeline_destroy(p);
  return NULL;
}

static void* own_runtime(void* arg) {
  const int t = (int)(size_t)arg;
  for (int k = 0; k < 2; ++k) {
    sinsr_runtime* rt = runtime_new();
    sinsr_pipeline* p = pipeline_new(rt);
    if (p) run_and_check(p, (t + k) % kImages, 0);
    sinsr_pipeline_destroy(p);
    sinsr_runtime_destroy(rt);
  }
  return NULL;
}

static void* churn(void* arg) {
  (void)arg;
  for (int k = 0; k < kRuns * 2; ++k) sinsr_pipeline_destroy(pipeline_new(g_runtime));
  return NULL;
}

static void in_threads(const char* what, void* (*body)(void*), int n) {
  pthread_t th[kThreads + 1];
  for (int t = 0; t < n; ++t)
    if (pthread_create(&th[t], NULL, body, (void*)(size_t)t) != 0) fail(what, NULL);
  for (int t = 0; t < n; ++t) pthread_join(th[t], NULL);
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: c_api_threads PLUGIN_FOLDER\n");
    return 2;
  }
  g_dir = argv[1];
  g_runtime = runtime_new();
  g_shared = pipeline_new(g_runtime);
  if (!g_shared) return 1;
  for (int i = 0; i < kImages; ++i) run_and_check(g_shared, i, 1);

  in_threads("shared pipeline", shared_pipeline, kThreads);
  in_threads("own pipelines", own_pipeline, kThreads);
  in_threads("own runtimes", own_runtime, kThreads);
  /* Creation and destruction beside runs of the shared pipeline. */
  pthread_t runner, churner;
  pthread_create(&runner, NULL, shared_pipeline, (void*)0);
  pthread_create(&churner, NULL, churn, NULL);
  pthread_join(runner, NULL);
  pthread_join(churner, NULL);

  sinsr_pipeline_destroy(g_shared);
  sinsr_runtime_destroy(g_runtime);
  if (g_failed) {
    fprintf(stderr, "c_api_threads: %d failure(s)\n", g_failed);
    return 1;
  }
  printf("c_api_threads: all results equal the one-thread ones (%d threads)\n", kThreads);
  return 0;
}
