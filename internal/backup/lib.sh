# lib.sh: shared by the backup and restore scripts; BackupCommand and RestoreCommand
# put it in front of each. POSIX sh only: the scripts run under busybox sh in
# postgres:15-alpine, and under dash in the tests.
#
# DATABASE_URL carries the database password. So: never `set -x`, never print the URL,
# and everything printed (libpq's and pg_*'s messages included) goes through redact,
# which blanks the URL and the password in every form it may take.
set -eu
# Byte-wise pattern matching and sorting, whatever locale the image sets.
export LC_ALL=C
# A host that drops packets would otherwise hold the Job until its deadline.
export PGCONNECT_TIMEOUT="${PGCONNECT_TIMEOUT:-15}"
# Kubernetes reads this file into the pod's status (terminationMessagePath), so the
# operator can show why a Job failed without reading logs.
termination_log="${TERMINATION_MESSAGE_PATH:-/dev/termination-log}"

# awk_percent_decode defines decode(s) for awk programs: s with every %XX replaced by
# the byte it encodes, as libpq reads a URL's user info and parameters.
awk_percent_decode='
    function hexval(s,   a, b) {
      a = index("0123456789abcdef", tolower(substr(s, 1, 1)))
      b = index("0123456789abcdef", tolower(substr(s, 2, 1)))
      if (a == 0 || b == 0) return -1
      return (a - 1) * 16 + (b - 1)
    }
    function decode(s,   out, i, h) {
      out = ""
      for (i = 1; i <= length(s); i++) {
        h = (substr(s, i, 1) == "%") ? hexval(substr(s, i + 1, 2)) : -1
        if (h > 0) { out = out sprintf("%c", h); i += 2 } else out = out substr(s, i, 1)
      }
      return out
    }'

# redact copies stdin to stdout with DATABASE_URL, its password (raw and
# percent-decoded, from the user-info part or a password= parameter) and PGPASSWORD
# replaced by [REDACTED]. Literal matching (index), not regular expressions, so a
# password full of regex metacharacters is still found.
redact() {
  awk "$awk_percent_decode"'
    function add(s) { if (s != "") { secret[++n] = s; secret[++n] = decode(s) } }
    # add_param adds the value of every key=value pair named password in s, split on sep.
    function add_param(s, sep,   parts, k, i, v) {
      k = split(s, parts, sep)
      for (i = 1; i <= k; i++) {
        v = parts[i]
        sub(/^[ \t]+/, "", v)
        if (v ~ /^password[ \t]*=/) {
          sub(/^password[ \t]*=[ \t]*/, "", v)
          gsub(/^'\''|'\''$/, "", v)
          add(v)
        }
      }
    }
    BEGIN {
      n = 0
      url = ENVIRON["DATABASE_URL"]
      add(url)
      add(ENVIRON["PGPASSWORD"])
      i = index(url, "://")
      if (i > 0) {
        rest = substr(url, i + 3)
        authority = rest
        j = match(authority, /[\/?#]/)
        if (j > 0) authority = substr(authority, 1, j - 1)
        # libpq ends the user info at the first @, a careless URL at the last: blank both.
        first = index(authority, "@")
        last = 0
        for (k = 1; k <= length(authority); k++) if (substr(authority, k, 1) == "@") last = k
        if (first > 0) {
          userinfo = substr(authority, 1, first - 1)
          if ((c = index(userinfo, ":")) > 0) add(substr(userinfo, c + 1))
          userinfo = substr(authority, 1, last - 1)
          if ((c = index(userinfo, ":")) > 0) add(substr(userinfo, c + 1))
        }
        if ((q = index(rest, "?")) > 0) add_param(substr(rest, q + 1), "&")
      } else {
        add_param(url, " ")
      }
    }
    {
      line = $0
      for (s = 1; s <= n; s++) {
        if (secret[s] == "") continue
        out = ""
        while ((p = index(line, secret[s])) > 0) {
          out = out substr(line, 1, p - 1) "[REDACTED]"
          line = substr(line, p + length(secret[s]))
        }
        line = out line
      }
      print line
    }'
}

# say prints a progress line on stdout.
say() {
  printf '%s: %s\n' "$script_name" "$*" | redact
}

# show prints captured tool output (indented, redacted) on stderr, if there is any.
show() {
  if [ -n "$1" ]; then
    printf '%s\n' "$1" | sed 's/^/  | /' | redact >&2
  fi
}

# finish records the outcome for the pod's status, if Kubernetes gave us the file.
finish() {
  if [ -f "$termination_log" ] && [ -w "$termination_log" ]; then
    printf '%s: %s\n' "$script_name" "$*" | redact >"$termination_log" || true
  fi
}

# fail prints an error on stderr and exits non-zero.
fail() {
  printf '%s: error: %s\n' "$script_name" "$*" | redact >&2
  finish "error: $*"
  exit 1
}

# require_env fails unless each named variable is set and non-empty.
require_env() {
  for name in "$@"; do
    eval "value=\${$name:-}"
    if [ -z "$value" ]; then
      fail "$name is not set: the Job must set it (see internal/backup)"
    fi
  done
}

# libpq_url prints DATABASE_URL in a form libpq accepts. SQLAlchemy names the scheme
# dialect+driver (postgresql+psycopg2://); libpq only knows postgresql:// and
# postgres://. A key=value connection string passes through as it is.
libpq_url() {
  case $DATABASE_URL in
  *://*)
    scheme=${DATABASE_URL%%://*}
    dialect=${scheme%%+*}
    case $dialect in
    postgresql | postgres) printf '%s://%s\n' "$dialect" "${DATABASE_URL#*://}" ;;
    *) fail "DATABASE_URL must be a postgresql:// URL (or SQLAlchemy's postgresql+driver://), not $dialect://" ;;
    esac
    ;;
  *) printf '%s\n' "$DATABASE_URL" ;;
  esac
}

