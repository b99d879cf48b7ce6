#!/usr/bin/env bash
# Writes the shared libraries LIB depends on, every one after all the libraries it needs
# (depth-first post-order of DT_NEEDED), one name per line, for sinsr-host to load in that
# order (host/launcher.cpp says why). Names as DT_NEEDED gives them, not paths: the loader
# then finds the files as it would for LIB itself (LD_LIBRARY_PATH, its cache), so a user's
# LD_LIBRARY_PATH still picks the libraries. Left out: the C and C++ runtimes, which the
# launcher has already, and the project's own libraries. Usage: load_order.sh LIB OUT. Needs ldd and readelf (libc-bin, binutils).
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
    *) order+=("${soname_of[$1]}") ;;
  esac
}
visit "$lib"

tmp=$(mktemp "$out.XXXXXX")
chmod 644 "$tmp"
printf '%s\n' "${order[@]}" > "$tmp"
mv "$tmp" "$out"
