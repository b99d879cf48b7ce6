#!/usr/bin/env bash
# Re-makes a shipped default model from scratch with tools/train_model.sh (ResShift teacher,
# SinSR student, float16 export), then copies its weights into models/ (rebuild to install them).
# Resumable: run the same line again and each stage continues from its latest checkpoint.
#   realworld (default): `student` (models/default_x4): RealESRGAN degradation on the fly, 34 of the
#     training photos (three held out for validation, tools/make_realworld_split.sh), starting from
#     student_bicubic's weights; teacher 3000 steps, student 2000, fidelity stage 1000 (MSE to the
#     GT plus the teacher's texture above 3 px; see tools/train_model.sh).
#   bicubic: `student_bicubic` (models/bicubic_x4): MATLAB-bicubic LR, all 37 photos, from scratch;
#     teacher 2500 steps, student 200.
#   realworld-regress: the same UNet by plain regression for as many steps (the PSNR ceiling row).
# Usage: tools/train_default_model.sh [realworld|realworld-regress|bicubic] [run-dir]
# Env: THREADS (default 1).
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-realworld}
threads=${THREADS:-1}
case "$which" in
  realworld)
    run=${2:-runs/realworld_x4}
    [ -d data/rw/train ] || bash tools/make_realworld_split.sh
    bash tools/train_model.sh --data data/rw/train --name student --out "$run" --degradation realesrgan \
      --teacher-steps 3000 --student-steps 2000 --threads "$threads" --seed 20261204 \
      --init models/bicubic_x4/student_bicubic.pth --val-lr data/rw/val_lr --val-hr data/rw/val_hr --fp16 \
      --fidelity-steps 1000
    cp "$run/student.pth" models/default_x4/student.pth
    echo "train_default_model: shipped models/default_x4/student.pth (rebuild to install it)" ;;
  realworld-regress)
    # The PSNR ceiling beside `student`: the same UNet and data, plain regression (up-sampled LR at
    # t = 0 -> HR, MSE) for the teacher's 3000 steps; run it with `--sampler direct`.
    run=${2:-runs/realworld_x4}/regress
    [ -d data/rw/train ] || bash tools/make_realworld_split.sh
    host=${SINSR_HOST:-build/bin/sinsr-host}
    [ -x "$host" ] || bash tools/bootstrap.sh build
    resume=--overwrite
    ls "$run"/ckpt_*.pth > /dev/null 2>&1 && resume=--resume
    "$host" train --objective regress --data data/rw/train --max-side 512 --codec space_to_depth --codec-weights none \
      --backbone-config models/default_x4/backbone.json --threads "$threads" --seed 20261204 --degradation realesrgan \
      --gt-size 128 --backbone-weights models/bicubic_x4/student_bicubic.pth --out "$run" $resume --batch 8 \
      --lr 2e-4 --warmup 100 --max-steps 3000 --save-every 250 --log-every 50
    echo "train_default_model: $run/ema.pth (tools/eval_realworld_model.sh reports it)" ;;
  bicubic)
    run=${2:-runs/default_x4}
    [ -d data/train_photos ] || bash tools/fetch_train_photos.sh
    bash tools/train_model.sh --data data/train_photos --name student_bicubic --out "$run" --degradation bicubic \
      --teacher-steps 2500 --student-steps 200 --threads "$threads" --seed 20261201 --student-ema 0.99 --fp16
    cp "$run/student_bicubic.pth" models/bicubic_x4/student_bicubic.pth
    echo "train_default_model: shipped models/bicubic_x4/student_bicubic.pth (rebuild to install it)" ;;
  *) echo "usage: tools/train_default_model.sh [realworld|realworld-regress|bicubic] [run-dir]" >&2; exit 2 ;;
esac
