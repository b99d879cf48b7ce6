// sinsr-host: sets up the process, then loads and runs the command-line program (libsinsr_cli,
// cli/). Separate because this must precede LibTorch's load: (1) its OpenMP and OpenBLAS pools wait
// passively, not spinning on each other's cores; (2) LibTorch's ~300 libraries load dependencies
// first, which binds their symbols faster. Its allocator, tcmalloc, is linked in (the build says
// where found). It reads no argument. Measurements: docs/performance.md ("Start-up").
#include <dlfcn.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#if defined(__GLIBC__) && !defined(SINSR_TCMALLOC)
#include <malloc.h>
#endif

namespace {

// Settings already in the user's environment win (GOMP_SPINCOUNT=300000
// OPENBLAS_THREAD_TIMEOUT=28 restore the libraries' own behaviour).
void set_thread_pool_defaults() {
  if (!std::getenv("GOMP_SPINCOUNT")) ::setenv("OMP_WAIT_POLICY", "passive", 0);
  ::setenv("OPENBLAS_THREAD_TIMEOUT", "4", 0);  // 2^4 cycles of spinning, the least it takes
}

// Without tcmalloc (linked by the build where found): glibc keeps freed buffers in the heap instead
// of returning them to the kernel, which would fault them in again, zeroed, on the next layer.
void tune_allocator() {
#if defined(__GLIBC__) && !defined(SINSR_TCMALLOC)
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, -1);  // as size_t: never
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
