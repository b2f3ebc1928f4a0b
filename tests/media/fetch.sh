#!/usr/bin/env bash
# Fetch the small real test videos that ship inside Debian packages into DIR
# (default tests/media/cache, ignored by git). Idempotent: does nothing when
# every file is already there. Needs apt-get and dpkg-deb.
set -euo pipefail
dir=${1:-$(dirname "$0")/cache}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
files="cockatoo.mp4 realshort.mp4 balle-jbart.mp4 balle1-vp9.avi Effet_force_magnetique.ogv
Force_constante.avi Principe_inertie.avi g1.avi g2.avi retroMars2018.avi"
need=0
for f in $files; do [ -s "$dir/$f" ] || need=1; done
[ $need = 0 ] && exit 0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pkgs="python3-imageio python3-mecavideo"
if ! (cd "$tmp" && apt-get download $pkgs >/dev/null 2>&1); then
    apt-get update -qq >/dev/null 2>&1 || true
    (cd "$tmp" && apt-get download $pkgs >/dev/null)
fi
for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$tmp/root"; done
for f in $files; do
    found=$(find "$tmp/root" -type f -name "$f" -print -quit)
    if [ -n "$found" ]; then
        cp "$found" "$dir/$f.tmp" && mv "$dir/$f.tmp" "$dir/$f"
    else
        echo "fetch: $f not found in $pkgs" >&2
    fi
done
echo "fetch: media in $dir"
