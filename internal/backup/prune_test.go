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

// writeDumpsAt writes fake dumps with the given modification times: pruning orders dumps
// by the time they were written, not by the timestamp in their names.
func writeDumpsAt(t *testing.T, dir string, written map[string]time.Time) {
	t.Helper()
	for name, at := range written {
		writeFiles(t, dir, name)
		if err := os.Chtimes(filepath.Join(dir, name), at, at); err != nil {
			t.Fatal(err)
		}
	}
}

// status.lastBackup and status.history name dumps a rollback or a human needs; with
// keepLast 1 they used to be pruned by the next backup.
func TestBackupNeverPrunesADumpTheStatusRefersTo(t *testing.T) {
	db := newTestDB(t)
	serving := "softfactory-1111111111-20260101T000000Z.dump"  // in status.history: kept
	previous := "softfactory-2222222222-20260201T000000Z.dump" // in status.history: kept
	other := "softfactory-3333333333-20260301T000000Z.dump"    // in no record: pruned
	day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for _, sh := range shells(t) {
		t.Run(sh.name, func(t *testing.T) {
			dir := t.TempDir()
			writeDumpsAt(t, dir, map[string]time.Time{serving: day, previous: day.Add(time.Hour), other: day.Add(2 * time.Hour)})
			file := FileName(testRelease, testRevision, time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC))
			env := backupEnv(db, dir, file)
			env[EnvKeepLast] = "1"
			env[EnvKeepFiles] = serving + " " + previous

			r := execute(t, backupRun(sh, db, env))
			if r.exitCode != 0 {
				t.Fatalf("backup exited %d; output:\n%s", r.exitCode, r.output)
			}
			want := []string{file, serving, previous}
			slices.Sort(want)
			if got := listDir(t, dir); !slices.Equal(got, want) {
				t.Fatalf("the volume holds %q, want %q; output:\n%s", got, want, r.output)
			}
		})
	}
}

// Scheduled dumps and pre-migration dumps are counted apart: an hourly schedule with
// keepLast 2 used to prune the pre-migration dump of the serving revision within hours.
func TestScheduledAndPreMigrationDumpsAreCountedApart(t *testing.T) {
	db := newTestDB(t)
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	preMigration := []string{
		"softfactory-1111111111-20260301T000000Z.dump",
		"softfactory-2222222222-20260301T010000Z.dump",
	}
	scheduled := []string{
		"softfactory-2222222222-20260301T020000Z-scheduled.dump", // oldest scheduled: pruned
		"softfactory-2222222222-20260301T030000Z-scheduled.dump",
	}
	for _, sh := range shells(t) {
		t.Run(sh.name, func(t *testing.T) {
			dir := t.TempDir()
			written := map[string]time.Time{}
			for i, name := range append(append([]string{}, preMigration...), scheduled...) {
				written[name] = base.Add(time.Duration(i) * time.Hour)
			}
			writeDumpsAt(t, dir, written)

			t.Log("a scheduled backup with keepLast 2 prunes only the oldest scheduled dump")
			env := backupEnv(db, dir, "")
			env[EnvRevision] = "2222222222"
			env[EnvKeepLast] = "2"
			r := execute(t, backupRun(sh, db, env))
			if r.exitCode != 0 {
				t.Fatalf("scheduled backup exited %d; output:\n%s", r.exitCode, r.output)
			}
			got := listDir(t, dir)
			if slices.Contains(got, scheduled[0]) || !slices.Contains(got, scheduled[1]) {
				t.Fatalf("after a scheduled backup the volume holds %q; output:\n%s", got, r.output)
			}
			for _, name := range preMigration {
				if !slices.Contains(got, name) {
					t.Fatalf("a scheduled backup pruned the pre-migration dump %s; the volume holds %q; output:\n%s", name, got, r.output)
				}
			}
			var newScheduled string
			for _, name := range got {
				if strings.HasSuffix(name, ScheduledSuffix) && name != scheduled[1] {
					newScheduled = name
				}
			}
			if newScheduled == "" {
				t.Fatalf("the scheduled dump is not named ...%s: %q", ScheduledSuffix, got)
			}

			t.Log("a pre-migration backup with keepLast 2 prunes only the oldest pre-migration dump")
			file := FileName(testRelease, "3333333333", time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC))
			env = backupEnv(db, dir, file)
			env[EnvKeepLast] = "2"
			r = execute(t, backupRun(sh, db, env))
			if r.exitCode != 0 {
				t.Fatalf("backup exited %d; output:\n%s", r.exitCode, r.output)
			}
			want := []string{preMigration[1], file, scheduled[1], newScheduled}
			slices.Sort(want)
			if got := listDir(t, dir); !slices.Equal(got, want) {
				t.Fatalf("the volume holds %q, want %q; output:\n%s", got, want, r.output)
			}
		})
	}
}

