package controller

import (
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Optional steps (the PrometheusRule, the scheduled-backup CronJob) run on every pass,
// before the runbook, and must never hold it: a failure there goes to the step's own
// condition, and the pass goes on. The step is retried on a delay that grows with how
// long it has been failing, read from its condition (so a restart keeps the pace):
// twice the time since it began to fail, between optionalRetryMin and optionalRetryMax.
const (
	optionalRetryMin = 5 * time.Second
	optionalRetryMax = 5 * time.Minute
)

// optionalRetryAfter is the delay before an optional step that failed in this pass is
// tried again. Its condition's lastTransitionTime (set from the pass's clock, see
// setOptionalCondition) is when it began to fail.
func optionalRetryAfter(s *releaseScope, conditionType string) time.Duration {
	failingSince := s.now
	if c := meta.FindStatusCondition(s.release.Status.Conditions, conditionType); c != nil &&
		c.Status == metav1.ConditionFalse && c.LastTransitionTime.Time.Before(s.now) {
		failingSince = c.LastTransitionTime.Time
	}
	return min(max(2*s.now.Sub(failingSince), optionalRetryMin), optionalRetryMax)
}

// setOptionalCondition stores an optional step's condition, stamping a change with the
// pass's clock so optionalRetryAfter can count from it.
func setOptionalCondition(s *releaseScope, c metav1.Condition) {
	c.ObservedGeneration = s.release.Generation
	c.LastTransitionTime = metav1.NewTime(s.now)
	meta.SetStatusCondition(&s.release.Status.Conditions, c)
}
