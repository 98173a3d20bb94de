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
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// releaseSQL is what a release might do to the data before it is rolled back: delete,
// change and add rows, add a column, advance a sequence, rewrite, delete and add large
// objects, and move Alembic's version. It runs as the app's role, like a migration.
const releaseSQL = `
DELETE FROM attachments WHERE order_id % 7 = 0;
DELETE FROM orders WHERE id % 7 = 0;
UPDATE orders SET status = 'shipped', total = total * 2 WHERE id % 5 = 1;
UPDATE customers SET email = upper(email) WHERE id % 3 = 0;
INSERT INTO customers (name, email) VALUES ('added by the release', 'new@example.com');
ALTER TABLE customers ADD COLUMN loyalty_points int NOT NULL DEFAULT 0;
UPDATE documents SET body = body || '\x00ff'::bytea WHERE id = 0;
DELETE FROM blobs WHERE id > 8;
SELECT lo_put(content, 0, '\xdeadbeef'::bytea) FROM attachments WHERE id = 1;
SELECT lo_unlink(content) FROM attachments WHERE id = 2;
SELECT lo_from_bytea(0, 'made by the release');
SELECT nextval('invoice_number_seq') FROM generate_series(1, 10);
UPDATE alembic_version SET version_num = 'ffffffffffff';
`

// backupForRestore takes a dump with the backup Job's own command.
func backupForRestore(t *testing.T, sh shell, db *testDB) (dir, file string) {
	t.Helper()
	dir = t.TempDir()
	file = FileName(testRelease, testRevision, time.Now())
	r := execute(t, backupRun(sh, db, backupEnv(db, dir, file)))
	if r.exitCode != 0 {
		t.Fatalf("backup exited %d; output:\n%s", r.exitCode, r.output)
	}
	return dir, file
}

// restoreEnv is the environment the restore Job sets.
func restoreEnv(db *testDB, dir, file string) map[string]string {
	return map[string]string{EnvDatabaseURL: db.URL, EnvBackupDir: dir, EnvBackupFile: file}
}

func restoreRun(sh shell, db *testDB, env map[string]string) scriptRun {
	return scriptRun{shell: sh, command: RestoreCommand(), env: env, secrets: db.secrets()}
}

func TestRestoreBringsBackThePreReleaseDataExactly(t *testing.T) {
	db := newTestDB(t)
	seed(t, db)
	before := snapshot(t, db)
	for _, sh := range shells(t) {
		t.Run(sh.name, func(t *testing.T) {
			dir, file := backupForRestore(t, sh, db)
			mustPSQL(t, db.URL, releaseSQL)
			if diffSnapshots(before, snapshot(t, db)) == "" {
				t.Fatal("the release changed nothing the snapshot sees; the test would prove nothing")
			}

			env := restoreEnv(db, dir, file)
			// The app's Secret holds the SQLAlchemy form; the restore must take it too.
			env[EnvDatabaseURL] = strings.Replace(db.URL, "postgresql://", "postgresql+psycopg2://", 1)
			termLog := terminationLog(t, env)
			r := execute(t, restoreRun(sh, db, env))
			if r.exitCode != 0 {
				t.Fatalf("restore exited %d; output:\n%s", r.exitCode, r.output)
			}
			if diff := diffSnapshots(before, snapshot(t, db)); diff != "" {
				t.Fatalf("after the restore the database differs from before the release:\n%s\noutput:\n%s", diff, r.output)
			}
			if got := readFile(t, termLog); !strings.Contains(got, "restored "+file) {
				t.Errorf("termination message = %q, want it to name the restored dump", got)
			}
			// Verified as the runbook verifies a restore, by counting rows: the seed's
			// tables with data, each as in the dump.
			want := regexp.MustCompile(`verified: ([0-9]+) tables, ([0-9]+) rows, as in the dump`)
			m := want.FindStringSubmatch(readFile(t, termLog))
			if m == nil || m[1] == "0" || m[2] == "0" {
				t.Errorf("termination message = %q, want it to say the restore was verified by row counts", readFile(t, termLog))
			}
		})
	}
}

