#!/usr/bin/env bash
# From a folder of HR photos to a SinSR x4 model you can use by name: a ResShift teacher
# (`sinsr-host train`), a one-step student distilled from it (`sinsr-host distill`), its EMA
# weights exported, and a model manifest NAME.model.json beside them (load it with --plugin, or
# copy the folder's NAME.* files into a plugin folder). Resumable: run the same line again and
# each stage continues from its latest checkpoint; a finished stage is skipped. Writes only
# under --out (default runs/NAME), never into models/. --fidelity-steps K adds a third stage:
# the student fine-tuned with MSE against the ground truth for the whole image plus the
# teacher's trajectory above a Gaussian of sigma 3 px (weight W, `highpass` loss), trading part
# of the texture for PSNR and SSIM; the model is then that stage's weights. --codec-factor F folds
# F x F pixel blocks instead of 4 x 4 (F = 2: the UNet at twice the LR resolution, 4x the compute,
# as many weights); without --backbone-config the network's channels follow F. --device cuda
# trains on a GPU; --max-minutes M bounds this call's wall time: the stage running when it is
# used up is saved and paused, and the same line again continues (a job limit, a lent machine).
# --teacher-weights W / --student-weights W start from a teacher / distilled student made
# before: the stages they stand for are skipped (a fidelity stage alone: both, --fidelity-steps).
# Usage: tools/train_model.sh --data DIR --name NAME [--out DIR] [--degradation realesrgan|bicubic]
#          [--teacher-steps N] [--student-steps M] [--threads T] [--init WEIGHTS] [--fp16]
#          [--val-lr DIR --val-hr DIR] [--gt-size S] [--batch B] [--seed N] [--student-ema R]
#          [--backbone-config FILE] [--weight-gt W] [--fidelity-steps K] [--fidelity-weight W]
#          [--codec-factor F] [--device cpu|cuda|cuda:N] [--max-minutes M] [--workers W]
#          [--teacher-weights W] [--student-weights W]
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
data="" name="" out="" degradation=realesrgan teacher_steps=3000 student_steps=2000 threads=1 init=""
val_lr="" val_hr="" gt_size=128 seed=20261204 student_ema=0.995 dtype=fp32 batch=8
bcfg="" weight_gt=1 fidelity_steps=0 fidelity_weight=1 factor=4 device=cpu max_minutes=0 workers=2 teacher_w="" student_w=""
while [ $# -gt 0 ]; do
  case "$1" in
    --data) data=$2; shift 2 ;;
    --name) name=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --degradation) degradation=$2; shift 2 ;;
    --teacher-steps) teacher_steps=$2; shift 2 ;;
    --student-steps) student_steps=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --init) init=$2; shift 2 ;;
    --val-lr) val_lr=$2; shift 2 ;;
    --val-hr) val_hr=$2; shift 2 ;;
    --gt-size) gt_size=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --student-ema) student_ema=$2; shift 2 ;;
    --fp16) dtype=fp16; shift ;;
    --batch) batch=$2; shift 2 ;;
    --backbone-config) bcfg=$2; shift 2 ;;
    --weight-gt) weight_gt=$2; shift 2 ;;
    --fidelity-steps) fidelity_steps=$2; shift 2 ;;
    --fidelity-weight) fidelity_weight=$2; shift 2 ;;
    --codec-factor) factor=$2; shift 2 ;;
    --device) device=$2; shift 2 ;;
    --max-minutes) max_minutes=$2; shift 2 ;;
    --workers) workers=$2; shift 2 ;;
    --teacher-weights) teacher_w=$2; shift 2 ;;
    --student-weights) student_w=$2; shift 2 ;;
    -h|--help) usage ;;
    *) echo "train_model: unknown option $1" >&2; usage ;;
  esac
done
[ -n "$data" ] && [ -n "$name" ] || { echo "train_model: --data and --name are required" >&2; usage; }
[ -d "$data" ] || { echo "train_model: $data: no such folder" >&2; exit 1; }
case "$factor" in 1|2|4) ;; *) echo "train_model: --codec-factor must be 1, 2 or 4" >&2; exit 2 ;; esac
for w in "$teacher_w" "$student_w"; do
  [ -z "$w" ] || [ -f "$w" ] || { echo "train_model: $w: no such weights file" >&2; exit 1; }
done
[ -z "$student_w" ] || [ -n "$teacher_w" ] || { echo "train_model: --student-weights needs --teacher-weights (the fidelity and later stages read the teacher)" >&2; exit 2; }
[[ "$max_minutes" =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "train_model: --max-minutes must be a number of minutes" >&2; exit 2; }
started=$(date +%s)
out=${out:-runs/$name}
host=${SINSR_HOST:-build/bin/sinsr-host}
[ -x "$host" ] || bash tools/bootstrap.sh build
mkdir -p "$out"
if [ -z "$bcfg" ]; then
  bcfg=models/default_x4/backbone.json
  if [ "$factor" != 4 ]; then
    # The shipped network with its latent channels for F x F blocks (3 F^2, plus the 3 of the LR).
    bcfg=$out/backbone_f$factor.json
    python3 - models/default_x4/backbone.json "$bcfg" "$factor" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); f = int(sys.argv[3])
