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
	"slices"
	"strings"
	"testing"
	"time"
)

// notOurs are files on a shared backup volume that the softfactory release must never
// prune: another release whose name starts with ours, and names close to, but off, the
// strict <release>-<10 hex>-<timestamp>.dump shape.
var notOurs = []string{
	"softfactory-minimal-1111111111-20200101T000000Z.dump",
	"softfactory-minimal-0123456789-20200101T000000Z.dump",
	"softfactory-0000000000-20200101T000000Z.dump.partial",
	"softfactory-0000000000-20200101T000000Z.dump.bak",
	"softfactory-ABCDEF0123-20200101T000000Z.dump",
	"softfactory-00000000000-20200101T000000Z.dump",
	"softfactory-000000000-20200101T000000Z.dump",
	"softfactory-0000000000-20200101T000000.dump",
	"softfactory-0000000000-2020010T1000000Z.dump",
	"Softfactory-0000000000-20200101T000000Z.dump",
	"xsoftfactory-0000000000-20200101T000000Z.dump",
	"softfactory.dump",
	"manual-before-upgrade.sql",
	"notes.txt",
}

func writeFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	for _, name := range names {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("not a real dump: "+name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBackupPrunesOnlyThisReleasesOldestDumps(t *testing.T) {
	db := newTestDB(t)
	ours := []string{
		"softfactory-1111111111-20260101T000000Z.dump", // oldest: pruned
		"softfactory-ffffffffff-20260201T000000Z.dump", // pruned
		"softfactory-2222222222-20260301T000000Z.dump", // kept, with the two below
		"softfactory-0000000000-20260401T000000Z.dump", // newest before this run
	}
	// Shaped like ours but not regular files: never touched.
	aDirectory := "softfactory-4444444444-20190101T000000Z.dump"
	aSymlink := "softfactory-5555555555-20190101T000000Z.dump"

	for _, sh := range shells(t) {
		t.Run(sh.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, ours...)
			writeFiles(t, dir, notOurs...)
			if err := os.Mkdir(filepath.Join(dir, aDirectory), 0o755); err != nil {
				t.Fatal(err)
			}
			writeFiles(t, filepath.Join(dir, aDirectory), "inside")
			if err := os.Symlink("notes.txt", filepath.Join(dir, aSymlink)); err != nil {
				t.Fatal(err)
			}
			file := FileName(testRelease, testRevision, time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC))
			env := backupEnv(db, dir, file)
			env[EnvKeepLast] = "3"

			r := execute(t, backupRun(sh, db, env))
			if r.exitCode != 0 {
				t.Fatalf("backup exited %d; output:\n%s", r.exitCode, r.output)
			}
			want := append([]string{file, ours[2], ours[3], aDirectory, aSymlink}, notOurs...)
			slices.Sort(want)
			if got := listDir(t, dir); !slices.Equal(got, want) {
				t.Fatalf("after keepLast 3 the volume holds\n  %s\nwant\n  %s\noutput:\n%s",
					strings.Join(got, "\n  "), strings.Join(want, "\n  "), r.output)
			}
			for _, pruned := range ours[:2] {
				if !strings.Contains(r.output, "pruned "+pruned) {
					t.Errorf("the output does not say %s was pruned:\n%s", pruned, r.output)
				}
			}
		})
	}
}

// A node clock that runs behind gives the new dump the oldest timestamp on the volume;
// it is still the one the migration relies on, so it stays.
func TestBackupNeverPrunesTheDumpItJustMade(t *testing.T) {
	db := newTestDB(t)
	ours := []string{
		"softfactory-1111111111-20260101T000000Z.dump",
		"softfactory-2222222222-20260201T000000Z.dump",
	}
	for _, sh := range shells(t) {
		t.Run(sh.name, func(t *testing.T) {
			for _, keep := range []struct {
				keepLast string
				want     []string
			}{
				{"1", nil},
				{"2", ours[1:]},
			} {
				dir := t.TempDir()
				writeFiles(t, dir, ours...)
				file := FileName(testRelease, testRevision, time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC))
				env := backupEnv(db, dir, file)
				env[EnvKeepLast] = keep.keepLast

				r := execute(t, backupRun(sh, db, env))
				if r.exitCode != 0 {
					t.Fatalf("backup exited %d; output:\n%s", r.exitCode, r.output)
				}
				want := append([]string{file}, keep.want...)
				slices.Sort(want)
				if got := listDir(t, dir); !slices.Equal(got, want) {
					t.Fatalf("keepLast %s: the volume holds %q, want %q; output:\n%s", keep.keepLast, got, want, r.output)
				}
			}
		})
	}
}
