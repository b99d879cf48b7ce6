#!/usr/bin/env bash
# The ThreadSanitizer check (issue 34): builds the host library, the plain-C test plugins
# copy_backbone (SERIAL) and one_step (PARALLEL) and tests/tsan/c_api_threads under TSan
# (cmake/SinSRTsan.cmake), then runs that program: threads sharing a pipeline, threads with their
# own pipelines and runtimes, creation beside runs. Any report fails the run.
#
#   tools/tsan.sh [--build DIR]       (default build-tsan)
# Environment: SINSR_TSAN_JOBS (build jobs, default: the cores).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=build-tsan
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "tsan.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
source tools/sanitizer_setup.sh
sanitizer_configure tsan.sh "$build" -DSINSR_TSAN=ON
start=$(date +%s)
cmake --build "$build" -j "${SINSR_TSAN_JOBS:-$(nproc)}" --target c_api_threads copy_backbone one_step_sampler
echo "tsan.sh: built in $(( $(date +%s) - start )) s"

# halt_on_error: the first report fails the run, with its two stacks.
export TSAN_OPTIONS="suppressions=$root/tests/tsan/tsan.supp:halt_on_error=1:second_deadlock_stack=1:${TSAN_OPTIONS:-}"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
"$build/bin/c_api_threads" "$build/test-plugins"
