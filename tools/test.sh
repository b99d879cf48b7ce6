#!/usr/bin/env bash
# The test command: set up (tools/bootstrap.sh), then run every suite with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/bootstrap.sh build
ctest --test-dir build --output-on-failure -j "$(nproc)" --timeout 1200
