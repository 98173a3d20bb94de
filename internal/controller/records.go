package controller

import (
	"context"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// The step records (status.revisions) are the operator's memory of what it started for
// each revision. A Job is a step's record only while it exists; the record outlives it,
// so the gates read the record: a deleted Job, a trimmed history or a restarted operator
// never makes a backup, migration or restore run twice.
//
// Write ordering: a record says "started" in the status write of the pass that created
// the Job. Should that write lose its optimistic lock, the next pass finds the Job under
// its deterministic name and records it then (adoptJobs). Once recorded, a Job that is
// gone is never recreated: a step that was running when its Job vanished is Lost.

// currentRecord is the current revision's record, added (first, newest) when missing.
func (s *releaseScope) currentRecord() *deployv1alpha1.RevisionRecord {
	st := &s.release.Status
	if rec := st.RevisionRecordOf(s.revision); rec != nil {
		return rec
	}
	st.Revisions = append([]deployv1alpha1.RevisionRecord{{Revision: s.revision}}, st.Revisions...)
	return &st.Revisions[0]
}

// startedRecord is the record of a step whose Job this pass created or found.
func startedRecord(job *batchv1.Job, now time.Time) *deployv1alpha1.StepRecord {
	started := metav1.NewTime(now)
	if !job.CreationTimestamp.IsZero() {
		started = job.CreationTimestamp
	}
	rec := &deployv1alpha1.StepRecord{
		JobName:   job.Name,
		State:     deployv1alpha1.StepStarted,
		StartedAt: &started,
		File:      job.Annotations[deployv1alpha1.BackupFileAnnotation],
	}
	recordJobOutcome(rec, job, now)
	return rec
}

// recordJobOutcome moves a started record to the outcome its Job reports. A finished
// record is final.
func recordJobOutcome(rec *deployv1alpha1.StepRecord, job *batchv1.Job, now time.Time) {
	if rec.State != deployv1alpha1.StepStarted {
		return
	}
	finished := metav1.NewTime(now)
	switch jobOutcome(job) {
	case jobSucceeded:
		if job.Status.CompletionTime != nil {
			finished = *job.Status.CompletionTime
		}
		rec.State, rec.FinishedAt = deployv1alpha1.StepSucceeded, &finished
	case jobFailed:
		for _, c := range job.Status.Conditions {
			if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue && !c.LastTransitionTime.IsZero() {
				finished = c.LastTransitionTime
			}
		}
		rec.State, rec.FinishedAt, rec.Message = deployv1alpha1.StepFailed, &finished, jobFailureMessage(job)
	}
}

// syncRecords brings every started step of every recorded revision up to date with its
// Job, and records the current revision's Jobs that no record names yet.
func (r *SoftFactoryReleaseReconciler) syncRecords(ctx context.Context, s *releaseScope) error {
	s.adoptJobs()
	for i := range s.release.Status.Revisions {
		rec := &s.release.Status.Revisions[i]
		steps := []*deployv1alpha1.StepRecord{rec.Backup, rec.Migration, rec.ContractBackup, rec.Contract}
		if rec.Restore != nil {
			steps = append(steps, rec.Restore.Job)
		}
		for _, step := range steps {
			if step == nil || step.State != deployv1alpha1.StepStarted {
				continue
			}
			job := s.jobs[step.JobName]
			if job == nil {
				gone, err := r.jobGone(ctx, s.release.Namespace, step.JobName)
				if err != nil {
					return err
				}
				if !gone {
					// Not in the cache yet (just created): look again on its watch event.
					continue
				}
				now := metav1.NewTime(s.now)
				step.State, step.FinishedAt = deployv1alpha1.StepLost, &now
				step.Message = fmt.Sprintf("Job %s was deleted before it reported how it ended", step.JobName)
				continue
			}
			recordJobOutcome(step, job, s.now)
		}
		if rec.Migration != nil {
			s.observeMigrationPods(rec.Migration)
		}
		if rec.Contract != nil {
			s.observeMigrationPods(rec.Contract)
		}
	}
	return nil
}

// adoptJobs records the current revision's Jobs that exist but that no record names:
// made by an operator without records, or by a pass whose status write was lost.
func (s *releaseScope) adoptJobs() {
	rel := s.release
	existing := rel.Status.RevisionRecordOf(s.revision)
	adopt := func(has func(*deployv1alpha1.RevisionRecord) bool, name string, set func(*deployv1alpha1.RevisionRecord, *deployv1alpha1.StepRecord)) {
		job := s.jobs[name]
		if job == nil || (existing != nil && has(existing)) {
			return
		}
		existing = s.currentRecord()
		set(existing, startedRecord(job, s.now))
	}
	adopt(func(rec *deployv1alpha1.RevisionRecord) bool { return rec.Backup != nil }, rel.BackupJobName(s.revision),
		func(rec *deployv1alpha1.RevisionRecord, step *deployv1alpha1.StepRecord) {
			step.Attempt = 1
			rec.Backup = step
		})
	// The migration of the current attempt: a retry cleared the record of the one before.
	adopt(func(rec *deployv1alpha1.RevisionRecord) bool { return rec.Migration != nil }, rel.MigrationAttemptJobName(s.revision, s.attempt()),
		func(rec *deployv1alpha1.RevisionRecord, step *deployv1alpha1.StepRecord) { rec.Migration = step })
	// The contract step's Jobs under the current attempt's names (contract.go).
	attempt := s.attempt()
	adopt(func(rec *deployv1alpha1.RevisionRecord) bool {
		return rec.ContractBackup != nil && rec.ContractBackup.JobName == rel.ContractBackupJobName(s.revision, attempt)
	}, rel.ContractBackupJobName(s.revision, attempt),
		func(rec *deployv1alpha1.RevisionRecord, step *deployv1alpha1.StepRecord) {
			step.Attempt = attempt
			rec.ContractBackup = step
		})
	adopt(func(rec *deployv1alpha1.RevisionRecord) bool { return rec.Contract != nil }, rel.ContractJobName(s.revision, attempt),
		func(rec *deployv1alpha1.RevisionRecord, step *deployv1alpha1.StepRecord) { rec.Contract = step })
	// A restore Job found without a record already ran without the operator stopping the
	// writers first; it is recorded as it stands and never run again.
	adopt(func(rec *deployv1alpha1.RevisionRecord) bool { return rec.Restore != nil && rec.Restore.Job != nil }, rel.RestoreJobName(s.revision),
		func(rec *deployv1alpha1.RevisionRecord, step *deployv1alpha1.StepRecord) {
			if rec.Restore == nil {
				rec.Restore = &deployv1alpha1.RestoreRecord{}
			}
			rec.Restore.Phase, rec.Restore.Job = deployv1alpha1.RestoreRestoring, step
		})
}

// jobGone asks the API server, not the cache, whether a recorded Job is gone: the cache
// may simply not have seen a Job created a moment ago, and a record marked Lost is final.
func (r *SoftFactoryReleaseReconciler) jobGone(ctx context.Context, namespace, name string) (bool, error) {
	err := r.apiReader().Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &batchv1.Job{})
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	return false, err
}

