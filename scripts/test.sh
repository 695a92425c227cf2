#!/usr/bin/env bash
# Install what the tests need and run them:
#   1. Debian packages: PostgreSQL's PostGIS, chromium (+ driver) and gdal-bin;
#   2. this package with its test extras;
#   3. a reachable PostgreSQL with PostGIS (GRIDLINE_TEST_DATABASE_URL, else 127.0.0.1:5432,
#      else a throwaway server started here and stopped on exit), with a test database;
#   4. pytest, with any arguments given to this script.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

pg_version() { ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1; }

# 1. Debian packages.
[ -n "$(pg_version)" ] || apt_install postgresql
PG_VERSION=$(pg_version)
apt_install "postgresql-${PG_VERSION}-postgis-3" chromium chromium-driver gdal-bin

# 2. The package and its test extras.
python3 -m pip install --quiet --disable-pip-version-check -e ".[test]"

# 3. PostgreSQL with PostGIS.
PG_BIN="/usr/lib/postgresql/${PG_VERSION}/bin"
URL="${GRIDLINE_TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/gridline_test}"
if ! psql "${URL%/*}/postgres" -qAtc 'select 1' >/dev/null 2>&1; then
  echo "no PostgreSQL reachable at ${URL%/*}: starting a throwaway server"
  PGTMP=$(mktemp -d)
  chown postgres "$PGTMP" 2>/dev/null || true
  run_pg() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi; }
  run_pg "'$PG_BIN/initdb' -D '$PGTMP/data' -U postgres --auth=trust -E UTF8 >/dev/null"
  run_pg "'$PG_BIN/pg_ctl' -D '$PGTMP/data' -o '-p 54329 -k $PGTMP -c listen_addresses=127.0.0.1' -l '$PGTMP/log' -w start >/dev/null"
  trap "run_pg \"'$PG_BIN/pg_ctl' -D '$PGTMP/data' -m fast stop\" >/dev/null; rm -rf '$PGTMP'" EXIT
  URL="postgresql://postgres@127.0.0.1:54329/gridline_test"
fi
DB="${URL##*/}"
if [ "$(psql "${URL%/*}/postgres" -qAtc "select 1 from pg_database where datname = '$DB'")" != 1 ]; then
  psql "${URL%/*}/postgres" -qc "create database \"$DB\"" >/dev/null
fi
psql "$URL" -qc 'create extension if not exists postgis' >/dev/null
export GRIDLINE_TEST_DATABASE_URL="$URL"
echo "PostgreSQL with PostGIS at $URL"

# 4. The tests.
python3 -m pytest "$@"
