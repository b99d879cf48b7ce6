#!/usr/bin/env bash
# Installs the build into a temporary prefix, builds the example plugin out of tree with
# find_package(SinSR), and loads it with the installed sinsr-host.
set -euo pipefail
build=$1 src=$2 generator=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" > "$work/install.log"
cmake -S "$src" -B "$work/build" -G "$generator" -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DCMAKE_BUILD_TYPE=Release > "$work/configure.log" || { cat "$work/configure.log"; exit 1; }
cmake --build "$work/build" > "$work/build.log" || { cat "$work/build.log"; exit 1; }
plugin=$(find "$work/build" -name 'example_l2.so' | head -n 1)
[ -n "$plugin" ] || { echo "example_l2.so was not built"; exit 1; }
out=$("$work/prefix/bin/sinsr-host" plugins list --json --plugin "$plugin")
echo "$out" | grep -q '"name": "example_l2"' || { echo "$out"; echo "example_l2 not listed"; exit 1; }
# The installed host also finds its own plugins relative to itself.
echo "$out" | grep -q '"kind": "loss"'
echo "out-of-tree plugin built against the installed SDK and loaded: ok"
