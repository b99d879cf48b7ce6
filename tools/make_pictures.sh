#!/usr/bin/env bash
# The pictures of docs/ and the README:
#  - docs/images/main_job.jpg: the README's main command on the real-world sample: LR (nearest) |
#    bicubic | student at --strength 0 (= student_bicubic), 0.5 and 1 (the default) | HR.
#  - docs/images/realworld_claim.jpg: SinSR's claim on real photos (RealSet65 crops, no ground
#    truth): LR (nearest) | bicubic | SinSR 1 step (the distillation-only student) | `student`
#    (the shipped default: that student after its fidelity stage) | ResShift 1 step (the
#    real-world teacher respaced) | ResShift 15 steps. Needs the run of tools/train_default_model.sh.
#  - docs/images/compare_butterfly.jpg: student_bicubic on Set5's butterfly: bicubic | teacher 15
#    steps | teacher 1 step | student_bicubic | HR (panels from tools/eval_default_model.sh's out/eval).
#  - docs/images/realset65.jpg: RealSet65 crops: LR (nearest) | student_bicubic | student.
#  - docs/images/serve_page.png: the `serve` page after an upscale, as the browser test
#    (ctest -R serve_browser) saved it in build/pictures/.
# Usage: tools/make_pictures.sh [eval-out-dir] [realworld-run-dir]   (defaults: out/eval, runs/realworld_x4)
set -euo pipefail
cd "$(dirname "$0")/.."
ev=${1:-out/eval}
run=${2:-runs/realworld_x4}
data=${SINSR_DATA_DIR:-../shared/data}
host=build/bin/sinsr-host
pics=docs/images
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$pics"
if [ -f build/pictures/serve_page.png ]; then cp build/pictures/serve_page.png "$pics/serve_page.png"; fi
net=(-n unet_swin --backbone-config models/default_x4/backbone.json --codec space_to_depth --pad-multiple 16
     --sampler deterministic -q)
# PyTorch bicubic: the untrained network, whose residual head is zero, adds nothing to it.
bicubic=("${net[@]}" --steps 1 --backbone-weights none)

# The main job: the sample's LR enlarged by pixel repetition, then the upscales (384x256 each).
lr=samples/lr_realesrgan_x4/autumn.png
oiiotool "$lr" --resample 384x256 -o "$tmp/m_lr.png"
"$host" infer -i "$lr" -o "$tmp/m_bic.png" "${bicubic[@]}"
for s in 0 0.5 1; do "$host" infer -i "$lr" -o "$tmp/m_s$s.png" --strength "$s" -q; done
oiiotool "$tmp/m_lr.png" "$tmp/m_bic.png" "$tmp/m_s0.png" "$tmp/m_s0.5.png" "$tmp/m_s1.png" samples/hr/autumn.png \
  --mosaic:pad=4 3x2 --quality 90 -o "$pics/main_job.jpg"

# SinSR's claim on real photos: 64x64 LR crops.
if [ -f "$run/teacher/ema.pth" ] && [ -f "$run/student/ema.pth" ]; then
  rows=()
  for spec in "bears.jpg 60 40" "oldphoto3.png 40 30" "cat1.jpeg 50 40" "0030.jpg 70 70"; do
    set -- $spec
    name=${1%.*}
    [ -f "$data/realset65/$1" ] || continue
    oiiotool "$data/realset65/$1" --ch R,G,B --cut "64x64+$2+$3" -o "$tmp/${name}_in.png"
    oiiotool "$tmp/${name}_in.png" --resample 256x256 -o "$tmp/${name}_lr.png"
    "$host" infer -i "$tmp/${name}_in.png" -o "$tmp/${name}_bic.png" "${bicubic[@]}"
    "$host" infer -i "$tmp/${name}_in.png" -o "$tmp/${name}_sinsr.png" "${net[@]}" -w "$run/student/ema.pth" --steps 1
    "$host" infer -i "$tmp/${name}_in.png" -o "$tmp/${name}_student.png" -q
    "$host" infer -i "$tmp/${name}_in.png" -o "$tmp/${name}_rs1.png" "${net[@]}" -w "$run/teacher/ema.pth" --steps 1
    "$host" infer -i "$tmp/${name}_in.png" -o "$tmp/${name}_rs15.png" "${net[@]}" -w "$run/teacher/ema.pth" --steps 15
    rows+=("$tmp/${name}_lr.png" "$tmp/${name}_bic.png" "$tmp/${name}_sinsr.png" "$tmp/${name}_student.png"
           "$tmp/${name}_rs1.png" "$tmp/${name}_rs15.png")
  done
  oiiotool "${rows[@]}" --mosaic:pad=4 "6x$(( ${#rows[@]} / 6 ))" --quality 90 -o "$pics/realworld_claim.jpg"
fi

# student_bicubic on Set5's butterfly (bicubic input, ground truth known); remade only when
# tools/eval_default_model.sh's panels are there.
if [ -f "$ev/set5/student_bicubic/butterfly.png" ]; then
"$host" infer -i "$data/set5/lr_x4/butterfly.png" -o "$tmp/bicubic.png" "${bicubic[@]}"
panels=("$tmp/bicubic.png")
for p in teacher15 teacher1 student_bicubic; do
  [ -f "$ev/set5/$p/butterfly.png" ] && panels+=("$ev/set5/$p/butterfly.png")
done
panels+=("$data/set5/hr/butterfly.png")
cropped=()
for i in "${!panels[@]}"; do
  oiiotool "${panels[$i]}" --cut 112x112+72+40 --resample 224x224 -o "$tmp/c$i.png"
  cropped+=("$tmp/c$i.png")
done
oiiotool "${cropped[@]}" --mosaic:pad=4 "${#cropped[@]}x1" --quality 92 -o "$pics/compare_butterfly.jpg"
fi

# RealSet65: real LR photos, a 64x64 LR crop each: LR | student_bicubic | student.
rows=()
for spec in "comic1.png 24 24" "dog1.jpeg 80 60" "building.png 48 48"; do
  set -- $spec
  name=${1%.*}
  oiiotool "$data/realset65/$1" --ch R,G,B --cut "64x64+$2+$3" -o "$tmp/${name}_in.png"
  oiiotool "$tmp/${name}_in.png" --resample 256x256 -o "$tmp/${name}_lr.png"
  "$host" infer -n student_bicubic -i "$tmp/${name}_in.png" -o "$tmp/${name}_sb.png" -q
  "$host" infer -i "$tmp/${name}_in.png" -o "$tmp/${name}_s.png" -q
  rows+=("$tmp/${name}_lr.png" "$tmp/${name}_sb.png" "$tmp/${name}_s.png")
done
oiiotool "${rows[@]}" --mosaic:pad=4 3x3 --quality 90 -o "$pics/realset65.jpg"
ls -la "$pics"
