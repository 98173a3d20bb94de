#!/usr/bin/env bash
# Installs the sample app's Python packages from Debian (the same packages its image is
# built from, hack/real/build-rootfs.sh), for the test of its schema changes
# (examples/softfactory-app/schema_test.go: `flask db upgrade` against the PostgreSQL
# test server, both app versions served by gunicorn on loopback).
#
# Idempotent: does nothing when Debian's python3 imports them all. Needs root (apt-get)
# and works on a fresh Debian machine that has only Go. Nothing here starts a service.
set -euo pipefail

python=${SOFTFACTORY_APP_PYTHON:-/usr/bin/python3}
packages=(python3-flask python3-flask-migrate python3-flask-sqlalchemy python3-psycopg2 gunicorn)
if [[ -x "$python" ]] && "$python" -c "import flask, flask_migrate, flask_sqlalchemy, psycopg2, gunicorn" 2>/dev/null; then
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "hack/install-sample-app-deps.sh: needs root to apt-get install ${packages[*]}" >&2
  exit 1
fi
echo "Installing the sample app's Python packages from Debian (${packages[*]})..." >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
