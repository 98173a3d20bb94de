package controller

import (
	batchv1 "k8s.io/api/batch/v1"

	"context"
	"fmt"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
	"github.com/softfactory/release-operator/internal/backup"
)

// reconcileBackup takes the pre-migration dump. It is the gate that keeps the operator's
// first promise: no migration runs without a verified backup of this revision.
func (r *SoftFactoryReleaseReconciler) reconcileBackup(ctx context.Context, s *releaseScope) (stepResult, error) {
	rel := s.release
	if rel.Spec.Backup == nil || rel.Spec.Database == nil {
		s.backup = jobFact{phase: jobNotRequired}
		return next(), nil
	}
	name := rel.BackupJobName(s.revision)
	job, err := r.ensureJob(ctx, s, name, func() *batchv1.Job {
		return buildBackupJob(rel, s.revision, backup.FileName(rel.Name, s.revision, s.now))
	})
	if err != nil {
		return wait(), err
	}
	s.backup = jobFactOf(job)
	issue, recheck := s.runningJobIssue(job)
	s.backup.issue = issue
	switch s.backup.phase {
	case jobSucceeded:
		rel.Status.LastBackup = &deployv1alpha1.BackupRecord{
			JobName:     job.Name,
			File:        job.Annotations[backupFileAnnotation],
			Revision:    s.revision,
			CompletedAt: job.Status.CompletionTime,
		}
		return next(), nil
	case jobFailed:
		s.backup.message = s.jobLastWords(job, s.backup.message)
		s.failure = &failureFact{
			outcome: deployv1alpha1.OutcomeFailed,
			reason:  deployv1alpha1.ReasonBackupFailed,
			message: fmt.Sprintf("Backup Job %s failed (%s). No migration was run and %s keeps serving. "+
				"Check `kubectl logs job/%s` (database reachable? volume full?), fix it, then apply a new spec to retry.",
				job.Name, s.backup.message, servingDescription(s), job.Name),
		}
		return wait(), nil
	case jobRunning:
		return r.watchRunningJob(s, job, issue, recheck, backupNeverStarted)
	default:
		return wait(), nil
	}
}

// servingDescription says which colour keeps serving, for failure messages.
func servingDescription(s *releaseScope) string {
	if s.activeColor == "" {
		return "nothing (this is the first release)"
	}
	return fmt.Sprintf("%s (revision %s)", s.activeColor, deploymentRevision(s.deployments[s.activeColor]))
}
