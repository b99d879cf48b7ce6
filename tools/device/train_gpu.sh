#!/usr/bin/env bash
# On the GPU machine (the `device` tool's run, with `carry: [".gpu"]` from tools/device/pack.sh):
# unpacks the carried Debian packages into a prefix, builds sinsr-host and the plugins training
# needs against the machine's CUDA LibTorch without OpenImageIO (netpbm images only), converts
# the carried photos and validation pairs to netpbm with PIL, trains on CUDA within what is left
# of MINUTES, and puts into $OUT (8 files at most come back): the build log, the command's
# output, and each run's EMA weights in fp16 with its log (a checkpoint with its optimiser state
# is too large to bring back). Before training, a short check of the CUDA path: the clean sample
# upscaled by student_bicubic on CUDA (fp32, fp16) beside the CPU's bytes, with the seconds of
# each run (SINSR_GPU_CHECK=0 leaves it out, =1 runs it on the CPU too, for a rehearsal).
# Usage (there): bash tools/device/train_gpu.sh MINUTES [train_model.sh options...]
#                bash tools/device/train_gpu.sh MINUTES 'COMMAND'
#   The first runs tools/train_model.sh on the carried photos (data, validation, --device cuda,
#   --init student_bicubic, 14 data workers and the budget set; options given after win), e.g.
#     bash tools/device/train_gpu.sh 9 --name rw_gpu --batch 32 --teacher-steps 8000
#   The second runs COMMAND with $HOST (sinsr-host), $DATA, $VAL_LR, $VAL_HR, $RUN (a folder whose
#   sub-folders come back) and $BUDGET (minutes left) set; the regression ceiling, for instance:
#     bash tools/device/train_gpu.sh 9 '$HOST train --data $DATA --out $RUN/regress
#       --objective regress --codec space_to_depth --codec-weights none --max-side 512
#       --backbone-config models/default_x4/backbone.json --degradation realesrgan
#       --backbone-weights models/bicubic_x4/student_bicubic.pth --device cuda --workers 14
#       --batch 32 --max-steps 20000 --max-minutes $BUDGET --val-lr $VAL_LR --val-hr $VAL_HR'
set -euo pipefail
cd "$(dirname "$0")/../.."
minutes=${1:?usage: train_gpu.sh MINUTES [options | COMMAND]}
shift
kit=${SINSR_GPU_KIT:-.gpu}
device=${SINSR_GPU_DEVICE:-cuda}  # cpu: a rehearsal of this script on a machine without a GPU
out=${OUT:-/tmp/sinsr-out}
work=/tmp/sinsr-gpu
mkdir -p "$out" "$work"
t0=$(date +%s)
say() { echo "train_gpu [$(($(date +%s) - t0)) s]: $*"; }
[ -d "$kit/debs" ] && [ -d "$kit/photos" ] || { say "no $kit/debs or $kit/photos: run tools/device/pack.sh here first"; exit 1; }
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null | sed 's/^/train_gpu: /' || true

