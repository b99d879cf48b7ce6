# Fuzzing and sanitizers (issue 16). In a build folder of its own:
#   CC=clang-14 CXX=clang++-14 cmake -S . -B build-fuzz -G Ninja -DSINSR_FUZZ=ON
# compiles everything (SDK, host library, plugins, tests) under ASan + UBSan with libFuzzer's
# coverage, and adds the fuzz_* targets of tests/fuzz. tools/fuzz.sh does all of this.
#
# The sanitizer runtime is the shared one (-shared-libsan): plugins are dlopen()ed modules linked
# with --no-undefined, so they must find the runtime in a library, and one runtime must serve
# the executable, the host library and every plugin. LibTorch and OpenImageIO stay
# uninstrumented (Debian's builds); ASan still sees every access our code makes.
option(SINSR_FUZZ "Build the libFuzzer targets; compile everything with ASan + UBSan (clang)" OFF)

if(SINSR_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang" OR NOT CMAKE_C_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "SINSR_FUZZ needs clang: CC=clang-14 CXX=clang++-14 cmake -DSINSR_FUZZ=ON ...")
  endif()
  execute_process(COMMAND ${CMAKE_CXX_COMPILER} -print-file-name=libclang_rt.asan-x86_64.so
                  OUTPUT_VARIABLE _sinsr_asan_rt OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT EXISTS "${_sinsr_asan_rt}")
    message(FATAL_ERROR "SINSR_FUZZ: no shared ASan runtime found (Debian: apt-get install libclang-rt-14-dev)")
  endif()
  get_filename_component(SINSR_SANITIZER_RUNTIME_DIR "${_sinsr_asan_rt}" DIRECTORY)
  # vptr: LibTorch's classes cross uninstrumented libraries, whose type info UBSan cannot check.
  set(SINSR_SANITIZE -fsanitize=address,undefined -fno-sanitize=vptr -fno-sanitize-recover=all)
  add_compile_options(${SINSR_SANITIZE} -fsanitize=fuzzer-no-link -fno-omit-frame-pointer -gline-tables-only)
  add_link_options(${SINSR_SANITIZE} -shared-libsan "LINKER:-rpath,${SINSR_SANITIZER_RUNTIME_DIR}")
  set(SINSR_BUILD_TESTS ON CACHE BOOL "" FORCE)
  message(STATUS "SinSR: fuzzing build (ASan + UBSan, runtime in ${SINSR_SANITIZER_RUNTIME_DIR})")
endif()
