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

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// request is one of the annotations a user sets to steer a release. Its value is always
// the revision it applies to (status.currentRevision), so one left on the object never
// acts on a later release.
type request struct {
	annotation string
	// noun names the request in messages: "promotion", "abort", "restore".
	noun string
	// verb is the subcommand: "promote", "abort", "restore".
	verb string
	// applies returns why the request does not apply to r now, or nil.
	applies func(r *deployv1alpha1.SoftFactoryRelease) error
}

var promoteRequest = request{
	annotation: deployv1alpha1.PromoteAnnotation,
	noun:       "promotion",
	verb:       "promote",
	applies: func(r *deployv1alpha1.SoftFactoryRelease) error {
		if r.Status.Phase != deployv1alpha1.PhaseAwaitingPromotion {
			return fmt.Errorf("softfactoryrelease/%s is not awaiting promotion (phase %s, revision %s): "+
				"promote applies to a release waiting in AwaitingPromotion; "+
				"--force sets the annotation anyway and the operator promotes revision %s once it passes its gates",
				r.Name, orNone(string(r.Status.Phase)), r.Status.CurrentRevision, r.Status.CurrentRevision)
		}
		return nil
	},
}

var abortRequest = request{
	annotation: deployv1alpha1.AbortAnnotation,
	noun:       "abort",
	verb:       "abort",
	applies: func(r *deployv1alpha1.SoftFactoryRelease) error {
		if !releaseInFlight(r) {
			return fmt.Errorf("softfactoryrelease/%s has no release in flight (phase %s, revision %s, serving %s): "+
				"nothing to abort; --force sets the annotation anyway",
				r.Name, orNone(string(r.Status.Phase)), r.Status.CurrentRevision, orNone(r.Status.StableRevision))
		}
		return nil
	},
}

var restoreRequest = request{
	annotation: deployv1alpha1.RestoreAnnotation,
	noun:       "restore",
	verb:       "restore",
	applies: func(r *deployv1alpha1.SoftFactoryRelease) error {
		rec := r.Status.RevisionRecordOf(r.Status.CurrentRevision)
		if rec == nil || rec.Restore == nil || rec.Restore.Phase != deployv1alpha1.RestoreAwaitingApproval {
			return fmt.Errorf("softfactoryrelease/%s has no restore awaiting approval (phase %s, revision %s): "+
				"restore applies to a release whose migration ran and failed with spec.rollback.restore: Manual; "+
				"--force sets the annotation anyway", r.Name, orNone(string(r.Status.Phase)), r.Status.CurrentRevision)
		}
		return nil
	},
}

func newPromoteCommand(o *options) *cobra.Command {
	return newRequestCommand(o, promoteRequest, &cobra.Command{
		Use:   "promote NAME",
		Short: "Promote a release waiting for a manual promotion",
		Long: `Promote a release waiting in AwaitingPromotion (spec.strategy.blueGreen.autoPromote: false):
set deploy.softfactory.io/promote to its current revision, and the operator switches the
active Service to the new colour.

Refuses when the release is not awaiting promotion, or when the operator has not yet
observed the latest spec (its current revision would be the previous release's). With
--force the annotation is set anyway: a release still on its way is then promoted as
soon as it passes its gates.`,
		Example: `  kubectl sfrelease promote softfactory
  kubectl sfrelease promote softfactory && kubectl sfrelease status softfactory`,
	})
}

func newAbortCommand(o *options) *cobra.Command {
	return newRequestCommand(o, abortRequest, &cobra.Command{
		Use:   "abort NAME",
		Short: "Abort the release in flight; traffic stays where it is",
		Long: `Abort the release in flight: set deploy.softfactory.io/abort to its current revision.
The operator stops the release, scales the new colour down (or keeps it, per
spec.rollback.onFailure) and leaves traffic on the colour serving it now. To go on with
another release afterwards, apply a new spec.

Refuses when no release is in flight, or when the operator has not yet observed the
latest spec. --force sets the annotation anyway.`,
		Example: `  kubectl sfrelease abort softfactory`,
	})
}

func newRestoreCommand(o *options) *cobra.Command {
	return newRequestCommand(o, restoreRequest, &cobra.Command{
		Use:   "restore NAME",
		Short: "Approve the restore of a failed migration's dump (restore: Manual)",
		Long: `Approve the restore of the pre-migration dump of a release whose migration ran and
failed, when spec.rollback.restore is Manual: set deploy.softfactory.io/restore to its
current revision. The operator then scales every colour of the release to 0 and waits
for their pods to be gone, loads the dump back (pg_restore --clean, once), and scales
the serving colour back up. Every write made since the dump is lost, and the release
serves nothing while the restore runs: see docs/backups.md.

Refuses when no restore awaits approval, or when the operator has not yet observed the
latest spec. --force sets the annotation anyway.`,
		Example: `  kubectl sfrelease restore softfactory && kubectl sfrelease status softfactory`,
	})
}

func newRequestCommand(o *options, req request, cmd *cobra.Command) *cobra.Command {
	var force bool
	cmd.Args = cobra.ExactArgs(1)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return o.request(cmd.Context(), args[0], req, force)
	}
	cmd.Flags().BoolVar(&force, "force", false, "set the annotation even when the "+req.noun+" does not apply now")
	return cmd
}

// request sets req's annotation to the release's current revision. The check and the
// write are one step: the patch carries the resourceVersion that was checked, so if
// the release moved on in between (a new spec, a new phase) the API server refuses the
// patch and the check runs again on what is there now.
func (o *options) request(ctx context.Context, name string, req request, force bool) error {
	client, _, err := o.releases()
	if err != nil {
		return err
	}
	var revision string
	var already bool
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		r, err := getRelease(ctx, client, name)
		if err != nil {
			return err
		}
		revision = r.Status.CurrentRevision
		if revision == "" {
			return fmt.Errorf("softfactoryrelease/%s has no revision yet (the operator has not reported on it): nothing to %s",
				name, req.verb)
		}
		if err := check(r, req, force); err != nil {
			return err
		}
		if !observed(r) {
			// Advice only: a failed write to stderr must not fail the request.
			_, _ = fmt.Fprintf(o.ErrOut, "Warning: the operator has not observed generation %d yet; revision %s may be the previous spec's.\n",
				r.Generation, revision)
		}
		if r.Annotations[req.annotation] == revision {
			already = true
			return nil
		}
		patch, err := json.Marshal(map[string]any{
			"metadata": map[string]any{
				"resourceVersion": r.ResourceVersion,
				"annotations":     map[string]string{req.annotation: revision},
			},
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
	// The annotation is written: a failed write to stdout must not turn that into an error.
	if already {
		_, _ = fmt.Fprintf(o.Out, "softfactoryrelease/%s: %s of revision %s was already requested\n", name, req.noun, revision)
	} else {
		_, _ = fmt.Fprintf(o.Out, "softfactoryrelease/%s: %s of revision %s requested\n", name, req.noun, revision)
	}
	_, _ = fmt.Fprintf(o.Out, "Follow it with: kubectl sfrelease status %s\n", name)
	return nil
}

// check refuses a request that does not apply, unless forced.
func check(r *deployv1alpha1.SoftFactoryRelease, req request, force bool) error {
	if force {
		return nil
	}
	if !observed(r) {
		return fmt.Errorf("the operator has not observed generation %d of softfactoryrelease/%s yet, so its revision %s "+
			"may be the previous spec's: wait for it (kubectl sfrelease status %s) or use --force",
			r.Generation, r.Name, r.Status.CurrentRevision, r.Name)
	}
	return req.applies(r)
}
