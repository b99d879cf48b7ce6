#!/usr/bin/env bash
# Installs the build into a temporary prefix, builds the example plugins out of tree with
# find_package(SinSR), loads them with the installed sinsr-host, trains the example backbone
# for a few steps and upscales an image with what it learned.
set -euo pipefail
build=$1 src=$2 generator=$3 data=${4:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# build_examples PREFIX DIR HOST: the example plugins configured with find_package(SinSR) from
# PREFIX and built in DIR; example_l2 is then listed by HOST. Sets `out` to HOST's listing.
build_examples() {
  local prefix=$1 dir=$2 host=$3
  cmake -S "$src" -B "$dir" -G "$generator" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_BUILD_TYPE=Release > "$dir.configure.log" || { cat "$dir.configure.log"; exit 1; }
  cmake --build "$dir" > "$dir.build.log" || { cat "$dir.build.log"; exit 1; }
  local plugin
  plugin=$(find "$dir" -name 'example_l2.so' | head -n 1)
  [ -n "$plugin" ] || { echo "example_l2.so was not built in $dir"; exit 1; }
  out=$("$host" plugins list --json --plugin "$plugin")
  echo "$out" | grep -q '"name": "example_l2"' || { echo "$out"; echo "example_l2 ($dir) not listed"; exit 1; }
}

cmake --install "$build" --prefix "$work/prefix" > "$work/install.log"
build_examples "$work/prefix" "$work/build" "$work/prefix/bin/sinsr-host"
# The installed host also finds its own plugins relative to itself.
echo "$out" | grep -q '"kind": "loss"'
echo "out-of-tree plugin built against the installed SDK and loaded: ok"

# The same plugin against the build tree (no install): find_package(SinSR) with the build folder.
build_examples "$build" "$work/build_tree" "$build/bin/sinsr-host"
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
