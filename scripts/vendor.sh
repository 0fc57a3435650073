#!/usr/bin/env bash
# Fetches the pinned browser libraries with npm and copies their dist files
# and licences into static/vendor/, which is checked in: the pages work
# offline, with no CDN. Run by `make vendor`; change a version here, run it,
# and commit static/vendor.
set -euo pipefail
cd "$(dirname "$0")/.."

MAPLIBRE=6.17.0

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fetch() { # package version -> unpacked in $work/<package>
  local pkg=$1 version=$2
  (cd "$work" && npm pack --silent "$pkg@$version" >/dev/null)
  mkdir -p "$work/$pkg"
  tar -xzf "$work"/"${pkg//\//-}"-"$version".tgz -C "$work/$pkg" --strip-components 1
}

fetch maplibre-gl "$MAPLIBRE"
dest=static/vendor/maplibre-gl
rm -rf "$dest" && mkdir -p "$dest"
cp "$work/maplibre-gl/dist/maplibre-gl.mjs" "$work/maplibre-gl/dist/maplibre-gl-worker.mjs" \
   "$work/maplibre-gl/dist/maplibre-gl.css" "$work/maplibre-gl/LICENSE.txt" "$dest/"

cat > static/vendor/README.md <<README
# Vendored browser libraries

Copied by \`make vendor\` (scripts/vendor.sh) from the npm registry; do not edit by hand.

| library | version | files | licence |
|---|---|---|---|
| maplibre-gl | $MAPLIBRE | maplibre-gl.mjs, maplibre-gl-worker.mjs (loaded by the first, from beside it), maplibre-gl.css | BSD-3-Clause (maplibre-gl/LICENSE.txt) |
README
echo "vendored maplibre-gl $MAPLIBRE into $dest"
