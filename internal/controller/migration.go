package controller

import (
	"context"
	"fmt"

	batchv1 "k8s.io/api/batch/v1"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// reconcileMigration runs the schema migration once the backup of this revision has
// completed. A failed migration stops the release with blue untouched and, only when the
// user opted in, starts a restore of the pre-release dump.
func (r *SoftFactoryReleaseReconciler) reconcileMigration(ctx context.Context, s *releaseScope) (stepResult, error) {
	rel := s.release
	if rel.Spec.Migration == nil {
		s.migration = jobFact{phase: jobNotRequired}
		return next(), nil
	}
	// The backup gate ran before this step, but the invariant is worth stating where it
	// matters: there is no path to a migration Job without a completed backup Job.
	if s.backup.phase != jobSucceeded {
		s.migration = jobFact{phase: jobPending}
		return wait(), nil
	}
	job, err := r.ensureJob(ctx, s, rel.MigrationJobName(s.revision), func() *batchv1.Job {
		return buildMigrationJob(rel, s.revision)
	})
	if err != nil {
		return wait(), err
	}
	s.migration = jobFactOf(job)
	issue, recheck := s.runningJobIssue(job)
	s.migration.issue = issue
	switch s.migration.phase {
	case jobSucceeded:
		rel.Status.LastMigration = &deployv1alpha1.MigrationRecord{
			JobName: job.Name, Revision: s.revision, CompletedAt: job.Status.CompletionTime,
		}
		return next(), nil
	case jobFailed:
		if s.failure != nil && s.failure.reason == deployv1alpha1.ReasonMigrationNeverStarted {
			// Stopped because its pod could not start: nothing ran, nothing to restore.
			return wait(), nil
		}
		return r.migrationFailed(ctx, s, job)
	case jobRunning:
		return r.watchRunningJob(s, job, issue, recheck, migrationNeverStarted)
	default:
		return wait(), nil
	}
}

// migrationFailed records the failure and, when spec.rollback.restoreDatabase is set,
// runs the restore Job from this revision's pre-release dump.
func (r *SoftFactoryReleaseReconciler) migrationFailed(ctx context.Context, s *releaseScope, job *batchv1.Job) (stepResult, error) {
	rel := s.release
	dump := s.jobs[rel.BackupJobName(s.revision)].Annotations[backupFileAnnotation]
	msg := fmt.Sprintf("Migration Job %s failed (%s). Green was not deployed and %s keeps serving, untouched. "+
		"Check `kubectl logs job/%s`. The pre-release dump is %s on the backup volume.",
		job.Name, s.migration.message, servingDescription(s), job.Name, dump)
	s.restore = jobFact{phase: jobNotRequired}
	if rel.Spec.Rollback.RestoreDatabase {
		restore, err := r.ensureJob(ctx, s, rel.RestoreJobName(s.revision), func() *batchv1.Job {
			return buildRestoreJob(rel, s.revision, dump)
		})
		if err != nil {
			return wait(), err
		}
		s.restore = jobFactOf(restore)
		switch s.restore.phase {
		case jobSucceeded:
			msg += fmt.Sprintf(" Restore Job %s loaded it back: the database is as it was before the release.", restore.Name)
		case jobFailed:
			msg += fmt.Sprintf(" Restore Job %s FAILED (%s): restore by hand (see docs/backups.md).", restore.Name, s.restore.message)
		default:
			msg += fmt.Sprintf(" Restore Job %s is loading it back.", restore.Name)
		}
	} else {
		msg += " To restore it, see docs/backups.md, or set spec.rollback.restoreDatabase for next time."
	}
	s.failure = &failureFact{outcome: deployv1alpha1.OutcomeFailed, reason: deployv1alpha1.ReasonMigrationFailed, message: msg}
	return wait(), nil
}
