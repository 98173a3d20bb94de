package controller

import (
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
	"github.com/softfactory/release-operator/internal/metrics"
)

// recordMetrics publishes the pass's outcome on /metrics. Durations are observed once,
// on the pass where a condition turns True, from timestamps stored on the objects (Job
// creation and completion, the Deployment's progress start), so a restart neither loses
// nor double-counts them, as long as the status write of that pass lands.
func recordMetrics(s *releaseScope, before *deployv1alpha1.SoftFactoryRelease) {
	rel := s.release
	ns, name := rel.Namespace, rel.Name
	metrics.RecordPhase(ns, name, rel.Status.Phase)
	metrics.SetActiveColor(ns, name, s.activeColor)
	metrics.SetServingDegraded(ns, name, s.serving.watched && s.serving.degraded)
	if b := rel.Status.LastBackup; b != nil && b.CompletedAt != nil {
		metrics.SetLastBackup(ns, name, b.CompletedAt.Time)
	}

	became := func(t, reason string) bool {
		now := meta.FindStatusCondition(rel.Status.Conditions, t)
		old := meta.FindStatusCondition(before.Status.Conditions, t)
		return now != nil && now.Status == metav1.ConditionTrue && now.Reason == reason &&
			(old == nil || old.Status != metav1.ConditionTrue || old.Reason != reason)
	}
	if became(deployv1alpha1.ConditionBackupSucceeded, deployv1alpha1.ReasonBackupCompleted) {
		observeJobDuration(s, s.backup.name, metrics.StepBackup)
	}
	if became(deployv1alpha1.ConditionMigrationSucceeded, deployv1alpha1.ReasonMigrationCompleted) {
		observeJobDuration(s, s.migration.name, metrics.StepMigration)
	}
	if became(deployv1alpha1.ConditionGreenAvailable, deployv1alpha1.ReasonAvailable) && !s.targetAvailability.deadline.IsZero() {
		started := s.targetAvailability.deadline.Add(-time.Duration(rel.Spec.Strategy.BlueGreen.ProgressDeadlineSeconds) * time.Second)
		metrics.ObserveStep(ns, metrics.StepGreenReady, s.now.Sub(started))
	}
	if s.promotedNow {
		metrics.ObserveStep(ns, metrics.StepFlip, s.flipTook)
		if g := meta.FindStatusCondition(before.Status.Conditions, deployv1alpha1.ConditionGreenAvailable); g != nil && g.Status == metav1.ConditionTrue {
			metrics.ObserveGreenReadyToFlip(ns, s.now.Sub(g.LastTransitionTime.Time))
		} else {
			metrics.ObserveGreenReadyToFlip(ns, 0) // available and flipped in the same pass
		}
	}
	for _, rec := range s.newOutcomes {
		metrics.RecordOutcome(ns, name, rec.Outcome, rec.Reason)
	}
}

func observeJobDuration(s *releaseScope, jobName string, step metrics.Step) {
	j := s.jobs[jobName]
	if j == nil || j.Status.CompletionTime == nil {
		return
	}
	metrics.ObserveStep(s.release.Namespace, step, j.Status.CompletionTime.Sub(j.CreationTimestamp.Time))
}

// forgetRelease drops a deleted release's series from /metrics.
func forgetRelease(namespace, name string) {
	metrics.Forget(namespace, name)
}
