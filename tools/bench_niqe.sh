#!/usr/bin/env bash
# NIQE speed beside BasicSR's calculate_niqe on the same 1024x1024 image, alternating the two
# (BasicSR, ours, BasicSR, ours, ...), with medians and the spread, and both values (they agree
# to 1e-3). Ours twice: the whole `sinsr-host eval --pred DIR` command on the image (process
# start, file read, NIQE), and per image of a folder run of eight copies (start-up taken out);
# BasicSR's is the calculate_niqe call alone (imports and file read not counted).
# BasicSR is not vendored: pass a checkout of the public repository (XPixelGroup/BasicSR); it needs
# Debian's python3-numpy, python3-scipy, python3-opencv and python3-torch.
# Usage: tools/bench_niqe.sh BASICSR_REPO [REPEATS (default 5)] [IMAGE (default: a 1024x1024 crop of
#        the x4 bicubic upscale of realset65/0015.jpg)]
# Run it on an otherwise idle machine (no training or build beside it).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=${1:?usage: tools/bench_niqe.sh BASICSR_REPO [REPEATS] [IMAGE]}
repeats=${2:-5}
host=${HOST:-build/bin/sinsr-host}
[ -x "$host" ] || bash tools/bootstrap.sh build
[ -f "$repo/basicsr/metrics/niqe.py" ] || { echo "bench_niqe: $repo is not a BasicSR checkout" >&2; exit 2; }
/usr/bin/python3 -c "import numpy, scipy, cv2, torch" 2> /dev/null ||
  { echo "bench_niqe: BasicSR needs python3-numpy python3-scipy python3-opencv python3-torch (apt-get install ...)" >&2; exit 2; }
tmp=${BENCH_OUT:-out/bench_niqe}
rm -rf "$tmp" && mkdir -p "$tmp/img"
if [ -n "${3:-}" ]; then
  cp "$3" "$tmp/img/"
else
  # A bicubic x4 upscale of a real photo, cut to 1024x1024.
  /usr/bin/python3 - "$tmp/img/test.png" <<'PY'
import sys, cv2, numpy as np, torch
img = cv2.imread("../shared/data/realset65/0015.jpg")  # BGR
up = torch.nn.functional.interpolate(torch.from_numpy(img).permute(2, 0, 1)[None].float(), scale_factor=4,
                                     mode="bicubic", align_corners=False)[0].permute(1, 2, 0).clamp(0, 255).round()
up = up.numpy().astype(np.uint8)
assert up.shape[0] >= 1024 and up.shape[1] >= 1024, up.shape
cv2.imwrite(sys.argv[1], up[:1024, :1024])
PY
fi
image=$(ls "$tmp"/img/* | head -1)
mkdir -p "$tmp/img8"  # eight copies: a folder run's time per image, start-up taken out
for k in 1 2 3 4 5 6 7 8; do cp "$image" "$tmp/img8/copy$k.png"; done

cat > "$tmp/basicsr_niqe.py" <<'PY'
# calculate_niqe from the checkout, without importing the rest of BasicSR (its package __init__
# pulls in every architecture): the four modules it needs are loaded by path.
import importlib.util, json, sys, time, types, warnings
repo, image = sys.argv[1], sys.argv[2]
def load(name, rel):
    spec = importlib.util.spec_from_file_location(name, f"{repo}/{rel}")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod
for pkg in ("basicsr", "basicsr.metrics", "basicsr.utils"):
    sys.modules[pkg] = types.ModuleType(pkg)
registry = types.ModuleType("basicsr.utils.registry")
registry.METRIC_REGISTRY = types.SimpleNamespace(register=lambda *a, **k: (lambda f: f))
sys.modules["basicsr.utils.registry"] = registry
sys.modules["basicsr.utils"].bgr2ycbcr = load("basicsr.utils.color_util", "basicsr/utils/color_util.py").bgr2ycbcr
load("basicsr.utils.matlab_functions", "basicsr/utils/matlab_functions.py")
load("basicsr.metrics.metric_util", "basicsr/metrics/metric_util.py")
niqe = load("basicsr.metrics.niqe", "basicsr/metrics/niqe.py")
import cv2
img = cv2.imread(image)
t0 = time.perf_counter()
with warnings.catch_warnings():
    warnings.simplefilter("ignore", category=RuntimeWarning)
    value = niqe.calculate_niqe(img, 0, input_order="HWC", convert_to="y")
print(json.dumps({"seconds": time.perf_counter() - t0, "niqe": float(value)}))
PY

for k in $(seq 1 "$repeats"); do
  /usr/bin/python3 "$tmp/basicsr_niqe.py" "$repo" "$image" >> "$tmp/basicsr.jsonl"
  start=$(date +%s.%N)
  "$host" eval --pred "$tmp/img" --json "$tmp/ours.json" > /dev/null
  end=$(date +%s.%N)
  start8=$(date +%s.%N)
  "$host" eval --pred "$tmp/img8" > /dev/null
  end8=$(date +%s.%N)
  python3 -c "import json,sys; print(json.dumps({'seconds': $end - $start, 'per_image': ($end8 - $start8 - ($end - $start)) / 7, 'niqe': json.load(open('$tmp/ours.json'))['mean_niqe']}))" \
    >> "$tmp/ours.jsonl"
done
python3 - "$tmp" "$image" <<'PY'
import json, statistics, sys
tmp, image = sys.argv[1], sys.argv[2]
rows = {side: [json.loads(l) for l in open(f"{tmp}/{side}.jsonl")] for side in ("basicsr", "ours")}
def line(side):
    s = sorted(r["seconds"] for r in rows[side])
    return statistics.median(s), s[0], s[-1], rows[side][0]["niqe"]
b, o = line("basicsr"), line("ours")
print(f"image {image} ({len(rows['ours'])} alternations)")
print(f"BasicSR calculate_niqe: median {b[0]:.3f} s (spread {b[1]:.3f}-{b[2]:.3f}), NIQE {b[3]:.4f}")
print(f"sinsr-host eval (whole command): median {o[0]:.3f} s (spread {o[1]:.3f}-{o[2]:.3f}), NIQE {o[3]:.4f}")
p = sorted(r["per_image"] for r in rows["ours"])
print(f"sinsr-host eval, per image of a folder run (start-up out): median {statistics.median(p):.3f} s "
      f"(spread {p[0]:.3f}-{p[-1]:.3f}); ratio {b[0] / statistics.median(p):.1f}x")
print(f"whole command ratio: {b[0] / o[0]:.1f}x; |difference| {abs(b[3] - o[3]):.2e}")
PY
