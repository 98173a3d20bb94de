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

// Package backup holds the shell scripts the operator's backup and restore Jobs run,
// and the names they share with the Job builders.
//
// The scripts are the place where "never migrate without a verified backup, never lose
// data" is kept or broken, so they live in exactly one place (the embedded .sh files)
// and the tests run the very command these functions return against a real PostgreSQL.
package backup

import (
	_ "embed"
	"time"
)

// Environment variables the scripts read. The Job builder sets them.
const (
	// EnvDatabaseURL comes from a Secret via secretKeyRef, in libpq form
	// (postgresql://...) or SQLAlchemy form (postgresql+psycopg2://...): the scripts strip
	// the +driver suffix.
	EnvDatabaseURL = "DATABASE_URL"
	// EnvBackupDir is the mount path of the backup volume.
	EnvBackupDir = "BACKUP_DIR"
	// EnvBackupFile is the dump's file name, chosen by the operator (see FileName).
	EnvBackupFile = "BACKUP_FILE"
	// EnvReleaseName is used to prune only this release's dumps.
	EnvReleaseName = "RELEASE_NAME"
	// EnvKeepLast is how many of this release's dumps to keep, the new one included.
	EnvKeepLast = "KEEP_LAST"
	// EnvVerify is "true" or "false": whether the dump is checked before the Job succeeds.
	EnvVerify = "VERIFY"
	// EnvMinSizeBytes is the smallest acceptable dump.
	EnvMinSizeBytes = "MIN_SIZE_BYTES"
	// EnvRevision is only read when EnvBackupFile is empty, as in a scheduled (CronJob)
	// backup whose pod template cannot carry a per-run name: the script then names the
	// dump FileName(RELEASE_NAME, REVISION, now).
	EnvRevision = "REVISION"
	// EnvKeepFiles names, space-separated, dumps that pruning must never delete: the ones
	// the release's status refers to (its history, its last backup).
	EnvKeepFiles = "KEEP_FILES"
	// EnvPassDir is a directory only the Job's user can read, in memory, where the scripts
	// put the database password as a libpq passfile: never on a command line.
	EnvPassDir = "PGPASS_DIR"
)

// ScheduledSuffix ends the name of a dump a scheduled backup takes
// (<release>-<revision>-<UTC timestamp>-scheduled.dump). Pruning counts scheduled and
// pre-migration dumps apart, so a schedule never pushes a pre-migration dump out.
const ScheduledSuffix = "-scheduled.dump"

// PreContractSuffix ends the name of the dump taken before a revision's contract step
// (<release>-<revision>-<UTC timestamp>-precontract.dump): the schema as the serving
// revision left it, the one to restore by hand to undo a contract. Pruning counts
// pre-contract dumps apart from the others, and the operator names every one of a
// revision still in history in KEEP_FILES.
const PreContractSuffix = "-precontract.dump"

// PassDirMountPath is where the Jobs mount the in-memory volume of EnvPassDir.
const PassDirMountPath = "/run/pgpass"

// MountPath is where the Jobs mount the backup volume.
const MountPath = "/backups"

// timestampLayout is the UTC timestamp in dump names. It sorts lexically in time order,
// which pruning relies on, and has no ':' so the names are safe on every file system.
const timestampLayout = "20060102T150405Z"

// FileName is <release>-<revision>-<UTC timestamp>.dump, timestamp as 20061102T150405Z.
func FileName(release, revision string, at time.Time) string {
	return release + "-" + revision + "-" + at.UTC().Format(timestampLayout) + ".dump"
}

// PreContractFileName is <release>-<revision>-<UTC timestamp>-precontract.dump.
func PreContractFileName(release, revision string, at time.Time) string {
	return release + "-" + revision + "-" + at.UTC().Format(timestampLayout) + PreContractSuffix
}

var (
	//go:embed lib.sh
	libScript string
	//go:embed backup.sh
	backupScript string
	//go:embed restore.sh
	restoreScript string
)

// BackupCommand is the container command of the backup Job: ["/bin/sh", "-c", script].
// It reads every Env* variable above.
func BackupCommand() []string {
	return []string{"/bin/sh", "-c", libScript + backupScript}
}

// RestoreCommand is the container command of the restore Job. It reads DATABASE_URL,
// BACKUP_DIR and BACKUP_FILE.
func RestoreCommand() []string {
	return []string{"/bin/sh", "-c", libScript + restoreScript}
}
