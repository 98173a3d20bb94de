package controller

import (
	"context"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/utils/ptr"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
	"github.com/softfactory/release-operator/internal/backup"
)

// The contract step (spec.migration.contract) is the destructive half of an
// expand/contract migration: it drops what the serving revision no longer reads. It runs
// once per revision (per attempt), only after the flip, once the post-promotion analysis
// is over, and once the old colour is at 0 replicas with none of its pods left: never
// while a pod of the old revision can still serve or be flipped back to instantly. A
// fresh verified dump comes first. A failed contract is reported, never undone by a
// restore: that would throw away every write since the flip.

// contractPhase is where the current revision's contract step stands.
type contractPhase int

const (
	contractNotRequired contractPhase = iota
	contractPending
	contractBackupRunning
	contractRunning
	contractCompleted
	contractFailed
)

type contractFact struct {
	phase contractPhase
	job   string // the Job of the phase: the backup's or the contract's
	// message is, while pending, what the step waits for ("" once nothing holds it) and,
	// once failed, the whole failure message.
	message string
	issue   *podIssue     // why a running Job's pod does not run, as it says
	recheck time.Duration // when to look again at a running Job with no pod yet
}

// contractBackupRequired: the contract step is preceded by a dump wherever the
// migration is (spec.backup and spec.database).
func contractBackupRequired(r *deployv1alpha1.SoftFactoryRelease) bool {
	return r.Spec.Backup != nil && r.Spec.Database != nil
}

// reconcileContract starts the contract step's backup, then its Job, once nothing holds
// it, and reports where it stands. It is the last step of both lists: nothing waits
// for it, but the release is not Ready until it completed.
func (r *SoftFactoryReleaseReconciler) reconcileContract(ctx context.Context, s *releaseScope) (stepResult, error) {
	s.observeContractFailure()
	if s.contract.phase == contractPending && s.contract.message == "" {
		if err := r.startContractStep(ctx, s); err != nil {
			return wait(), err
		}
		s.observeContractFailure()
	}
	if s.contract.recheck > 0 {
		return nextAfter(s.contract.recheck), nil
	}
	return next(), nil
}

// observeContractFailure finds where the contract step stands and makes a failed one
// the revision's failure, as a failed expand step is: Degraded and Ready say so, history
// records it, and the retry annotation can clear it (retry.go). It is found again from
// the records on every pass, since a settled release does not run reconcileStoppedRelease;
// a failure it set earlier in the pass goes once a retry has cleared the records.
func (s *releaseScope) observeContractFailure() {
	s.contract = s.observeContract()
	switch {
	case s.contract.phase == contractFailed && s.failure == nil:
		s.failure = &failureFact{outcome: deployv1alpha1.OutcomeFailed, reason: deployv1alpha1.ReasonContractFailed, message: s.contract.message}
	case s.contract.phase != contractFailed && s.failure != nil && s.failure.reason == deployv1alpha1.ReasonContractFailed:
		s.failure = nil
	}
}

// startContractStep creates what comes next for this attempt: the backup, or, once it
// is verified, the contract Job; each is recorded in the pass that created it, and a
// recorded step is never created again (records.go).
func (r *SoftFactoryReleaseReconciler) startContractStep(ctx context.Context, s *releaseScope) error {
	rel := s.release
	attempt := s.attempt()
	if contractBackupRequired(rel) {
		name := rel.ContractBackupJobName(s.revision, attempt)
		b := s.currentRecord().ContractBackup
		if b == nil || b.JobName != name {
			job, err := r.ensureJob(ctx, s, name, func() *batchv1.Job {
				return buildContractBackupJob(rel, s.revision, attempt, backup.PreContractFileName(rel.Name, s.revision, s.now))
			})
			if job == nil || err != nil {
				return err
			}
			step := startedRecord(job, s.now)
			step.Attempt = attempt
			s.currentRecord().ContractBackup = step
			return nil
		}
		if b.State != deployv1alpha1.StepSucceeded {
			return nil
		}
	}
	job, err := r.ensureJob(ctx, s, rel.ContractJobName(s.revision, attempt), func() *batchv1.Job {
		return buildContractJob(rel, s.revision, attempt)
	})
	if job == nil || err != nil {
		return err
	}
	s.currentRecord().Contract = startedRecord(job, s.now)
	return nil
}

// observeContract is where the current revision's contract step stands, from its
// records and its Jobs' pods, without acting.
func (s *releaseScope) observeContract() contractFact {
	rel := s.release
	if contractSpecOf(rel) == nil {
		return contractFact{phase: contractNotRequired}
	}
	rec := rel.Status.RevisionRecordOf(s.revision)
	if rec == nil {
		return contractFact{phase: contractPending, message: s.contractHold(nil)}
	}
	if rec.Contract != nil {
		return s.contractJobFact(rec)
	}
	hold := s.contractHold(rec)
	b := rec.ContractBackup
	if !contractBackupRequired(rel) || b == nil || b.JobName != rel.ContractBackupJobName(s.revision, s.attempt()) {
		return contractFact{phase: contractPending, message: hold}
	}
	job := s.jobs[b.JobName]
	switch b.State {
	case deployv1alpha1.StepSucceeded:
		// Verified; the contract Job starts as soon as nothing holds it (again: someone
		// may have scaled the old colour up by hand in between).
		return contractFact{phase: contractPending, message: hold}
	case deployv1alpha1.StepFailed, deployv1alpha1.StepLost:
		words := s.jobLastWords(job, b.Message)
		return contractFact{phase: contractFailed, job: b.JobName, message: s.failed(deployv1alpha1.ReasonContractFailed,
			fmt.Sprintf("Backup Job %s before the contract step of revision %s failed (%s). No contract Job was run, so the schema is unchanged;",
				b.JobName, s.revision, words), "",
			fmt.Sprintf("Check `kubectl logs job/%s` (database reachable? volume full?), fix it, then retry the revision (annotation %s=%s) or apply a new spec.",
				b.JobName, deployv1alpha1.RetryAnnotation, s.revision)).message}
	}
	issue, recheck := s.runningJobIssue(job)
	if issue != nil && issue.permanent {
		return contractFact{phase: contractFailed, job: b.JobName, issue: issue, message: s.failed(deployv1alpha1.ReasonContractFailed,
			fmt.Sprintf("Backup Job %s before the contract step cannot start its pod, and this does not heal by itself: %s. No contract Job was run, so the schema is unchanged;",
				b.JobName, issue), "", whatToDo(issue)).message}
	}
	return contractFact{phase: contractBackupRunning, job: b.JobName, issue: issue, recheck: recheck}
}

