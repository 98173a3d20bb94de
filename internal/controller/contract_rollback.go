package controller

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// reconcileRollbackPastContract refuses a revision the release ran before a later
// revision's contract step started: its code was written for the schema the contract
// has since changed (a dropped column), so deploying it could break on its first
// request. It stops the release before any Job or Deployment change, traffic staying
// where it is, unless the allow-rollback-past-contract annotation names the revision.
// A revision never seen before is a roll-forward and goes ahead.
func (r *SoftFactoryReleaseReconciler) reconcileRollbackPastContract(_ context.Context, s *releaseScope) (stepResult, error) {
	refused := s.failure != nil && s.failure.reason == deployv1alpha1.ReasonSchemaContracted
	if s.failure != nil && !refused {
		return next(), nil
	}
	contracted, c := s.contractSince(s.revision)
	allowed := s.release.Annotations[deployv1alpha1.AllowRollbackPastContractAnnotation] == s.revision
	if c == nil || allowed {
		if refused {
			// Refused in an earlier pass (its history says so); the annotation now lets it go.
			s.failure = nil
			r.event(s, corev1.EventTypeNormal, deployv1alpha1.ReasonSchemaContracted, "Allow",
				"Revision %s goes ahead past a contracted schema: the %s annotation names it", s.revision, deployv1alpha1.AllowRollbackPastContractAnnotation)
		}
		return next(), nil
	}
	s.failure = s.failed(deployv1alpha1.ReasonSchemaContracted,
		fmt.Sprintf("Revision %s was released before revision %s's contract step changed the schema (Job %s, %s): its code may fail on the contracted schema. "+
			"The release stopped before any Job or Deployment change;", s.revision, contracted, c.JobName, c.StartedAt.UTC().Format(time.RFC3339)),
		"traffic never moved",
		fmt.Sprintf("Apply a newer spec, or, if %s works on it, set the annotation %s=%s (`kubectl annotate sfrelease %s %s=%s`).",
			s.revision, deployv1alpha1.AllowRollbackPastContractAnnotation, s.revision,
			s.release.Name, deployv1alpha1.AllowRollbackPastContractAnnotation, s.revision))
	return wait(), nil
}

// contractSince is the newest revision other than rev whose contract step started after
// the release had run rev, with that contract's record; "" and nil when there is none.
func (s *releaseScope) contractSince(rev string) (string, *deployv1alpha1.StepRecord) {
	st := &s.release.Status
	for i := range st.Revisions {
		c := st.Revisions[i]
		if c.Revision == rev || c.Contract == nil || c.Contract.StartedAt == nil {
			continue
		}
		if s.ranBefore(rev, i, c.Contract.StartedAt.Time) {
			return c.Revision, c.Contract
		}
	}
	return "", nil
}

// ranBefore reports whether the release ran rev before at: its history or its step
// records say so, or its record is older than the record at index contracted (records
// are kept newest first).
func (s *releaseScope) ranBefore(rev string, contracted int, at time.Time) bool {
	st := &s.release.Status
	if h := historyRecord(s.release, rev); h != nil {
		if before(h.PromotedAt, at) || before(h.FinishedAt, at) {
			return true
		}
	}
	for i := range st.Revisions {
		rec := &st.Revisions[i]
		if rec.Revision != rev {
			continue
		}
		if i > contracted {
			return true
		}
		steps := []*deployv1alpha1.StepRecord{rec.Backup, rec.Migration, rec.ContractBackup, rec.Contract}
		if rec.Restore != nil {
			steps = append(steps, rec.Restore.Job)
		}
		for _, step := range steps {
			if step != nil && before(step.StartedAt, at) {
				return true
			}
		}
	}
	return false
}

// before: t is set and earlier than at.
func before(t *metav1.Time, at time.Time) bool {
	return t != nil && t.Before(&metav1.Time{Time: at})
}
