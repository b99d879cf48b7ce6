/* A C program (compiled as C99) driving the runtime through the host C API: load a plugin,
 * list it, call a component through its function table with DLPack tensors made in C, and
 * check the error paths. Usage: c_api_test L1_C_PLUGIN BAD_ABI_PLUGIN */
#include "sinsr_host.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int passed, failed;

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (cond) {                                                                \
      ++passed;                                                                \
    } else {                                                                   \
      ++failed;                                                                \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                          \
  } while (0)

static int deleted;

typedef struct borrowed {
  DLManagedTensor managed;
  int64_t shape[4];
} borrowed;

static DLManagedTensor* wrap(float* data, int64_t n);

static void count_deleter(DLManagedTensor* self) {
  ++deleted;
  free(self);
}

/* Wraps caller-owned floats as [n] or [h, w, c]; the deleter only counts, the data stays the caller's. */
static DLManagedTensor* wrap_hwc(float* data, int64_t h, int64_t w, int64_t c) {
  DLManagedTensor* m = wrap(data, h);
  m->dl_tensor.ndim = 3;
  m->dl_tensor.shape[1] = w;
  m->dl_tensor.shape[2] = c;
  return m;
}

static DLManagedTensor* wrap_nchw(float* data, int64_t n, int64_t c, int64_t h, int64_t w) {
  DLManagedTensor* m = wrap_hwc(data, n, c, h);
  m->dl_tensor.ndim = 4;
  m->dl_tensor.shape[3] = w;
  return m;
}

/* What the log and progress callbacks saw. */
static int logged_created, progress_calls, progress_total, cancel_after;

static void on_log(void* user, int32_t level, const char* source, const char* message) {
  (void)user;
  if (level == SINSR_LOG_INFO && strcmp(source, "l1_c") == 0 && strcmp(message, "created") == 0) ++logged_created;
}

static int32_t on_progress(void* user, int32_t done, int32_t total) {
  (void)user;
  ++progress_calls;
  progress_total = total;
  return done < cancel_after; /* 0 cancels */
}

static DLManagedTensor* wrap(float* data, int64_t n) {
  borrowed* b = (borrowed*)calloc(1, sizeof(borrowed));
  b->shape[0] = n;
  b->managed.dl_tensor.data = data;
  b->managed.dl_tensor.device.device_type = kDLCPU;
  b->managed.dl_tensor.ndim = 1;
  b->managed.dl_tensor.dtype.code = kDLFloat;
  b->managed.dl_tensor.dtype.bits = 32;
  b->managed.dl_tensor.dtype.lanes = 1;
  b->managed.dl_tensor.shape = b->shape;
  b->managed.deleter = count_deleter;
  return &b->managed;
}

