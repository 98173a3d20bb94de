package controller

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

func cond(t string, ok bool, reason, msg string, args ...any) metav1.Condition {
	status := metav1.ConditionFalse
	if ok {
		status = metav1.ConditionTrue
	}
	return metav1.Condition{Type: t, Status: status, Reason: reason, Message: fmt.Sprintf(msg, args...)}
}

// backupCondition: was this revision's pre-migration dump taken and verified?
func backupCondition(s *releaseScope) metav1.Condition {
	b := s.backup
	switch b.phase {
	case jobNotRequired:
		return cond(deployv1alpha1.ConditionBackupSucceeded, true, deployv1alpha1.ReasonNotRequired, "No backup is configured (spec.backup)")
	case jobRunning:
		return cond(deployv1alpha1.ConditionBackupSucceeded, false, deployv1alpha1.ReasonBackupRunning, "Backup Job %s is dumping the database%s", b.name, waitingOn(b.issue))
	case jobSucceeded:
		file := ""
		if s.release.Status.LastBackup != nil {
			file = s.release.Status.LastBackup.File
		}
		return cond(deployv1alpha1.ConditionBackupSucceeded, true, deployv1alpha1.ReasonBackupCompleted, "Backup Job %s wrote and verified %s", b.name, file)
	case jobFailed:
		return cond(deployv1alpha1.ConditionBackupSucceeded, false, deployv1alpha1.ReasonBackupFailed, "Backup Job %s failed: %s", b.name, b.message)
	default:
		return cond(deployv1alpha1.ConditionBackupSucceeded, false, deployv1alpha1.ReasonPending, "The backup of revision %s has not started", s.revision)
	}
}

// migrationCondition: did this revision's migration run?
func migrationCondition(s *releaseScope) metav1.Condition {
	m := s.migration
	switch m.phase {
	case jobNotRequired:
		return cond(deployv1alpha1.ConditionMigrationSucceeded, true, deployv1alpha1.ReasonNotRequired, "No migration is configured (spec.migration)")
	case jobRunning:
		return cond(deployv1alpha1.ConditionMigrationSucceeded, false, deployv1alpha1.ReasonMigrationRunning, "Migration Job %s is running%s", m.name, waitingOn(m.issue))
	case jobSucceeded:
		return cond(deployv1alpha1.ConditionMigrationSucceeded, true, deployv1alpha1.ReasonMigrationCompleted, "Migration Job %s completed", m.name)
	case jobFailed:
		if f := s.failure; f != nil && (f.reason == deployv1alpha1.ReasonMigrationNeverRan || f.reason == deployv1alpha1.ReasonMigrationLost) {
			return cond(deployv1alpha1.ConditionMigrationSucceeded, false, f.reason, "%s", f.message)
		}
		return cond(deployv1alpha1.ConditionMigrationSucceeded, false, deployv1alpha1.ReasonMigrationFailed, "Migration Job %s failed: %s", m.name, m.message)
	default:
		return cond(deployv1alpha1.ConditionMigrationSucceeded, false, deployv1alpha1.ReasonWaitingForBackup, "The migration waits for a verified backup of revision %s", s.revision)
	}
}

// targetAvailableCondition: is the colour for this revision (the target colour) fully
// available behind the preview Service? The API keeps the condition's documented name,
// GreenAvailable, whichever colour is the target.
func targetAvailableCondition(s *releaseScope) metav1.Condition {
	g := s.targetAvailability
	name := s.release.DeploymentName(s.target)
	switch g.phase {
	case targetAvailable:
		return cond(deployv1alpha1.ConditionGreenAvailable, true, deployv1alpha1.ReasonAvailable, "%s has %d/%d replicas ready and %d ready endpoints", name, g.readyReplicas, g.wantReplicas, g.readyEndpoints)
	case targetProgressing:
		return cond(deployv1alpha1.ConditionGreenAvailable, false, deployv1alpha1.ReasonProgressing, "%s has %d/%d replicas ready (deadline %s)%s",
			name, g.readyReplicas, g.wantReplicas, g.deadline.UTC().Format("15:04:05Z"), waitingOn(g.issue))
	case targetWaitingForEndpoints:
		return cond(deployv1alpha1.ConditionGreenAvailable, false, deployv1alpha1.ReasonWaitingForEndpoints, "%s is ready but the preview Service lists %d/%d ready endpoints", name, g.readyEndpoints, g.wantReplicas)
	case targetDeadlineExceeded:
		return cond(deployv1alpha1.ConditionGreenAvailable, false, deployv1alpha1.ReasonProgressDeadlineExceeded, "%s was not available within the progress deadline (%d/%d ready)", name, g.readyReplicas, g.wantReplicas)
	default:
		return cond(deployv1alpha1.ConditionGreenAvailable, false, deployv1alpha1.ReasonNotStarted, "%s does not run revision %s yet", name, s.revision)
	}
}

