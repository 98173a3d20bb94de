package backup

import (
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// argvRecorder puts psql, pg_dump and pg_restore doubles first on PATH: each appends
// its command line to a log, then runs the real tool. What the log holds is what
// /proc/<pid>/cmdline showed every user of the node.
func argvRecorder(t *testing.T) (binDir, log string) {
	t.Helper()
	binDir = t.TempDir()
	log = filepath.Join(t.TempDir(), "argv.log")
	for _, tool := range []string{"psql", "pg_dump", "pg_restore"} {
		real, err := exec.LookPath(tool)
		if err != nil {
			t.Fatalf("%s is not on PATH: %v\n%s", tool, err, installHint)
		}
		script := "#!/bin/sh\nprintf '%s\\n' \"$0 $*\" >>" + log + "\nexec " + real + " \"$@\"\n"
		if err := os.WriteFile(filepath.Join(binDir, tool), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return binDir, log
}

// passwordAsParameter is the database's URL with the password in a query parameter
// instead of the user info, another form libpq accepts.
func passwordAsParameter(t *testing.T, db *testDB) string {
	u, err := url.Parse(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(db.Role)
	u.RawQuery = "password=" + url.QueryEscape(db.Password)
	return u.String()
}

// The database password used to be on the command line of every psql, pg_dump and
// pg_restore the Jobs ran (--dbname=<URL with password>).
func TestThePasswordIsOnNoCommandLine(t *testing.T) {
	db := newTestDB(t)
	seed(t, db)
	for _, sh := range shells(t) {
		for _, form := range []struct {
			name string
			url  string
		}{
			{"URL with the password in the user info", db.URL},
			{"SQLAlchemy URL", strings.Replace(db.URL, "postgresql://", "postgresql+psycopg2://", 1)},
			{"URL with a password parameter", passwordAsParameter(t, db)},
		} {
			t.Run(sh.name+"/"+form.name, func(t *testing.T) {
				binDir, log := argvRecorder(t)
				dir := t.TempDir()
				file := FileName(testRelease, testRevision, time.Now())
				env := backupEnv(db, dir, file)
				env[EnvDatabaseURL] = form.url
				env[EnvPassDir] = t.TempDir()
				r := execute(t, scriptRun{shell: sh, command: BackupCommand(), env: env, secrets: db.secrets(), pathFirst: binDir})
				if r.exitCode != 0 {
					t.Fatalf("backup exited %d; output:\n%s", r.exitCode, r.output)
				}
				r = execute(t, scriptRun{shell: sh, command: RestoreCommand(), env: env, secrets: db.secrets(), pathFirst: binDir})
				if r.exitCode != 0 {
					t.Fatalf("restore exited %d; output:\n%s", r.exitCode, r.output)
				}
				argv, err := os.ReadFile(log)
				if err != nil {
					t.Fatal(err)
				}
				for _, tool := range []string{"psql", "pg_dump", "pg_restore"} {
					if !strings.Contains(string(argv), "/"+tool+" ") {
						t.Fatalf("%s never ran, so this test proves nothing:\n%s", tool, argv)
					}
				}
				for _, secret := range db.secrets() {
					if strings.Contains(string(argv), secret) {
						t.Fatalf("a command line shows the password (marked [LEAKED]):\n%s", strings.ReplaceAll(string(argv), secret, "[LEAKED]"))
					}
				}
				if left, _ := os.ReadDir(env[EnvPassDir]); len(left) != 0 {
					t.Fatalf("the passfile is left behind in %s: %v", env[EnvPassDir], left)
				}
			})
		}
	}
}
