#!/usr/bin/env bash
# libsinsr_host exports its C API and nothing else (issue 35): every defined dynamic symbol is a
# sinsr_* function of abi/sinsr_host.h, and each of the header's functions is there.
# Usage: exports_c_only.sh NM LIBSINSR_HOST SINSR_HOST_H
set -euo pipefail
nm=$1 lib=$2 header=$3
exported=$("$nm" -D --defined-only "$lib" | awk '{print $NF}' | sed 's/@.*//' | sort -u)
other=$(grep -v '^sinsr_' <<<"$exported" || true)
if [ -n "$other" ]; then
  echo "exports_c_only: $lib exports $(wc -l <<<"$other") symbol(s) outside the C API, e.g.:" >&2
  head -5 <<<"$other" >&2
  exit 1
fi
declared=$(grep -oE 'SINSR_API [^(]*\b(sinsr_[a-z0-9_]+)\(' "$header" | grep -oE 'sinsr_[a-z0-9_]+\($' | tr -d '(' | sort -u)
missing=$(comm -23 <(echo "$declared") <(echo "$exported"))
if [ -n "$missing" ]; then
  echo "exports_c_only: declared in $header but not exported: $missing" >&2
  exit 1
fi
echo "exports_c_only: $(wc -l <<<"$exported") symbols, all sinsr_*, every declared function among them"
