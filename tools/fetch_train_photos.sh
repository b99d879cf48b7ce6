#!/usr/bin/env bash
# Fetches the real photos listed in ../shared/data/train_pool_debian.tsv from Debian packages:
# `apt-get download` + `dpkg -x` into a cache folder; nothing is installed system-wide.
# Usage: tools/fetch_train_photos.sh [list.tsv] [out-dir]   (defaults: the shared list, data/train_photos)
set -euo pipefail
cd "$(dirname "$0")/.."
list=${1:-../shared/data/train_pool_debian.tsv}
out=${2:-data/train_photos}
cache=${SINSR_CACHE:-$HOME/.cache/sinsr}/debs
[ -f "$list" ] || { echo "fetch_train_photos: $list: no such file" >&2; exit 1; }
mkdir -p "$out" "$cache"

packages=$(tail -n +2 "$list" | cut -f1 | sort -u)
for pkg in $packages; do
  if ! ls "$cache/${pkg}"_*.deb >/dev/null 2>&1; then
    (cd "$cache" && apt-get download "$pkg") || { echo "fetch_train_photos: cannot download $pkg" >&2; exit 1; }
  fi
done

n=0
while IFS=$'\t' read -r pkg version path _rest; do
  [ "$pkg" = "package" ] && continue
  deb=$(ls "$cache/${pkg}"_*.deb | head -n 1)
  tmp=$(mktemp -d)
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" "./$path" 2>/dev/null || dpkg -x "$deb" "$tmp"
  if [ -f "$tmp/$path" ]; then
    name="${pkg}__$(echo "$path" | tr '/' '_')"
    cp "$tmp/$path" "$out/$name"
    n=$((n + 1))
  else
    echo "fetch_train_photos: $path not found in $deb" >&2
  fi
  rm -rf "$tmp"
done < "$list"
echo "fetch_train_photos: $n photos in $out"