// The operator names a pre-migration dump from its own clock; when that clock lags, the
// dump written last carries the oldest name. Pruning goes by the time written, so the
// freshest dump of another revision is not the first to go.
func TestPruningOrdersDumpsByTheTimeWritten(t *testing.T) {
	db := newTestDB(t)
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	writtenFirst := "softfactory-1111111111-20260310T000000Z.dump" // named late, written first: pruned
	writtenLast := "softfactory-2222222222-20260301T000000Z.dump"  // named early, written last: kept
	for _, sh := range shells(t) {
		t.Run(sh.name, func(t *testing.T) {
			dir := t.TempDir()
			writeDumpsAt(t, dir, map[string]time.Time{writtenFirst: base, writtenLast: base.Add(24 * time.Hour)})
			file := FileName(testRelease, testRevision, time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC))
			env := backupEnv(db, dir, file)
			env[EnvKeepLast] = "2"
			r := execute(t, backupRun(sh, db, env))
			if r.exitCode != 0 {
				t.Fatalf("backup exited %d; output:\n%s", r.exitCode, r.output)
			}
			want := []string{file, writtenLast}
			slices.Sort(want)
			if got := listDir(t, dir); !slices.Equal(got, want) {
				t.Fatalf("the volume holds %q, want %q; output:\n%s", got, want, r.output)
			}
		})
	}
}

// The dump before a contract step is the one to restore by hand to undo the contract:
// a pre-migration backup never pushes it out (kinds are counted apart), and a
// pre-contract backup with keepLast 1 keeps the one the status names in KEEP_FILES.
func TestPreContractDumpsAreCountedApartAndKeptWhenNamed(t *testing.T) {
	db := newTestDB(t)
	base := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	preMigration := "softfactory-1111111111-20260401T000000Z.dump"
	preContract := []string{
		"softfactory-1111111111-20260401T010000Z-precontract.dump", // named in KEEP_FILES: kept
		"softfactory-2222222222-20260401T020000Z-precontract.dump", // oldest other pre-contract dump: pruned
	}
	for _, sh := range shells(t) {
		t.Run(sh.name, func(t *testing.T) {
			dir := t.TempDir()
			writeDumpsAt(t, dir, map[string]time.Time{
				preMigration: base, preContract[0]: base.Add(time.Hour), preContract[1]: base.Add(2 * time.Hour),
			})

			t.Log("a pre-migration backup with keepLast 1 leaves every pre-contract dump alone")
			file := FileName(testRelease, "3333333333", base.Add(3*time.Hour))
			env := backupEnv(db, dir, file)
			env[EnvKeepLast] = "1"
			r := execute(t, backupRun(sh, db, env))
			if r.exitCode != 0 {
				t.Fatalf("backup exited %d; output:\n%s", r.exitCode, r.output)
			}
			want := []string{file, preContract[0], preContract[1]}
			slices.Sort(want)
			if got := listDir(t, dir); !slices.Equal(got, want) {
				t.Fatalf("the volume holds %q, want %q; output:\n%s", got, want, r.output)
			}

			t.Log("a pre-contract backup with keepLast 1 prunes the other pre-contract dumps, except one KEEP_FILES names")
			contractFile := PreContractFileName(testRelease, "3333333333", base.Add(4*time.Hour))
			if !strings.HasSuffix(contractFile, PreContractSuffix) {
				t.Fatalf("PreContractFileName gave %s", contractFile)
			}
			env = backupEnv(db, dir, contractFile)
			env[EnvKeepLast] = "1"
			env[EnvKeepFiles] = preContract[0]
			r = execute(t, backupRun(sh, db, env))
			if r.exitCode != 0 {
				t.Fatalf("pre-contract backup exited %d; output:\n%s", r.exitCode, r.output)
			}
			want = []string{file, preContract[0], contractFile}
			slices.Sort(want)
			if got := listDir(t, dir); !slices.Equal(got, want) {
				t.Fatalf("the volume holds %q, want %q; output:\n%s", got, want, r.output)
			}
		})
	}
}
