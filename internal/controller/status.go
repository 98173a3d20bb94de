package controller

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// updateStatus rebuilds the release's status from what this pass found. Fields that
// mirror the world (active colour, revisions, image) are read back from the objects;
// conditions come from one small function each; the phase is derived last.
func updateStatus(s *releaseScope, stepErr error) {
	rel := s.release
	st := &rel.Status

	st.CurrentRevision = s.revision
	st.ActiveColor = s.activeColor
	st.ActiveImage = ""
	st.StableRevision = ""
	if d := s.deployments[s.activeColor]; d != nil {
		st.StableRevision = deploymentRevision(d)
		for _, c := range d.Spec.Template.Spec.Containers {
			if c.Name == apiContainerName {
				st.ActiveImage = c.Image
			}
		}
	}
	updateHistory(s)
	trimRecords(s)

	for _, c := range []metav1.Condition{
		backupCondition(s),
		migrationCondition(s),
		targetAvailableCondition(s),
		promotedCondition(s),
		contractCondition(s),
		degradedCondition(s),
		readyCondition(s, stepErr),
	} {
		c.ObservedGeneration = rel.Generation
		meta.SetStatusCondition(&st.Conditions, c)
	}
	if m := monitoringCondition(s); m != nil {
		setOptionalCondition(s, *m)
	}
	s.serving = s.servingAtEndOfPass()
	if c := servingDegradedCondition(s); c != nil {
		// Its transition time is when the serving colour was first seen degraded (the
		// message's "since"), on the release's clock.
		c.ObservedGeneration, c.LastTransitionTime = rel.Generation, metav1.NewTime(s.now)
		meta.SetStatusCondition(&st.Conditions, *c)
	} else {
		meta.RemoveStatusCondition(&st.Conditions, deployv1alpha1.ConditionServingDegraded)
	}
	if b := scheduledBackupCondition(s); b != nil {
		setOptionalCondition(s, *b)
	} else {
		meta.RemoveStatusCondition(&st.Conditions, deployv1alpha1.ConditionScheduledBackupReady)
	}
	st.Phase = phaseOf(st.Conditions, s.paused)
	if stepErr == nil {
		st.ObservedGeneration = rel.Generation
	}
}

// updateHistory records the outcomes of this pass: a failure, a promotion, a superseded
// revision. Records are keyed by revision, newest first, bounded by revisionHistoryLimit.
func updateHistory(s *releaseScope) {
	rel := s.release
	now := metav1.NewTime(s.now)
	backupFile := ""
	if b := rel.Status.LastBackup; b != nil && b.Revision == s.revision {
		backupFile = b.File
	}
	if s.supersededRev != "" {
		upsertHistory(s, deployv1alpha1.ReleaseRecord{
			Revision: s.supersededRev, Image: "", Color: s.target,
			Outcome: deployv1alpha1.OutcomeSuperseded, Reason: "Superseded", FinishedAt: &now,
			Message: "Replaced by revision " + s.revision + " before it was promoted",
		}, false)
	}
	existing := historyRecord(rel, s.revision)
	switch {
	case s.failure != nil:
		rec := deployv1alpha1.ReleaseRecord{
			Revision: s.revision, Image: rel.Spec.Image, Color: s.target, BackupFile: backupFile,
			Outcome: s.failure.outcome, Reason: s.failure.reason, Message: s.failure.message, FinishedAt: &now,
		}
		if existing != nil {
			rec.PromotedAt = existing.PromotedAt // a rolled-back release was promoted first
			if existing.Outcome == rec.Outcome && existing.Reason == rec.Reason {
				rec.FinishedAt = existing.FinishedAt
			}
		}
		upsertHistory(s, rec, false)
	case s.settled() && (s.promotedNow || existing == nil || existing.Outcome != deployv1alpha1.OutcomePromoted):
		promotedAt := promotedAtOf(s)
		upsertHistory(s, deployv1alpha1.ReleaseRecord{
			Revision: s.revision, Image: rel.Spec.Image, Color: s.activeColor, BackupFile: backupFile,
			Outcome: deployv1alpha1.OutcomePromoted, Reason: deployv1alpha1.ReasonPromoted, PromotedAt: promotedAt, FinishedAt: promotedAt,
		}, true)
	}
	if limit := int(rel.Spec.RevisionHistoryLimit); limit > 0 && len(rel.Status.History) > limit {
		rel.Status.History = rel.Status.History[:limit]
	}
}

// promotedAtOf is when the active Service last flipped, as recorded on it.
func promotedAtOf(s *releaseScope) *metav1.Time {
	if s.activeService != nil {
		if t, err := time.Parse(time.RFC3339Nano, s.activeService.Annotations[deployv1alpha1.PromotedAtAnnotation]); err == nil {
			mt := metav1.NewTime(t)
			return &mt
		}
	}
	mt := metav1.NewTime(s.now)
	return &mt
}