// jobFactOfRecord is a step's fact as its record tells it; no record is a pending step.
func jobFactOfRecord(rec *deployv1alpha1.StepRecord) jobFact {
	if rec == nil {
		return jobFact{phase: jobPending}
	}
	f := jobFact{name: rec.JobName, message: rec.Message}
	switch rec.State {
	case deployv1alpha1.StepSucceeded:
		f.phase = jobSucceeded
	case deployv1alpha1.StepFailed, deployv1alpha1.StepLost:
		f.phase = jobFailed
	default:
		f.phase = jobRunning
	}
	return f
}

// maxRevisionRecords bounds status.revisions (as the CRD does) against a release failing
// with a restore on every revision for years.
const maxRevisionRecords = 256

// trimRecords keeps the records of the revisions the operator may still act on: the
// current one, the serving one, those a colour's Deployment runs, those in history, and
// every one with a restore started (so it never runs twice) or a contract started (its
// record is what refuses a rollback past it, contract_rollback.go). The rest go, and with them,
// later, their finished Jobs (reconcileJobRetention).
func trimRecords(s *releaseScope) {
	st := &s.release.Status
	keep := keptRevisions(s)
	kept := st.Revisions[:0]
	for _, rec := range st.Revisions {
		if keep[rec.Revision] || restoreStarted(&rec) || rec.Contract != nil {
			kept = append(kept, rec)
		}
	}
	if len(kept) > maxRevisionRecords {
		kept = kept[:maxRevisionRecords]
	}
	if len(kept) == 0 {
		kept = nil
	}
	st.Revisions = kept
}

// keptRevisions are the revisions whose records stay, restores aside: the live ones
// and those in history.
func keptRevisions(s *releaseScope) map[string]bool {
	keep := liveRevisions(s)
	for _, h := range s.release.Status.History {
		keep[h.Revision] = true
	}
	return keep
}

// restoreStarted: the operator stopped writers or ran a restore for this revision.
func restoreStarted(rec *deployv1alpha1.RevisionRecord) bool {
	return rec.Restore != nil && rec.Restore.Phase != deployv1alpha1.RestoreAwaitingApproval
}

// observeMigrationPods records, as soon as it is seen, that a container of the migration
// Job ran: the Job controller deletes the pods of a Job past its deadline, and only a
// migration that ran may be undone by a restore. While none has, it keeps the pods' own
// reason for not running.
func (s *releaseScope) observeMigrationPods(m *deployv1alpha1.StepRecord) {
	job := s.jobs[m.JobName]
	if job == nil || m.ContainerStarted {
		return
	}
	// A pod that ran to completion leaves the cache (cacheshape), but the Job counts it: a
	// container ran even when the Job still failed (its deadline passed as the pod ended).
	if job.Status.Succeeded > 0 {
		m.ContainerStarted, m.PodReason = true, ""
		return
	}
	for _, p := range s.podsOfJob(job) {
		if containerStarted(p) {
			m.ContainerStarted, m.PodReason = true, ""
			return
		}
		if why := podWaitingReason(p); why != "" {
			m.PodReason = why
		}
	}
}

// podWaitingReason is why a pod's containers do not run, in the kubelet's or the
// scheduler's words ("ImagePullBackOff: Back-off pulling image ..."), or "".
func podWaitingReason(p *corev1.Pod) string {
	for _, cs := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		if w := cs.State.Waiting; w != nil && w.Reason != "" && w.Reason != "ContainerCreating" && w.Reason != "PodInitializing" {
			return trimMessage(w.Reason + ": " + w.Message)
		}
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason != "" {
			return trimMessage(c.Reason + ": " + c.Message)
		}
	}
	return ""
}

// trimMessage keeps a message from a pod short enough for status.
func trimMessage(m string) string {
	const max = 512
	if len(m) > max {
		return m[:max] + "..."
	}
	return m
}
