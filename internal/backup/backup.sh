
# backup.sh: the backup Job. Dumps DATABASE_URL with pg_dump --format=custom to
# BACKUP_DIR/BACKUP_FILE, verifies the dump, then prunes this release's oldest dumps so
# that KEEP_LAST of each kind remain (pre-migration, pre-contract and scheduled counted
# apart), never one named in KEEP_FILES. Exits non-zero, with a message saying why, whenever there is no
# verified dump at the end: the operator never migrates without one.
script_name=backup

require_env DATABASE_URL BACKUP_DIR RELEASE_NAME KEEP_LAST
VERIFY=${VERIFY:-true}
MIN_SIZE_BYTES=${MIN_SIZE_BYTES:-1}

case $RELEASE_NAME in
*[!a-z0-9.-]*) fail "RELEASE_NAME must be a Kubernetes object name (lowercase letters, digits, '-', '.')" ;;
esac
case $KEEP_LAST in
*[!0-9]*) fail "KEEP_LAST must be a whole number of dumps, at least 1" ;;
esac
if [ "$KEEP_LAST" -lt 1 ]; then
  fail "KEEP_LAST must be at least 1: the dump just made is always kept"
fi
case $MIN_SIZE_BYTES in
'' | *[!0-9]*) fail "MIN_SIZE_BYTES must be a whole number of bytes" ;;
esac
case $VERIFY in
true | false) ;;
*) fail "VERIFY must be true or false" ;;
esac
if [ ! -d "$BACKUP_DIR" ]; then
  fail "BACKUP_DIR $BACKUP_DIR is not a directory: is the backup volume mounted?"
fi

# The strict shape of one of this release's dumps, after "<release>-": a 10-hex-digit
# revision and a UTC timestamp, then ".dump" for a pre-migration dump (named by the
# operator), "-precontract.dump" for the dump before a contract step (named by the
# operator) or "-scheduled.dump" for a scheduled one (named here). Pruning deletes nothing else, so another release whose
# name starts with this one ("softfactory-minimal" for "softfactory") is safe: its
# files have a longer remainder that never fits this fixed-length pattern.
hex='[0123456789abcdef]'
digit='[0123456789]'
stamped="$hex$hex$hex$hex$hex$hex$hex$hex$hex$hex-$digit$digit$digit$digit$digit$digit$digit${digit}T$digit$digit$digit$digit$digit${digit}Z"

# dump_kind NAME: prints "release", "precontract" or "scheduled" for one of this release's dumps, and
# fails for any other name.
dump_kind() {
  case $1 in
  "$RELEASE_NAME"-*) ;;
  *) return 1 ;;
  esac
  # shellcheck disable=SC2254 # $stamped unquoted on purpose: it is a glob
  case ${1#"$RELEASE_NAME"-} in
  $stamped.dump) echo release ;;
  $stamped-precontract.dump) echo precontract ;;
  $stamped-scheduled.dump) echo scheduled ;;
  *) return 1 ;;
  esac
}

is_release_dump() {
  dump_kind "$1" >/dev/null
}

# is_kept NAME: whether KEEP_FILES (the dumps the release's status refers to: the
# serving revision's, the previous one's, the last backup) names NAME.
is_kept() {
  for kept_name in ${KEEP_FILES:-}; do
    if [ "$kept_name" = "$1" ]; then
      return 0
    fi
  done
  return 1
}

if [ -z "${BACKUP_FILE:-}" ]; then
  # A scheduled backup (CronJob) cannot carry a per-run name: make it here.
  require_env REVISION
  BACKUP_FILE="$RELEASE_NAME-$REVISION-$(date -u +%Y%m%dT%H%M%SZ)-scheduled.dump"
fi
if ! is_release_dump "$BACKUP_FILE"; then
  fail "BACKUP_FILE must be named <release>-<10 hex digit revision>-<UTC timestamp like 20060102T150405Z>.dump (or -precontract.dump) for release $RELEASE_NAME"
fi
kind=$(dump_kind "$BACKUP_FILE")

connect_setup
final="$BACKUP_DIR/$BACKUP_FILE"
# pg_dump writes to a temporary name that pruning never matches, renamed only once the
# dump is complete and verified: a half-written dump never looks like a backup.
partial="$final.partial"
trap 'rm -f "$partial" "$passfile"' EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# A volume this user cannot write would fail pg_dump only after the whole dump was
# read; say what is wrong, in the termination message the release shows, at once.
if ! (: >"$partial") 2>/dev/null; then
  fail "the backup volume at $BACKUP_DIR is not writable by this user (uid $(id -u)): Permission denied. Kubernetes applies fsGroup only to volume types that support it (not hostPath or local-path): chown or chmod the directory for uid $(id -u), or set spec.backup.securityContext to its owner. No dump was written."
