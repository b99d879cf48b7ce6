#!/usr/bin/env bash
# Everything a fresh Debian bookworm machine needs: packages, configure, build.
# Usage: tools/bootstrap.sh [build-dir]   (default: build). Re-running is cheap (ccache).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}

mapfile -t packages < <(grep -v '^#' tools/debian-packages.txt | tr ' ' '\n' | grep -v '^$')
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build "$build" -j "$(nproc)"
