// sinsr-host itself: sets up the process, then loads the command-line program (libsinsr_cli, the
// sources in cli/) and runs it. The split exists because some settings must be in place before
// LibTorch and the libraries under it load, which in one executable happens before main.
#include "cli/command_words.hpp"

#include <dlfcn.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#if defined(__GLIBC__)
#include <malloc.h>
#include <sys/mman.h>
#endif

#if defined(__SANITIZE_ADDRESS__)
#define SINSR_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SINSR_SANITIZED 1
#endif
#endif
#ifndef SINSR_SANITIZED
#define SINSR_SANITIZED 0
#endif

namespace {

// Two thread pools share the cores: LibTorch's OpenMP team and OpenBLAS's own (Debian's LibTorch
// runs matrix products in OpenBLAS). By default each spins after its work on the cores the other
// needs next; an SR3 step on a 512x512 image at 2 threads took 6.0-7.4 s so, 4.7-5.2 s with
// neither spinning. libgomp and OpenBLAS read these settings once, when they load. Settings the
// user's environment already holds are kept (GOMP_SPINCOUNT=300000 OPENBLAS_THREAD_TIMEOUT=28
// restore the libraries' own behaviour).
void set_thread_pool_defaults() {
  if (!std::getenv("GOMP_SPINCOUNT")) ::setenv("OMP_WAIT_POLICY", "passive", 0);
  ::setenv("OPENBLAS_THREAD_TIMEOUT", "4", 0);  // 2^4 cycles of spinning, the least it takes
}

// CPU LibTorch allocates and frees activation-sized buffers on every layer. glibc's defaults
// hand each one back to the kernel and fault it in again (zeroed) on the next call; keeping
// freed memory in the process made a 256x256 UNet forward about 4x faster here. No mmap at all,
// not even above glibc's largest threshold (32 MiB): a VQ decode at 256x256 has buffers of
// 64 MiB, and serving them from the heap took the one-step upscale from 13.6 s to 8.8 s per
// image (1 thread, a second process busy). The first image still faults in every page it
// touches (361 k faults, 1.4 GB, for a one-step 256x256 upscale): the heap's first 2 GiB are
// grown at once and marked for transparent huge pages (2 MiB, where the kernel offers them on
// request), which took a one-image run from 15.5 s to 12.7 s; freed memory is never trimmed, so
// the heap keeps that region. The program only: the library never changes its host's allocator.
// SINSR_MALLOC_DEFAULTS=1 keeps glibc's own settings. True where the heap was set up so.
bool tune_allocator() {
#if defined(__GLIBC__)
  const char* keep = std::getenv("SINSR_MALLOC_DEFAULTS");
  if (keep && std::strcmp(keep, "1") == 0) return false;
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, -1);  // as size_t: never
  mallopt(M_TOP_PAD, 256 << 20);
  const size_t region = size_t(2) << 30, huge = size_t(2) << 20;
  if (void* p = std::malloc(region)) {  // address space only: nothing is touched
    const uintptr_t begin = (reinterpret_cast<uintptr_t>(p) + huge - 1) & ~(huge - 1);
    const uintptr_t end = (reinterpret_cast<uintptr_t>(p) + region) & ~(huge - 1);
    if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
    std::free(p);
  }
  return true;
#else
  return false;
#endif
}

// Loading LibTorch takes one core for most of a second. Where a second core is free to the
// process, it faults in (and has the kernel zero) the heap the first image will use meanwhile:
// that is the same work done earlier, on a core that would idle. It stops when loading does, so
// nothing waits for it. A full-size one-step upscale of a 64x64 image peaks at ~1.3 GB of
// anonymous memory whatever was warmed; warming 1 GiB instead of 256 MiB took its one-image run
// from 5.51-5.65 s to 4.68-4.87 s (2 threads, three alternations), as the page faults inside
// the first image were what made it slower than the next. Commands that run no network
// (--version, --help, plugins, eval, degrade, export: cli/command_words.hpp) warm nothing. The cost is memory: the
// heap keeps what was warmed, so a small job holds more than it uses (a one-image 64x64 upscale
// with the shipped student: peak resident 0.54 GB with 256 MiB warmed, 0.96 GB now).
// SINSR_WARM_HEAP_MB=N warms N MiB instead (0: none). Only on a heap tune_allocator() set up:
// glibc's own settings would hand the block back to the kernel.
size_t heap_to_warm(int argc, char** argv) {
  if (const char* mb = std::getenv("SINSR_WARM_HEAP_MB"); mb && *mb)
    return size_t(std::strtoull(mb, nullptr, 10)) << 20;
  const char* command = sinsr::cli::command_word(argc, argv);
  if (command && sinsr::cli::runs_no_network(command)) return 0;
  return size_t(1) << 30;
}

