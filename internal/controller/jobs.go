package controller

import (
	"context"
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// jobOutcome judges a Job by its terminal conditions, never by pod counters: the Job
// controller sets Complete or Failed once, after retries and deadlines are spent.
func jobOutcome(j *batchv1.Job) jobPhase {
	for _, c := range j.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			return jobSucceeded
		case batchv1.JobFailed:
			return jobFailed
		}
	}
	return jobRunning
}

// jobFailureMessage is the Job's own account of why it failed (BackoffLimitExceeded,
// DeadlineExceeded, ...).
func jobFailureMessage(j *batchv1.Job) string {
	for _, c := range j.Status.Conditions {
		if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
			return fmt.Sprintf("%s: %s", c.Reason, c.Message)
		}
	}
	return "failed"
}

// ensureJob returns the Job of this name, creating it from build() only when none
// exists (and returning nil when the release has stopped and it does not exist). A Job
// is never updated or recreated: its name is derived from the revision, so the Job this
// release controls under that name is the one run of this step for this revision,
// including one made by an earlier operator process.
func (r *SoftFactoryReleaseReconciler) ensureJob(ctx context.Context, s *releaseScope, name string, build func() *batchv1.Job) (*batchv1.Job, error) {
	if j, ok := s.jobs[name]; ok {
		return j, nil
	}
	if s.failure != nil {
		// A stopped release starts nothing new, even if someone deleted a Job.
		return nil, nil
	}
	return r.createJob(ctx, s, name, build)
}

// createJob creates the Job build() makes, owned by the release. A name already taken
// is used only when this release controls the Job there (the cache had not caught up);
// anything else is an ownership conflict (claimExisting).
func (r *SoftFactoryReleaseReconciler) createJob(ctx context.Context, s *releaseScope, name string, build func() *batchv1.Job) (*batchv1.Job, error) {
	job := build()
	if err := controllerutil.SetControllerReference(s.release, job, r.Scheme()); err != nil {
		return nil, err
	}
	if err := r.Create(ctx, job); err != nil {
		if !apierrors.IsAlreadyExists(err) {
			return nil, err
		}
		// Either ours, which the cache has not caught up with, or a Job someone else
		// made under the predicted name: that one never counts as this step's run
		// (a pre-made "backup" running `true` must not open the migration gate).
		claimed, err := r.claimExisting(ctx, s, job)
		if err != nil {
			return nil, err
		}
		existing := claimed.(*batchv1.Job)
		s.jobs[name] = existing
		return existing, nil
	}
	s.jobs[name] = job
	r.event(s, corev1.EventTypeNormal, deployv1alpha1.ReasonJobCreated, "Create", "Created Job %s for revision %s", name, s.revision)
	return job, nil
}

// jobFactOf turns a Job into a step fact; no Job is a pending one.
func jobFactOf(j *batchv1.Job) jobFact {
	if j == nil {
		return jobFact{phase: jobPending}
	}
	f := jobFact{phase: jobOutcome(j), name: j.Name}
	if f.phase == jobFailed {
		f.message = jobFailureMessage(j)
	}
	return f
}
