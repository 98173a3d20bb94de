package controller

import (
	"context"
	"fmt"
	"slices"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// reconcileStoppedRelease finds out whether the current revision has already stopped for
// good (failed, aborted, rolled back: recorded in history) or is being aborted now by the
// abort annotation. A stopped release creates nothing new; the later steps still run so
// status keeps describing the Jobs and the failure policy is applied.
func (r *SoftFactoryReleaseReconciler) reconcileStoppedRelease(_ context.Context, s *releaseScope) (stepResult, error) {
	rel := s.release
	if rec := historyRecord(rel, s.revision); rec != nil && rec.Outcome != deployv1alpha1.OutcomePromoted && rec.Outcome != deployv1alpha1.OutcomeSuperseded {
		s.failure = &failureFact{outcome: rec.Outcome, reason: rec.Reason, message: rec.Message}
		return next(), nil
	}
	// The annotation names the revision it aborts, so one left over from an earlier
	// release never aborts this one.
	if rel.Annotations[deployv1alpha1.AbortAnnotation] == s.revision {
		s.failure = s.failed(deployv1alpha1.ReasonAborted,
			fmt.Sprintf("Revision %s was aborted by the %s annotation;", s.revision, deployv1alpha1.AbortAnnotation),
			"", "Apply a new spec to release again.")
		s.failure.outcome = deployv1alpha1.OutcomeAborted
		r.event(s, corev1.EventTypeWarning, deployv1alpha1.ReasonAborted, "Abort", "Aborted revision %s at the user's request", s.revision)
	}
	return next(), nil
}

// reconcilePaused freezes the release: nothing after this step runs, so no Job, scale or
// flip happens until spec.paused is cleared. Status still describes the world.
func (r *SoftFactoryReleaseReconciler) reconcilePaused(_ context.Context, s *releaseScope) (stepResult, error) {
	if s.release.Spec.Paused {
		s.paused = true
		return wait(), nil
	}
	return next(), nil
}

// migrationCanNeverRun: no container of the Job has started, and one of its pods says
// why in words no retry heals (an image that runs as root, an invalid image name). Its
// Job stays active until its deadline, but nothing can be interrupted there: waiting
// for it would only hold the user's fix for minutes.
func (s *releaseScope) migrationCanNeverRun(j *batchv1.Job) bool {
	pods := s.podsOfJob(j)
	if slices.ContainsFunc(pods, containerStarted) {
		return false
	}
	issue := issueOfPods(pods)
	return issue != nil && issue.permanent
}

// reconcileSafePoint holds a new revision while a migration or a contract step of an
// earlier one is still running: stopping either half way could leave the schema in
// between, and a new revision's backup and migration must not race it. Once it finishes
// (either way) the new revision goes ahead.
func (r *SoftFactoryReleaseReconciler) reconcileSafePoint(_ context.Context, s *releaseScope) (stepResult, error) {
	if s.failure != nil {
		return next(), nil
	}
	if j := s.supersededMigrationRunning(); j != nil {
		s.waitingFor = fmt.Sprintf("%s Job %s of the superseded revision %s to finish: a migration is never interrupted",
			j.Labels[deployv1alpha1.LabelComponent], j.Name, j.Labels[deployv1alpha1.LabelRevision])
		return wait(), nil
	}
	return next(), nil
}

// supersededMigrationRunning is a running migration or contract Job of another revision
// that may still change the schema, or nil.
func (s *releaseScope) supersededMigrationRunning() *batchv1.Job {
	for _, j := range s.jobs {
		component := j.Labels[deployv1alpha1.LabelComponent]
		if (component != deployv1alpha1.ComponentMigration && component != deployv1alpha1.ComponentContract) ||
			j.Labels[deployv1alpha1.LabelRevision] == s.revision {
			continue
		}
		if jobOutcome(j) == jobRunning && !s.migrationCanNeverRun(j) {
			return j
		}
	}
	return nil
}
