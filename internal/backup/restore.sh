
# restore.sh: the restore Job. Loads BACKUP_DIR/BACKUP_FILE, a dump made by backup.sh,
# back into DATABASE_URL, so that the database holds exactly what it held when the dump
# was taken: every object in the dump is dropped and recreated with its data.
script_name=restore

require_env DATABASE_URL BACKUP_DIR BACKUP_FILE
case $BACKUP_FILE in
*/* | . | ..) fail "BACKUP_FILE must be a file name in BACKUP_DIR, not a path" ;;
esac
dump="$BACKUP_DIR/$BACKUP_FILE"
if [ ! -f "$dump" ]; then
  fail "there is no dump $dump: is the backup volume mounted, and is BACKUP_FILE one of its files? The database was not touched."
fi

# Check the dump and the connection before anything is dropped.
if ! toc=$(pg_restore --list "$dump" 2>&1); then
  show "$toc"
  fail "the dump $dump is unreadable (pg_restore --list failed). The database was not touched."
fi
connect_setup
trap 'rm -f "$passfile"' EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
connect_or_fail "The database was not touched."

say "restoring $dump ($(file_size "$dump") bytes)"
started=$(date +%s)
# --clean --if-exists: drop each object of the dump (when it exists) before recreating
#   it, so rows changed or added since the dump do not survive.
# --single-transaction: all or nothing. A restore that fails halfway (a truncated dump,
#   an object the role may not drop) rolls back and leaves the database as it was,
#   never half old and half new. It implies --exit-on-error.
# --no-owner: objects belong to the role in DATABASE_URL, as they did when the app made
#   them; restoring the dump's owners would need that role to be a superuser, or fail.
#   Privileges (GRANTs) are restored: other roles keep the access they had.
if ! out=$(pg_restore --no-password --clean --if-exists --single-transaction --no-owner \
  --dbname="$db_url" "$dump" 2>&1); then
  show "$out"
  case $out in
  *"other objects depend on it"*)
    fail "the restore was rolled back, the database is unchanged: objects made after the dump depend on objects in it (see the message above). Drop those objects, then run the restore again (docs/backups.md)."
    ;;
  esac
  fail "the restore was rolled back, the database is unchanged (see the message above)."
fi
show "$out"
say "restored $BACKUP_FILE in $(($(date +%s) - started))s"

# Verify as the runbook does after a restore (SELECT COUNT(*) FROM users), for every
# table of the dump: each now holds exactly the rows the dump holds. The writers the
# release owns were stopped before the restore, so a difference means something else
# writes to this database, and the restore is not what it holds.
if ! expected=$(pg_restore --data-only --file=- "$dump" | awk '
  /^COPY .* FROM stdin;$/ { t = substr($0, 6); sub(/ \(.*$/, "", t); sub(/ FROM stdin;$/, "", t); n = 0; copying = 1; next }
  copying && $0 == "\\." { print n, t; copying = 0; next }
  copying { n++ }'); then
  fail "the restore finished, but reading the dump's rows back to verify it failed: check the database by hand (docs/backups.md)."
fi
tables=0
rows=0
if [ -n "$expected" ]; then
  query=$(printf '%s\n' "$expected" | awk '{ t = $0; sub(/^[0-9]+ /, "", t); printf "%sSELECT %d, count(*) FROM %s\n", (NR > 1 ? "UNION ALL " : ""), NR, t } END { print "ORDER BY 1;" }')
  if ! actual=$(printf '%s\n' "$query" | psql --no-psqlrc --no-password --quiet --tuples-only --no-align --field-separator=' ' \
    --dbname="$db_url" --file=- 2>&1); then
    show "$actual"
    fail "the restore finished, but counting the restored rows failed (see the message above): check the database by hand (docs/backups.md)."
  fi
  mismatch=$(printf '%s\n' "$expected" | awk -v actual="$actual" '
    BEGIN { n = split(actual, lines, "\n"); for (i = 1; i <= n; i++) { split(lines[i], f, " "); got[f[1]] = f[2] } }
    { want = $1; t = $0; sub(/^[0-9]+ /, "", t); if (got[NR] != want) { printf "%s holds %s rows, the dump %s; ", t, got[NR], want } }')
  if [ -n "$mismatch" ]; then
    fail "the restore finished, but the database does not hold what the dump holds: ${mismatch}something wrote to the database during or after the restore. Stop every writer, then restore again (docs/backups.md)."
  fi
  tables=$(printf '%s\n' "$expected" | wc -l | tr -d ' ')
  rows=$(printf '%s\n' "$expected" | awk '{ s += $1 } END { print s + 0 }')
fi
say "verified: the $tables tables of the dump hold its $rows rows"
finish "restored $BACKUP_FILE; verified: $tables tables, $rows rows, as in the dump"
