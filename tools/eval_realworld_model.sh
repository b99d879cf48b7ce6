#!/usr/bin/env bash
# Re-makes the README's real-world tables for the shipped `student`:
#  1. Set5 and Set14 degraded once by the RealESRGAN pipeline (../shared/data/*/lr_realesrgan_x4):
#     PSNR / SSIM / detail (Y, border 4) and NIQE, seconds per image, for bicubic, student_bicubic,
#     the real-world teacher at 15 steps and respaced to 1 step (ResShift-1), the shipped student,
#     and the same UNet trained by plain regression (`--objective regress`, the PSNR ceiling).
#  2. Mean NIQE over all of RealSet65 and the 30 RealSR images kept here (no ground truth), for
#     bicubic, student_bicubic and student (and the distillation-only student, when its run is here).
# The shipped `student` is the SinSR student after its fidelity stage (tools/train_model.sh
# --fidelity-steps); the rows "SinSR student, distillation only" are the stage before it.
# The teacher and regression rows need their run folders (tools/train_default_model.sh realworld and
# realworld-regress); rows whose weights are missing are left out. The regression network runs with
# the `direct` sampler (one call at t = 0 on the up-sampled LR, as it was trained).
# Usage: tools/eval_realworld_model.sh [run-dir] [regress-run-dir] [out-dir]
#        (defaults: runs/realworld_x4, runs/realworld_x4/regress, out/eval_realworld)
# Env: THREADS (default: all cores). Run it on an otherwise idle machine: the seconds are timed.
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:-runs/realworld_x4}
regress=${2:-$run/regress}
out=${3:-out/eval_realworld}
source tools/eval_setup.sh

# scores EVAL-ARGS...: "PSNR | SSIM | detail | NIQE" of one eval run
scores() {
  "$host" eval "$@" --metrics psnr,ssim,detail,niqe --json "$out/scores.json" > /dev/null
  python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
print("%.2f | %.4f | %.3f | %.2f" % (j["mean_psnr"], j["mean_ssim"], j["mean_detail"], j["mean_niqe"]))' "$out/scores.json"
}
niqe() {
  "$host" eval "$@" --json "$out/niqe.json" > /dev/null
  python3 -c 'import json, sys; j = json.load(open(sys.argv[1])); print("%.2f (%d)" % (j["mean_niqe"], j["niqe_count"]))' \
    "$out/niqe.json"
}
# timed NAME LR_DIR OUT [GT_DIR] -- infer args...: runs infer on LR_DIR, prints "scores | s/image"
timed() {
  local lr=$1 dst=$2 gt=$3 secs
  shift 4
  secs=$(seconds_per_image "$lr" "$dst" -- "$@")
  echo "$(scores --pred "$dst" --gt "$gt") | $secs"
}

echo "| set (lr_realesrgan_x4) | model | network calls | PSNR (dB) | SSIM | detail | NIQE | s / image |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
for set in set5 set14; do
  lr=$data/$set/lr_realesrgan_x4 gt=$data/$set/hr
  echo "| $set | MATLAB bicubic | – | $(scores --bicubic-from "$lr" --gt "$gt") | – |"
  echo "| $set | student_bicubic | 1 | $(timed "$lr" "$out/$set/student_bicubic" "$gt" -- -n student_bicubic --threads "$threads" --seed 0 -q) |"
  if [ -f "$teacher" ]; then
    echo "| $set | teacher, deterministic 15 steps | 15 | $(timed "$lr" "$out/$set/teacher15" "$gt" -- "${net[@]}" \
      --backbone-weights "$teacher" --sampler deterministic --steps 15) |"
    echo "| $set | teacher respaced to 1 step (ResShift-1) | 1 | $(timed "$lr" "$out/$set/teacher1" "$gt" -- "${net[@]}" \
      --backbone-weights "$teacher" --sampler deterministic --steps 1) |"
  fi
  if [ -f "$run/student/ema.pth" ]; then
    echo "| $set | SinSR student, distillation only | 1 | $(timed "$lr" "$out/$set/sinsr" "$gt" -- "${net[@]}" \
      --backbone-weights "$run/student/ema.pth" --sampler deterministic --steps 1) |"
  fi
  echo "| $set | **student** (\`sinsr-host infer\`) | 1 | $(timed "$lr" "$out/$set/student" "$gt" -- --threads "$threads" --seed 0 -q) |"
  if [ -f "$regress/ema.pth" ]; then
    echo "| $set | same UNet, plain regression | 1 | $(timed "$lr" "$out/$set/regress" "$gt" -- "${net[@]}" \
      --backbone-weights "$regress/ema.pth" --sampler direct) |"
  fi
done

echo
sinsr_head="" sinsr_rule=""
[ -f "$run/student/ema.pth" ] && sinsr_head=" SinSR student, distillation only |" sinsr_rule=" --- |"
echo "| set (no ground truth) | MATLAB bicubic | student_bicubic |$sinsr_head **student** |"
echo "| --- | --- | --- |$sinsr_rule --- |"
for set in realset65 realsr; do
  for m in student_bicubic student; do
    rm -rf "$out/$set/$m"
    "$host" infer -n "$m" -i "$data/$set" -o "$out/$set/$m" --threads "$threads" --seed 0 -q
  done
  sinsr=""
  if [ -n "$sinsr_head" ]; then
    rm -rf "$out/$set/sinsr"
    "$host" infer "${net[@]}" --backbone-weights "$run/student/ema.pth" --sampler deterministic --steps 1 \
      -i "$data/$set" -o "$out/$set/sinsr"
    sinsr=" $(niqe --pred "$out/$set/sinsr") |"
  fi
  echo "| $set | $(niqe --bicubic-from "$data/$set") | $(niqe --pred "$out/$set/student_bicubic") |$sinsr $(niqe --pred "$out/$set/student") |"
done
