#!/usr/bin/env bash
# Re-makes the results table of student_bicubic (docs/models.md): Set5 and Set14 x4,
# PSNR / SSIM / detail (Y channel, border 4, as `sinsr-host eval` computes them) and seconds per
# image, for bicubic, the teacher at 15 steps, the teacher respaced to 1 step (ResShift-1) and
# student_bicubic at 1 step. The teacher rows need the run folder of
# tools/train_default_model.sh bicubic (its weights are not shipped); without it they are left out.
# Usage: tools/eval_default_model.sh [run-dir] [out-dir]   (defaults: runs/default_x4, out/eval)
# Env: THREADS (default: all cores). Run it on an otherwise idle machine: the seconds are timed.
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:-runs/default_x4}
out=${2:-out/eval}
source tools/eval_setup.sh

# scores EVAL-ARGS...: "PSNR | SSIM | detail" of one eval run
scores() {
  "$host" eval "$@" --json "$out/scores.json" > /dev/null
  python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
print("%.2f | %.4f | %.3f" % (j["mean_psnr"], j["mean_ssim"], j["mean_detail"]))' "$out/scores.json"
}
# row NAME SET PRED_DIR SECONDS_PER_IMAGE
row() { echo "| $2 | $1 | $(scores --pred "$3" --gt "$data/$2/hr") | $4 |"; }
# timed NAME SET OUT -- infer args...: runs infer on the set's LR folder, prints its row
timed() {
  local name=$1 set=$2 dst=$3
  shift 4
  local secs
  secs=$(seconds_per_image "$data/$set/lr_x4" "$dst" -- "$@")
  row "$name" "$set" "$dst" "$secs"
}

echo "| set | model | network calls | PSNR (dB) | SSIM | detail | s / image |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for set in set5 set14; do
  echo "| $set | MATLAB bicubic | – | $(scores --bicubic-from "$data/$set/lr_x4" --gt "$data/$set/hr") | – |"
  if [ -f "$teacher" ]; then
    timed "teacher, deterministic 15 steps | 15" "$set" "$out/$set/teacher15" -- "${net[@]}" \
      --backbone-weights "$teacher" --sampler deterministic --steps 15
    timed "teacher respaced to 1 step (ResShift-1) | 1" "$set" "$out/$set/teacher1" -- "${net[@]}" \
      --backbone-weights "$teacher" --sampler deterministic --steps 1
  fi
  timed "student_bicubic (\`-n student_bicubic\`) | 1" "$set" "$out/$set/student_bicubic" -- -n student_bicubic --threads "$threads" --seed 0 -q
done
