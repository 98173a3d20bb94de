package controller

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// A retry (the retry annotation, `kubectl sfrelease retry`, the Argo CD action) takes a
// revision that stopped for good back into the runbook without a spec change. It re-runs
// only the steps that failed, each under the next attempt's Job name (attempt =
// len(rec.Retries)+1, the convention every step follows), and keeps every step that
// succeeded: a migration that succeeded never runs a second time. The revision's history
// record (what made reconcileStoppedRelease stop it) is removed; the RetryRecord keeps
// its reason and message, so nothing the user was told is lost.
//
// The data gate holds across a retry: a migration that is retried after its container
// ran gets a fresh verified backup first (the database changed since the dump), and a
// revision whose restore runs is retried only once the restore is done.

// reconcileRetry acts on the retry annotation once per distinct value. A value it
// cannot act on is refused with an Event saying why, and changes nothing.
func (r *SoftFactoryReleaseReconciler) reconcileRetry(ctx context.Context, s *releaseScope) (stepResult, error) {
	rel := s.release
	value := rel.Annotations[deployv1alpha1.RetryAnnotation]
	if value == "" {
		return next(), nil
	}
	rec := rel.Status.RevisionRecordOf(s.revision)
	if rec != nil && rec.Retried(value) {
		// Acted on already: the annotation may stay on the object.
		return next(), nil
	}
	if rev, _ := deployv1alpha1.RetryRequestRevision(value); rev != s.revision {
		if earlier := rel.Status.RevisionRecordOf(rev); earlier != nil && earlier.Retried(value) {
			// Left over from an earlier revision's retry, like a stale promote annotation.
			return next(), nil
		}
	}
	if why := retryRefusal(s, value, rec); why != "" {
		r.retryNotices.once(s, value, why, func() {
			r.event(s, corev1.EventTypeWarning, deployv1alpha1.ReasonRetryRefused, "Retry", "Retry %s refused: %s; nothing changed", value, why)
		})
		return next(), nil
	}
	if why := retryMustWait(s, rec); why != "" {
		r.retryNotices.once(s, value, why, func() {
			r.event(s, corev1.EventTypeNormal, deployv1alpha1.ReasonRetrying, "Retry", "Retry %s of revision %s waits: %s; it acts then", value, s.revision, why)
		})
		return next(), nil
	}
	failure := *historyRecord(rel, s.revision) // a copy: the record is removed below
	rec = s.currentRecord()
	if err := r.endStepsThatCanNeverRun(ctx, s, rec); err != nil {
		return wait(), err
	}
	plan := planRetry(s, rec, int32(len(rec.Retries))+2)
	// The new backup Job first: should it fail to be created, nothing is recorded and the
	// next pass takes the whole retry again (its Job name is the same, so it is found).
	if plan.backupAttempt > 0 {
		if started, err := r.startBackup(ctx, s, plan.backupAttempt); !started {
			return wait(), err
		}
	}
	rec = s.currentRecord()
	at := metav1.NewTime(s.now)
	rec.Retries = append(rec.Retries, deployv1alpha1.RetryRecord{Request: value, At: &at, Reason: failure.Reason, Message: failure.Message})
	clearFailedSteps(rec)
	if a := rel.Status.Analysis; a != nil && a.Revision == s.revision {
		// The analysis counts start again on the retried rollout.
		rel.Status.Analysis = nil
	}
	removeHistory(rel, s.revision)
	r.event(s, corev1.EventTypeNormal, deployv1alpha1.ReasonRetrying, "Retry", "Retrying revision %s (retry %d of %d) after %s: %s",
		s.revision, len(rec.Retries), deployv1alpha1.MaxRetries, failure.Reason, plan.describe())
	return next(), nil
}

