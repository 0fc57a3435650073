#!/usr/bin/env bash
# Fetches the pinned browser libraries with npm and copies their dist files
# and licences into static/vendor/, which is checked in: the pages work
# offline, with no CDN. Run by `make vendor`; change a version here, run it,
# and commit static/vendor. With arguments it fetches only the libraries
# named (maplibre-gl, terra-draw, uplot), e.g. after changing one version:
# scripts/vendor.sh uplot.
set -euo pipefail
cd "$(dirname "$0")/.."

MAPLIBRE=6.17.0
TERRA_DRAW=1.35.0
TERRA_DRAW_MAPLIBRE=1.4.1
UPLOT=1.6.32

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

wanted=("$@")
want() { # library -> whether this run fetches it
  [ ${#wanted[@]} -eq 0 ] && return 0
  local w
  for w in "${wanted[@]}"; do [ "$w" = "$1" ] && return 0; done
  return 1
}

fetch() { # package version -> unpacked in $work/<package>
  local pkg=$1 version=$2
  (cd "$work" && npm pack --silent "$pkg@$version" >/dev/null)
  mkdir -p "$work/$pkg"
  tar -xzf "$work"/"${pkg//\//-}"-"$version".tgz -C "$work/$pkg" --strip-components 1
}

if want maplibre-gl; then
  fetch maplibre-gl "$MAPLIBRE"
  dest=static/vendor/maplibre-gl
  rm -rf "$dest" && mkdir -p "$dest"
  cp "$work/maplibre-gl/dist/maplibre-gl.mjs" "$work/maplibre-gl/dist/maplibre-gl-worker.mjs" \
     "$work/maplibre-gl/dist/maplibre-gl.css" "$work/maplibre-gl/LICENSE.txt" "$dest/"
fi

# terra-draw and its MapLibre adapter: ES modules; the adapter imports the
# bare name "terra-draw", which the editor's import map resolves. Neither
# package ships a licence file: their package.json says MIT, kept beside
# them.
if want terra-draw; then
  fetch terra-draw "$TERRA_DRAW"
  fetch terra-draw-maplibre-gl-adapter "$TERRA_DRAW_MAPLIBRE"
  for pkg in terra-draw terra-draw-maplibre-gl-adapter; do
    dest=static/vendor/$pkg
    rm -rf "$dest" && mkdir -p "$dest"
    cp "$work/$pkg/dist/$pkg.modern.js" "$dest/"
    node -e 'const p = require(process.argv[1]); console.log(`${p.name} ${p.version}\nLicence: ${p.license}\nAuthor: ${typeof p.author === "string" ? p.author : (p.author?.name ?? "")}\nRepository: ${p.repository?.url ?? p.repository ?? ""}`)' \
      "$work/$pkg/package.json" > "$dest/LICENSE.txt"
  done
fi

# uPlot: the console's indicator charts, an ES module (the import map's
# "uplot") and its stylesheet.
if want uplot; then
  fetch uplot "$UPLOT"
  dest=static/vendor/uplot
  rm -rf "$dest" && mkdir -p "$dest"
  cp "$work/uplot/dist/uPlot.esm.js" "$work/uplot/dist/uPlot.min.css" "$work/uplot/LICENSE" "$dest/"
fi

cat > static/vendor/README.md <<README
# Vendored browser libraries

Copied by \`make vendor\` (scripts/vendor.sh) from the npm registry; do not edit by hand.

| library | version | files | licence |
|---|---|---|---|
| maplibre-gl | $MAPLIBRE | maplibre-gl.mjs, maplibre-gl-worker.mjs (loaded by the first, from beside it), maplibre-gl.css | BSD-3-Clause (maplibre-gl/LICENSE.txt) |
| terra-draw | $TERRA_DRAW | terra-draw.modern.js (the boundary editor's drawing and editing) | MIT (terra-draw/LICENSE.txt, from its package.json) |
| terra-draw-maplibre-gl-adapter | $TERRA_DRAW_MAPLIBRE | terra-draw-maplibre-gl-adapter.modern.js | MIT (terra-draw-maplibre-gl-adapter/LICENSE.txt, from its package.json) |
| uplot | $UPLOT | uPlot.esm.js (the console's indicator charts, "uplot" in its import map), uPlot.min.css | MIT (uplot/LICENSE) |
README
echo "vendored ${*:-maplibre-gl $MAPLIBRE, terra-draw $TERRA_DRAW, terra-draw-maplibre-gl-adapter $TERRA_DRAW_MAPLIBRE, uplot $UPLOT} into static/vendor"
