package controller

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

func TestOnlyProgressReportsAreHeld(t *testing.T) {
	cond := func(typ string, ok bool, reason, msg string, gen int64) metav1.Condition {
		s := metav1.ConditionFalse
		if ok {
			s = metav1.ConditionTrue
		}
		return metav1.Condition{Type: typ, Status: s, Reason: reason, Message: msg, ObservedGeneration: gen}
	}
	status := func(phase deployv1alpha1.Phase, green metav1.Condition, gen int64) *deployv1alpha1.SoftFactoryReleaseStatus {
		return &deployv1alpha1.SoftFactoryReleaseStatus{
			ObservedGeneration: gen,
			Phase:              phase,
			CurrentRevision:    "rev-b",
			Conditions: []metav1.Condition{
				green,
				cond(deployv1alpha1.ConditionPromoted, false, deployv1alpha1.ReasonPending, "Traffic goes to blue", gen),
				cond(deployv1alpha1.ConditionReady, false, deployv1alpha1.ReasonProgressing, "Releasing revision rev-b to green", gen),
			},
		}
	}
	progressing := func(msg string) metav1.Condition {
		return cond(deployv1alpha1.ConditionGreenAvailable, false, deployv1alpha1.ReasonProgressing, msg, 2)
	}
	zeroReady := status(deployv1alpha1.PhaseDeploying, progressing("0/2 ready"), 2)

	available := status(deployv1alpha1.PhaseVerifying, cond(deployv1alpha1.ConditionGreenAvailable, true, deployv1alpha1.ReasonAvailable, "2/2", 2), 2)
	newGeneration := status(deployv1alpha1.PhaseDeploying, progressing("0/2 ready"), 3)
	newGeneration.Conditions[0].ObservedGeneration = 3
	otherChange := status(deployv1alpha1.PhaseDeploying, progressing("1/2 ready"), 2)
	otherChange.Conditions[2].Message = "The last pass failed and will be retried"
	notStarted := status(deployv1alpha1.PhasePending, cond(deployv1alpha1.ConditionGreenAvailable, false, deployv1alpha1.ReasonNotStarted, "", 2), 2)

	cases := []struct {
		name          string
		before, after *deployv1alpha1.SoftFactoryReleaseStatus
		want          bool
	}{
		{"one more replica ready", zeroReady, status(deployv1alpha1.PhaseDeploying, progressing("1/2 ready"), 2), true},
		{"ready, waiting for endpoints", zeroReady,
			status(deployv1alpha1.PhaseVerifying, cond(deployv1alpha1.ConditionGreenAvailable, false, deployv1alpha1.ReasonWaitingForEndpoints, "0/2 endpoints", 2), 2), true},
		{"available", zeroReady, available, false},
		{"a new generation", zeroReady, newGeneration, false},
		{"another condition changed too", zeroReady, otherChange, false},
		{"the colour just started", notStarted, zeroReady, false},
		{"nothing changed", zeroReady, status(deployv1alpha1.PhaseDeploying, progressing("0/2 ready"), 2), false},
		{"past the deadline", zeroReady,
			status(deployv1alpha1.PhaseFailed, cond(deployv1alpha1.ConditionGreenAvailable, false, deployv1alpha1.ReasonProgressDeadlineExceeded, "", 2), 2), false},
	}
	for _, tc := range cases {
		if got := progressOnly(tc.before, tc.after); got != tc.want {
			t.Errorf("%s: progressOnly = %v, want %v", tc.name, got, tc.want)
		}
	}

	var p progressReports
	key := types.NamespacedName{Namespace: "ns", Name: "r"}
	now := time.Date(2026, 11, 26, 5, 0, 0, 0, time.UTC)
	moreReady := status(deployv1alpha1.PhaseDeploying, progressing("1/2 ready"), 2)
	if hold := p.holdFor(key, now, zeroReady, moreReady); hold != 0 {
		t.Errorf("no write recorded yet (a fresh process): hold %v, want 0", hold)
	}
	p.Wrote(key, now)
	if hold := p.holdFor(key, now.Add(500*time.Millisecond), zeroReady, moreReady); hold != progressReportInterval-500*time.Millisecond {
		t.Errorf("0.5 s after a write: hold %v, want %v", hold, progressReportInterval-500*time.Millisecond)
	}
	if hold := p.holdFor(key, now.Add(500*time.Millisecond), zeroReady, available); hold != 0 {
		t.Errorf("becoming available is never held: hold %v", hold)
	}
	if hold := p.holdFor(key, now.Add(progressReportInterval), zeroReady, moreReady); hold != 0 {
		t.Errorf("after the interval: hold %v, want 0", hold)
	}
	p.Forget(key)
	if hold := p.holdFor(key, now, zeroReady, moreReady); hold != 0 {
		t.Errorf("a forgotten release: hold %v, want 0", hold)
	}
}
