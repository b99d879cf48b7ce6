# Sourced by tools/fuzz.sh and tools/tsan.sh: configures a sanitizer build folder once, with clang.
# sanitizer_configure TOOL BUILD-DIR CMAKE-OPTION (e.g. fuzz.sh build-fuzz -DSINSR_FUZZ=ON)
sanitizer_configure() {
  local tool=$1 build=$2 option=$3 cc cxx
  cc=$(command -v clang-14 || command -v clang || true)
  cxx=$(command -v clang++-14 || command -v clang++ || true)
  if [ -z "$cc" ] || [ -z "$cxx" ]; then
    echo "$tool: clang is missing (Debian: apt-get install clang-14 libclang-rt-14-dev)" >&2
    exit 1
  fi
  if [ ! -f "$build/CMakeCache.txt" ]; then
    CC=$cc CXX=$cxx cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$option" >/dev/null
  fi
}
