package controller

import (
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
	"github.com/softfactory/release-operator/internal/writememory"
)

// progressReportInterval is how often a release's status is written only to report the
// new colour's progress ("1/2 replicas ready", Deploying → Verifying). Every other
// change is written at once.
//
// Why hold them: pods become ready one by one, and a status write is the most expensive
// request the operator makes. While one is in flight the release's next pass waits for
// it, so a report of the last-but-one pod would delay the pass that flips traffic when
// the last one becomes ready. A report at most this old is still current for a person
// watching `kubectl get sfrelease`.
const progressReportInterval = 2 * time.Second

// progressReports holds a progress-only status write while this process's last write
// of the release is less than progressReportInterval old.
type progressReports struct {
	writememory.LastWrite
}

// holdFor says how long to hold the change from before to after: zero to write it now,
// otherwise the time until it may be written. Only a progress-only change is held; the
// pass that holds it requeues for then, so the report is late by at most the interval.
func (p *progressReports) holdFor(key types.NamespacedName, now time.Time, before, after *deployv1alpha1.SoftFactoryReleaseStatus) time.Duration {
	if !progressOnly(before, after) {
		return 0
	}
	return p.Wait(key, now, progressReportInterval)
}

// progressOnly: between before and after, only the new colour's way to available moved
// (its GreenAvailable message or reason, and with it Deploying ↔ Verifying), and it is
// still not available. No change at all is nothing to hold. Becoming available,
// failing, a new generation, a flip, a Job, an analysis: all of those change something
// else, and are never held.
func progressOnly(before, after *deployv1alpha1.SoftFactoryReleaseStatus) bool {
	if !inProgress(before) || !inProgress(after) || equality.Semantic.DeepEqual(before, after) {
		return false
	}
	b, a := before.DeepCopy(), after.DeepCopy()
	meta.RemoveStatusCondition(&b.Conditions, deployv1alpha1.ConditionGreenAvailable)
	meta.RemoveStatusCondition(&a.Conditions, deployv1alpha1.ConditionGreenAvailable)
	b.Phase, a.Phase = "", ""
	return equality.Semantic.DeepEqual(b, a)
}

// inProgress: the status says the new colour is on its way, not yet available.
func inProgress(st *deployv1alpha1.SoftFactoryReleaseStatus) bool {
	if st.Phase != deployv1alpha1.PhaseDeploying && st.Phase != deployv1alpha1.PhaseVerifying {
		return false
	}
	g := meta.FindStatusCondition(st.Conditions, deployv1alpha1.ConditionGreenAvailable)
	return g != nil && g.Status == metav1.ConditionFalse &&
		(g.Reason == deployv1alpha1.ReasonProgressing || g.Reason == deployv1alpha1.ReasonWaitingForEndpoints)
}
