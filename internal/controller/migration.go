package controller

import (
	"context"
	"fmt"

	batchv1 "k8s.io/api/batch/v1"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// reconcileMigration runs the schema migration once the backup of this revision has
// completed. A failed migration stops the release with the serving colour untouched and,
// only when a migration container ran and the user opted in, restores the dump.
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
	rec := s.currentRecord()
	if rec.Migration == nil {
		// After k retries the migration runs as attempt k+1; one that succeeded is never
		// cleared by a retry, so it never runs twice.
		name := rel.MigrationAttemptJobName(s.revision, s.attempt())
		job, err := r.ensureJob(ctx, s, name, func() *batchv1.Job {
			j := buildMigrationJob(rel, s.revision)
			j.Name = name
			return j
		})
		if job == nil || err != nil {
			return wait(), err
		}
		rec = s.currentRecord()
		rec.Migration = startedRecord(job, s.now)
	}
	s.migration = jobFactOfRecord(rec.Migration)
	// The Job, while it exists, tells why its pod cannot start.
	job := s.jobs[rec.Migration.JobName]
	issue, recheck := s.runningJobIssue(job)
	s.migration.issue = issue
	switch s.migration.phase {
	case jobSucceeded:
		rel.Status.LastMigration = &deployv1alpha1.MigrationRecord{
			JobName: rec.Migration.JobName, Revision: s.revision, CompletedAt: rec.Migration.FinishedAt,
		}
		return next(), nil
	case jobFailed:
		if s.failure != nil && s.failure.reason == deployv1alpha1.ReasonMigrationNeverStarted {
			// Stopped because its pod could not start: nothing ran, nothing to restore.
			return wait(), nil
		}
		return r.migrationFailed(ctx, s)
	case jobRunning:
		return r.watchRunningJob(s, job, issue, recheck, migrationNeverStarted)
	default:
		return wait(), nil
	}
}

// migrationFailed stops the release, saying which of three cases it is: the Job's
// container never ran (nothing was migrated: the database is left alone), the Job was
// deleted before it told (unknown: left alone), or a migration container ran and failed
// (the restore, if the user opted in, loads the dump back).
func (r *SoftFactoryReleaseReconciler) migrationFailed(ctx context.Context, s *releaseScope) (stepResult, error) {
	rec := s.currentRecord()
	m := rec.Migration
	dump := ""
	if rec.Backup != nil {
		dump = rec.Backup.File
	}
	switch {
	case m.State == deployv1alpha1.StepLost:
		s.failure = s.failed(deployv1alpha1.ReasonMigrationLost,
			fmt.Sprintf("Migration Job %s was deleted before it reported how it ended: whether it changed the database is unknown, so the operator", m.JobName),
			"restores nothing", fmt.Sprintf("Check the database (the pre-release dump is %s), then apply a new spec.", dump))
		return wait(), nil
	case !m.ContainerStarted:
		why := m.Message
		if m.PodReason != "" {
			why = m.PodReason + "; " + why
		}
		s.failure = s.failed(deployv1alpha1.ReasonMigrationNeverRan,
			fmt.Sprintf("Migration Job %s failed before any container of it was seen running (%s): nothing was migrated, so", m.JobName, why),
			"the database is left alone (no restore)",
			fmt.Sprintf("Check `kubectl describe job/%s` and its pods, fix the cause, then apply a new spec.", m.JobName))
		return wait(), nil
	}
	msg := fmt.Sprintf("Migration Job %s failed (%s) after its container ran. %s was not deployed. "+
		"Check `kubectl logs job/%s`. The pre-release dump is %s on the backup volume.",
		m.JobName, m.Message, s.release.DeploymentName(s.target), m.JobName, dump)
	res, err := r.restoreAfterFailedMigration(ctx, s, rec)
	msg += " " + restoreDescription(s, rec)
	if rec.Restore != nil {
		s.restorePhase = rec.Restore.Phase
	}
	s.failure = &failureFact{outcome: deployv1alpha1.OutcomeFailed, reason: deployv1alpha1.ReasonMigrationFailed, message: msg}
	return res, err
}
