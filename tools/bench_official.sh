#!/usr/bin/env bash
# Side by side on this machine: the official SinSR Python code (../shared/bench/official_bench.py:
# random weights, SinSR.yaml sizes, Debian's python3-torch) and `sinsr-host bench`, each row at
# 1 thread and at N threads, medians of REPEATS runs; prints one table with the ratios.
# The official code is not vendored: pass a checkout of the public repository (wyf0912/SinSR).
# Usage: tools/bench_official.sh SINSR_REPO [THREADS (default: nproc)] [REPEATS (default 3)]
# Env: BENCH_OUT (raw outputs, default out/bench_official), HOST, SINSR_BENCH_DIR, REUSE_OFFICIAL.
# Run it on an otherwise idle machine (no training or build beside it).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=${1:?usage: tools/bench_official.sh SINSR_REPO [THREADS] [REPEATS]}
threads=${2:-$(nproc)}
repeats=${3:-3}
bench=${SINSR_BENCH_DIR:-../shared/bench}
host=${HOST:-build/bin/sinsr-host}
[ -x "$host" ] || bash tools/bootstrap.sh build
[ -f "$repo/configs/SinSR.yaml" ] || { echo "bench_official: $repo is not a SinSR checkout" >&2; exit 2; }
/usr/bin/python3 -c "import torch, PIL" 2> /dev/null ||
  { echo "bench_official: the official code needs Debian's python3-torch and python3-pil (apt-get install python3-torch python3-pil)" >&2; exit 2; }
tmp=${BENCH_OUT:-out/bench_official}  # the raw outputs stay here
mkdir -p "$tmp"
for t in 1 "$threads"; do
  # REUSE_OFFICIAL=1 keeps the official rows of an earlier run on this machine (their code is fixed).
  [ "${REUSE_OFFICIAL:-0}" = 1 ] && [ -s "$tmp/official_$t.json" ] && continue
  # torch.set_num_threads leaves OpenBLAS's own pool alone: at "1 thread" the official UNet ran
  # its matrix products on 2 cores (user+sys 43 s for 23 s of wall time). sinsr-host sets both.
  OPENBLAS_NUM_THREADS=$t /usr/bin/python3 "$bench/official_bench.py" "$repo" "$bench/stand-ins" "$t" "$repeats" \
    > "$tmp/official_$t.json"
done
"$host" bench --threads "$threads" --repeats "$repeats" --no-cuda > "$tmp/ours.txt"
"$host" bench --only upscale --lr 64 --threads "$threads" --repeats "$repeats" --no-cuda > "$tmp/ours_upscale.txt"
python3 - "$tmp" "$threads" <<'PY'
import json, sys
tmp, n = sys.argv[1], sys.argv[2]
def last_json(path):  # the official modules may print on import: the result is the last {...} line
    lines = [l for l in open(path) if l.startswith("{")]
    if not lines:
        sys.exit(f"bench_official: no result in {path}")
    return json.loads(lines[-1])
off = {t: last_json(f"{tmp}/official_{t}.json") for t in ("1", n)}
ours = {}
for name in ("ours.txt", "ours_upscale.txt"):
    for line in open(f"{tmp}/{name}"):
        for key, head in (("unet_64", "unet_swin forward"), ("vq_encode_256", "vq_f4 encode"),
                          ("vq_decode_64", "vq_f4 decode"), ("one_step_64to256", "upscale 64x64")):
            if line.startswith(head):
                cols = line[40:].split()
                ours[key] = (float(cols[0]), float(cols[1]))
        if line.startswith("start-up"):
            startup = line.strip()
rows = (("whole one-step upscale 64²→256²", "one_step_64to256"), ("UNet forward, latent 64²", "unet_64"),
        ("VQ encode 256²", "vq_encode_256"), ("VQ decode 256²", "vq_decode_64"))
print(f"| row | official, 1 thread | ours, 1 thread | ratio | official, {n} threads | ours, {n} threads | ratio |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for label, key in rows:
    o1, on = off["1"][key], off[n][key]
    m1, mn = ours[key]
    print(f"| {label} | {o1/1000:.2f} s | {m1/1000:.2f} s | {o1/m1:.2f}× | {on/1000:.2f} s | {mn/1000:.2f} s | {on/mn:.2f}× |")
print()
print("ours, " + startup)
PY
