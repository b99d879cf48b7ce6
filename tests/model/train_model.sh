#!/usr/bin/env bash
# "Your photos, your model": tools/train_model.sh on a folder of three HR images (tiny sizes, two
# steps per stage, the fidelity stage included) writes a model manifest; `infer --plugin NAME.model.json -n NAME` gives the
# bytes of `infer -w` on the run's EMA weights; `models --json` lists it with the input it is for;
# models/ is untouched.
set -euo pipefail
build=$1 src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
host=$build/bin/sinsr-host
mkdir -p "$work/photos"
for f in baby bird butterfly; do cp "$src/../shared/data/set5/hr/$f.png" "$work/photos/" 2>/dev/null ||
  cp "${SINSR_DATA_DIR:-$src/../shared/data}/set5/hr/$f.png" "$work/photos/"; done
before=$(cd "$src" && git status --porcelain models 2>/dev/null || true)
SINSR_HOST=$host bash "$src/tools/train_model.sh" --data "$work/photos" --name mine --out "$work/run" \
  --degradation bicubic --teacher-steps 2 --student-steps 2 --fidelity-steps 2 --gt-size 64 --batch 2 --threads 1 > "$work/log" 2>&1 ||
  { cat "$work/log"; exit 1; }
grep -q "infer --plugin $work/run/mine.model.json -n mine" "$work/log" || { echo "no usage line"; cat "$work/log"; exit 1; }
lr=$src/samples/lr_x4/autumn.png
"$host" infer -q -j 1 --plugin "$work/run/mine.model.json" -n mine -i "$lr" -o "$work/by_name.png"
"$host" infer -q -j 1 -w "$work/run/fidelity/ema.pth" -i "$lr" -o "$work/by_weights.png"
# The fidelity stage trained on its two terms: the teacher's high-pass and the GT.
grep -q '"direct"' "$work/run/fidelity/train_log.jsonl" && grep -q '"distill"' "$work/run/fidelity/train_log.jsonl" ||
  { echo "the fidelity stage logged no direct and distill terms"; cat "$work/run/fidelity/train_log.jsonl"; exit 1; }
cmp "$work/by_name.png" "$work/by_weights.png"
"$host" models --json --plugin "$work/run/mine.model.json" > "$work/models.json"
python3 - "$work/models.json" "$work/run/mine.model.json" <<'PY'
import json, sys
models = {m["name"]: m for m in json.load(open(sys.argv[1]))}
m = models["mine"]
assert m["input"] == "bicubic" and m["scale"] == 4 and m["file"] == sys.argv[2], m
PY
# --codec-factor 2: the network's channels follow the 2x2 blocks and the manifest carries the
# codec's factor, so the model runs by name at x4 (the UNet at twice the LR resolution).
SINSR_HOST=$host bash "$src/tools/train_model.sh" --data "$work/photos" --name mine2 --out "$work/run2" \
  --degradation bicubic --teacher-steps 1 --student-steps 1 --gt-size 64 --batch 2 --threads 1 --codec-factor 2 > "$work/log2" 2>&1 ||
  { cat "$work/log2"; exit 1; }
grep -q '"factor": 2' "$work/run2/mine2.model.json" || { echo "manifest without factor 2"; cat "$work/run2/mine2.model.json"; exit 1; }
"$host" infer -q -j 1 --plugin "$work/run2/mine2.model.json" -n mine2 -i "$lr" -o "$work/f2.png"
python3 - "$lr" "$work/f2.png" <<'PY'
import struct, sys
size = lambda p: struct.unpack(">II", open(p, "rb").read()[16:24])  # PNG IHDR width, height
(w, h), (W, H) = size(sys.argv[1]), size(sys.argv[2])
assert (W, H) == (4 * w, 4 * h), ((w, h), (W, H))
PY
if SINSR_HOST=$host bash "$src/tools/train_model.sh" --data "$work/photos" --name bad --out "$work/bad" --codec-factor 3 2> "$work/err"; then
  echo "--codec-factor 3 was accepted"; exit 1
fi
grep -q "codec-factor must be" "$work/err" || { echo "no clear line for --codec-factor 3"; cat "$work/err"; exit 1; }
# --max-minutes: a used-up budget pauses the running stage at a checkpoint (no model yet); the
# same line again continues from it and finishes.
budget=(--data "$work/photos" --name timed --out "$work/timed" --degradation bicubic --teacher-steps 2
        --student-steps 1 --gt-size 64 --batch 2 --threads 1 --device cpu)
SINSR_HOST=$host bash "$src/tools/train_model.sh" "${budget[@]}" --max-minutes 0.0001 > "$work/log3" 2>&1 ||
  { cat "$work/log3"; exit 1; }
grep -q "train_model: paused in $work/timed/teacher" "$work/log3" || { echo "no pause line"; cat "$work/log3"; exit 1; }
[ -f "$work/timed/teacher/ckpt_00000001.pth" ] && [ ! -e "$work/timed/timed.pth" ] ||
  { echo "the pause left no step-1 checkpoint, or a model"; ls -R "$work/timed"; exit 1; }
SINSR_HOST=$host bash "$src/tools/train_model.sh" "${budget[@]}" > "$work/log4" 2>&1 || { cat "$work/log4"; exit 1; }
grep -q "resumed" "$work/log4" && [ -f "$work/timed/timed.pth" ] || { echo "not resumed to a model"; cat "$work/log4"; exit 1; }
# --teacher-weights / --student-weights: a fidelity stage alone from a teacher and a student made
# before (the first run's); no teacher or student folder is made.
SINSR_HOST=$host bash "$src/tools/train_model.sh" --data "$work/photos" --name fid --out "$work/fid" --degradation bicubic \
  --teacher-weights "$work/run/teacher/ema.pth" --student-weights "$work/run/student/ema.pth" --fidelity-steps 1 \
  --gt-size 64 --batch 2 --threads 1 > "$work/log5" 2>&1 || { cat "$work/log5"; exit 1; }
[ -f "$work/fid/fid.pth" ] && [ -d "$work/fid/fidelity" ] && [ ! -e "$work/fid/teacher" ] && [ ! -e "$work/fid/student" ] ||
  { echo "the fidelity-only run made other stages or no model"; ls -R "$work/fid"; cat "$work/log5"; exit 1; }
if SINSR_HOST=$host bash "$src/tools/train_model.sh" --data "$work/photos" --name bad2 --out "$work/bad2" \
  --student-weights "$work/run/student/ema.pth" 2> "$work/err2"; then
  echo "--student-weights without --teacher-weights was accepted"; exit 1
fi
grep -q "needs --teacher-weights" "$work/err2" || { cat "$work/err2"; exit 1; }
after=$(cd "$src" && git status --porcelain models 2>/dev/null || true)
[ "$before" = "$after" ] || { echo "models/ changed"; exit 1; }
echo "train_model: manifest model and -w give the same bytes; listed by models --json; a time budget pauses and resumes"