// promotedCondition: does the active Service send traffic to this revision?
func promotedCondition(s *releaseScope) metav1.Condition {
	switch {
	case s.settled():
		return cond(deployv1alpha1.ConditionPromoted, true, deployv1alpha1.ReasonPromoted, "Service %s selects %s, running revision %s", s.release.ActiveServiceName(), s.activeColor, s.revision)
	case s.promotion.phase == promotionAwaiting:
		return cond(deployv1alpha1.ConditionPromoted, false, deployv1alpha1.ReasonAwaitingPromotion,
			"%s is ready; promote it with `kubectl sfrelease promote %s` or `kubectl annotate sfrelease %s %s=%s --overwrite`",
			s.release.DeploymentName(s.target), s.release.Name, s.release.Name, deployv1alpha1.PromoteAnnotation, s.revision)
	case s.analysisRunning:
		return cond(deployv1alpha1.ConditionPromoted, false, deployv1alpha1.ReasonAnalysisRunning, "Pre-promotion analysis of %s: %s", s.release.DeploymentName(s.target), analysisMessage(s))
	case s.smokeTest.phase == jobRunning:
		return cond(deployv1alpha1.ConditionPromoted, false, deployv1alpha1.ReasonSmokeTestRunning, "Smoke test Job %s is running against %s", s.smokeTest.name, previewURL(s.release))
	case s.compatibilityCheck.phase == jobRunning && s.failure == nil:
		return cond(deployv1alpha1.ConditionPromoted, false, deployv1alpha1.ReasonCompatibilityCheckRunning,
			"Compatibility check Job %s runs the smoke test of the serving revision %s against %s (the migrated database); the flip waits for it%s",
			s.compatibilityCheck.name, deploymentRevision(s.deployments[s.activeColor]), activeURL(s.release), waitingOn(s.compatibilityCheck.issue))
	default:
		return cond(deployv1alpha1.ConditionPromoted, false, deployv1alpha1.ReasonPending, "Traffic goes to %s until revision %s passes its gates", servingDescription(s), s.revision)
	}
}

// contractCondition: where does this revision's contract step (spec.migration.contract)
// stand?
func contractCondition(s *releaseScope) metav1.Condition {
	c := s.contract
	const t = deployv1alpha1.ConditionContractSucceeded
	switch c.phase {
	case contractNotRequired:
		return cond(t, true, deployv1alpha1.ReasonNotRequired, "No contract step is configured (spec.migration.contract)")
	case contractBackupRunning:
		return cond(t, false, deployv1alpha1.ReasonContractBackupRunning, "Backup Job %s is dumping the database before the contract step%s", c.job, waitingOn(c.issue))
	case contractRunning:
		return cond(t, false, deployv1alpha1.ReasonContractRunning, "Contract Job %s is running%s", c.job, waitingOn(c.issue))
	case contractCompleted:
		return cond(t, true, deployv1alpha1.ReasonContractCompleted, "Contract Job %s completed", c.job)
	case contractFailed:
		return cond(t, false, deployv1alpha1.ReasonContractFailed, "%s", c.message)
	default:
		if c.message == "" {
			return cond(t, false, deployv1alpha1.ReasonContractPending, "The contract step of revision %s starts now", s.revision)
		}
		return cond(t, false, deployv1alpha1.ReasonContractPending, "The contract step of revision %s waits for %s", s.revision, c.message)
	}
}

// degradedCondition: did this revision stop for good?
func degradedCondition(s *releaseScope) metav1.Condition {
	if s.failure != nil {
		return cond(deployv1alpha1.ConditionDegraded, true, s.failure.reason, "%s", s.failure.message)
	}
	if s.conflict != nil {
		return cond(deployv1alpha1.ConditionDegraded, true, deployv1alpha1.ReasonOwnershipConflict, "%s", conflictMessage(s.conflict))
	}
	return cond(deployv1alpha1.ConditionDegraded, false, deployv1alpha1.ReasonAsExpected, "No failure")
}

