#!/usr/bin/env bash
# Installs PostgreSQL from Debian's packages (when no server binaries are present) and
# starts a throwaway server for the tests of internal/backup, which run the backup and
# restore scripts of the operator's Jobs against a real database.
#
# The server listens on 127.0.0.1 only, on a fixed uncommon port (54329), with its data
# and socket directory under /tmp (the postgres user cannot enter root's home, where the
# per-user cache lives). TCP connections need a password (scram-sha-256), so the tests
# can check that a wrong password fails; the superuser is postgres / softfactory-test.
# Durability is off (fsync, synchronous_commit): the data is thrown away, and seeding
# the benchmark's 200 MB database is several times faster without it.
#
# Idempotent: skips the install when server binaries exist, initdb when the data
# directory holds a cluster, and the start when a server already answers on the port.
# Works on a fresh Debian machine with only Go, as root (the server itself runs as the
# postgres user: PostgreSQL refuses to run as root).
#
# Prints the connection settings as shell export lines, so a Makefile can
#   eval "$(hack/install-postgres.sh)"
# The tests read SOFTFACTORY_TEST_DATABASE_URL and fall back to the same fixed value.
#
# Environment (all optional):
#   SOFTFACTORY_PG_PORT  port to listen on (default 54329)
#   SOFTFACTORY_PG_DIR   data, socket and log directory (default /tmp/softfactory-release-operator-pg-<port>)
set -euo pipefail

port=${SOFTFACTORY_PG_PORT:-54329}
base=${SOFTFACTORY_PG_DIR:-/tmp/softfactory-release-operator-pg-$port}
superuser=postgres
password=softfactory-test

log() { echo "hack/install-postgres.sh: $*" >&2; }

# server_bindir prints the bin directory of the newest PostgreSQL server installed from
# Debian's packages (they live in /usr/lib/postgresql/<version>/bin, not on PATH).
server_bindir() {
  local dir best=""
  for dir in /usr/lib/postgresql/*/bin; do
    if [[ -x "$dir/postgres" && -x "$dir/initdb" && -x "$dir/pg_ctl" ]]; then
      if [[ -z "$best" ]] || [[ "$(basename "$(dirname "$dir")")" -gt "$(basename "$(dirname "$best")")" ]]; then
        best=$dir
      fi
    fi
  done
  [[ -n "$best" ]] && echo "$best"
}

updated=false
apt_update_once() {
  if [[ "$updated" == false ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    updated=true
  fi
}

# install PACKAGE...: apt-get install, with the package's own services kept from
# starting (its cluster on port 5432 is not the tests' server).
install() {
  if [[ $(id -u) -ne 0 ]]; then
    log "missing $*, and installing needs root (apt-get install $*)"
    exit 1
  fi
  # Exit code 101 means "action forbidden" to invoke-rc.d.
  local policy=/usr/sbin/policy-rc.d
  if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  log "installing $* from Debian's packages (first time only)..."
  export DEBIAN_FRONTEND=noninteractive
  apt_update_once
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  # On a machine booted with systemd the package's cluster would come up at boot; keep
  # it off, the tests never use it.
  if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now postgresql.service >/dev/null 2>&1 || true
  fi
}

packages=()
bindir=$(server_bindir || true)
if [[ -z "$bindir" ]]; then
  # PostgreSQL 15 matches the operator's default Job image (postgres:15-alpine), so the
  # tests exercise the same pg_dump/pg_restore major version; a Debian release without
  # it gets its own version through the "postgresql" metapackage.
  # (apt-cache knows nothing, or only an old list, before an update.)
  if [[ $(id -u) -eq 0 ]]; then
    apt_update_once
  fi
  if apt-cache show postgresql-15 >/dev/null 2>&1; then
    packages+=(postgresql-15 postgresql-client-15)
  else
    packages+=(postgresql)
  fi
fi
# busybox: the tests also run the scripts under busybox sh and its applets, the shell of
# the Jobs' postgres:15-alpine image, since dash alone would let a bash-ism or a GNU-only
# option through.
if ! command -v busybox >/dev/null 2>&1; then
  packages+=(busybox)
fi
if [[ ${#packages[@]} -gt 0 ]]; then
  install "${packages[@]}"
fi
if [[ -z "$bindir" ]]; then
  bindir=$(server_bindir || true)
  if [[ -z "$bindir" ]]; then
    log "installed PostgreSQL but found no server binaries in /usr/lib/postgresql/*/bin"
    exit 1
  fi
  log "installed $("$bindir/postgres" --version)"
fi

# as_owner runs a command as the user that owns the cluster: postgres when we are root.
as_owner() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u "$superuser" -- "$@"
  else
    "$@"
  fi
}

if [[ $(id -u) -eq 0 ]] && ! id "$superuser" >/dev/null 2>&1; then
  # Debian's postgresql-common creates it; a machine with binaries from elsewhere may not.
  useradd --system --home-dir "$base" --shell /usr/sbin/nologin "$superuser"
fi

if "$bindir/pg_isready" --quiet --host=127.0.0.1 --port="$port" --timeout=5; then
  log "a server already answers on 127.0.0.1:$port; not starting another"
else
  mkdir -p "$base"
  if [[ $(id -u) -eq 0 ]]; then
    chown "$superuser:" "$base"
  fi
  chmod 700 "$base"
  data="$base/data"
  if [[ ! -f "$data/PG_VERSION" ]]; then
    # initdb into a temporary directory and rename it, so an interrupted initdb never
    # leaves a half-made cluster that a later run would try to start.
    rm -rf "$data.tmp"
    pwfile="$base/pwfile"
    # shellcheck disable=SC2016 # $1 is the inner shell's argument
    as_owner sh -c 'umask 077 && cat >"$1"' sh "$pwfile" <<<"$password"
    as_owner "$bindir/initdb" --pgdata="$data.tmp" --username="$superuser" --pwfile="$pwfile" \
      --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >"$base/initdb.log" 2>&1 ||
      { cat "$base/initdb.log" >&2; log "initdb failed"; exit 1; }
    rm -f "$pwfile"
    mv "$data.tmp" "$data"
  fi
  log "starting $("$bindir/postgres" --version) on 127.0.0.1:$port (data in $data)"
  # Settings on the command line, not in postgresql.conf, so a changed default here
  # applies to an existing data directory too.
  as_owner "$bindir/pg_ctl" start --pgdata="$data" --log="$base/server.log" --wait --timeout=60 \
    --options="-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$base -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    >/dev/null || { tail -n 20 "$base/server.log" >&2; log "the server did not start"; exit 1; }
fi

echo "export SOFTFACTORY_TEST_DATABASE_URL=postgresql://$superuser:$password@127.0.0.1:$port/postgres"
