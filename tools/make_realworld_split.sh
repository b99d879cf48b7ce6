#!/usr/bin/env bash
# The real-world model's data: the training photos less three held out (one per Debian package
# family), and a validation set made from the held-out ones (two 256x256 crops of each, shrunk to
# a 512 longer side, degraded once by `degrade --seed 0`). Checkpoints and settings are chosen on
# this set, never on Set5, Set14, RealSet65 or RealSR.
# Usage: tools/make_realworld_split.sh [out-dir]   (default: data/rw)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-data/rw}
host=${SINSR_HOST:-build/bin/sinsr-host}
[ -d data/train_photos ] || bash tools/fetch_train_photos.sh
held_out='Garden|friends_by|FallenLeaf'
rm -rf "$out"
mkdir -p "$out/train" "$out/holdout" "$out/val_hr"
for f in data/train_photos/*; do
  b=$(basename "$f")
  if echo "$b" | grep -Eq "$held_out"; then dir=holdout; else dir=train; fi
  ln -s "$(realpath --relative-to="$out/$dir" "$f")" "$out/$dir/$b"
done
for f in "$out"/holdout/*; do
  stem=$(basename "$f" .jpg | sed 's/.*__//' | cut -c1-40)
  oiiotool "$f" --resize:filter=lanczos3 512x0 -o "$out/shrunk.png"
  for off in +0+0 +256+64; do
    oiiotool "$out/shrunk.png" --cut "256x256$off" -o "$out/val_hr/${stem}_${off//+/_}.png"
  done
done
rm -f "$out/shrunk.png"
"$host" degrade -i "$out/val_hr" -o "$out/val_lr" --seed 0 --threads 1 -q
echo "make_realworld_split: $(ls "$out/train" | wc -l) training photos in $out/train, $(ls "$out/val_lr" | wc -l) validation pairs in $out/val_lr, $out/val_hr"
