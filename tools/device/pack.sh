#!/usr/bin/env bash
# Here, before a GPU run: fills .gpu/ (git-ignored) with what the GPU machine lacks and cannot
# fetch: the Debian packages the build needs (Boost, yaml-cpp, nlohmann-json, libjpeg; unpacked
# there with dpkg -x), the training photos shrunk to a 512-px longer side (as --max-side 512 keeps
# them; PIL bicubic here, MATLAB bicubic in the CPU runs) and the validation pairs. The `device`
# tool sends the checkout (64 MiB at most, tracked files included) with `carry: [".gpu"]`; the
# model weights the run does not need are too many for that, so --slim moves them out of the
# working tree into .gpu-away/ (tracked: `git checkout -- models` or --restore brings them back)
# but the ones SINSR_GPU_KEEP names (space-separated; default: student_bicubic's, the teacher's
# start). --teacher WEIGHTS adds those weights in fp16 as .gpu/teacher.pth (a distill run's).
# Usage: tools/device/pack.sh [--photos DIR] [--teacher WEIGHTS] [--slim | --restore]
set -euo pipefail
cd "$(dirname "$0")/../.."
photos=data/rw/train_plus mode=pack teacher=""
while [ $# -gt 0 ]; do
  case "$1" in
    --photos) photos=$2; shift 2 ;;
    --teacher) teacher=$2; shift 2 ;;
    --slim) mode=slim; shift ;;
    --restore) mode=restore; shift ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "pack.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
keep=" ${SINSR_GPU_KEEP:-models/bicubic_x4/student_bicubic.pth} "
away=()
for f in models/bicubic_x4/student_bicubic.pth models/default_x4/student.pth models/sinsr_x4/student_sinsr.pth \
  models/sr3_x4/sr3.pth models/srdiff_x4/srdiff.pth; do
  [[ "$keep" == *" $f "* ]] || away+=("$f")
done
if [ "$mode" = restore ]; then
  for f in $(cd .gpu-away 2>/dev/null && find models -name '*.pth'); do mkdir -p "$(dirname "$f")" && mv ".gpu-away/$f" "$f"; done
  git checkout -- models && rm -rf .gpu-away
  echo "pack.sh: models/ restored"; exit 0
fi
if [ "$mode" = slim ]; then
  for f in "${away[@]}"; do [ -f "$f" ] && mkdir -p ".gpu-away/$(dirname "$f")" && mv "$f" ".gpu-away/$f"; done
  echo "pack.sh: ${#away[@]} weight files moved to .gpu-away/ (tools/device/pack.sh --restore brings them back)"
  exit 0
fi
[ -d "$photos" ] && [ -d data/rw/val_lr ] || { echo "pack.sh: run tools/make_realworld_split.sh first ($photos, data/rw/val_lr)" >&2; exit 1; }
rm -rf .gpu && mkdir -p .gpu/debs .gpu/photos .gpu/val_lr .gpu/val_hr
# apt-get download writes into the current folder; as root it warns that _apt cannot write there.
(cd .gpu/debs && apt-get download -q libboost1.74-dev libboost-program-options1.74-dev libboost-program-options1.74.0 \
  libyaml-cpp-dev libyaml-cpp0.7 nlohmann-json3-dev libjpeg62-turbo-dev libjpeg62-turbo 2>&1 | grep -v "^W: Download is performed unsandboxed" || true)
python3 - "$photos" .gpu/photos <<'PY'
import glob, os, sys
from PIL import Image, ImageOps
for f in sorted(glob.glob(os.path.join(sys.argv[1], "*"))):
    im = ImageOps.exif_transpose(Image.open(f)).convert("RGB")
    s = 512 / max(im.size)
    if s < 1:
        im = im.resize((round(im.size[0] * s), round(im.size[1] * s)), Image.BICUBIC, reducing_gap=None)
    im.save(os.path.join(sys.argv[2], os.path.splitext(os.path.basename(f))[0] + ".png"))
PY
cp data/rw/val_lr/* .gpu/val_lr/ && cp data/rw/val_hr/* .gpu/val_hr/
if [ -n "$teacher" ]; then
  "${SINSR_HOST:-build/bin/sinsr-host}" export -w "$teacher" -o .gpu/teacher.pth --dtype fp16 >/dev/null
fi
travel=$((($(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1) + $(du -sb .gpu | cut -f1)) >> 20))
echo "pack.sh: .gpu/ $(du -sh .gpu | cut -f1) ($(ls .gpu/photos | wc -l) photos, $(ls .gpu/debs | wc -l) packages$([ -f .gpu/teacher.pth ] && echo ", teacher.pth"));" \
  "the checkout and .gpu/ make $travel MiB of the 64 a run takes"
[ "$travel" -le 64 ] || echo "pack.sh: over the limit: tools/device/pack.sh --slim moves the weights the run does not need aside"
