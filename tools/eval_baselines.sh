#!/usr/bin/env bash
# Re-makes the README's rows for the shipped diffusion baselines (models/sr3_x4, models/srdiff_x4):
# Set5 and Set14 x4, PSNR / SSIM / detail (Y channel, border 4, as `sinsr-host eval` computes
# them) and seconds per image, at their default 100 ancestral steps and at fewer. Set14 in pixel
# space at 100 steps is slow on a CPU, so Set14 runs the reduced count only.
# Usage: tools/eval_baselines.sh [out-dir]   (default: out/eval_baselines)
# Env: THREADS (default: all cores), FEW (the reduced step count, default 25), HOST.
# Run it on an otherwise idle machine: the seconds are timed.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-out/eval_baselines}
threads=${THREADS:-$(nproc)}
few=${FEW:-25}
data=${SINSR_DATA_DIR:-../shared/data}
host=${HOST:-build/bin/sinsr-host}
[ -x "$host" ] || bash tools/bootstrap.sh build
mkdir -p "$out"

scores() {
  "$host" eval "$@" --json "$out/scores.json" > /dev/null
  python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
print("%.2f | %.4f | %.3f" % (j["mean_psnr"], j["mean_ssim"], j["mean_detail"]))' "$out/scores.json"
}
# timed MODEL SET STEPS: one folder run of the shipped model, its row
timed() {
  local model=$1 set=$2 steps=$3 dst=$out/$2/$1_$3
  local n start end
  n=$(ls "$data/$set/lr_x4" | wc -l)
  rm -rf "$dst"
  start=$(date +%s.%N)
  "$host" infer -n "$model" -i "$data/$set/lr_x4" -o "$dst" --steps "$steps" --seed 0 --threads "$threads" -q
  end=$(date +%s.%N)
  echo "| $set | \`$model\` | $steps | $(scores --pred "$dst" --gt "$data/$set/hr") | $(python3 -c "print('%.2f' % (($end - $start) / $n))") |"
}

echo "| set | model | network calls | PSNR (dB) | SSIM | detail | s / image |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
echo "| set5 | MATLAB bicubic | – | $(scores --bicubic-from "$data/set5/lr_x4" --gt "$data/set5/hr") | – |"
for model in srdiff_x4 sr3_x4; do
  timed "$model" set5 100
  timed "$model" set5 "$few"
done
echo "| set14 | MATLAB bicubic | – | $(scores --bicubic-from "$data/set14/lr_x4" --gt "$data/set14/hr") | – |"
for model in srdiff_x4 sr3_x4; do
  timed "$model" set14 "$few"
done