// retryRefusal says why a retry annotation value cannot be acted on, or "".
func retryRefusal(s *releaseScope, value string, rec *deployv1alpha1.RevisionRecord) string {
	rel := s.release
	rev, ok := deployv1alpha1.RetryRequestRevision(value)
	switch {
	case !ok:
		return fmt.Sprintf("the value of %s must be <revision> or <revision>/<N> (use `kubectl sfrelease retry %s`)", deployv1alpha1.RetryAnnotation, rel.Name)
	case rev != s.revision:
		return fmt.Sprintf("it names revision %s, but the release's current revision is %s", rev, s.revision)
	}
	failure := historyRecord(rel, s.revision)
	if failure == nil || failure.Outcome == deployv1alpha1.OutcomePromoted || failure.Outcome == deployv1alpha1.OutcomeSuperseded {
		return fmt.Sprintf("revision %s has not failed: there is nothing to retry (a value left on the release acts if the revision fails while it is set)", s.revision)
	}
	if failure.Reason == deployv1alpha1.ReasonMigrationLost {
		return fmt.Sprintf("revision %s's migration Job was deleted before it told how it ended, so whether it changed the database is unknown: "+
			"check the database, then apply a new spec", s.revision)
	}
	if !deployv1alpha1.RetryableReason(failure.Reason) {
		return fmt.Sprintf("revision %s stopped with %s, which a retry does not clear", s.revision, failure.Reason)
	}
	if failure.Reason == deployv1alpha1.ReasonAborted && rel.Annotations[deployv1alpha1.AbortAnnotation] == s.revision {
		return fmt.Sprintf("the %s annotation still names revision %s and would abort it again: remove it "+
			"(`kubectl sfrelease retry %s` does both)", deployv1alpha1.AbortAnnotation, s.revision, rel.Name)
	}
	if rec != nil && len(rec.Retries) >= deployv1alpha1.MaxRetries {
		return fmt.Sprintf("revision %s has been retried %d times, the most allowed: apply a new spec", s.revision, len(rec.Retries))
	}
	if rec != nil {
		for _, st := range []*deployv1alpha1.StepRecord{rec.Migration, rec.ContractBackup, rec.Contract} {
			if st != nil && st.State == deployv1alpha1.StepLost {
				return fmt.Sprintf("Job %s was deleted before it told how it ended, so whether it changed the database is unknown: "+
					"check the database, then apply a new spec", st.JobName)
			}
		}
	}
	return ""
}

// retryMustWait says what a retry that will be acted on waits for, or "": a step that
// failed but whose Job still runs (a pod that can never start keeps its Job active until
// its deadline; a second Job of the same step must never run beside it), a restore under
// way, or another revision's migration (never interrupted, never run beside another).
func retryMustWait(s *releaseScope, rec *deployv1alpha1.RevisionRecord) string {
	if rec != nil {
		if restoreUnderWay(rec) {
			return fmt.Sprintf("the restore of revision %s's dump is under way (%s)", s.revision, rec.Restore.Phase)
		}
		for _, st := range []*deployv1alpha1.StepRecord{rec.Backup, rec.Migration, rec.ContractBackup, rec.Contract} {
			if st != nil && st.State == deployv1alpha1.StepStarted && !s.jobCanNeverRun(s.jobs[st.JobName]) {
				return fmt.Sprintf("Job %s still runs (until it ends or reaches its deadline); a step never runs twice at once", st.JobName)
			}
		}
	}
	for i := range s.release.Status.Revisions {
		if other := &s.release.Status.Revisions[i]; other.Revision != s.revision && restoreUnderWay(other) {
			return fmt.Sprintf("the restore of revision %s's dump is under way (%s)", other.Revision, other.Restore.Phase)
		}
	}
	if j := s.supersededMigrationRunning(); j != nil {
		return fmt.Sprintf("migration Job %s of revision %s still runs; a migration is never interrupted", j.Name, j.Labels[deployv1alpha1.LabelRevision])
	}
	return ""
}

// jobCanNeverRun: the Job's pod can never start (no container of it ran, and its pod
// says why in words no retry heals), so it holds nothing a retry must wait for.
func (s *releaseScope) jobCanNeverRun(j *batchv1.Job) bool {
	return j != nil && jobOutcome(j) == jobRunning && s.migrationCanNeverRun(j)
}

