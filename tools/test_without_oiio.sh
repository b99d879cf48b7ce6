#!/usr/bin/env bash
# The build without OpenImageIO (-DSINSR_WITH_IMAGE_IO=OFF: netpbm images only, as on a GPU
# machine, tools/device): configures build-noio, builds the CLI, the default model and the suites
# that run there, runs them, then checks that it upscales and degrades a netpbm file to the bytes
# the default build (build/, tools/test.sh) writes, and refuses a PNG by name.
# Usage: tools/test_without_oiio.sh
set -euo pipefail
cd "$(dirname "$0")/.."
b=build-noio
[ -x build/bin/sinsr-host ] || bash tools/bootstrap.sh build
cmake -S . -B "$b" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSINSR_WITH_IMAGE_IO=OFF >/dev/null
cmake --build "$b" -j "$(nproc)" --target sinsr-host student unet_swin space_to_depth resshift direct test_netpbm test_degradation
"$b/bin/test_netpbm" --gtest_brief=1
"$b/bin/test_degradation" --gtest_brief=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3  # Debian's, with PIL
"$PY" - samples/lr_realesrgan_x4/autumn.png "$work/lr.ppm" samples/hr/autumn.png "$work/hr.ppm" <<'PY'
import sys
from PIL import Image
for src, dst in zip(sys.argv[1::2], sys.argv[2::2]):
    Image.open(src).convert("RGB").save(dst)
PY
for build in build "$b"; do
  "$build/bin/sinsr-host" infer -q -j 2 -i "$work/lr.ppm" -o "$work/sr_$(basename "$build").ppm"
  "$build/bin/sinsr-host" degrade -q -j 2 -i "$work/hr.ppm" -o "$work/lr_$(basename "$build")" --seed 3 --ext ppm
done
cmp "$work/sr_build.ppm" "$work/sr_$b.ppm"
cmp "$work/lr_build/hr.ppm" "$work/lr_$b/hr.ppm"
# --version lists what this build writes: netpbm (ppm) only.
"$b/bin/sinsr-host" --version | grep -q "^image formats: ppm (" ||
  { echo "test_without_oiio: --version says: $("$b/bin/sinsr-host" --version)"; exit 1; }
# A folder run with no format named writes netpbm in this build; a PNG is refused naming the file.
mkdir "$work/in" && cp "$work/lr.ppm" "$work/in/"
"$b/bin/sinsr-host" infer -q -j 2 -i "$work/in" -o "$work/out"
[ -f "$work/out/lr.ppm" ] || { echo "test_without_oiio: a folder run wrote no .ppm"; ls "$work/out"; exit 1; }
if "$b/bin/sinsr-host" infer -q -i samples/lr_x4/autumn.png -o "$work/x.ppm" 2>"$work/err"; then
  echo "test_without_oiio: a PNG was read without OpenImageIO"; exit 1
fi
grep -q "samples/lr_x4/autumn.png: a png file, which this build cannot read" "$work/err" || { cat "$work/err"; exit 1; }
"$b/bin/sinsr-host" eval --pred "$work/sr_$b.ppm" --gt "$work/hr.ppm"
echo "test_without_oiio: netpbm upscale and degradation equal the default build's bytes"
