#!/usr/bin/env bash
# Start-up as a user pays it: the time of a one-image `infer` minus the per-image time of a
# folder run (the median of the times it reports for its images after the first), with
# full-size networks (SinSR.yaml sizes) whose weights are files in the official .pth layout,
# already in the page cache. Also the bare process start (`sinsr-host --version`:
# loading LibTorch and OpenImageIO) and the time before the first image (the one-image run
# less the time it reports for its image: loading, networks, weights). Medians of RUNS, at 1
# thread and at THREADS.
# Then the same for the shipped default model (`-n student`) at 256x256 and 1024x1024 output.
# The weights are random values under the official key names and shapes (../shared/spec/*-keys.txt),
# written once with Debian's python3-torch into the work folder.
# Usage: tools/bench_startup.sh [work-dir (default out/bench_startup)]
# Env: THREADS (default nproc), RUNS (default 3), IMAGES (folder size, default 4), HOST, SINSR_SPEC_DIR,
# BASELINE (a second sinsr-host: each row is measured for both, runs alternating, and printed twice),
# ONLY=full (the full-size rows only).
# Run it on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-out/bench_startup}
threads=${THREADS:-$(nproc)}
runs=${RUNS:-3}
images=${IMAGES:-4}
spec=${SINSR_SPEC_DIR:-../shared/spec}
data=${SINSR_DATA_DIR:-../shared/data}
host=${HOST:-build/bin/sinsr-host}
baseline=${BASELINE:-}
hosts=("$host")
[ -n "$baseline" ] && hosts+=("$baseline")
[ -x "$host" ] || bash tools/bootstrap.sh build
mkdir -p "$work"

if [ ! -f "$work/unet.pth" ] || [ ! -f "$work/vq.pth" ]; then
  /usr/bin/python3 - "$spec" "$work" <<'PY'
import sys, torch
spec, work = sys.argv[1], sys.argv[2]
g = torch.Generator().manual_seed(0)
for keys, out in (("unet-swin-keys.txt", "unet.pth"), ("autoencoder-vq-f4-keys.txt", "vq.pth")):
    sd = {}
    for line in open(f"{spec}/{keys}"):
        if line.startswith("#") or not line.strip():
            continue
        name, shape, dtype, _ = line.rstrip("\n").split("\t")
        shape = [int(x) for x in shape.strip("[]").split(",") if x.strip()]
        dt = getattr(torch, dtype)
        sd[name] = torch.randn(shape, generator=g, dtype=dt) * 0.02 if dt.is_floating_point else torch.zeros(shape, dtype=dt)
    torch.save(sd, f"{work}/{out}")
PY
fi
cat "$work/unet.pth" "$work/vq.pth" > /dev/null  # into the page cache
seconds() { local s e; s=$(date +%s.%N); "$@" > /dev/null 2>&1; e=$(date +%s.%N); python3 -c "print($e - $s)"; }
median() { python3 -c "import statistics, sys; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }
full() {
  "$exe" infer -n unet_swin -c sinsr_x4 -w "$work/unet.pth" --codec-weights "$work/vq.pth" "$@"
}
student() { "$exe" infer -n student "$@"; }

# Table rows per thread count and program: RUNNER's one-image run, folder run of IMAGES copies of
# LR; with BASELINE the two programs take turns run by run.
rows() {
  local runner=$1 lr=$2 label=$3 t r s e h exe name
  rm -rf "$work/one" "$work/folder"
  mkdir -p "$work/one" "$work/folder"
  cp "$lr" "$work/one/lr.png"
  for k in $(seq 1 "$images"); do cp "$lr" "$work/folder/lr$k.png"; done
  for t in 1 "$threads"; do
    declare -A v=() one=() before=() per=()
    for r in $(seq 1 "$runs"); do
      for h in "${!hosts[@]}"; do
        exe=${hosts[$h]}
        v[$h]+=" $(seconds "$exe" --version)"
        s=$(date +%s.%N)
        "$runner" -j "$t" -i "$work/one" -o "$work/out_one" > "$work/one.log" 2>&1
        e=$(date +%s.%N)
        one[$h]+=" $(python3 -c "print($e - $s)")"
        # Before the first image: the one-image run less the time it reports for its image.
        before[$h]+=" $(sed -n 's/^\[1\/1\] .*(\([0-9.]*\) s)$/\1/p' "$work/one.log" | python3 -c "import sys; print($e - $s - float(sys.stdin.read()))")"
        # Per image: the times the folder run reports for its images after the first, whose
        # median is steadier here than (folder - one image) / (IMAGES - 1), a difference of totals.
        per[$h]+=" $("$runner" -j "$t" -i "$work/folder" -o "$work/out_folder" 2>&1 \
          | grep -v '^\[1/' | sed -n 's/^\[[0-9]*\/[0-9]*\] .*(\([0-9.]*\) s)$/\1/p' | tr '\n' ' ')"
      done
    done
    for h in "${!hosts[@]}"; do
      name=$label
      [ -n "$baseline" ] && name="$label, $([ "$h" = 0 ] && echo HOST || echo BASELINE)"
      # shellcheck disable=SC2086  # the lists are space-separated numbers
      python3 - "$name" "$t" "$(median ${v[$h]})" "$(median ${before[$h]})" "$(median ${one[$h]})" "$(median ${per[$h]})" <<'PY'
import sys
label, t, v, before, one, per = sys.argv[1], sys.argv[2], *map(float, sys.argv[3:])
print(f"| {label} | {t} | {v:.2f} s | {before:.2f} s | {one:.2f} s | {per:.2f} s | **{one - per:.2f} s** |")
PY
    done
  done
}

echo "| network | threads | process start (--version) | before the first image | one image | folder, per image | start-up |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
rows full "$data/set5/lr_x4/butterfly.png" "SinSR.yaml sizes, 64²→256²"
[ "${ONLY:-}" = full ] && exit 0
rows student "$data/set5/lr_x4/butterfly.png" "shipped student, 64²→256²"
rows student "$data/set5/hr/butterfly.png" "shipped student, 256²→1024²"
