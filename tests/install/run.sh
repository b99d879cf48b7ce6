#!/usr/bin/env bash
# Installs the build into a temporary prefix, builds the example plugins out of tree with
# find_package(SinSR), loads them with the installed sinsr-host, trains the example backbone
# for a few steps and upscales an image with what it learned.
set -euo pipefail
build=$1 src=$2 generator=$3 data=${4:-}
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

# The same plugin against the build tree (no install): find_package(SinSR) with the build folder.
cmake -S "$src" -B "$work/build_tree" -G "$generator" -DCMAKE_PREFIX_PATH="$build" \
  -DCMAKE_BUILD_TYPE=Release > "$work/configure_tree.log" || { cat "$work/configure_tree.log"; exit 1; }
cmake --build "$work/build_tree" > "$work/build_tree.log" || { cat "$work/build_tree.log"; exit 1; }
tree_plugin=$(find "$work/build_tree" -name 'example_l2.so' | head -n 1)
[ -n "$tree_plugin" ] || { echo "example_l2.so was not built against the build tree"; exit 1; }
tree_out=$("$build/bin/sinsr-host" plugins list --json --plugin "$tree_plugin")
echo "$tree_out" | grep -q '"name": "example_l2"' || { echo "$tree_out"; echo "example_l2 (build tree) not listed"; exit 1; }
echo "out-of-tree plugin built against the build tree and loaded: ok"

backbone=$(find "$work/build" -name 'example_backbone.so' | head -n 1)
[ -n "$backbone" ] || { echo "example_backbone.so was not built"; exit 1; }
if [ -n "$data" ] && [ -d "$data/set5/hr" ]; then
  host="$work/prefix/bin/sinsr-host"
  "$host" --plugin "$backbone" train --data "$data/set5/hr" --out "$work/run" --backbone example_convnet \
    --codec none --sampler deterministic --gt-size 32 --batch 2 --warmup 0 --max-steps 3 --save-every 3 \
    --threads 2 > "$work/train.log" 2>&1 || { cat "$work/train.log"; exit 1; }
  lr=$(find "$data/set5/lr_x4" -name '*.png' | head -n 1)
  "$host" --plugin "$backbone" infer -i "$lr" -o "$work/sr.png" --backbone example_convnet --codec none \
    --sampler deterministic -w "$work/run/ema.pth" -q > "$work/infer.log" 2>&1 || { cat "$work/infer.log"; exit 1; }
  [ -s "$work/sr.png" ] || { echo "no output image"; exit 1; }
  echo "out-of-tree backbone trained 3 steps and upscaled $(basename "$lr"): ok"
fi
