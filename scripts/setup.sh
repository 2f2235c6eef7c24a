#!/usr/bin/env bash
# Install what gridmap needs on Debian/Ubuntu, idempotently and quickly on a second run:
#   - PostgreSQL + PostGIS server packages (apt-get, when root or with password-less sudo)
#   - a Python venv in .venv with gridmap installed editable, plus the test tools
#   - with --test: Debian's chromium, for the browser tests (Playwright drives it; no
#     browser is ever downloaded by Playwright), and gdal-bin (ogrinfo) for the OGC tests
# Nothing is downloaded from anywhere but the Debian archive and PyPI.
set -euo pipefail
for_tests=false
[ "${1:-}" = "--test" ] && for_tests=true
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

say() { printf 'setup: %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo "$@"
  else return 1
  fi
}

apt_install() {
  say "installing Debian packages: $*"
  if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >/tmp/gridmap-apt.log 2>&1; then
    # A fresh machine may have no package lists yet.
    as_root apt-get update >>/tmp/gridmap-apt.log 2>&1 || true
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >>/tmp/gridmap-apt.log 2>&1 || {
      tail -20 /tmp/gridmap-apt.log >&2; return 1; }
  fi
}

# 1. System packages ------------------------------------------------------------------
pg_major=$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1 || true)
if [ -z "$pg_major" ] && command -v apt-cache >/dev/null; then
  # The distribution's default PostgreSQL (15 on Debian 12).
  pg_major=$(apt-cache depends postgresql 2>/dev/null | sed -n 's/.*Depends: postgresql-\([0-9]\+\)$/\1/p' | head -1)
fi
pg_major=${pg_major:-15}
wanted=()
[ -x "/usr/lib/postgresql/$pg_major/bin/initdb" ] || wanted+=("postgresql-$pg_major")
[ -f "/usr/share/postgresql/$pg_major/extension/postgis.control" ] || wanted+=("postgresql-$pg_major-postgis-3")
command -v pg_config >/dev/null || wanted+=("libpq-dev")
"$PYTHON" -c 'import venv, ensurepip' 2>/dev/null || wanted+=("python3-venv")
if $for_tests && ! command -v chromium >/dev/null; then wanted+=("chromium"); fi
# GDAL's command-line tools: the OGC API tests read /ogc with ogrinfo and ogr2ogr.
if $for_tests && ! command -v ogrinfo >/dev/null; then wanted+=("gdal-bin"); fi
# A CJK font, so the browser tests (and their screenshots) draw Chinese, not boxes.
if $for_tests && [ ! -d /usr/share/fonts/truetype/wqy ]; then wanted+=("fonts-wqy-microhei"); fi
if [ ${#wanted[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null || ! apt_install "${wanted[@]}"; then
    say "cannot install the system packages gridmap needs."
    say "install them, then run this again:  sudo apt-get install ${wanted[*]}"
    say "(or point gridmap at an existing PostGIS with GRIDMAP_DATABASE_URL)"
    exit 1
  fi
fi

# 2. Python environment -----------------------------------------------------------------
[ -x "$VENV/bin/python" ] || { say "creating $VENV"; "$PYTHON" -m venv "$VENV"; }
stamp="$VENV/.gridmap-installed"
digest=$(cat setup.cfg pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$digest" ]; then
  say "installing gridmap and its Python dependencies into $VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet -e '.[test]'
  echo "$digest" > "$stamp"
fi
