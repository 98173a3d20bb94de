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
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

func newRetryCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "retry NAME",
		Short: "Retry a failed release without changing its spec",
		Long: `Retry the release's current revision after it failed: set deploy.softfactory.io/retry
to "<revision>/<attempt>", a value new for every retry. The operator re-runs only the
steps that failed, each as a new Job (the attempt number ends its name), and keeps every
step that succeeded: a migration that succeeded never runs twice. A migration retried
after its container ran first gets a fresh backup. A revision can be retried 20 times.

Refuses when the current revision has not failed, when it failed in a way a retry does
not clear (a migration Job deleted before it told how it ended: check the database and
apply a new spec), or when the operator has not observed the latest spec. An abort
annotation naming the revision is removed in the same write, so it does not abort the
retry.`,
		Example: `  kubectl sfrelease retry softfactory && kubectl sfrelease status softfactory`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.retry(cmd.Context(), args[0])
		},
	}
}

// retry writes the next retry value for the release's failed current revision. Like
// request, the check and the write are one step (the patch carries the checked
// resourceVersion).
func (o *options) retry(ctx context.Context, name string) error {
	client, _, err := o.releases()
	if err != nil {
		return err
	}
	var value, plan, already string
	var failure *deployv1alpha1.ReleaseRecord
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		r, err := getRelease(ctx, client, name)
		if err != nil {
			return err
		}
		failure, err = retryableFailure(r)
		if err != nil {
			return err
		}
		rec := r.Status.RevisionRecordOf(r.Status.CurrentRevision)
		retries := 0
		if rec != nil {
			retries = len(rec.Retries)
		}
		value = deployv1alpha1.NextRetryRequest(r.Status.CurrentRevision, retries)
		plan = retryPlan(r, failure, rec, int32(retries)+2)
		if r.Annotations[deployv1alpha1.RetryAnnotation] == value {
			already = " was already requested"
			return nil
		}
		annotations := map[string]any{deployv1alpha1.RetryAnnotation: value}
		if r.Annotations[deployv1alpha1.AbortAnnotation] == r.Status.CurrentRevision {
			annotations[deployv1alpha1.AbortAnnotation] = nil // it would abort the retry again
		}
		patch, err := json.Marshal(map[string]any{
			"metadata": map[string]any{"resourceVersion": r.ResourceVersion, "annotations": annotations},
		})
		if err != nil {
			return err
		}
		_, err = client.Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
		return err
	})
	if err != nil {
		return err
	}
	if already == "" {
		already = " requested"
	}
	// The annotation is written: a failed write to stdout must not turn that into an error.
	_, _ = fmt.Fprintf(o.Out, "softfactoryrelease/%s: retry %s of revision %s%s (it failed with %s)\n", name, value, failure.Revision, already, failure.Reason)
	_, _ = fmt.Fprintf(o.Out, "Runs again: %s\n", plan)
	_, _ = fmt.Fprintf(o.Out, "Follow it with: kubectl sfrelease status %s\n", name)
	return nil
}

// retryableFailure is the failure of the release's current revision a retry clears, or
// an error saying why there is nothing to retry.
func retryableFailure(r *deployv1alpha1.SoftFactoryRelease) (*deployv1alpha1.ReleaseRecord, error) {
	revision := r.Status.CurrentRevision
	if revision == "" {
		return nil, fmt.Errorf("softfactoryrelease/%s has no revision yet (the operator has not reported on it): nothing to retry", r.Name)
	}
	if !observed(r) {
		return nil, fmt.Errorf("the operator has not observed generation %d of softfactoryrelease/%s yet, so its revision %s "+
			"may be the previous spec's: wait for it (kubectl sfrelease status %s)", r.Generation, r.Name, revision, r.Name)
	}
	var failure *deployv1alpha1.ReleaseRecord
	for i := range r.Status.History {
		if h := &r.Status.History[i]; h.Revision == revision && h.Outcome != deployv1alpha1.OutcomePromoted && h.Outcome != deployv1alpha1.OutcomeSuperseded {
			failure = h
		}
	}
	if failure == nil {
		ready := ""
		if c := meta.FindStatusCondition(r.Status.Conditions, deployv1alpha1.ConditionReady); c != nil {
			ready = c.Reason
		}
		return nil, fmt.Errorf("softfactoryrelease/%s has not failed (phase %s, Ready reason %s, revision %s): nothing to retry",
			r.Name, orNone(string(r.Status.Phase)), orNone(ready), revision)
	}
	if !deployv1alpha1.RetryableReason(failure.Reason) {
		return nil, fmt.Errorf("softfactoryrelease/%s's revision %s stopped with %s, which a retry does not clear: %s",
			r.Name, revision, failure.Reason, failure.Message)
	}
	if rec := r.Status.RevisionRecordOf(revision); rec != nil && len(rec.Retries) >= deployv1alpha1.MaxRetries {
		return nil, fmt.Errorf("softfactoryrelease/%s's revision %s has been retried %d times, the most allowed: apply a new spec",
			r.Name, revision, len(rec.Retries))
	}
	return failure, nil
}

// retryPlan says, in words, what the operator will run again: the same decision it
// takes from the same records (internal/controller/retry.go).
func retryPlan(r *deployv1alpha1.SoftFactoryRelease, failure *deployv1alpha1.ReleaseRecord, rec *deployv1alpha1.RevisionRecord, attempt int32) string {
	rev := failure.Revision
	if rec == nil {
		rec = &deployv1alpha1.RevisionRecord{}
	}
	var steps, kept []string
	stepFailed := func(st *deployv1alpha1.StepRecord) bool {
		return st != nil && (st.State == deployv1alpha1.StepFailed || st.State == deployv1alpha1.StepLost)
	}
	migrationRan := stepFailed(rec.Migration) && rec.Migration.ContainerStarted
	switch {
	case stepFailed(rec.Backup):
		steps = append(steps, "the backup (a new attempt)")
	case migrationRan:
		steps = append(steps, "a fresh backup (the failed migration may have changed the database)")
	case rec.Backup != nil && rec.Backup.State == deployv1alpha1.StepSucceeded:
		kept = append(kept, "the backup "+rec.Backup.File)
	}
	switch {
	case stepFailed(rec.Migration) || (stepFailed(rec.Backup) && r.Spec.Migration != nil):
		steps = append(steps, "the migration as Job "+r.MigrationAttemptJobName(rev, attempt))
	case rec.Migration != nil && rec.Migration.State == deployv1alpha1.StepSucceeded:
		kept = append(kept, "the migration "+rec.Migration.JobName+" (a migration that succeeded never runs twice)")
	}
	if stepFailed(rec.Contract) || stepFailed(rec.ContractBackup) {
		steps = append(steps, "the contract step as Job "+r.ContractJobName(rev, attempt)+" on a fresh backup")
	} else {
		steps = append(steps, "the rollout of the new colour and its verification")
		if r.Spec.Strategy.BlueGreen.SmokeTest != nil && failure.Reason == deployv1alpha1.ReasonSmokeTestFailed {
			steps = append(steps, "the smoke test as Job "+r.SmokeTestAttemptJobName(rev, attempt))
		}
	}
	plan := strings.Join(steps, ", then ")
	if len(kept) > 0 {
		plan += "; kept: " + strings.Join(kept, ", ")
	}
	return plan
}
