#!/usr/bin/env bash
# Fetches the pinned browser libraries with npm and copies their dist files
# and licences into static/vendor/, which is checked in: the pages work
# offline, with no CDN. Run by `make vendor`; change a version here, run it,
# and commit static/vendor.
set -euo pipefail
cd "$(dirname "$0")/.."

MAPLIBRE=6.17.0
TERRA_DRAW=1.35.0
TERRA_DRAW_MAPLIBRE=1.4.1

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

# terra-draw and its MapLibre adapter: ES modules; the adapter imports the
# bare name "terra-draw", which the editor's import map resolves. Neither
# package ships a licence file: their package.json says MIT, kept beside
# them.
fetch terra-draw "$TERRA_DRAW"
fetch terra-draw-maplibre-gl-adapter "$TERRA_DRAW_MAPLIBRE"
for pkg in terra-draw terra-draw-maplibre-gl-adapter; do
  dest=static/vendor/$pkg
  rm -rf "$dest" && mkdir -p "$dest"
  cp "$work/$pkg/dist/$pkg.modern.js" "$dest/"
  node -e 'const p = require(process.argv[1]); console.log(`${p.name} ${p.version}\nLicence: ${p.license}\nAuthor: ${typeof p.author === "string" ? p.author : (p.author?.name ?? "")}\nRepository: ${p.repository?.url ?? p.repository ?? ""}`)' \
    "$work/$pkg/package.json" > "$dest/LICENSE.txt"
done

cat > static/vendor/README.md <<README
# Vendored browser libraries

Copied by \`make vendor\` (scripts/vendor.sh) from the npm registry; do not edit by hand.

| library | version | files | licence |
|---|---|---|---|
| maplibre-gl | $MAPLIBRE | maplibre-gl.mjs, maplibre-gl-worker.mjs (loaded by the first, from beside it), maplibre-gl.css | BSD-3-Clause (maplibre-gl/LICENSE.txt) |
| terra-draw | $TERRA_DRAW | terra-draw.modern.js (the boundary editor's drawing and editing) | MIT (terra-draw/LICENSE.txt, from its package.json) |
| terra-draw-maplibre-gl-adapter | $TERRA_DRAW_MAPLIBRE | terra-draw-maplibre-gl-adapter.modern.js | MIT (terra-draw-maplibre-gl-adapter/LICENSE.txt, from its package.json) |
README
echo "vendored maplibre-gl $MAPLIBRE, terra-draw $TERRA_DRAW, terra-draw-maplibre-gl-adapter $TERRA_DRAW_MAPLIBRE into static/vendor"
