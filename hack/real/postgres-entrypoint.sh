#!/bin/sh
# Entrypoint of the real-cluster test's PostgreSQL image: initialises PGDATA on first
# start (user POSTGRES_USER with POSTGRES_PASSWORD, database POSTGRES_DB, password
# authentication over TCP), then runs the server in the foreground. Runs as the image's
# non-root postgres user; the socket goes to /tmp, the only place it may write besides
# PGDATA.
set -eu
bin=/usr/lib/postgresql/15/bin
: "${PGDATA:?}" "${POSTGRES_PASSWORD:?}"
user=${POSTGRES_USER:-postgres}
dbname=${POSTGRES_DB:-$user}
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  mkdir -p "$PGDATA"
  chmod 700 "$PGDATA"
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  "$bin/initdb" -D "$PGDATA" -U "$user" --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  echo "host all all 0.0.0.0/0 scram-sha-256" >>"$PGDATA/pg_hba.conf"
  if [ "$dbname" != postgres ]; then
    echo "CREATE DATABASE \"$dbname\" OWNER \"$user\";" |
      "$bin/postgres" --single -D "$PGDATA" -c unix_socket_directories=/tmp postgres >/dev/null
  fi
fi
exec "$bin/postgres" -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/tmp
