#!/usr/bin/env bash
# Writes the shared libraries LIB depends on, every one after all the libraries it needs
# (depth-first post-order of DT_NEEDED), one path per line, for sinsr-host to load in that
# order (host/launcher.cpp says why). Paths as ldd finds them (the soname's link, which a
# library's upgrade keeps). Left out: the C and C++ runtimes, which the launcher has already,
# and the project's own libraries, whose paths differ once installed. Usage: load_order.sh LIB OUT. Needs ldd and readelf (libc-bin, binutils).
set -euo pipefail
lib=$1 out=$2

declare -A path=() needs=() done=()
while read -r name arrow where _; do
  [ "$arrow" = "=>" ] && [ -f "$where" ] && path[$name]=$where
done < <(ldd "$lib")
# One readelf for all of them: its "File:" lines say whose DT_NEEDED entries follow.
declare -A soname_of=()
for name in "${!path[@]}"; do soname_of[${path[$name]}]=$name; done
current=$lib
while IFS= read -r line; do
  case $line in
    File:*) current=${line#File: } ;;
    *"(NEEDED)"*)
      dep=${line##*[}
      needs[$current]+="${dep%]} "
      ;;
  esac
done < <(readelf -d "$lib" "${path[@]}" 2>/dev/null)

order=()
visit() {  # $1: a path
  local dep
  for dep in ${needs[$1]:-}; do
    [ -n "${path[$dep]:-}" ] && [ -z "${done[$dep]:-}" ] && { done[$dep]=1; visit "${path[$dep]}"; }
  done
  case ${soname_of[$1]:-} in
    "" | libc.so.* | libm.so.* | libstdc++.so.* | libgcc_s.so.* | ld-linux* | libsinsr_*) ;;
    *) order+=("$1") ;;
  esac
}
visit "$lib"

tmp=$(mktemp "$out.XXXXXX")
chmod 644 "$tmp"
printf '%s\n' "${order[@]}" > "$tmp"
mv "$tmp" "$out"