// readyCondition: is the release done, and if not, what is it waiting for?
func readyCondition(s *releaseScope, stepErr error) metav1.Condition {
	switch {
	case stepErr != nil:
		return cond(deployv1alpha1.ConditionReady, false, deployv1alpha1.ReasonReconcileError, "The last pass failed and will be retried: %v", stepErr)
	case s.failure != nil && s.restorePhase == deployv1alpha1.RestoreAwaitingApproval:
		return cond(deployv1alpha1.ConditionReady, false, deployv1alpha1.ReasonRestoreAwaitingApproval, "%s", s.failure.message)
	case s.failure != nil && s.restorePhase != "" && s.restorePhase != deployv1alpha1.RestoreDone:
		return cond(deployv1alpha1.ConditionReady, false, deployv1alpha1.ReasonRestoring, "%s", s.failure.message)
	case s.failure != nil:
		return cond(deployv1alpha1.ConditionReady, false, s.failure.reason, "%s", s.failure.message)
	case s.conflict != nil:
		return cond(deployv1alpha1.ConditionReady, false, deployv1alpha1.ReasonOwnershipConflict, "%s", conflictMessage(s.conflict))
	case s.paused:
		return cond(deployv1alpha1.ConditionReady, false, deployv1alpha1.ReasonPaused, "spec.paused is set: nothing moves until it is cleared")
	case s.waitingFor != "":
		return cond(deployv1alpha1.ConditionReady, false, deployv1alpha1.ReasonWaitingForSafePoint, "Waiting for %s", s.waitingFor)
	case s.settled() && s.analysisRunning:
		return cond(deployv1alpha1.ConditionReady, false, deployv1alpha1.ReasonAnalysisRunning, "Revision %s serves traffic; post-promotion analysis: %s", s.revision, analysisMessage(s))
	case s.settled() && s.scaleDown.pending:
		return cond(deployv1alpha1.ConditionReady, false, deployv1alpha1.ReasonScaleDownPending, "Revision %s serves traffic; %s scales down at %s",
			s.revision, s.release.DeploymentName(s.activeColor.Other()), s.scaleDown.at.UTC().Format("15:04:05Z"))
	case s.settled() && s.contract.phase != contractNotRequired && s.contract.phase != contractCompleted:
		// The release is not done until its schema is: the contract step is part of it.
		c := contractCondition(s)
		return cond(deployv1alpha1.ConditionReady, false, c.Reason, "Revision %s serves traffic; %s", s.revision, c.Message)
	case s.settled():
		return cond(deployv1alpha1.ConditionReady, true, deployv1alpha1.ReasonSucceeded, "Revision %s (%s) serves traffic from %s", s.revision, s.release.Spec.Image, s.activeColor)
	case s.promotion.phase == promotionAwaiting:
		return cond(deployv1alpha1.ConditionReady, false, deployv1alpha1.ReasonAwaitingPromotion, "%s", promotedCondition(s).Message)
	default:
		return cond(deployv1alpha1.ConditionReady, false, deployv1alpha1.ReasonProgressing, "Releasing revision %s to %s%s", s.revision, s.target, waitingOn(s.targetAvailability.issue))
	}
}

// phaseOf is the one-word summary for `kubectl get`, derived from the conditions only.
func phaseOf(conds []metav1.Condition, paused bool) deployv1alpha1.Phase {
	isTrue := func(t string) bool { return meta.IsStatusConditionTrue(conds, t) }
	reason := func(t string) string {
		if c := meta.FindStatusCondition(conds, t); c != nil {
			return c.Reason
		}
		return ""
	}
	switch {
	case paused:
		return deployv1alpha1.PhasePaused
	case isTrue(deployv1alpha1.ConditionDegraded) && reason(deployv1alpha1.ConditionDegraded) == deployv1alpha1.ReasonRolledBack:
		return deployv1alpha1.PhaseRolledBack
	case isTrue(deployv1alpha1.ConditionDegraded):
		return deployv1alpha1.PhaseFailed
	case isTrue(deployv1alpha1.ConditionReady):
		return deployv1alpha1.PhaseSucceeded
	case isTrue(deployv1alpha1.ConditionPromoted):
		return deployv1alpha1.PhasePromoting
	case reason(deployv1alpha1.ConditionPromoted) == deployv1alpha1.ReasonAwaitingPromotion:
		return deployv1alpha1.PhaseAwaitingPromotion
	case isTrue(deployv1alpha1.ConditionGreenAvailable):
		return deployv1alpha1.PhaseVerifying
	case reason(deployv1alpha1.ConditionPromoted) == deployv1alpha1.ReasonAnalysisRunning || reason(deployv1alpha1.ConditionPromoted) == deployv1alpha1.ReasonSmokeTestRunning:
		return deployv1alpha1.PhaseVerifying
	case reason(deployv1alpha1.ConditionGreenAvailable) == deployv1alpha1.ReasonWaitingForEndpoints:
		return deployv1alpha1.PhaseVerifying
	case reason(deployv1alpha1.ConditionGreenAvailable) == deployv1alpha1.ReasonProgressing:
		return deployv1alpha1.PhaseDeploying
	case isTrue(deployv1alpha1.ConditionMigrationSucceeded) && isTrue(deployv1alpha1.ConditionBackupSucceeded):
		return deployv1alpha1.PhaseDeploying
	case reason(deployv1alpha1.ConditionMigrationSucceeded) == deployv1alpha1.ReasonMigrationRunning:
		return deployv1alpha1.PhaseMigrating
	case reason(deployv1alpha1.ConditionBackupSucceeded) == deployv1alpha1.ReasonBackupRunning:
		return deployv1alpha1.PhaseBackingUp
	default:
		return deployv1alpha1.PhasePending
	}
}

// analysisMessage describes the running analysis count.
func analysisMessage(s *releaseScope) string {
	a := s.release.Status.Analysis
	if a == nil {
		return "starting"
	}
	msg := fmt.Sprintf("%d consecutive passes, %d failures, %d inconclusive", a.ConsecutiveSuccesses, a.Failures, a.Inconclusive)
	if a.Message != "" {
		msg += "; last: " + a.Message
	}
	return msg
}
