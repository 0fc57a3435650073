#!/usr/bin/env bash
# Installs the Debian packages gridmap needs to build, run and test, and only
# those that are missing: a C compiler and GEOS for go-geos, PostgreSQL 15 and
# PostGIS 3 for the managed database; with "test", also GDAL's command line
# tools (ogrinfo reads our vector tiles back in the tile tests). As root it
# runs apt-get; otherwise it uses sudo when that needs no password, and else
# says what to install.
set -euo pipefail

packages=(gcc pkg-config libgeos-dev postgresql-15 postgresql-15-postgis-3)
if [ "${1:-}" = test ]; then
  packages+=(gdal-bin)
fi

if ! command -v go >/dev/null 2>&1 && [ ! -x /usr/local/go/bin/go ]; then
  echo "gridmap needs Go 1.26 or newer (https://go.dev/dl/), on PATH or in /usr/local/go" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo)
  else
    echo "gridmap needs these Debian packages: ${missing[*]}" >&2
    echo "install them as root: apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi
echo "installing ${missing[*]}" >&2
"${sudo[@]}" apt-get update -q
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
