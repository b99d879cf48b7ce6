# Sourced by tools/eval_default_model.sh and tools/eval_realworld_model.sh after they set `run`
# and `out`: the program, the data, the thread count, and the flags that run a teacher's weights
# (the shipped models' network over the space_to_depth codec).
threads=${THREADS:-$(nproc)}
data=${SINSR_DATA_DIR:-../shared/data}
host=build/bin/sinsr-host
[ -x "$host" ] || bash tools/bootstrap.sh build
mkdir -p "$out"
teacher=$run/teacher/ema.pth
net=(--backbone unet_swin --backbone-config models/default_x4/backbone.json --codec space_to_depth
     --pad-multiple 16 --seed 0 --threads "$threads" -q)

# seconds_per_image LR_DIR DST -- infer args...: upscales the folder into DST (made anew) and
# prints the wall time per image, start-up included.
seconds_per_image() {
  local lr=$1 dst=$2 n start end
  shift 3
  n=$(ls "$lr" | wc -l)
  rm -rf "$dst"
  start=$(date +%s.%N)
  "$host" infer -i "$lr" -o "$dst" "$@"
  end=$(date +%s.%N)
  python3 -c "print('%.2f' % (($end - $start) / $n))"
}
