// sinsr-host: sets up the process, then loads the command-line program (libsinsr_cli, cli/) and
// runs it. It is a separate executable because these settings must be in place before LibTorch
// loads: (1) its OpenMP and OpenBLAS thread pools do not spin on each other's cores; (2) freed
// memory stays in the process (LibTorch frees and reallocates activations every layer); (3) its
// ~300 libraries load dependencies first, which binds their symbols faster. It reads no argument.
// The measurements behind each are in docs/performance.md ("Start-up").
#include <dlfcn.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#if defined(__GLIBC__)
#include <malloc.h>
#include <sys/mman.h>
#endif

namespace {

// Settings already in the user's environment win (GOMP_SPINCOUNT=300000
// OPENBLAS_THREAD_TIMEOUT=28 restore the libraries' own behaviour).
void set_thread_pool_defaults() {
  if (!std::getenv("GOMP_SPINCOUNT")) ::setenv("OMP_WAIT_POLICY", "passive", 0);
  ::setenv("OPENBLAS_THREAD_TIMEOUT", "4", 0);  // 2^4 cycles of spinning, the least it takes
}

// No mmap, no trimming: every buffer comes from the heap and stays there. The heap's first 2 GiB
// of address space (nothing is touched) are marked for transparent huge pages. The program only:
// the library never changes its host's allocator. SINSR_MALLOC_DEFAULTS=1 keeps glibc's settings.
void tune_allocator() {
#if defined(__GLIBC__)
  const char* keep = std::getenv("SINSR_MALLOC_DEFAULTS");
  if (keep && std::strcmp(keep, "1") == 0) return;
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, -1);  // as size_t: never
  mallopt(M_TOP_PAD, 256 << 20);
  const size_t region = size_t(2) << 30, huge = size_t(2) << 20;
  if (void* p = std::malloc(region)) {
    const uintptr_t begin = (reinterpret_cast<uintptr_t>(p) + huge - 1) & ~(huge - 1);
    const uintptr_t end = (reinterpret_cast<uintptr_t>(p) + region) & ~(huge - 1);
    if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
    std::free(p);
  }
#endif
}

// Beside this executable as the build and the installation lay it out (bin/ and lib/), else by
// name through the run path. Not by name first: a tool that intercepts dlopen (heaptrack, a
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

// The list beside the program library (written by the build, cmake/load_order.sh) names each
// library once, dependencies first; names, not paths, so LD_LIBRARY_PATH still applies. One that
// cannot load alone is left to the program's own load. SINSR_LOAD_ORDER=0 skips this.
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
  tune_allocator();
  const std::string program = program_library();
  load_dependencies_in_order(program);
  void* cli = ::dlopen(program.c_str(), RTLD_NOW | RTLD_LOCAL);
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
  return run(argc, argv);  // a normal exit: atexit handlers and coverage data run
}
