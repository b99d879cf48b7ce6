#!/usr/bin/env bash
# Re-makes the shipped default model (models/default_x4) from scratch with the project's own
# `train` (ResShift teacher) and `distill` (SinSR student). Resumable: re-run the same line and
# each stage continues from its latest checkpoint; a finished stage is skipped.
# Usage: tools/train_default_model.sh [run-dir]   (default: runs/default_x4)
# Env: THREADS (default 1), TEACHER_STEPS (2500), STUDENT_STEPS (200).
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:-runs/default_x4}
threads=${THREADS:-1}
teacher_steps=${TEACHER_STEPS:-2500}
student_steps=${STUDENT_STEPS:-200}
host=build/bin/sinsr-host
[ -x "$host" ] || bash tools/bootstrap.sh build
[ -d data/train_photos ] || bash tools/fetch_train_photos.sh
mkdir -p "$run"

# Every part of the SinSR formulation stays as the official config has it (kappa 2, 15-step
# exponential schedule, x0 prediction, three distillation losses with weight 1); what is ours
# is the latent space (space_to_depth, lossless) and the network's size.
common=(--data data/train_photos --max-side 512 --codec space_to_depth --codec-weights none
        --backbone-config models/default_x4/backbone.json --threads "$threads" --seed 20261201)

resume_flag() { ls "$1"/ckpt_*.pth >/dev/null 2>&1 && echo --resume || echo --overwrite; }
done_at() { [ -f "$1/ckpt_$(printf %08d "$2").pth" ]; }

if ! done_at "$run/teacher" "$teacher_steps"; then
  "$host" train "${common[@]}" --out "$run/teacher" $(resume_flag "$run/teacher") \
    --gt-size 128 --batch 8 --lr 2e-4 --warmup 100 --max-steps "$teacher_steps" --save-every 250 --log-every 50
fi
teacher=$run/teacher/ema.pth  # written with the last checkpoint: the EMA weights

if ! done_at "$run/student" "$student_steps"; then
  "$host" distill "${common[@]}" --out "$run/student" $(resume_flag "$run/student") \
    --teacher-weights "$teacher" --gt-size 128 --batch 4 --lr 1e-4 --warmup 0 --ema 0.99 \
    --max-steps "$student_steps" --save-every 50 --log-every 10
fi
# Ship the student's EMA weights in float16 beside the plugin (models/default_x4/CMakeLists.txt).
"$host" export -w "$run/student/ema.pth" -o models/default_x4/student.pth --dtype fp16
echo "train_default_model: teacher $teacher; shipped models/default_x4/student.pth (rebuild to install it)"