c.update(in_channels=3 * f * f + 3, out_channels=3 * f * f, residual_unshuffle=f)
json.dump(c, open(sys.argv[2], "w"), indent=2)
PY
  fi
fi

# Every part of the SinSR formulation stays as the official config has it (kappa 2, 15-step
# exponential schedule, x0 prediction, three distillation losses with weight 1); what is ours is
# the latent space (space_to_depth, lossless) and the network's size (models/default_x4).
common=(--data "$data" --max-side 512 --codec space_to_depth --codec-config "{\"factor\": $factor}" --codec-weights none
        --backbone-config "$bcfg" --threads "$threads" --seed "$seed" --device "$device" --workers "$workers"
        --degradation "$degradation" --gt-size "$gt_size")
val=()
[ -n "$val_lr" ] && val=(--val-lr "$val_lr" --val-hr "$val_hr" --val-every 500)

resume_flag() { ls "$1"/ckpt_*.pth >/dev/null 2>&1 && echo --resume || echo --overwrite; }
done_at() { [ -f "$1/ckpt_$(printf %08d "$2").pth" ]; }
# What is left of --max-minutes for the next stage (0: no budget).
budget() {
  [ "$max_minutes" = 0 ] && { echo 0; return; }
  awk -v m="$max_minutes" -v s="$(( $(date +%s) - started ))" 'BEGIN { r = m - s / 60; printf "%.3f", (r > 0.001 ? r : 0.001) }'
}
# A stage that stopped short of its steps used up the budget: stop here, resumable.
paused_in() {
  done_at "$1" "$2" && return 0
  echo "train_model: paused in $1 (--max-minutes $max_minutes used up); the same line again continues"
  exit 0
}

teacher_weights=${teacher_w:-$out/teacher/ema.pth}
student_weights=${student_w:-$out/student/ema.pth}
if [ -z "$teacher_w" ] && ! done_at "$out/teacher" "$teacher_steps"; then
  init_flag=()
  [ -n "$init" ] && init_flag=(--backbone-weights "$init")
  "$host" train "${common[@]}" "${val[@]}" "${init_flag[@]}" --out "$out/teacher" $(resume_flag "$out/teacher") \
    --batch "$batch" --lr 2e-4 --warmup 100 --max-steps "$teacher_steps" --save-every 250 --log-every 50 \
    --max-minutes "$(budget)"
  paused_in "$out/teacher" "$teacher_steps"
fi

if [ -z "$student_w" ] && ! done_at "$out/student" "$student_steps"; then
  "$host" distill "${common[@]}" "${val[@]}" --out "$out/student" $(resume_flag "$out/student") \
    --teacher-weights "$teacher_weights" --batch $(( (batch + 1) / 2 )) --lr 1e-4 --warmup 0 --ema "$student_ema" --weight-gt "$weight_gt" \
    --max-steps "$student_steps" --save-every 100 --log-every 20 --max-minutes "$(budget)"
  paused_in "$out/student" "$student_steps"
fi
final_weights=$student_weights
if [ "$fidelity_steps" -gt 0 ]; then
  final=$out/fidelity
  final_weights=$final/ema.pth
  if ! done_at "$final" "$fidelity_steps"; then
    # Texture from the teacher (distill term, high-pass only), the rest from the GT (direct term).
    "$host" distill "${common[@]}" "${val[@]}" --out "$final" $(resume_flag "$final") \
      --teacher-weights "$teacher_weights" --backbone-weights "$student_weights" \
      --batch $(( (batch + 1) / 2 )) --lr 1e-4 --warmup 0 --ema "$student_ema" --no-inverse --no-gt \
      --loss-distill highpass --loss-distill-config "{\"block\": $factor, \"sigma\": 3}" --weight-distill "$fidelity_weight" \
      --loss-direct mse --weight-direct 1 --max-steps "$fidelity_steps" --save-every 100 --log-every 20 \
      --max-minutes "$(budget)"
    paused_in "$final" "$fidelity_steps"
  fi
fi
"$host" export -w "$final_weights" -o "$out/$name.pth" --dtype "$dtype"
# The manifest: a model without code, found on the plugin path like a built model plugin.
cp "$bcfg" "$out/$name.backbone.json"
if [ "$degradation" = realesrgan ]; then input=real-world; else input=bicubic; fi
cat > "$out/$name.model.json" <<JSON
{
  "sinsr_model": 1,
  "name": "$name",
  "base": "unet_swin",
  "config": "$name.backbone.json",
  "weights": "$name.pth",
  "pipeline": {"codec": {"name": "space_to_depth", "config": {"factor": $factor}}, "sampler": "deterministic", "steps": 1},
  "scale": 4,
  "input": "$input",
  "summary": "SinSR x4 one-step student trained by tools/train_model.sh on $(basename "$data") ($degradation LR)"
}
JSON
echo "train_model: model '$name' in $out ($name.model.json, $name.pth)"
echo "  use it:     $host infer --plugin $out/$name.model.json -n $name -i IN -o OUT"
echo "  install it: cp $out/$name.* <prefix>/lib/sinsr/plugins/   (then: sinsr-host infer -n $name ...)"
