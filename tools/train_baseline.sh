#!/usr/bin/env bash
# Re-makes a shipped diffusion baseline (models/sr3_x4 or models/srdiff_x4) from scratch with
# the project's own `train`, on the training photos, in pixel space. Resumable: re-run the same
# line and each stage continues from its latest checkpoint; a finished stage is skipped.
# Usage: tools/train_baseline.sh sr3|srdiff [run-dir]   (default: runs/<family>_x4)
# Env: THREADS (default 1), STEPS (diffusion steps; sr3 1500, srdiff 2500),
#      RRDB_STEPS (srdiff's encoder pre-training, 400), HOST (default build/bin/sinsr-host).
set -euo pipefail
cd "$(dirname "$0")/.."
family=${1:?usage: tools/train_baseline.sh sr3|srdiff [run-dir]}
run=${2:-runs/${family}_x4}
threads=${THREADS:-1}
host=${HOST:-build/bin/sinsr-host}
[ -x "$host" ] || bash tools/bootstrap.sh build
[ -d data/train_photos ] || bash tools/fetch_train_photos.sh
mkdir -p "$run"
model=models/${family}_x4

common=(--data data/train_photos --max-side 512 --codec none --scale 4 --threads "$threads" --seed 20261202
        --gt-size 64 --batch 8 --log-every 50)
resume_flag() { ls "$1"/ckpt_*.pth >/dev/null 2>&1 && echo --resume || echo --overwrite; }
done_at() { [ -f "$1/ckpt_$(printf %08d "$2").pth" ]; }

case "$family" in
  sr3)
    # SR3's recipe: eps prediction, gamma = sqrt(alpha_bar) drawn between two steps of the
    # 2000-step training chain (the ddpm sampler's training_example), L1 on the noise as the
    # reference trains; sampling with its own 100-step schedule.
    steps=${STEPS:-1500}
    if ! done_at "$run/diffusion" "$steps"; then
      "$host" train "${common[@]}" --out "$run/diffusion" $(resume_flag "$run/diffusion") \
        --backbone sr3_unet --backbone-config "$(cat "$model/backbone.json")" \
        --sampler ddpm --sampler-config '{"variant": "sr3"}' --loss-x0 l1 \
        --lr 2e-4 --warmup 100 --ema 0.999 --max-steps "$steps" --save-every 250
    fi
    weights=$run/diffusion/ckpt_$(printf %08d "$steps").pth ;;
  srdiff)
    # SRDiff's recipe in two stages: the RRDB encoder alone (L1 of its SR head's image, as
    # the reference pre-trains it), then the conditional UNet on the residual with the RRDB
    # frozen (fix_rrdb), eps prediction with L1 as the reference's default loss.
    rrdb_steps=${RRDB_STEPS:-400}
    steps=${STEPS:-2500}
    rrdb_cfg=$(sed 's/"output": "eps"/"output": "rrdb"/; s/"fix_rrdb": true/"fix_rrdb": false/' "$model/backbone.json")
    if ! done_at "$run/rrdb" "$rrdb_steps"; then
      "$host" train "${common[@]}" --out "$run/rrdb" $(resume_flag "$run/rrdb") \
        --backbone srdiff --backbone-config "$rrdb_cfg" --objective regress --loss-x0 l1 \
        --sampler ddpm --sampler-config '{"variant": "srdiff"}' \
        --lr 2e-4 --warmup 0 --ema 0 --max-steps "$rrdb_steps" --save-every 100
    fi
    if ! done_at "$run/diffusion" "$steps"; then
      "$host" train "${common[@]}" --out "$run/diffusion" $(resume_flag "$run/diffusion") \
        --backbone srdiff --backbone-config "$(cat "$model/backbone.json")" \
        --backbone-weights "$run/rrdb/ckpt_$(printf %08d "$rrdb_steps").pth" \
        --sampler ddpm --sampler-config '{"variant": "srdiff"}' --loss-x0 l1 \
        --lr 2e-4 --warmup 100 --ema 0.999 --max-steps "$steps" --save-every 250
    fi
    weights=$run/diffusion/ckpt_$(printf %08d "$steps").pth ;;
  *) echo "train_baseline: unknown family '$family' (sr3 or srdiff)" >&2; exit 2 ;;
esac
# Ship the last step's raw weights in float16 beside the model plugin (sinsr_add_model in
# $model). Not the EMA: at rate 0.999 it still holds a third of the weights of 1000 steps
# before, which in runs this short are clearly worse (SRDiff at 2500 steps, butterfly x4,
# 100 steps: raw 22.28 dB, EMA 21.67 dB).
"$host" export -w "$weights" -o "$model/$family.pth" --dtype fp16
echo "train_baseline: shipped $model/$family.pth (rebuild to install it)"