# connect_setup sets db_url, the connection the PostgreSQL tools get, WITHOUT the
# password: a command line is world-readable (/proc/*/cmdline, ps, process-collecting
# agents), so the password goes where libpq looks for it, a passfile readable by this
# user only (PGPASSFILE), in PGPASS_DIR: an in-memory volume in the Jobs. The URL (and
# so the password) reaches awk through its environment, never its arguments. Must run
# in the script's own shell, not in $(...), to export PGPASSFILE; the caller removes
# $passfile on exit.
connect_setup() {
  url=$(libpq_url)
  passfile="${PGPASS_DIR:-${TMPDIR:-/tmp}}/softfactory-$$.pgpass"
  rm -f "$passfile"
  db_url=$(
    umask 077
    LIBPQ_URL=$url PASSFILE=$passfile awk "$awk_percent_decode"'
      BEGIN {
        url = ENVIRON["LIBPQ_URL"]
        have = 0
        i = index(url, "://")
        if (i > 0) {
          scheme = substr(url, 1, i + 2)
          rest = substr(url, i + 3)
          j = match(rest, /[\/?#]/)
          if (j > 0) { authority = substr(rest, 1, j - 1); tail = substr(rest, j) } else { authority = rest; tail = "" }
          last = 0
          for (k = 1; k <= length(authority); k++) if (substr(authority, k, 1) == "@") last = k
          if (last > 0) {
            userinfo = substr(authority, 1, last - 1)
            c = index(userinfo, ":")
            if (c > 0) {
              pw = decode(substr(userinfo, c + 1)); have = 1
              authority = substr(userinfo, 1, c - 1) substr(authority, last)
            }
          }
          q = index(tail, "?")
          if (q > 0) {
            n = split(substr(tail, q + 1), parts, "&")
            kept = ""
            for (k = 1; k <= n; k++) {
              if (parts[k] ~ /^password=/) { pw = decode(substr(parts[k], 10)); have = 1; continue }
              kept = kept (kept == "" ? "" : "&") parts[k]
            }
            tail = substr(tail, 1, q - 1) (kept == "" ? "" : "?" kept)
          }
          out = scheme authority tail
        } else {
          n = split(url, parts, " ")
          out = ""
          for (k = 1; k <= n; k++) {
            if (parts[k] == "") continue
            if (parts[k] ~ /^password=/) {
              pw = substr(parts[k], 10); gsub(/^'\''|'\''$/, "", pw); have = 1
              continue
            }
            out = out (out == "" ? "" : " ") parts[k]
          }
        }
        if (have) {
          # .pgpass syntax: host:port:database:user:password, with \ and : escaped.
          esc = ""
          for (k = 1; k <= length(pw); k++) {
            ch = substr(pw, k, 1)
            if (ch == "\\" || ch == ":") esc = esc "\\"
            esc = esc ch
          }
          printf "*:*:*:*:%s\n", esc > ENVIRON["PASSFILE"]
          close(ENVIRON["PASSFILE"])
        }
        print out
      }'
  )
  if [ -s "$passfile" ]; then
    export PGPASSFILE="$passfile"
  fi
}

# connect_or_fail checks that the database accepts us before anything is written or
# dropped, so each way of failing to connect gets its own message. $1 says what the
# failure left behind.
connect_or_fail() {
  if out=$(psql --no-psqlrc --no-password --quiet --tuples-only --no-align --dbname="$db_url" \
    --command="SELECT 'database ' || current_database() || ' as ' || current_user || ', PostgreSQL ' || current_setting('server_version')" 2>&1); then
    say "connected to $out"
    return 0
  fi
  show "$out"
  case $out in
  *"password authentication failed"*) why="the password or user in DATABASE_URL was refused: check the Secret" ;;
  *"could not translate host name"*) why="the host name in DATABASE_URL does not resolve: check it, and the cluster's DNS" ;;
  *"Connection refused"*) why="nothing accepts connections at that host and port: is PostgreSQL running, and is the port right?" ;;
  *"timeout expired"*) why="no answer within ${PGCONNECT_TIMEOUT}s: check the host, the port and network policies" ;;
  *"does not exist"*) why="the database or role named in DATABASE_URL does not exist" ;;
  *"invalid "* | *"missing "* | *"unterminated "*) why="DATABASE_URL is malformed (a password with reserved characters must be percent-encoded)" ;;
  *) why="see the message above" ;;
  esac
  fail "cannot connect to the database: $why. $1"
}

# file_size prints the size of file $1 in bytes (wc pads it with spaces on some systems).
file_size() {
  wc -c <"$1" | tr -d ' \t'
}
