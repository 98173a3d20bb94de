
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
finish "restored $BACKUP_FILE"
