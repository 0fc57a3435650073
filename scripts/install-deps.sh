#!/usr/bin/env bash
# Installs the Debian packages gridmap needs to build, run and test, and only
# those that are missing: a C compiler and GEOS for go-geos, PostgreSQL 15 and
# PostGIS 3 for the managed database; with "test", also GDAL's command line
# tools (ogrinfo reads our vector tiles back in the tile tests) and what the
# browser tests need: Chromium, Node.js with npm, CJK fonts for screenshots,
# and browser/node_modules from browser/package-lock.json (npm ci). As root it
# runs apt-get; otherwise it uses sudo when that needs no password, and else
# says what to install.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
test_mode=false
[ "${1:-}" = test ] && test_mode=true

packages=(gcc pkg-config libgeos-dev postgresql-15 postgresql-15-postgis-3)
if $test_mode; then
  packages+=(gdal-bin chromium fonts-noto-cjk)
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
# Node.js and npm are looked for as commands, not as Debian packages: a
# machine may have a newer Node.js (NodeSource's nodejs provides npm itself),
# and asking apt for Debian's npm there would replace that Node.js.
if $test_mode; then
  command -v node >/dev/null 2>&1 || missing+=(nodejs)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
fi

if [ ${#missing[@]} -gt 0 ]; then
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
fi

# The browser tests' one npm dependency (playwright-core, pinned in
# browser/package-lock.json), installed again whenever the lock file is newer
# than the last install (npm writes node_modules/.package-lock.json).
if $test_mode; then
  browser="$root/browser"
  if [ ! -f "$browser/node_modules/.package-lock.json" ] ||
     [ "$browser/package-lock.json" -nt "$browser/node_modules/.package-lock.json" ]; then
    echo "installing the browser tests' npm packages (npm ci in browser/)" >&2
    (cd "$browser" && npm ci --no-audit --no-fund)
  fi
fi
