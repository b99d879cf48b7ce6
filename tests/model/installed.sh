#!/usr/bin/env bash
# The installed default model: `cmake --install` puts student.so and its weights in the plugin
# folder, and the installed sinsr-host gives the same bytes with no flag and with the card's
# `--sampler deterministic --plugin <installed>/student.so` form as the build tree does.
set -euo pipefail
build=$1 src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" > "$work/install.log"
plugins=$(dirname "$(find "$work/prefix" -name student.so | head -n 1)")
[ -f "$plugins/student.so" ] && [ -f "$plugins/student.pth" ] || { echo "student.so or student.pth not installed"; exit 1; }
lr=$src/samples/lr_x4/autumn.png
"$work/prefix/bin/sinsr-host" infer -i "$lr" -o "$work/plain.png" -q --threads 2
"$work/prefix/bin/sinsr-host" --sampler deterministic --plugin "$plugins/student.so" -i "$lr" -o "$work/card.png" -q --threads 2
"$build/bin/sinsr-host" infer -i "$lr" -o "$work/build_tree.png" -q --threads 2
cmp "$work/plain.png" "$work/card.png"
cmp "$work/plain.png" "$work/build_tree.png"
echo "installed default model: same bytes in all three forms"
