package controller

import (
	"context"
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// The compatibility check runs the serving revision's smoke test against the migrated
// database, before the flip: a migration the serving revision cannot live with is found
// while traffic can still stay where it is, instead of at the serving colour's next
// restart. It starts as soon as the migration has completed and runs while the target
// colour comes up; only the flip waits for it.
//
// Its record is its Job, under the deterministic name of the revision's attempt (as the
// smoke test's): the check only reads through the serving colour's API, so it is not a
// data step that needs a status record; the Job of the current revision is kept while
// the revision is live (job_retention.go), a restarted operator finds it by name, and a
// retry (a new attempt) runs it again under a new name unless an earlier attempt's check
// passed (it ran on the same migrated database: a completed migration never runs again).

// compatibilityCheckRequired: the spec asks for the check and something serves that it
// could break. The first release has no serving revision to check.
func (s *releaseScope) compatibilityCheckRequired() bool {
	bg := &s.release.Spec.Strategy.BlueGreen
	return bg.CompatibilityCheckEnabled() && s.release.Spec.Migration != nil && s.activeColor != "" && !s.settled()
}

// compatibilityCheckJob is the check's Job that speaks for the current attempt, and the
// name of the Job to create when there is none: the current attempt's Job, or else an
// earlier attempt's that passed, or else none yet (as smokeTestJob).
func (s *releaseScope) compatibilityCheckJob() (*batchv1.Job, string) {
	rel := s.release
	attempt := s.attempt()
	name := rel.CompatibilityCheckJobName(s.revision, attempt)
	if j := s.jobs[name]; j != nil {
		return j, name
	}
	for a := attempt - 1; a >= 1; a-- {
		if j := s.jobs[rel.CompatibilityCheckJobName(s.revision, a)]; j != nil && jobOutcome(j) == jobSucceeded {
			return j, j.Name
		}
	}
	return nil, name
}

// compatibilityCheckOfRecord is the check's fact as its Job tells it, without acting.
func (s *releaseScope) compatibilityCheckOfRecord() jobFact {
	if !s.compatibilityCheckRequired() {
		return jobFact{phase: jobNotRequired}
	}
	job, _ := s.compatibilityCheckJob()
	return jobFactOf(job)
}

// servingImage is the API container's image of the serving colour, as its Deployment
// runs it (the cache keeps each container's name and image).
func (s *releaseScope) servingImage() string {
	if d := s.deployments[s.activeColor]; d != nil {
		for _, c := range d.Spec.Template.Spec.Containers {
			if c.Name == apiContainerName {
				return c.Image
			}
		}
	}
	return ""
}

// reconcileCompatibilityCheck starts the check once the migration has completed (this
// step runs after reconcileMigration, which proceeds only then) and reports it. It holds
// nothing while the check runs: reconcileCompatibilityGate holds the flip.
func (r *SoftFactoryReleaseReconciler) reconcileCompatibilityCheck(ctx context.Context, s *releaseScope) (stepResult, error) {
	if !s.compatibilityCheckRequired() {
		s.compatibilityCheck = jobFact{phase: jobNotRequired}
		return next(), nil
	}
	rel := s.release
	existing, name := s.compatibilityCheckJob()
	image := s.servingImage()
	if image == "" && existing == nil {
		// No serving Deployment to take the image from: the serving watch says why.
		s.compatibilityCheck = jobFact{phase: jobPending, name: name}
		return next(), nil
	}
	job, err := r.ensureJob(ctx, s, name, func() *batchv1.Job {
		return buildCompatibilityCheckJob(rel, s.revision, s.attempt(), image)
	})
	if job == nil || err != nil {
		s.compatibilityCheck = jobFact{phase: jobPending, name: name}
		return next(), err
	}
	s.compatibilityCheck = jobFactOf(job)
	if s.promoteForDegradedServing {
		// The serving revision is already failing and the new colour takes over as soon
		// as it can: stopping on the check would keep traffic on the broken colour.
		return next(), nil
	}
	servingRev := deploymentRevision(s.deployments[s.activeColor])
	switch s.compatibilityCheck.phase {
	case jobFailed:
		s.failure = s.failed(deployv1alpha1.ReasonCompatibilityCheckFailed,
			fmt.Sprintf("Compatibility check Job %s failed (%s): the serving revision %s failed its smoke test against the migrated database, "+
				"so the migration is not backward compatible;", job.Name, s.compatibilityCheck.message, servingRev),
			"traffic never moved",
			fmt.Sprintf("%s may fail at its next restart. Check `kubectl logs job/%s`; make the migration additive only (move drops and renames "+
				"to spec.migration.contract), restore the pre-release dump if the serving colour already fails, then retry or apply a fixed spec.",
				rel.DeploymentName(s.activeColor), job.Name))
		return wait(), r.applyFailurePolicy(ctx, s)
	case jobRunning:
		issue, recheck := s.runningJobIssue(job)
		s.compatibilityCheck.issue = issue
		if issue != nil && issue.permanent && s.failure == nil {
			// As for the smoke test: a pod that can never start would hold the flip for
			// activeDeadlineSeconds, then blame logs that were never written.
			s.failure = s.failed(deployv1alpha1.ReasonCompatibilityCheckFailed,
				fmt.Sprintf("Compatibility check Job %s cannot start its pod, and this does not heal by itself: %s. No check ran;", job.Name, issue),
				"traffic never moved", whatToDo(issue))
			r.event(s, corev1.EventTypeWarning, s.failure.reason, "Stop", "%s", s.failure.message)
			return wait(), r.applyFailurePolicy(ctx, s)
		}
		if recheck > 0 {
			return nextAfter(recheck), nil
		}
	}
	return next(), nil
}

// reconcileCompatibilityGate holds the flip until the check has passed. Under
// onServingDegraded: Promote with the serving colour degraded it does not: the revision
// the check protects is already failing.
func (r *SoftFactoryReleaseReconciler) reconcileCompatibilityGate(_ context.Context, s *releaseScope) (stepResult, error) {
	switch {
	case s.compatibilityCheck.phase == jobNotRequired, s.compatibilityCheck.phase == jobSucceeded, s.promoteForDegradedServing:
		return next(), nil
	default:
		// The Job's watch wakes the release when it finishes.
		return wait(), nil
	}
}
