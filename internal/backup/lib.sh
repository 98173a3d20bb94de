# Shared by the backup and restore scripts (prepended to each).
# POSIX sh only: it runs under busybox sh in postgres:15-alpine and under dash.
# Never `set -x` and never print DATABASE_URL: it carries the database password.
set -eu
export LC_ALL=C