// historyRecord is the record of a revision, or nil.
func historyRecord(rel *deployv1alpha1.SoftFactoryRelease, revision string) *deployv1alpha1.ReleaseRecord {
	for i := range rel.Status.History {
		if rel.Status.History[i].Revision == revision {
			return &rel.Status.History[i]
		}
	}
	return nil
}

// upsertHistory replaces the record of rec's revision in place, or puts it first. With
// toFront, an existing record moves to the front too (a revision promoted again). A
// record that is new or changes outcome is also an outcome for /metrics.
func upsertHistory(s *releaseScope, rec deployv1alpha1.ReleaseRecord, toFront bool) {
	rel := s.release
	h := rel.Status.History
	if old := historyRecord(rel, rec.Revision); old == nil || old.Outcome != rec.Outcome || old.Reason != rec.Reason || (s.promotedNow && rec.Outcome == deployv1alpha1.OutcomePromoted) {
		s.newOutcomes = append(s.newOutcomes, rec)
	}
	for i := range h {
		if h[i].Revision != rec.Revision {
			continue
		}
		if rec.Image == "" {
			rec.Image = h[i].Image
		}
		if rec.BackupFile == "" {
			rec.BackupFile = h[i].BackupFile
		}
		if !toFront {
			h[i] = rec
			return
		}
		h = append(h[:i], h[i+1:]...)
		break
	}
	rel.Status.History = append([]deployv1alpha1.ReleaseRecord{rec}, h...)
}

// recordTransitions emits an Event for every condition change that is news: the user's
// timeline of the release in `kubectl describe` and `kubectl events`. Actions (a Job
// created, a Deployment rolled, the flip, the scale-down) have their own Events, so a
// condition that only restates one is left out: one Event per fact keeps the timeline
// readable and the API server's load down.
func (r *SoftFactoryReleaseReconciler) recordTransitions(before, after *deployv1alpha1.SoftFactoryRelease) {
	for _, c := range after.Status.Conditions {
		old := meta.FindStatusCondition(before.Status.Conditions, c.Type)
		if old != nil && old.Status == c.Status && old.Reason == c.Reason {
			continue
		}
		if !newsworthy(c, old) {
			continue
		}
		eventType := corev1.EventTypeNormal
		if ((c.Type == deployv1alpha1.ConditionDegraded || c.Type == deployv1alpha1.ConditionServingDegraded) && c.Status == metav1.ConditionTrue) || failureReasons[c.Reason] {
			eventType = corev1.EventTypeWarning
		}
		r.Recorder.Eventf(after, nil, eventType, c.Reason, c.Type, "%s: %s", c.Type, c.Message)
	}
}

// newsworthy says whether a condition's change adds to the action Events.
func newsworthy(c metav1.Condition, old *metav1.Condition) bool {
	switch c.Type {
	case deployv1alpha1.ConditionGreenAvailable, deployv1alpha1.ConditionPromoted:
		// Deploying, Promoted and the deadline's Abort tell these; Ready says what waits.
		return false
	case deployv1alpha1.ConditionContractSucceeded:
		// JobCreated tells its steps' starts; a release without one is not news.
		return c.Reason == deployv1alpha1.ReasonContractCompleted || failureReasons[c.Reason]
	case deployv1alpha1.ConditionBackupSucceeded, deployv1alpha1.ConditionMigrationSucceeded:
		// JobCreated tells the start; the outcome is news.
		return c.Status == metav1.ConditionTrue || failureReasons[c.Reason]
	case deployv1alpha1.ConditionDegraded, deployv1alpha1.ConditionServingDegraded:
		// "Not degraded" on the first pass is not news; degrading, and recovering, are.
		return c.Status == metav1.ConditionTrue || old != nil
	default:
		return true
	}
}

var failureReasons = map[string]bool{
	deployv1alpha1.ReasonBackupFailed: true, deployv1alpha1.ReasonMigrationFailed: true, deployv1alpha1.ReasonProgressDeadlineExceeded: true,
	deployv1alpha1.ReasonSmokeTestFailed: true, deployv1alpha1.ReasonAborted: true, deployv1alpha1.ReasonRolledBack: true, deployv1alpha1.ReasonReconcileError: true,
	deployv1alpha1.ReasonAnalysisFailed: true, deployv1alpha1.ReasonAnalysisInconclusive: true,
	deployv1alpha1.ReasonMigrationNeverRan: true, deployv1alpha1.ReasonMigrationLost: true,
	deployv1alpha1.ReasonContractFailed: true, deployv1alpha1.ReasonSchemaContracted: true,
	deployv1alpha1.ReasonOwnershipConflict: true, deployv1alpha1.ReasonMonitoringFailed: true, deployv1alpha1.ReasonScheduledBackupFailed: true,
	deployv1alpha1.ReasonServingDegraded: true, deployv1alpha1.ReasonCompatibilityCheckFailed: true,
}

// event records an action the operator took on the release.
func (r *SoftFactoryReleaseReconciler) event(s *releaseScope, eventType, reason, action, note string, args ...any) {
	r.Recorder.Eventf(s.release, nil, eventType, reason, action, note, args...)
}
