/*
Copyright 2026.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package backup

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pgDumpThatCuts installs a test double for pg_dump: the real one, then its output
// file cut to CUT_DUMP_TO_PERCENT of its size, as a dump cut short by a dying node or a
// broken volume would be. It returns the directory to put first on PATH.
func pgDumpThatCuts(t *testing.T) string {
	t.Helper()
	real, err := exec.LookPath("pg_dump")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	script := `#!/bin/sh
set -e
"` + real + `" "$@"
for arg in "$@"; do
  case $arg in --file=*) file=${arg#--file=} ;; esac
done
size=$(wc -c <"$file")
truncate -s $((size * CUT_DUMP_TO_PERCENT / 100)) "$file"
`
	if err := os.WriteFile(filepath.Join(dir, "pg_dump"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// closedPort returns a 127.0.0.1 address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// silentServer returns a 127.0.0.1 address that completes the TCP handshake (the
// kernel does, from the listen backlog) but never says a word, like a host behind a
// firewall that drops packets, without sending any outside loopback.
func silentServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l.Addr().String()
}

// withoutNetwork runs the script in a network namespace of its own, which has no
// interface up: a name lookup there fails at once instead of asking the machine's DNS
// server, which is not on loopback.
func withoutNetwork(t *testing.T) []string {
	t.Helper()
	if out, err := exec.Command("unshare", "--net", "--", "true").CombinedOutput(); err != nil {
		t.Skipf("cannot make a network namespace here (%v: %s), and an unresolvable name must not be "+
			"looked up on the machine's DNS server; the closed-port case covers a failed connection", err, out)
	}
	return []string{"unshare", "--net", "--"}
}

func TestBackupFailsClearlyAndKeepsNoDump(t *testing.T) {
	db := newTestDB(t)
	seed(t, db)
	host, _, _ := strings.Cut(strings.SplitN(db.URL, "@", 2)[1], "/")
	wrongPassword := "Wrong-" + randomHex(t, 6)

	cases := []struct {
		name string
		// prepare changes the run's environment, the volume directory or the run itself.
		prepare func(t *testing.T, r *scriptRun, dir string)
		want    []string
	}{{
		name: "wrong password",
		prepare: func(t *testing.T, r *scriptRun, dir string) {
			r.env[EnvDatabaseURL] = db.urlWith(host, wrongPassword)
			r.secrets = append(r.secrets, wrongPassword)
		},
		want: []string{"password authentication failed", "the password or user in DATABASE_URL was refused", "No dump was written"},
	}, {
		name: "database that does not exist",
		prepare: func(t *testing.T, r *scriptRun, dir string) {
			r.env[EnvDatabaseURL] = strings.TrimSuffix(db.URL, db.Name) + "no_such_database"
		},
		want: []string{`database "no_such_database" does not exist`, "cannot connect to the database"},
	}, {
		name: "closed port",
		prepare: func(t *testing.T, r *scriptRun, dir string) {
			r.env[EnvDatabaseURL] = db.urlWith(closedPort(t), db.Password)
		},
		want: []string{"Connection refused", "nothing accepts connections at that host and port"},
	}, {
		name: "host name that does not resolve",
		prepare: func(t *testing.T, r *scriptRun, dir string) {
			r.wrap = withoutNetwork(t)
			r.env[EnvDatabaseURL] = db.urlWith("db.softfactory.invalid:5432", db.Password)
		},
		want: []string{`could not translate host name "db.softfactory.invalid"`, "does not resolve"},
	}, {
		name: "server that never answers",
		prepare: func(t *testing.T, r *scriptRun, dir string) {
			r.env[EnvDatabaseURL] = db.urlWith(silentServer(t), db.Password)
			r.env["PGCONNECT_TIMEOUT"] = "2" // libpq's smallest
		},
		want: []string{"timeout expired", "no answer within 2s"},
	}, {
		name: "full volume (/dev/full)",
		prepare: func(t *testing.T, r *scriptRun, dir string) {
			// pg_dump opens the temporary name through the link and every write fails
			// with ENOSPC, as on a full volume.
			partial := filepath.Join(dir, r.env[EnvBackupFile]+".partial")
			if err := os.Symlink("/dev/full", partial); err != nil {
				t.Fatal(err)
			}
		},
		want: []string{"No space left on device", "the backup volume at", "is full", "No dump was kept"},
	}, {
		name: "full volume (256 KiB tmpfs)",
		prepare: func(t *testing.T, r *scriptRun, dir string) {
			// The seeded database dumps to over 1 MB, most of it incompressible.
			mountTinyFS(t, dir, 256<<10)
		},
		want: []string{"No space left on device", "is full", "No dump was kept"},
	}, {
		name: "empty dump",
		prepare: func(t *testing.T, r *scriptRun, dir string) {
			r.pathFirst = pgDumpThatCuts(t)
			r.env["CUT_DUMP_TO_PERCENT"] = "0"
		},
		want: []string{"the dump is empty (0 bytes)", "No dump was kept"},
	}, {
		name: "dump smaller than MIN_SIZE_BYTES",
		prepare: func(t *testing.T, r *scriptRun, dir string) {
			r.env[EnvMinSizeBytes] = "100000000"
		},
		want: []string{"smaller than MIN_SIZE_BYTES (100000000)", "is DATABASE_URL the right database?"},
	}, {
		// pg_restore --list reads only the table of contents at the head of the file, so
		// this dump lists fine: only reading it all back catches it.
		name: "truncated dump",
		prepare: func(t *testing.T, r *scriptRun, dir string) {
			r.pathFirst = pgDumpThatCuts(t)
			r.env["CUT_DUMP_TO_PERCENT"] = "60"
		},
		want: []string{"the dump is truncated or corrupt", "No dump was kept"},
	}, {
		name: "URL that is not PostgreSQL's",
		prepare: func(t *testing.T, r *scriptRun, dir string) {
			r.env[EnvDatabaseURL] = "mysql+pymysql://app:" + wrongPassword + "@127.0.0.1/app"
			r.secrets = append(r.secrets, wrongPassword)
		},
		want: []string{"DATABASE_URL must be a postgresql:// URL", "not mysql://"},
	}, {
		name: "no DATABASE_URL",
		prepare: func(t *testing.T, r *scriptRun, dir string) {
			delete(r.env, EnvDatabaseURL)
		},
		want: []string{"DATABASE_URL is not set"},
	}, {
		name: "volume not mounted",
		prepare: func(t *testing.T, r *scriptRun, dir string) {
			r.env[EnvBackupDir] = filepath.Join(dir, "not-mounted")
		},
		want: []string{"is not a directory: is the backup volume mounted?"},
	}, {
		name: "file name off the convention",
		prepare: func(t *testing.T, r *scriptRun, dir string) {
			r.env[EnvBackupFile] = testRelease + "-latest.dump"
		},
		want: []string{"BACKUP_FILE must be named <release>-<10 hex digit revision>-<UTC timestamp"},
	}, {
		name: "KEEP_LAST of 0",
		prepare: func(t *testing.T, r *scriptRun, dir string) {
			r.env[EnvKeepLast] = "0"
		},
		want: []string{"KEEP_LAST must be at least 1"},
	}}

	for _, sh := range shells(t) {
		t.Run(sh.name, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					dir := t.TempDir()
					env := backupEnv(db, dir, FileName(testRelease, testRevision, time.Now()))
					termLog := terminationLog(t, env)
					r := backupRun(sh, db, env)
					tc.prepare(t, &r, dir)

					res := execute(t, r)
					if res.exitCode == 0 {
						t.Fatalf("backup exited 0, want a failure; output:\n%s", res.output)
					}
					for _, w := range tc.want {
						if !strings.Contains(res.output, w) {
							t.Errorf("the output lacks %q; output:\n%s", w, res.output)
						}
					}
					// Nothing that looks like a backup, and no leftovers, stays behind.
					if names := listDir(t, dir); len(names) != 0 {
						t.Errorf("the volume holds %q after a failed backup, want nothing", names)
					}
					if got := readFile(t, termLog); !strings.HasPrefix(got, "backup: error: ") {
						t.Errorf("termination message = %q, want the error", got)
					}
				})
			}
		})
	}
}
