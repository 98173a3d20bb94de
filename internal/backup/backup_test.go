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
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	testRelease  = "softfactory"
	testRevision = "0a1b2c3d4e"
)

// dumpName is the strict shape docs/backups.md promises, written independently of the
// script's own pattern so that the two are checked against each other.
func dumpName(release string) *regexp.Regexp {
	return regexp.MustCompile(`^` + regexp.QuoteMeta(release) + `-[0-9a-f]{10}-[0-9]{8}T[0-9]{6}Z\.dump$`)
}

// scheduledDumpName is the shape of a scheduled backup's dump.
func scheduledDumpName(release string) *regexp.Regexp {
	return regexp.MustCompile(`^` + regexp.QuoteMeta(release) + `-[0-9a-f]{10}-[0-9]{8}T[0-9]{6}Z-scheduled\.dump$`)
}

func TestFileNameFollowsTheConvention(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.FixedZone("CET", 3600))
	got := FileName(testRelease, testRevision, at)
	if want := "softfactory-0a1b2c3d4e-20260304T040607Z.dump"; got != want {
		t.Fatalf("FileName = %q, want %q (timestamps are UTC)", got, want)
	}
	if !dumpName(testRelease).MatchString(got) {
		t.Fatalf("FileName %q does not match the pruning pattern", got)
	}
}

// backupEnv is the environment the backup Job sets, with dir in place of the volume.
func backupEnv(db *testDB, dir, file string) map[string]string {
	return map[string]string{
		EnvDatabaseURL:  db.URL,
		EnvBackupDir:    dir,
		EnvBackupFile:   file,
		EnvReleaseName:  testRelease,
		EnvKeepLast:     "10",
		EnvVerify:       "true",
		EnvMinSizeBytes: "1",
	}
}

func backupRun(sh shell, db *testDB, env map[string]string) scriptRun {
	return scriptRun{shell: sh, command: BackupCommand(), env: env, secrets: db.secrets()}
}

// terminationLog makes the file Kubernetes mounts at /dev/termination-log and points
// the script at it.
func terminationLog(t *testing.T, env map[string]string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "termination-log")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	env["TERMINATION_MESSAGE_PATH"] = path
	return path
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestBackupWritesAVerifiedDumpNamedByConvention(t *testing.T) {
	db := newTestDB(t)
	seed(t, db)
	for _, sh := range shells(t) {
		t.Run(sh.name, func(t *testing.T) {
			dir := t.TempDir()
			file := FileName(testRelease, testRevision, time.Now())
			env := backupEnv(db, dir, file)
			termLog := terminationLog(t, env)

			r := execute(t, backupRun(sh, db, env))
			if r.exitCode != 0 {
				t.Fatalf("backup exited %d; output:\n%s", r.exitCode, r.output)
			}
			if got := listDir(t, dir); !slices.Equal(got, []string{file}) {
				t.Fatalf("the volume holds %q, want only %q; output:\n%s", got, file, r.output)
			}
			// Read the dump with the client tools, not the script: it must list every
			// table's data and the large objects.
			toc, err := exec.Command("pg_restore", "--list", filepath.Join(dir, file)).CombinedOutput()
			if err != nil {
				t.Fatalf("pg_restore --list: %v\n%s", err, toc)
			}
			for _, table := range seededTables {
				if !strings.Contains(string(toc), "TABLE DATA public "+table+" ") {
					t.Errorf("the dump's table of contents has no data for %s:\n%s", table, toc)
				}
			}
			if !strings.Contains(string(toc), "BLOBS") && !strings.Contains(string(toc), "BLOB ") {
				t.Errorf("the dump has no large objects:\n%s", toc)
			}
			if !strings.Contains(r.output, "verified") {
				t.Errorf("the output does not say the dump was verified:\n%s", r.output)
			}
			if got := readFile(t, termLog); !strings.Contains(got, "verified "+file) {
				t.Errorf("termination message = %q, want it to name the verified dump", got)
			}
		})
	}
}

func TestBackupNamesTheDumpItselfForAScheduledRun(t *testing.T) {
	db := newTestDB(t)
	for _, sh := range shells(t) {
		t.Run(sh.name, func(t *testing.T) {
			dir := t.TempDir()
			env := backupEnv(db, dir, "")
			env[EnvRevision] = testRevision
			before := time.Now().UTC().Truncate(time.Second)
			r := execute(t, backupRun(sh, db, env))
			after := time.Now().UTC()
			if r.exitCode != 0 {
				t.Fatalf("backup exited %d; output:\n%s", r.exitCode, r.output)
			}
			names := listDir(t, dir)
			if len(names) != 1 || !scheduledDumpName(testRelease).MatchString(names[0]) ||
				!strings.HasPrefix(names[0], testRelease+"-"+testRevision+"-") {
				t.Fatalf("the volume holds %q, want one %s-%s-<timestamp>%s", names, testRelease, testRevision, ScheduledSuffix)
			}
			stamp, err := time.Parse(timestampLayout, strings.TrimSuffix(strings.TrimPrefix(names[0], testRelease+"-"+testRevision+"-"), ScheduledSuffix))
			if err != nil || stamp.Before(before) || stamp.After(after) {
				t.Fatalf("the dump's timestamp %v (%v) is not the UTC time of the run, between %v and %v", stamp, err, before, after)
			}
		})
	}
}

func TestBackupAcceptsAnSQLAlchemyURL(t *testing.T) {
	db := newTestDB(t)
	seed(t, db)
	for _, sh := range shells(t) {
		t.Run(sh.name, func(t *testing.T) {
			dir := t.TempDir()
			file := FileName(testRelease, testRevision, time.Now())
			env := backupEnv(db, dir, file)
			env[EnvDatabaseURL] = strings.Replace(db.URL, "postgresql://", "postgresql+psycopg2://", 1)
			r := execute(t, backupRun(sh, db, env))
			if r.exitCode != 0 {
				t.Fatalf("backup of %s exited %d; output:\n%s", "postgresql+psycopg2://...", r.exitCode, r.output)
			}
			if got := listDir(t, dir); !slices.Equal(got, []string{file}) {
				t.Fatalf("the volume holds %q, want only %q", got, file)
			}
		})
	}
}