// endStepsThatCanNeverRun deletes the Jobs of the revision's started steps whose pods can
// never start, and records those steps as failed: such a Job stays active until its
// deadline, and the Job controller keeps trying to create its pod, so one that the
// cause's fix lets start later (a namespace's Pod Security level lowered, an image
// rebuilt) would run beside the retry's new attempt. No container of it ever ran, so
// nothing is lost and nothing needs restoring.
func (r *SoftFactoryReleaseReconciler) endStepsThatCanNeverRun(ctx context.Context, s *releaseScope, rec *deployv1alpha1.RevisionRecord) error {
	for _, st := range []*deployv1alpha1.StepRecord{rec.Backup, rec.Migration, rec.ContractBackup, rec.Contract} {
		if st == nil || st.State != deployv1alpha1.StepStarted || !s.jobCanNeverRun(s.jobs[st.JobName]) {
			continue
		}
		j := s.jobs[st.JobName]
		err := r.Delete(ctx, j, client.PropagationPolicy(metav1.DeletePropagationBackground), client.Preconditions{UID: &j.UID})
		if client.IgnoreNotFound(err) != nil {
			return err
		}
		now := metav1.NewTime(s.now)
		st.State, st.FinishedAt = deployv1alpha1.StepFailed, &now
		st.Message = fmt.Sprintf("Job %s was deleted by a retry: its pod could never start (%s), and no container of it ran", j.Name, st.PodReason)
		r.event(s, corev1.EventTypeNormal, deployv1alpha1.ReasonRetrying, "Retry",
			"Deleted Job %s, whose pod could never start, so that it never runs beside its retry", j.Name)
	}
	return nil
}

// retryPlan is what a retry runs again and what it keeps, in words for the Event.
type retryPlan struct {
	// backupAttempt is the attempt of the fresh backup the retry takes first; 0 for none.
	backupAttempt int32
	rerun, kept   []string
}

func (p retryPlan) describe() string {
	msg := "re-running " + strings.Join(p.rerun, ", then ")
	if len(p.rerun) == 0 {
		msg = "re-running the steps after the last one that succeeded"
	}
	if len(p.kept) > 0 {
		msg += "; kept, as they succeeded: " + strings.Join(p.kept, ", ")
	}
	return msg
}

// planRetry decides, from the revision's records, which steps run again. A fresh backup
// is taken when the backup failed, or when a migration container ran (the dump no
// longer is the database the retried migration runs on; and a restore, if one ran,
// loaded an older state). A migration that never ran may reuse its backup while it is
// within spec.backup.maxAge (reconcileBackup takes a new one past it).
func planRetry(s *releaseScope, rec *deployv1alpha1.RevisionRecord, attempt int32) retryPlan {
	rel := s.release
	var p retryPlan
	failed := func(st *deployv1alpha1.StepRecord) bool {
		return st != nil && (st.State == deployv1alpha1.StepFailed || st.State == deployv1alpha1.StepLost)
	}
	migrationFailed := failed(rec.Migration)
	migrationRan := migrationFailed && (rec.Migration.ContainerStarted || restoreStarted(rec))
	if rel.Spec.Backup != nil && rel.Spec.Database != nil && rec.Backup != nil && (failed(rec.Backup) || migrationRan) {
		p.backupAttempt = max(rec.Backup.Attempt, 1) + 1
		why := "the backup failed"
		if migrationRan {
			why = "the database changed since the last dump"
		}
		p.rerun = append(p.rerun, fmt.Sprintf("a fresh backup as Job %s (%s)", rel.BackupAttemptJobName(s.revision, p.backupAttempt), why))
	} else if rec.Backup != nil && rec.Backup.State == deployv1alpha1.StepSucceeded {
		p.kept = append(p.kept, "the backup "+rec.Backup.File)
	}
	switch {
	case migrationFailed || (failed(rec.Backup) && rel.Spec.Migration != nil):
		p.rerun = append(p.rerun, "the migration as Job "+rel.MigrationAttemptJobName(s.revision, attempt))
	case rec.Migration != nil && rec.Migration.State == deployv1alpha1.StepSucceeded:
		p.kept = append(p.kept, "the migration "+rec.Migration.JobName)
	}
	if failed(rec.Contract) || failed(rec.ContractBackup) {
		p.rerun = append(p.rerun, "the contract step as Job "+rel.ContractJobName(s.revision, attempt)+" on a fresh backup")
	} else {
		p.rerun = append(p.rerun, fmt.Sprintf("the rollout of %s and its verification", rel.DeploymentName(s.target)))
		if rel.Spec.Strategy.BlueGreen.SmokeTest != nil {
			if job, _ := s.smokeTestJob(); job != nil && jobOutcome(job) == jobSucceeded {
				p.kept = append(p.kept, "the smoke test "+job.Name)
			} else {
				p.rerun = append(p.rerun, "the smoke test as Job "+rel.SmokeTestAttemptJobName(s.revision, attempt))
			}
		}
		if s.compatibilityCheckRequired() {
			if job, _ := s.compatibilityCheckJob(); job != nil && jobOutcome(job) == jobSucceeded {
				p.kept = append(p.kept, "the compatibility check "+job.Name)
			} else {
				p.rerun = append(p.rerun, "the compatibility check as Job "+rel.CompatibilityCheckJobName(s.revision, attempt))
			}
		}
	}
	return p
}