class HeapWarmer {
 public:
  HeapWarmer(bool heap_tuned, size_t bytes) : bytes_(bytes) {
#if defined(__GLIBC__)
    cpu_set_t cpus;
    if (!heap_tuned || bytes_ == 0 || ::sched_getaffinity(0, sizeof cpus, &cpus) != 0 || CPU_COUNT(&cpus) < 2) return;
    block_ = static_cast<char*>(std::malloc(bytes_));  // here, so that it is the main arena's
    if (!block_) return;
    toucher_ = std::thread([this] {
      for (size_t k = 0; k < bytes_ && !stop_.load(std::memory_order_relaxed); k += 4096)
        reinterpret_cast<volatile char*>(block_)[k] = 0;
    });
#endif
  }
  // Back to the heap, where the next allocations find it faulted in (freed memory is kept).
  ~HeapWarmer() {
    stop_ = true;
    if (toucher_.joinable()) toucher_.join();
    std::free(block_);
  }

 private:
  const size_t bytes_;
  char* block_ = nullptr;
  std::atomic<bool> stop_{false};
  std::thread toucher_;
};

// Beside this executable as the build and the installation lay it out (bin/ and lib/), else
// by name through the run path. Not by name first: a tool that intercepts dlopen (heaptrack, a
// sanitizer) becomes its caller, and the run path searched is then the tool's.
std::string program_library() {
  char self[4096];
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    std::string path(self, size_t(n));
    path = path.substr(0, path.rfind('/') + 1) + SINSR_CLI_FROM_BIN;
    if (::access(path.c_str(), R_OK) == 0) return path;
  }
  return "libsinsr_cli.so";
}

// Debian's LibTorch brings ~300 shared libraries (OpenCV, FFmpeg, GDAL, Qt, ...), and they are
// linked to bind every symbol at load time. The loader looks each one up in the loaded libraries
// in a fixed order until one defines it; loaded all at once, that order is the program's
// breadth-first dependency order, so a library near its end (libgeos, ~300th) walks the whole
// list for each symbol of its own. Loaded one by one, dependencies first (the order the build
// writes beside the program library, cmake/load_order.sh), each library's search starts with
// itself and what it needs. The program's own load then finds them all loaded. The list holds
// names, not paths, so the loader finds the same files it would (LD_LIBRARY_PATH included). A
// library that cannot load alone (a few use a sibling's symbols without naming it) is left to
// the program's own load.
// SINSR_LOAD_ORDER=0 loads everything at once, as the loader would.
void load_dependencies_in_order(const std::string& program) {
  const char* off = std::getenv("SINSR_LOAD_ORDER");
  if (off && std::strcmp(off, "0") == 0) return;
  FILE* list = std::fopen((program + ".load-order").c_str(), "r");
  if (!list) return;
  char path[4096];
  while (std::fgets(path, sizeof path, list)) {
    path[std::strcspn(path, "\n")] = '\0';
    if (*path && !::dlopen(path, RTLD_NOW | RTLD_LOCAL)) ::dlerror();  // kept loaded: the program uses it
  }
  std::fclose(list);
}

}  // namespace

int main(int argc, char** argv) {
  set_thread_pool_defaults();
  const bool heap_tuned = tune_allocator();
  void* cli = nullptr;
  {
    HeapWarmer warm(heap_tuned, heap_to_warm(argc, argv));
    const std::string program = program_library();
    load_dependencies_in_order(program);
    cli = ::dlopen(program.c_str(), RTLD_NOW | RTLD_LOCAL);
  }
  if (!cli) {
    std::fprintf(stderr, "sinsr-host: cannot load the program library: %s\n", ::dlerror());
    return 1;
  }
  using Main = int (*)(int, char**);
  auto run = reinterpret_cast<Main>(::dlsym(cli, "sinsr_cli_main"));
  if (!run) {
    std::fprintf(stderr, "sinsr-host: libsinsr_cli.so has no sinsr_cli_main: %s\n", ::dlerror());
    return 1;
  }
  const int code = run(argc, argv);
#if !SINSR_SANITIZED  // LeakSanitizer checks at a normal exit
  // The work is done and its files are closed: tearing down LibTorch's and the plugins' statics
  // would only add to the wall time a user waits for (~0.1 s after a full-size upscale here).
  std::fflush(nullptr);
  ::_exit(code);
#endif
  return code;
}
