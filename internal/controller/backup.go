package controller

import (
	"context"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
	"github.com/softfactory/release-operator/internal/backup"
)

// reconcileBackup takes the pre-migration dump. It is the gate that keeps the operator's
// first promise: no migration runs without a verified backup of this revision, taken
// within spec.backup.maxAge of the migration's start. The revision's record, not the
// Job, says whether the backup was taken, so a deleted Job never makes it run twice.
func (r *SoftFactoryReleaseReconciler) reconcileBackup(ctx context.Context, s *releaseScope) (stepResult, error) {
	rel := s.release
	if rel.Spec.Backup == nil || rel.Spec.Database == nil {
		s.backup = jobFact{phase: jobNotRequired}
		return next(), nil
	}
	rec := rel.Status.RevisionRecordOf(s.revision)
	if rec == nil || rec.Backup == nil {
		if started, err := r.startBackup(ctx, s, 1); !started {
			return wait(), err
		}
		rec = rel.Status.RevisionRecordOf(s.revision)
	}
	if stale, age := backupTooOld(s, rec); stale {
		// The dump would not be the database the migration runs on any more (paused
		// after the backup, an operator down for a while): take it again first.
		r.event(s, corev1.EventTypeNormal, deployv1alpha1.ReasonBackupTooOld, "Backup",
			"The backup %s of revision %s is %s old, more than spec.backup.maxAge (%s): taking a new one before the migration",
			rec.Backup.File, s.revision, age.Round(1e9), rel.Spec.Backup.BackupMaxAge())
		if _, err := r.startBackup(ctx, s, rec.Backup.Attempt+1); err != nil {
			return wait(), err
		}
		rec = rel.Status.RevisionRecordOf(s.revision)
	}
	s.backup = jobFactOfRecord(rec.Backup)
	// The Job, while it exists, tells why its pod cannot start or what it said last.
	job := s.jobs[rec.Backup.JobName]
	issue, recheck := s.runningJobIssue(job)
	s.backup.issue = issue
	switch s.backup.phase {
	case jobSucceeded:
		rel.Status.LastBackup = &deployv1alpha1.BackupRecord{
			JobName:     rec.Backup.JobName,
			File:        rec.Backup.File,
			Revision:    s.revision,
			CompletedAt: rec.Backup.FinishedAt,
		}
		return next(), nil
	case jobFailed:
		s.backup.message = s.jobLastWords(job, s.backup.message)
		s.failure = s.failed(deployv1alpha1.ReasonBackupFailed,
			fmt.Sprintf("Backup Job %s failed (%s).", rec.Backup.JobName, s.backup.message), "No migration was run",
			fmt.Sprintf("Check `kubectl logs job/%s` (database reachable? volume full?), fix it, then apply a new spec to retry.", rec.Backup.JobName))
		return wait(), nil
	case jobRunning:
		return r.watchRunningJob(s, job, issue, recheck, backupNeverStarted)
	default:
		return wait(), nil
	}
}

// startBackup creates the attempt-th backup Job of the revision and records it as
// started. It reports false when no Job exists for it (the release has stopped).
func (r *SoftFactoryReleaseReconciler) startBackup(ctx context.Context, s *releaseScope, attempt int32) (bool, error) {
	rel := s.release
	name := rel.BackupAttemptJobName(s.revision, attempt)
	job, err := r.ensureJob(ctx, s, name, func() *batchv1.Job {
		j := buildBackupJob(rel, s.revision, backup.FileName(rel.Name, s.revision, s.now))
		j.Name = name
		return j
	})
	if job == nil || err != nil {
		return false, err
	}
	step := startedRecord(job, s.now)
	step.Attempt = attempt
	s.currentRecord().Backup = step
	return true, nil
}

// backupTooOld: the revision's backup completed longer than maxAge ago and its
// migration has not started yet. Once the migration has started, the backup it ran on
// is the one to keep (and to restore from).
func backupTooOld(s *releaseScope, rec *deployv1alpha1.RevisionRecord) (bool, time.Duration) {
	rel := s.release
	if rel.Spec.Migration == nil || s.failure != nil || rec.Migration != nil || s.jobs[rel.MigrationAttemptJobName(s.revision, s.attempt())] != nil {
		return false, 0
	}
	if rec.Backup.State != deployv1alpha1.StepSucceeded || rec.Backup.FinishedAt == nil {
		return false, 0
	}
	age := s.now.Sub(rec.Backup.FinishedAt.Time)
	return age > rel.Spec.Backup.BackupMaxAge(), age
}