int main(int argc, char** argv) {
  sinsr_runtime* rt = NULL;
  sinsr_status* st;
  size_t count = 0, i;
  const sinsr_component* comp = NULL;
  const sinsr_loss_vtable* vt;
  sinsr_loss* loss = NULL;
  sinsr_tape* tape = NULL;
  DLManagedTensor *value = NULL, *grad = NULL;
  float pred[4] = {1.0f, 2.0f, 3.0f, 4.0f};
  float target[4] = {1.5f, 2.0f, 1.0f, 5.0f};
  sinsr_runtime_options options;
  int found = 0;

  if (argc < 5) {
    fprintf(stderr, "usage: c_api_test L1_C_PLUGIN BAD_ABI_PLUGIN TEST_COMPONENTS_PLUGIN PLUGIN_DIR\n");
    return 2;
  }
  CHECK(sinsr_abi_version() == SINSR_ABI_VERSION);
  CHECK(strcmp(sinsr_kind_name(SINSR_KIND_LOSS), "loss") == 0);

  memset(&options, 0, sizeof(options));
  options.struct_size = sizeof(options);
  options.num_threads = 1;
  st = sinsr_runtime_create(&options, &rt);
  CHECK(st == NULL && rt != NULL);

  /* errors: a missing file, a plugin of another ABI major, null arguments */
  st = sinsr_runtime_load(rt, "/nonexistent/plugin.so");
  CHECK(st != NULL && sinsr_status_code(st) == SINSR_ERR_NOT_FOUND);
  CHECK(strstr(sinsr_last_error(), "/nonexistent/plugin.so") != NULL);
  sinsr_status_release(st);
  st = sinsr_runtime_load(rt, argv[2]);
  CHECK(st != NULL && sinsr_status_code(st) == SINSR_ERR_ABI);
  CHECK(st != NULL && strstr(sinsr_status_message(st), "ABI 2.0") != NULL);
  sinsr_status_release(st);
  st = sinsr_runtime_load(NULL, argv[1]);
  CHECK(st != NULL && sinsr_status_code(st) == SINSR_ERR_INVALID_ARGUMENT);
  sinsr_status_release(st);

  st = sinsr_runtime_load(rt, argv[1]);
  CHECK(st == NULL);
  CHECK(sinsr_runtime_component_count(rt, &count) == NULL && count == 1);
  for (i = 0; i < count; ++i) {
    sinsr_component_info info;
    memset(&info, 0, sizeof(info));
    info.struct_size = sizeof(info);
    CHECK(sinsr_runtime_component_info(rt, i, &info) == NULL);
    if (strcmp(info.name, "l1_c") == 0 && info.kind == SINSR_KIND_LOSS) found = 1;
  }
  CHECK(found);

  CHECK(sinsr_runtime_find(rt, SINSR_KIND_LOSS, "l1_c", &comp) == NULL && comp != NULL);
  st = sinsr_runtime_find(rt, SINSR_KIND_BACKBONE, "l1_c", &comp);
  CHECK(st != NULL && sinsr_status_code(st) == SINSR_ERR_NOT_FOUND);
  sinsr_status_release(st);
  CHECK(sinsr_runtime_find(rt, SINSR_KIND_LOSS, "l1_c", &comp) == NULL);

  vt = (const sinsr_loss_vtable*)comp->vtable;
  CHECK(vt->create("{}", &loss) == NULL && loss != NULL);
  st = vt->forward(loss, NULL, wrap(pred, 4), wrap(target, 4), &value, &tape);
  CHECK(st == NULL && value != NULL && tape != NULL);
  if (value) {
    /* mean(|-0.5|, 0, 2, |-1|) = 0.875 */
    CHECK(fabs(((float*)value->dl_tensor.data)[0] - 0.875f) < 1e-6);
    value->deleter(value);
  }
  st = vt->backward(loss, NULL, tape, NULL, &grad);
  CHECK(st == NULL && grad != NULL);
  if (grad) {
    float* g = (float*)grad->dl_tensor.data;
    CHECK(g[0] == -0.25f && g[1] == 0.0f && g[2] == 0.25f && g[3] == -0.25f);
    grad->deleter(grad);
  }
  /* a bad call still consumes its inputs */
  st = vt->forward(loss, NULL, wrap(pred, 4), wrap(target, 3), &value, NULL);
  CHECK(st != NULL);
  sinsr_status_release(st);
  CHECK(deleted == 4);
  vt->destroy(loss);
  /* the log callback: the plugin's line reaches the application, not stderr */
  sinsr_log_set(on_log, NULL, SINSR_LOG_INFO);
  CHECK(vt->create("{}", &loss) == NULL && loss != NULL);
  CHECK(logged_created == 1);
  vt->destroy(loss);
  sinsr_log_set(on_log, NULL, SINSR_LOG_WARNING); /* under the minimum level: dropped */
  CHECK(vt->create("{}", &loss) == NULL && logged_created == 1);
  vt->destroy(loss);
  sinsr_log_set(NULL, NULL, SINSR_LOG_INFO);
  sinsr_runtime_destroy(rt);

  /* defaults, a pipeline's resolved settings, progress, and a run cancelled midway */
  {
    sinsr_runtime_options defaults = sinsr_runtime_default_options();
    sinsr_runtime* rt2 = NULL;
    sinsr_pipeline* pipe = NULL;
    const char* settings = NULL;
    static float batch[3 * 3 * 16 * 16];
    sinsr_run_options run;
    DLManagedTensor* sr = NULL;
    int k;
    CHECK(defaults.struct_size == sizeof(sinsr_runtime_options) && defaults.num_threads == 0 &&
          defaults.load_default_paths == 1);
    defaults.num_threads = 1;
    defaults.load_default_paths = 0;
    CHECK(sinsr_runtime_create(&defaults, &rt2) == NULL);
    CHECK(sinsr_runtime_load(rt2, argv[4]) == NULL);
    CHECK(sinsr_runtime_load(rt2, argv[3]) == NULL);
    st = sinsr_pipeline_create(rt2,
                               "{\"backbone\": {\"name\": \"local_blur\", \"weights\": \"none\"}, "
                               "\"sampler\": \"single-step\", \"chop_size\": 8, \"pad_multiple\": 8}",
                               &pipe);
    CHECK(st == NULL && pipe != NULL);
    sinsr_status_release(st);
    if (pipe) {
      CHECK(sinsr_pipeline_settings(pipe, &settings) == NULL && settings != NULL);
      CHECK(settings && strstr(settings, "\"local_blur\"") != NULL);
      CHECK(settings && strstr(settings, "\"chop_size\":8") != NULL);
      CHECK(settings && strstr(settings, "\"scale\":4") != NULL);
      for (k = 0; k < 3 * 3 * 16 * 16; ++k) batch[k] = (float)(k % 7) / 7.0f;
      run.struct_size = sizeof(run);
      run.progress = on_progress;
      run.user = NULL;
      cancel_after = 1000; /* the whole run: 3 images of 2x2 tiles (stride 7 of 8: 3x3) */
      st = sinsr_pipeline_run_with(pipe, wrap_nchw(batch, 3, 3, 16, 16), &run, &sr);
      CHECK(st == NULL && sr != NULL && sr->dl_tensor.shape[2] == 64);
      CHECK(progress_calls == progress_total && progress_total >= 3);
      if (sr) sr->deleter(sr);
      sr = NULL;
      progress_calls = 0;
      cancel_after = progress_total / 3 + 1; /* into the second image */
      st = sinsr_pipeline_run_with(pipe, wrap_nchw(batch, 3, 3, 16, 16), &run, &sr);
      CHECK(st != NULL && sinsr_status_code(st) == SINSR_ERR_CANCELLED && sr == NULL);
      CHECK(progress_calls == cancel_after);
      sinsr_status_release(st);
      /* a file upscaled as `sinsr-host infer` does; one over max_pixels refused from its header */
      {
        sinsr_file_options fo = sinsr_file_default_options();
        DLManagedTensor* up = NULL;
        int32_t up_bits = 0;
        CHECK(fo.struct_size == sizeof fo && fo.max_pixels == 4096 * 4096 && fo.bits == 0);
        st = sinsr_image_write("c_api_test_lr.png", wrap_hwc(batch, 16, 16, 3), 8);
        CHECK(st == NULL);
        sinsr_status_release(st);
        st = sinsr_pipeline_upscale_file(pipe, "c_api_test_lr.png", "c_api_test_sr.png", NULL, NULL);
        CHECK(st == NULL);
        sinsr_status_release(st);
        st = sinsr_image_read("c_api_test_sr.png", &up, &up_bits);
        CHECK(st == NULL && up != NULL && up->dl_tensor.shape[0] == 64 && up->dl_tensor.shape[1] == 64 && up_bits == 8);
        sinsr_status_release(st);
        if (up) up->deleter(up);
        remove("c_api_test_sr.png");
        fo.max_pixels = 255;
        st = sinsr_pipeline_upscale_file(pipe, "c_api_test_lr.png", "c_api_test_sr.png", &fo, NULL);
        CHECK(st != NULL && sinsr_status_code(st) == SINSR_ERR_FORMAT);
        CHECK(st != NULL && strstr(sinsr_status_message(st), "(max_pixels raises it)") != NULL);
        CHECK(st != NULL && strstr(sinsr_status_message(st), "c_api_test_lr.png") != NULL);
        sinsr_status_release(st);
        {
          FILE* none = fopen("c_api_test_sr.png", "rb"); /* nothing written */
          CHECK(none == NULL);
          if (none) fclose(none);
        }
        remove("c_api_test_lr.png");
      }
      sinsr_pipeline_destroy(pipe);
    }
    sinsr_runtime_destroy(rt2);
  }

  /* image files through the host's reader and writer: a 2x3 RGB round trip at 8 bits */
  {
    float pixels[18];
    DLManagedTensor* read = NULL;
    int32_t bits = 0;
    int k;
    const int base = deleted;
    for (k = 0; k < 18; ++k) pixels[k] = (float)(k * 14) / 255.0f;
    st = sinsr_image_write("c_api_test_image.png", wrap_hwc(pixels, 2, 3, 3), 8);
    CHECK(st == NULL && deleted == base + 1);
    sinsr_status_release(st);
    st = sinsr_image_read("c_api_test_image.png", &read, &bits);
    CHECK(st == NULL && read != NULL && bits == 8);
    if (read) {
      const float* got = (const float*)read->dl_tensor.data;
      CHECK(read->dl_tensor.ndim == 3 && read->dl_tensor.shape[0] == 2 && read->dl_tensor.shape[1] == 3 &&
            read->dl_tensor.shape[2] == 3);
      for (k = 0; k < 18; ++k) CHECK(fabs(got[k] - pixels[k]) < 1e-6);
      read->deleter(read);
    }
    remove("c_api_test_image.png");
    st = sinsr_image_read("c_api_test_no_such_image.png", &read, NULL);
    CHECK(st != NULL && sinsr_status_code(st) == SINSR_ERR_IO && read == NULL);
    CHECK(st != NULL && strstr(sinsr_status_message(st), "c_api_test_no_such_image.png") != NULL);
    sinsr_status_release(st);
    /* a refused write still consumes the image */
    st = sinsr_image_write("c_api_test_image.png", wrap_hwc(pixels, 2, 3, 3), 12);
    CHECK(st != NULL && sinsr_status_code(st) == SINSR_ERR_INVALID_ARGUMENT && deleted == base + 2);
    sinsr_status_release(st);
  }

  /* every format the build says it writes round-trips: lossless ones exactly, EXR to half
     precision, JPEG and WebP in shape */
  {
    const char* formats = sinsr_image_formats();
    const char* at = formats;
    float pixels[18];
    int k, listed = 0;
    for (k = 0; k < 18; ++k) pixels[k] = (float)(k * 14) / 255.0f;
    CHECK(formats != NULL && strncmp(formats, "png ", 4) == 0 && strstr(formats, "ppm") != NULL);
    while (at && *at) {
      char ext[16], path[64];
      DLManagedTensor* read = NULL;
      size_t n = strcspn(at, " ");
      CHECK(n > 0 && n < sizeof ext);
      if (n == 0 || n >= sizeof ext) break;
      memcpy(ext, at, n);
      ext[n] = '\0';
      snprintf(path, sizeof path, "c_api_test_format.%s", ext);
      st = sinsr_image_write(path, wrap_hwc(pixels, 2, 3, 3), 8);
      CHECK(st == NULL);
      if (st) fprintf(stderr, "%s: %s\n", ext, sinsr_status_message(st));
      sinsr_status_release(st);
      st = sinsr_image_read(path, &read, NULL);
      CHECK(st == NULL && read != NULL);
      sinsr_status_release(st);
      if (read) {
        const int lossy = strcmp(ext, "jpg") == 0 || strcmp(ext, "webp") == 0;
        const double tolerance = strcmp(ext, "exr") == 0 ? 1e-3 : 1e-6; /* EXR holds 8-bit input as half */
        const float* got = (const float*)read->dl_tensor.data;
        CHECK(read->dl_tensor.ndim == 3 && read->dl_tensor.shape[0] == 2 && read->dl_tensor.shape[1] == 3 &&
              read->dl_tensor.shape[2] == 3);
        if (!lossy && read->dl_tensor.shape[2] == 3)
          for (k = 0; k < 18; ++k) CHECK(fabs(got[k] - pixels[k]) < tolerance);
        read->deleter(read);
      }
      remove(path);
      ++listed;
      at += n;
      while (*at == ' ') ++at;
    }
    CHECK(listed >= 6);
  }

  printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