// pg_restore --clean drops only what the dump holds, without CASCADE, so an object the
// release made that depends on one of them (here a foreign key) stops the restore.
// It must then change nothing at all, and say what to do.
func TestRestoreRollsBackWholeWhenNewObjectsDependOnRestoredOnes(t *testing.T) {
	db := newTestDB(t)
	seed(t, db)
	for _, sh := range shells(t) {
		t.Run(sh.name, func(t *testing.T) {
			dir, file := backupForRestore(t, sh, db)
			mustPSQL(t, db.URL, releaseSQL+`
				CREATE TABLE invoices (id int PRIMARY KEY, customer_id int REFERENCES customers (id));
				INSERT INTO invoices VALUES (1, 1);`)
			released := snapshot(t, db)

			r := execute(t, restoreRun(sh, db, restoreEnv(db, dir, file)))
			if r.exitCode == 0 {
				t.Fatalf("restore exited 0, want a failure; output:\n%s", r.output)
			}
			for _, w := range []string{"constraint invoices_customer_id_fkey on table public.invoices depends on", "rolled back, the database is unchanged", "Drop those objects"} {
				if !strings.Contains(r.output, w) {
					t.Errorf("the output lacks %q; output:\n%s", w, r.output)
				}
			}
			if diff := diffSnapshots(released, snapshot(t, db)); diff != "" {
				t.Fatalf("a failed restore changed the database:\n%s", diff)
			}
			// As docs/backups.md says: drop what the release added, restore again.
			mustPSQL(t, db.URL, "DROP TABLE invoices;")
			if r := execute(t, restoreRun(sh, db, restoreEnv(db, dir, file))); r.exitCode != 0 {
				t.Fatalf("restore after dropping the new table exited %d; output:\n%s", r.exitCode, r.output)
			}
		})
	}
}

func TestRestoreFailsClearlyAndTouchesNothing(t *testing.T) {
	db := newTestDB(t)
	seed(t, db)
	host, _, _ := strings.Cut(strings.SplitN(db.URL, "@", 2)[1], "/")
	wrongPassword := "Wrong-" + randomHex(t, 6)

	cases := []struct {
		name    string
		prepare func(t *testing.T, r *scriptRun, dir, file string)
		want    []string
	}{{
		name: "no such dump",
		prepare: func(t *testing.T, r *scriptRun, dir, file string) {
			r.env[EnvBackupFile] = FileName(testRelease, "ffffffffff", time.Now())
		},
		want: []string{"there is no dump", "The database was not touched"},
	}, {
		name: "a path instead of a file name",
		prepare: func(t *testing.T, r *scriptRun, dir, file string) {
			r.env[EnvBackupFile] = "../" + file
		},
		want: []string{"BACKUP_FILE must be a file name in BACKUP_DIR"},
	}, {
		name: "not a dump",
		prepare: func(t *testing.T, r *scriptRun, dir, file string) {
			if err := os.WriteFile(filepath.Join(dir, file), []byte("-- plain SQL, not pg_dump's custom format\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		},
		want: []string{"is unreadable (pg_restore --list failed)", "The database was not touched"},
	}, {
		// The table of contents reads fine; the data ends early. The single transaction
		// is what keeps the half that was loaded from staying.
		name: "truncated dump",
		prepare: func(t *testing.T, r *scriptRun, dir, file string) {
			path := filepath.Join(dir, file)
			info, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, info.Size()*60/100); err != nil {
				t.Fatal(err)
			}
		},
		want: []string{"could not read from input file", "rolled back, the database is unchanged"},
	}, {
		name: "wrong password",
		prepare: func(t *testing.T, r *scriptRun, dir, file string) {
			r.env[EnvDatabaseURL] = db.urlWith(host, wrongPassword)
			r.secrets = append(r.secrets, wrongPassword)
		},
		want: []string{"password authentication failed", "The database was not touched"},
	}, {
		name: "closed port",
		prepare: func(t *testing.T, r *scriptRun, dir, file string) {
			r.env[EnvDatabaseURL] = db.urlWith(closedPort(t), db.Password)
		},
		want: []string{"Connection refused", "The database was not touched"},
	}}

	for _, sh := range shells(t) {
		t.Run(sh.name, func(t *testing.T) {
			dir, file := backupForRestore(t, sh, db)
			mustPSQL(t, db.URL, releaseSQL)
			released := snapshot(t, db)
			t.Cleanup(func() {
				// The next shell starts from the seeded data again.
				mustPSQL(t, db.URL, "DROP OWNED BY CURRENT_USER;")
				seed(t, db)
			})
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					caseDir := t.TempDir()
					dump, err := os.ReadFile(filepath.Join(dir, file))
					if err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(filepath.Join(caseDir, file), dump, 0o644); err != nil {
						t.Fatal(err)
					}
					env := restoreEnv(db, caseDir, file)
					termLog := terminationLog(t, env)
					r := restoreRun(sh, db, env)
					tc.prepare(t, &r, caseDir, file)

					res := execute(t, r)
					if res.exitCode == 0 {
						t.Fatalf("restore exited 0, want a failure; output:\n%s", res.output)
					}
					for _, w := range tc.want {
						if !strings.Contains(res.output, w) {
							t.Errorf("the output lacks %q; output:\n%s", w, res.output)
						}
					}
					if diff := diffSnapshots(released, snapshot(t, db)); diff != "" {
						t.Fatalf("a failed restore changed the database:\n%s", diff)
					}
					if got := readFile(t, termLog); !strings.HasPrefix(got, "restore: error: ") {
						t.Errorf("termination message = %q, want the error", got)
					}
				})
			}
		})
	}
}
