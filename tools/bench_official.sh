#!/usr/bin/env bash
# Side by side on this machine: the official SinSR Python code (../shared/bench/official_bench.py:
# random weights, SinSR.yaml sizes, Debian's python3-torch) and `sinsr-host bench`, each row at
# 1 thread and at N threads, the two sides alternating (official, ours, official, ours, ...),
# medians of REPEATS alternations with their spread; prints one table with the ratios.
# The official code is not vendored: pass a checkout of the public repository (wyf0912/SinSR).
# Usage: tools/bench_official.sh SINSR_REPO [THREADS (default: nproc)] [REPEATS (default 3)]
# Env: BENCH_OUT (raw outputs, default out/bench_official), HOST, SINSR_BENCH_DIR.
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
rm -rf "$tmp" && mkdir -p "$tmp"
# Both sides in one run, alternating (official, ours, official, ours, ...): a figure taken at
# another time moves with the machine (the official side moved 2-3x between machines).
for r in $(seq 1 "$repeats"); do
  for t in 1 "$threads"; do
    # torch.set_num_threads leaves OpenBLAS's own pool alone: at "1 thread" the official UNet ran
    # its matrix products on 2 cores. sinsr-host sets both pools, so the official side is pinned too.
    OPENBLAS_NUM_THREADS=$t /usr/bin/python3 "$bench/official_bench.py" "$repo" "$bench/stand-ins" "$t" 1 \
      > "$tmp/official_${t}_$r.json"
  done
  "$host" bench --threads "$threads" --repeats 1 --no-cuda > "$tmp/ours_$r.txt"
  "$host" bench --only upscale --lr 64 --threads "$threads" --repeats 1 --no-cuda > "$tmp/ours_upscale_$r.txt"
done
python3 - "$tmp" "$threads" "$repeats" <<'PY'
import json, statistics, sys
tmp, n, reps = sys.argv[1], sys.argv[2], int(sys.argv[3])
def last_json(path):  # the official modules may print on import: the result is the last {...} line
    lines = [l for l in open(path) if l.startswith("{")]
    if not lines:
        sys.exit(f"bench_official: no result in {path}")
    return json.loads(lines[-1])
keys = (("unet_64", "unet_swin forward"), ("vq_encode_256", "vq_f4 encode"), ("vq_decode_64", "vq_f4 decode"),
        ("one_step_64to256", "upscale 64x64"))
off = {t: {k: [] for k, _ in keys} for t in ("1", n)}
ours = {t: {k: [] for k, _ in keys} for t in ("1", n)}
blas = startup = ""
for r in range(1, reps + 1):
    for t in ("1", n):
        j = last_json(f"{tmp}/official_{t}_{r}.json")
        for k, _ in keys:
            off[t][k].append(j[k])
    for name in (f"ours_{r}.txt", f"ours_upscale_{r}.txt"):
        for line in open(f"{tmp}/{name}"):
            for k, head in keys:
                if line.startswith(head):
                    cols = line[40:].split()
                    ours["1"][k].append(float(cols[0]))
                    ours[n][k].append(float(cols[1]))
            if line.startswith("start-up"):
                startup = line.strip()
            if line.startswith("blas"):
                blas = line.strip()
def cell(v):
    m = statistics.median(v)
    return m, f"{m/1000:.2f} s ({min(v)/1000:.2f}-{max(v)/1000:.2f})"
rows = (("whole one-step upscale 64²→256²", "one_step_64to256"), ("UNet forward, latent 64²", "unet_64"),
        ("VQ encode 256²", "vq_encode_256"), ("VQ decode 256²", "vq_decode_64"))
print(f"medians of {reps} alternations (spread min-max); {blas}")
print(f"| row | official, 1 thread | ours, 1 thread | ratio | official, {n} threads | ours, {n} threads | ratio |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for label, key in rows:
    (o1, o1s), (m1, m1s) = cell(off["1"][key]), cell(ours["1"][key])
    (on, ons), (mn, mns) = cell(off[n][key]), cell(ours[n][key])
    print(f"| {label} | {o1s} | {m1s} | {o1/m1:.2f}× | {ons} | {mns} | {on/mn:.2f}× |")
print()
print("ours, " + startup)
PY
