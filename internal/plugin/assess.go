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

package plugin

import (
	"strconv"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// conditionOrder is the order conditions are printed in: the runbook's order, then the
// summary ones.
var conditionOrder = []string{
	deployv1alpha1.ConditionBackupSucceeded,
	deployv1alpha1.ConditionMigrationSucceeded,
	deployv1alpha1.ConditionGreenAvailable,
	deployv1alpha1.ConditionPromoted,
	deployv1alpha1.ConditionDegraded,
	deployv1alpha1.ConditionReady,
}

// Verdict is where a release stands for someone waiting on it. It is the same reading
// of the status as config/argocd's health.lua (a test holds the two together), so the
// plugin and Argo CD never disagree about a release.
type Verdict int

const (
	// VerdictProgressing: the operator is working, or has not seen the current spec yet.
	VerdictProgressing Verdict = iota
	// VerdictAwaitingPromotion: green passed its gates and waits for a promote.
	VerdictAwaitingPromotion
	// VerdictPaused: spec.paused holds the release where it is.
	VerdictPaused
	// VerdictSucceeded: the current revision serves traffic and nothing is in flight.
	VerdictSucceeded
	// VerdictFailed: the release failed or was rolled back; it needs a person.
	VerdictFailed
)

// inFlight are the phases of a release step that is running.
var inFlight = map[deployv1alpha1.Phase]bool{
	deployv1alpha1.PhasePending:   true,
	deployv1alpha1.PhaseBackingUp: true,
	deployv1alpha1.PhaseMigrating: true,
	deployv1alpha1.PhaseDeploying: true,
	deployv1alpha1.PhaseVerifying: true,
	deployv1alpha1.PhasePromoting: true,
}

// abortable are the phases in which a release has not settled and can be aborted.
var abortable = map[deployv1alpha1.Phase]bool{
	deployv1alpha1.PhasePending:           true,
	deployv1alpha1.PhaseBackingUp:         true,
	deployv1alpha1.PhaseMigrating:         true,
	deployv1alpha1.PhaseDeploying:         true,
	deployv1alpha1.PhaseVerifying:         true,
	deployv1alpha1.PhaseAwaitingPromotion: true,
	deployv1alpha1.PhasePromoting:         true,
	deployv1alpha1.PhasePaused:            true,
}

// observed reports whether the status describes the current spec. A status written for
// an older generation says nothing about the release the user just applied.
func observed(r *deployv1alpha1.SoftFactoryRelease) bool {
	return r.Status.ObservedGeneration == r.Generation
}

// Assess reads a release's status into a verdict and a one-line explanation. The order
// of the checks is health.lua's: unobserved spec, failure, paused, awaiting promotion,
// step in flight, Ready.
func Assess(r *deployv1alpha1.SoftFactoryRelease) (Verdict, string) {
	st := &r.Status
	ready := meta.FindStatusCondition(st.Conditions, deployv1alpha1.ConditionReady)
	if !observed(r) {
		msg := "waiting for the operator to observe generation " + itoa(r.Generation)
		// The operator stamps each condition with the generation it describes and holds
		// observedGeneration back while a pass fails: a Ready for this generation says why.
		if ready != nil && ready.ObservedGeneration == r.Generation && ready.Message != "" {
			msg += "; " + describe(ready, "")
		}
		return VerdictProgressing, msg
	}
	degraded := meta.FindStatusCondition(st.Conditions, deployv1alpha1.ConditionDegraded)
	rev := st.CurrentRevision

	if isTrue(degraded) || st.Phase == deployv1alpha1.PhaseFailed || st.Phase == deployv1alpha1.PhaseRolledBack {
		fallback := "release " + rev + " failed"
		if st.Phase == deployv1alpha1.PhaseRolledBack {
			fallback = "release " + rev + " was rolled back"
		}
		if isTrue(degraded) {
			return VerdictFailed, describe(degraded, fallback)
		}
		return VerdictFailed, describe(ready, fallback)
	}
	if st.Phase == deployv1alpha1.PhasePaused || r.Spec.Paused {
		return VerdictPaused, "paused by spec.paused; set it to false to resume"
	}
	if st.Phase == deployv1alpha1.PhaseAwaitingPromotion {
		// The annotation names the revision it promotes: only a match means the operator
		// is about to flip; one left from an earlier release promotes nothing.
		if rev != "" && r.Annotations[deployv1alpha1.PromoteAnnotation] == rev {
			return VerdictProgressing, "promotion of revision " + rev + " requested; waiting for the operator to switch traffic"
		}
		return VerdictAwaitingPromotion, "revision " + rev + " is ready on the preview Service and waits for promotion"
	}
	if inFlight[st.Phase] {
		return VerdictProgressing, describe(ready, string(st.Phase))
	}
	if isTrue(ready) {
		if rev != "" && st.StableRevision != "" && st.StableRevision != rev {
			return VerdictProgressing, "waiting for revision " + rev + " to serve traffic; " + st.StableRevision + " still does"
		}
		if st.ActiveImage != "" && st.ActiveColor != "" {
			return VerdictSucceeded, "serving " + st.ActiveImage + " on " + string(st.ActiveColor) + " (revision " + rev + ")"
		}
		return VerdictSucceeded, describe(ready, "release "+rev+" is serving")
	}
	return VerdictProgressing, describe(ready, "waiting for the release to settle")
}

// releaseInFlight reports whether there is an unsettled release to abort: one in an
// abortable phase whose revision is not the one serving traffic.
func releaseInFlight(r *deployv1alpha1.SoftFactoryRelease) bool {
	return abortable[r.Status.Phase] && r.Status.CurrentRevision != r.Status.StableRevision
}

func isTrue(c *metav1.Condition) bool {
	return c != nil && c.Status == metav1.ConditionTrue
}

// describe renders a condition as "Reason: message", or fallback when it says nothing.
func describe(c *metav1.Condition, fallback string) string {
	if c == nil || c.Message == "" {
		return fallback
	}
	if c.Reason != "" {
		return c.Reason + ": " + c.Message
	}
	return c.Message
}

func itoa(i int64) string { return strconv.FormatInt(i, 10) }