# The build: Debian's Boost, yaml-cpp, nlohmann-json and libjpeg from the carried packages.
prefix=$work/deps
for f in "$kit"/debs/*.deb; do dpkg -x "$f" "$prefix"; done
multiarch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
export CPATH=$prefix/usr/include:$prefix/usr/include/$multiarch${CPATH:+:$CPATH}
export LIBRARY_PATH=$prefix/usr/lib/$multiarch${LIBRARY_PATH:+:$LIBRARY_PATH}
export LD_LIBRARY_PATH=$prefix/usr/lib/$multiarch${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
torch_prefix=$(python3 -c 'import torch.utils; print(torch.utils.cmake_prefix_path)' 2>/dev/null || true)
say "building against $torch_prefix"
build=$work/build
if ! {
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSINSR_WITH_IMAGE_IO=OFF -DSINSR_BUILD_TESTS=OFF \
    -DCMAKE_PREFIX_PATH="$torch_prefix;$prefix/usr" &&
    ninja -C "$build" sinsr-host unet_swin space_to_depth resshift direct pointwise image student_bicubic
} >"$out/build.log" 2>&1; then
  tail -40 "$out/build.log"
  say "build failed (build.log comes back)"
  exit 1
fi
say "built"

python3 - "$kit" "$work/data" <<'PY'
import glob, os, sys
from PIL import Image
kit, dst = sys.argv[1], sys.argv[2]
for sub in ("photos", "val_lr", "val_hr"):
    os.makedirs(os.path.join(dst, sub), exist_ok=True)
    for f in sorted(glob.glob(os.path.join(kit, sub, "*"))):
        stem = os.path.splitext(os.path.basename(f))[0]
        Image.open(f).convert("RGB").save(os.path.join(dst, sub, stem + ".ppm"))
PY
say "data: $(ls "$work/data/photos" | wc -l) photos, $(ls "$work/data/val_lr" | wc -l) validation pairs"

check=${SINSR_GPU_CHECK:-auto}
if [ "$check" = 1 ] || { [ "$check" = auto ] && [ "$device" != cpu ]; }; then
  host=$build/bin/sinsr-host
  python3 -c 'import sys; from PIL import Image; Image.open(sys.argv[1]).convert("RGB").save(sys.argv[2])' \
    samples/lr_x4/autumn.png "$work/autumn.ppm"
  "$host" infer -q -n student_bicubic -i "$work/autumn.ppm" -o "$work/cpu.ppm" --device cpu
  for precision in fp32 fp16; do
    s0=$(date +%s.%N)
    if "$host" infer -q -n student_bicubic -i "$work/autumn.ppm" -o "$work/cuda_$precision.ppm" --device "$device" \
      --precision "$precision"; then
      say "$device $precision: $(awk -v a="$s0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }') s (start-up included)"
    else
      say "$device $precision: infer failed"
    fi
  done
  python3 - "$work/cpu.ppm" "$work/cuda_fp32.ppm" "$work/cuda_fp16.ppm" <<'PY' || true
import sys
import numpy as np
from PIL import Image
ref = np.asarray(Image.open(sys.argv[1]), dtype=np.float64)
for path in sys.argv[2:]:
    try:
        out = np.asarray(Image.open(path), dtype=np.float64)
    except OSError:
        continue
    mse = ((out - ref) ** 2).mean()
    psnr = float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)
    print("train_gpu: %s against the CPU: max difference %d levels, PSNR %.1f dB" % (path.split("/")[-1], np.abs(out - ref).max(), psnr))
PY
fi

left=$(awk -v m="$minutes" -v s="$(($(date +%s) - t0))" 'BEGIN { printf "%.2f", m - s / 60 }')
run=$work/run
mkdir -p "$run"
status=0
if [ $# -eq 1 ] && [[ "$1" != -* ]]; then
  HOST=$build/bin/sinsr-host DATA=$work/data/photos VAL_LR=$work/data/val_lr VAL_HR=$work/data/val_hr RUN=$run \
    BUDGET=$left bash -c "$1" 2>&1 | tee "$out/train.log" || status=$?
else
  SINSR_HOST=$build/bin/sinsr-host bash tools/train_model.sh --data "$work/data/photos" --out "$run" \
    --val-lr "$work/data/val_lr" --val-hr "$work/data/val_hr" --device "$device" --threads 2 --workers 14 \
    --init models/bicubic_x4/student_bicubic.pth --max-minutes "$left" "$@" 2>&1 | tee "$out/train.log" || status=$?
fi
# build.log and train.log, then two files per run folder: three runs fit in the 8 files.
for dir in "$run"/*/; do
  name=$(basename "$dir")
  [ -f "$dir/ema.pth" ] || continue
  "$build/bin/sinsr-host" export -w "$dir/ema.pth" -o "$out/${name}_ema_fp16.pth" --dtype fp16 >/dev/null
  cp "$dir/train_log.jsonl" "$out/${name}_log.jsonl"
done
say "finished (exit $status); back in \$OUT: $(ls "$out" | tr '\n' ' ')"
exit "$status"