// contractJobFact is the fact of a revision whose contract Job has started.
func (s *releaseScope) contractJobFact(rec *deployv1alpha1.RevisionRecord) contractFact {
	c := rec.Contract
	job := s.jobs[c.JobName]
	dump := "not taken (no spec.backup)"
	if rec.ContractBackup != nil && rec.ContractBackup.File != "" {
		dump = rec.ContractBackup.File + " on the backup volume"
	}
	retry := fmt.Sprintf("retry the revision (annotation %s=%s) or apply a new spec", deployv1alpha1.RetryAnnotation, s.revision)
	fail := func(what, todo string) contractFact {
		return contractFact{phase: contractFailed, job: c.JobName,
			message: s.failed(deployv1alpha1.ReasonContractFailed, what, "", todo).message}
	}
	switch c.State {
	case deployv1alpha1.StepSucceeded:
		return contractFact{phase: contractCompleted, job: c.JobName}
	case deployv1alpha1.StepLost:
		return fail(fmt.Sprintf("Contract Job %s was deleted before it reported how it ended: whether it changed the schema is unknown. "+
			"It is not run again, and the database is not restored (that would throw away every write since the flip);", c.JobName),
			fmt.Sprintf("Check the schema (the pre-contract dump is %s), then %s.", dump, retry))
	case deployv1alpha1.StepFailed:
		if !c.ContainerStarted {
			why := c.Message
			if c.PodReason != "" {
				why = c.PodReason + "; " + why
			}
			return fail(fmt.Sprintf("Contract Job %s failed before any container of it was seen running (%s): the schema is unchanged, and the database is not restored;",
				c.JobName, why), fmt.Sprintf("Check `kubectl describe job/%s` and its pods, fix the cause, then %s.", c.JobName, retry))
		}
		return fail(fmt.Sprintf("Contract Job %s failed (%s) after its container ran: the schema may be partly contracted. "+
			"The database is not restored: that would throw away every write since the flip;", c.JobName, s.jobLastWords(job, c.Message)),
			fmt.Sprintf("Check `kubectl logs job/%s`, make the contract safe to run again, then %s. The pre-contract dump is %s.", c.JobName, retry, dump))
	}
	issue, recheck := s.runningJobIssue(job)
	if issue != nil && issue.permanent && !c.ContainerStarted {
		return fail(fmt.Sprintf("Contract Job %s cannot start its pod, and this does not heal by itself: %s. No contract ran, so the schema is unchanged;",
			c.JobName, issue), whatToDo(issue))
	}
	return contractFact{phase: contractRunning, job: c.JobName, issue: issue, recheck: recheck}
}

// contractHold is what the contract step of the current revision waits for, in words,
// or "" when nothing holds it: the flip, its expand migration, the post-promotion
// analysis, and the old colour gone (scaled to 0, reporting no replica, no pod left).
func (s *releaseScope) contractHold(rec *deployv1alpha1.RevisionRecord) string {
	rel := s.release
	if !s.settled() {
		return fmt.Sprintf("the flip to revision %s", s.revision)
	}
	if rec == nil || rec.Migration == nil || rec.Migration.State != deployv1alpha1.StepSucceeded {
		return fmt.Sprintf("the expand migration (spec.migration) of revision %s to have succeeded", s.revision)
	}
	oldColor := s.activeColor.Other()
	old := s.deployments[oldColor]
	if spec := rel.Spec.Strategy.BlueGreen.PostPromotionAnalysis; spec != nil && old != nil {
		a := rel.Status.Analysis
		if a == nil || a.Revision != s.revision || a.Stage != deployv1alpha1.AnalysisPostPromotion || a.Result != deployv1alpha1.AnalysisPassed {
			return fmt.Sprintf("the post-promotion analysis of %s", rel.DeploymentName(s.activeColor))
		}
	}
	if old != nil && ptr.Deref(old.Spec.Replicas, 1) > 0 {
		if at, known := scaleDownDeadline(s, old); known {
			return fmt.Sprintf("the scale-down of %s at %s", old.Name, at.UTC().Format(time.RFC3339))
		}
		return fmt.Sprintf("%s to scale down to 0", old.Name)
	}
	if n := len(s.podsOfColor(oldColor)); n == 1 {
		return fmt.Sprintf("1 pod of %s still running", oldColor)
	} else if n > 1 {
		return fmt.Sprintf("%d pods of %s still running", n, oldColor)
	}
	if old != nil && !colorStopped(s, oldColor, old) {
		return fmt.Sprintf("%s to report 0 replicas", old.Name)
	}
	return ""
}
