#!/usr/bin/env bash
# The README's pictures of the default model (needs tools/eval_default_model.sh's outputs in
# out/eval for the teacher panels): docs/images/compare_butterfly.jpg (bicubic | teacher 15
# steps | teacher 1 step | student 1 step | HR, a crop enlarged 2x by pixel repetition) and
# docs/images/realset65.jpg (LR enlarged 4x by pixel repetition | student, three crops).
# Usage: tools/make_pictures.sh [eval-out-dir]   (default: out/eval)
set -euo pipefail
cd "$(dirname "$0")/.."
ev=${1:-out/eval}
data=${SINSR_DATA_DIR:-../shared/data}
host=build/bin/sinsr-host
pics=docs/images
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$pics"

# Bicubic panel: the student's network with no weights is its base alone, PyTorch bicubic.
"$host" infer -i "$data/set5/lr_x4/butterfly.png" -o "$tmp/bicubic.png" --backbone-weights none -q
panels=("$tmp/bicubic.png")
for p in teacher15 teacher1 student; do
  [ -f "$ev/set5/$p/butterfly.png" ] && panels+=("$ev/set5/$p/butterfly.png")
done
panels+=("$data/set5/hr/butterfly.png")
cropped=()
for i in "${!panels[@]}"; do
  oiiotool "${panels[$i]}" --cut 112x112+72+40 --resample 224x224 -o "$tmp/c$i.png"
  cropped+=("$tmp/c$i.png")
done
oiiotool "${cropped[@]}" --mosaic:pad=4 "${#cropped[@]}x1" --quality 92 -o "$pics/compare_butterfly.jpg"

# RealSet65: real LR photos (no ground truth), a 64x64 LR crop each.
rows=()
for spec in "comic1.png 24 24" "dog1.jpeg 80 60" "building.png 48 48"; do
  set -- $spec
  name=${1%.*}
  "$host" infer -i "$data/realset65/$1" -o "$tmp/$name.png" -q
  oiiotool "$data/realset65/$1" --ch R,G,B --cut "64x64+$2+$3" --resample 256x256 -o "$tmp/${name}_lr.png"
  oiiotool "$tmp/$name.png" --ch R,G,B --cut "256x256+$(( $2 * 4 ))+$(( $3 * 4 ))" -o "$tmp/${name}_sr.png"
  rows+=("$tmp/${name}_lr.png" "$tmp/${name}_sr.png")
done
oiiotool "${rows[@]}" --mosaic:pad=4 2x3 --quality 90 -o "$pics/realset65.jpg"
ls -la "$pics"
