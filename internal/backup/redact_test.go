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
	"strings"
	"testing"
	"time"
)

// libpq itself echoes part of a malformed URL ("invalid percent-encoded token: ...")
// and that part can be the password. The scripts now take the password out of the URL
// before libpq sees it (it goes to a passfile), so a bad escape in the password never
// reaches libpq's parser: the connection is attempted (and refused, nothing listens)
// instead of failing on the URL, and the password shows nowhere. The output filter
// stays as a second line. (Every other test also checks its own runs for leaks.)
func TestOutputNeverShowsThePasswordEvenWhenLibpqEchoesIt(t *testing.T) {
	requirePostgres(t)
	addr := closedPort(t)
	const secret = "Secr3t-Hunter2"
	cases := []struct {
		name, url string
		// attempted: the URL without its password is valid, so libpq tries to connect.
		attempted bool
	}{
		{"user info with a bad escape", "postgresql://app:" + secret + "%zz@" + addr + "/app", true},
		{"password parameter with a bad escape", "postgresql://app@" + addr + "/app?password=" + secret + "%zz", true},
		{"SQLAlchemy URL with a bad escape", "postgresql+psycopg2://app:" + secret + "%zz@" + addr + "/app", true},
		{"key=value connection string", "host=127.0.0.1 port=" + strings.Split(addr, ":")[1] + " user=app password=" + secret + " dbname=app", false},
	}
	for _, sh := range shells(t) {
		t.Run(sh.name, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					for _, command := range [][]string{BackupCommand(), RestoreCommand()} {
						dir := t.TempDir()
						file := FileName(testRelease, testRevision, time.Now())
						writeFiles(t, dir, file) // so the restore gets as far as reading it
						env := map[string]string{
							EnvDatabaseURL: tc.url, EnvBackupDir: dir, EnvBackupFile: file,
							EnvReleaseName: testRelease, EnvKeepLast: "1",
						}
						r := execute(t, scriptRun{shell: sh, command: command, env: env,
							secrets: []string{secret, tc.url}})
						if r.exitCode == 0 {
							t.Fatalf("exited 0 with a bad DATABASE_URL; output:\n%s", r.output)
						}
						if tc.attempted && command[2] == BackupCommand()[2] && !strings.Contains(r.output, "Connection refused") {
							t.Errorf("libpq did not get as far as connecting: did the password's bad escape reach its URL parser? output:\n%s", r.output)
						}
					}
				})
			}
		})
	}
}
