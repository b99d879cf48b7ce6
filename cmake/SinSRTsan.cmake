# ThreadSanitizer (issue 34). In a build folder of its own:
#   CC=clang-14 CXX=clang++-14 cmake -S . -B build-tsan -G Ninja -DSINSR_TSAN=ON
# compiles everything under TSan; tools/tsan.sh builds only the host library, the plain-C test
# plugins and tests/tsan/c_api_threads, and runs that. The runtime is the static one, in the
# executable, which exports it to the instrumented libraries it loads (clang-14's shared TSan
# runtime crashes at start-up on Debian bookworm, even for an empty program), so plugins are
# linked without --no-undefined here. LibTorch and libgomp stay uninstrumented (Debian's
# builds): tests/tsan/tsan.supp names them, and why.
option(SINSR_TSAN "Compile everything with ThreadSanitizer (clang)" OFF)

if(SINSR_TSAN)
  if(SINSR_FUZZ)
    message(FATAL_ERROR "SINSR_TSAN and SINSR_FUZZ exclude each other (one sanitizer runtime per build)")
  endif()
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang" OR NOT CMAKE_C_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "SINSR_TSAN needs clang: CC=clang-14 CXX=clang++-14 cmake -DSINSR_TSAN=ON ...")
  endif()
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer -gline-tables-only)
  add_link_options(-fsanitize=thread)
  set(SINSR_BUILD_TESTS ON CACHE BOOL "" FORCE)
  message(STATUS "SinSR: ThreadSanitizer build")
endif()