fi

connect_or_fail "No dump was written."

say "dumping to $final"
started=$(date +%s)
if ! out=$(pg_dump --no-password --format=custom --file="$partial" --dbname="$db_url" 2>&1); then
  show "$out"
  case $out in
  *"No space left on device"* | *"Disk quota exceeded"*)
    fail "the backup volume at $BACKUP_DIR is full: grow the volume or lower keepLast. No dump was kept."
    ;;
  esac
  fail "pg_dump failed (see the message above). No dump was kept."
fi
show "$out"
size=$(file_size "$partial")
say "dumped $size bytes in $(($(date +%s) - started))s"

if [ "$VERIFY" = true ]; then
  if [ "$size" -eq 0 ]; then
    fail "the dump is empty (0 bytes). No dump was kept."
  fi
  if [ "$size" -lt "$MIN_SIZE_BYTES" ]; then
    fail "the dump is $size bytes, smaller than MIN_SIZE_BYTES ($MIN_SIZE_BYTES): is DATABASE_URL the right database? No dump was kept."
  fi
  # --list reads only the table of contents at the head of the file...
  if ! toc=$(pg_restore --list "$partial" 2>&1); then
    show "$toc"
    fail "the dump is unreadable: pg_restore --list failed. No dump was kept."
  fi
  # ...and a dump cut short after it still lists fine, so read every entry back too.
  started=$(date +%s)
  if ! out=$(pg_restore --file=/dev/null "$partial" 2>&1); then
    show "$out"
    fail "the dump is truncated or corrupt: reading it back with pg_restore failed. No dump was kept."
  fi
  tables=$(printf '%s\n' "$toc" | grep -c ' TABLE DATA ' || true)
  say "verified: pg_restore reads all of it back ($tables tables with data) in $(($(date +%s) - started))s"
  outcome=verified
else
  say "not verified: VERIFY is false"
  outcome="written (not verified)"
fi

mv -f "$partial" "$final"
# Make the rename durable before the Job reports success and a migration starts (pg_dump
# already flushed the file itself). Best effort: not every sync takes a path.
sync "$BACKUP_DIR" 2>/dev/null || sync

# Prune: of the dumps of the same kind as this one, keep the one just made and the
# newest KEEP_LAST-1 others, newest by the time they were written (their mtime, the
# clock of the node that wrote them: a name carries the operator's clock, which may
# lag). Scheduled dumps never push out a pre-migration dump, nor the other way round,
# and a dump named in KEEP_FILES is never pruned (it still counts as kept). Only regular
# files of this release's strict shapes are candidates.
candidates=$(
  for path in "$BACKUP_DIR/$RELEASE_NAME"-*.dump; do
    name=${path##*/}
    if [ "$name" = "$BACKUP_FILE" ] || [ -L "$path" ] || [ ! -f "$path" ] || [ "$(dump_kind "$name" || true)" != "$kind" ]; then
      continue
    fi
    # Written at (seconds), then the name's own timestamp to order dumps written within
    # the same second.
    rest=${name#"$RELEASE_NAME"-}
    printf '%s %s %s\n' "$(date -u -r "$path" +%s)" "${rest#??????????-}" "$name"
  done | sort -k1,1nr -k2,2r | cut -d' ' -f3
)
kept=1
pruned=0
for name in $candidates; do
  if is_kept "$name"; then
    say "kept $name: the release's status refers to it"
    kept=$((kept + 1))
    continue
  fi
  if [ "$kept" -lt "$KEEP_LAST" ]; then
    kept=$((kept + 1))
    continue
  fi
  # A dump that cannot be pruned costs space, not safety: warn and go on, since the new
  # dump is verified and the migration may run.
  if rm -f "$BACKUP_DIR/$name"; then
    say "pruned $name"
    pruned=$((pruned + 1))
  else
    say "warning: could not prune $name"
  fi
done

say "done: $BACKUP_FILE ($size bytes); $kept of this release's $kind dumps kept (keepLast $KEEP_LAST), $pruned pruned"
finish "$outcome $BACKUP_FILE ($size bytes)"