// clearFailedSteps replaces each failed step's record by nil, so that the step runs
// again under the next attempt's name. Written over every step record a revision has,
// so a step added later is covered by adding it here. The backup is not cleared here:
// the retry has already recorded its fresh attempt (its own Attempt counter names it).
// A failed contract step takes its fresh backup again too: the contract may have
// changed the database since that dump.
func clearFailedSteps(rec *deployv1alpha1.RevisionRecord) {
	failed := func(st *deployv1alpha1.StepRecord) bool {
		return st != nil && st.State == deployv1alpha1.StepFailed
	}
	if failed(rec.Migration) {
		rec.Migration = nil
	}
	if failed(rec.Contract) {
		rec.Contract, rec.ContractBackup = nil, nil
	}
	if failed(rec.ContractBackup) {
		rec.ContractBackup = nil
	}
	if rec.Restore != nil && rec.Restore.Phase == deployv1alpha1.RestoreAwaitingApproval {
		// The question was about the failed attempt; a retried migration that fails
		// after running asks it again, about its own fresh dump.
		rec.Restore = nil
	}
}

// removeHistory drops a revision's history record: the retried revision is in flight
// again, and its RetryRecord keeps how it had failed.
func removeHistory(rel *deployv1alpha1.SoftFactoryRelease, revision string) {
	h := rel.Status.History[:0]
	for _, rec := range rel.Status.History {
		if rec.Revision != revision {
			h = append(h, rec)
		}
	}
	if len(h) == 0 {
		h = nil
	}
	rel.Status.History = h
}

// attempt is the current revision's attempt: 1, plus one per retry. Every step names its
// Job after it (the Job of a step that ran before a retry keeps its name).
func (s *releaseScope) attempt() int32 {
	if rec := s.release.Status.RevisionRecordOf(s.revision); rec != nil {
		return int32(len(rec.Retries)) + 1
	}
	return 1
}

// retriedSinceProgressStarted: the revision was retried after the target colour got its
// progress-started annotation, so the deadline counts afresh from the retry. Both times
// come from the operator's clock; the annotation has whole seconds.
func retriedSinceProgressStarted(s *releaseScope, d *appsv1.Deployment) bool {
	rec := s.release.Status.RevisionRecordOf(s.revision)
	if rec == nil || len(rec.Retries) == 0 {
		return false
	}
	last := rec.Retries[len(rec.Retries)-1].At
	started, err := time.Parse(time.RFC3339, d.Annotations[deployv1alpha1.ProgressStartedAnnotation])
	return last != nil && (err != nil || started.Before(last.Truncate(time.Second)))
}

// retryNotices keeps a refused (or waiting) retry value from being announced on every
// pass while it stays on the release: once per value and reason in this process.
type retryNotices struct {
	mu   sync.Mutex
	seen map[retryNoticeKey]bool
}

type retryNoticeKey struct {
	release    types.UID
	value, why string
}

// maxRetryNotices bounds the memory; past it, it starts over (a notice is then repeated once).
const maxRetryNotices = 4096

func (n *retryNotices) once(s *releaseScope, value, why string, announce func()) {
	n.mu.Lock()
	defer n.mu.Unlock()
	key := retryNoticeKey{release: s.release.UID, value: value, why: why}
	if n.seen[key] {
		return
	}
	if n.seen == nil || len(n.seen) >= maxRetryNotices {
		n.seen = map[retryNoticeKey]bool{}
	}
	n.seen[key] = true
	announce()
}
