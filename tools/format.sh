#!/usr/bin/env bash
# Formats the C and C++ sources with clang-format-14 and the repository's .clang-format.
# Usage: tools/format.sh            rewrite every tracked source in place
#        tools/format.sh --check    list the files that differ; exit 1 if any (CI runs this)
set -euo pipefail
cd "$(dirname "$0")/.."
fmt=${CLANG_FORMAT:-clang-format-14}
command -v "$fmt" >/dev/null || { echo "format: $fmt not found (apt-get install clang-format-14)" >&2; exit 2; }
mapfile -t files < <(git ls-files '*.c' '*.h' '*.cpp' '*.hpp' '*.cu')
if [ "${1:-}" = "--check" ]; then
  bad=0
  for f in "${files[@]}"; do
    if ! "$fmt" --style=file "$f" | cmp -s - "$f"; then echo "format: $f differs (run tools/format.sh)"; bad=1; fi
  done
  [ "$bad" = 0 ] && echo "format: ${#files[@]} files as .clang-format says"
  exit "$bad"
fi
"$fmt" --style=file -i "${files[@]}"
