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

// Package plugin is kubectl-sfrelease, the kubectl plugin for SoftFactory releases:
// follow a release until it settles, promote or abort it, list its history. It talks to
// the API server only; it works the same whether the operator runs in the cluster or on
// a laptop.
package plugin

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/dynamic"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// Exit codes, so scripts can tell a failed release from one that ran out of time.
const (
	// ExitOK: done; for status, the release succeeded.
	ExitOK = 0
	// ExitFailed: the release failed, or the command could not do what was asked.
	ExitFailed = 1
	// ExitTimeout: status --timeout passed before the release settled.
	ExitTimeout = 2
)

// releasesResource is the SoftFactoryRelease resource. It is fixed rather than looked up
// through discovery: one request fewer, and a missing CRD still gives a clear NotFound.
var releasesResource = schema.GroupVersionResource{
	Group:    deployv1alpha1.GroupVersion.Group,
	Version:  deployv1alpha1.GroupVersion.Version,
	Resource: "softfactoryreleases",
}

// exitError carries an exit code other than ExitFailed up to Run.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// options are what every subcommand shares: how to reach the cluster, where to write.
type options struct {
	configFlags *genericclioptions.ConfigFlags
	genericiooptions.IOStreams
}

// releases returns the client for SoftFactoryReleases in the namespace the flags (or
// the kubeconfig context) select, and that namespace.
func (o *options) releases() (dynamic.ResourceInterface, string, error) {
	namespace, _, err := o.configFlags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return nil, "", err
	}
	cfg, err := o.configFlags.ToRESTConfig()
	if err != nil {
		return nil, "", err
	}
	client, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, "", err
	}
	return client.Resource(releasesResource).Namespace(namespace), namespace, nil
}

// getRelease reads one release, typed.
func getRelease(ctx context.Context, client dynamic.ResourceInterface, name string) (*deployv1alpha1.SoftFactoryRelease, error) {
	u, err := client.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return toRelease(u)
}

func toRelease(u *unstructured.Unstructured) (*deployv1alpha1.SoftFactoryRelease, error) {
	r := &deployv1alpha1.SoftFactoryRelease{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, r); err != nil {
		return nil, fmt.Errorf("reading softfactoryrelease %s: %w", u.GetName(), err)
	}
	return r, nil
}

// NewCommand builds the kubectl-sfrelease command tree.
func NewCommand(streams genericiooptions.IOStreams) *cobra.Command {
	o := &options{configFlags: genericclioptions.NewConfigFlags(true), IOStreams: streams}
	cmd := &cobra.Command{
		Use:   "kubectl-sfrelease",
		Short: "Follow, promote, abort and retry SoftFactory releases",
		Long: `Follow, promote and abort SoftFactory releases (SoftFactoryRelease objects).

  status NAME     follow a release until it succeeds or fails
  promote NAME    promote a release waiting for a manual promotion
  abort NAME      abort a release in flight; traffic stays where it is
  restore NAME    approve the restore of a failed migration's dump (restore: Manual)
  retry NAME      retry a failed release without changing its spec
  history NAME    list the release's past releases`,
		Annotations: map[string]string{
			// kubectl runs the binary as kubectl-sfrelease; users type "kubectl sfrelease".
			cobra.CommandDisplayNameAnnotation: "kubectl sfrelease",
		},
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.SetIn(streams.In)
	cmd.SetOut(streams.Out)
	cmd.SetErr(streams.ErrOut)
	o.configFlags.AddFlags(cmd.PersistentFlags())
	cmd.AddCommand(
		newStatusCommand(o),
		newPromoteCommand(o),
		newAbortCommand(o),
		newRestoreCommand(o),
		newRetryCommand(o),
		newHistoryCommand(o),
	)
	return cmd
}

// Run runs the plugin with args (without the program name) and returns its exit code,
// having printed any error to streams.ErrOut the way kubectl does.
func Run(ctx context.Context, args []string, streams genericiooptions.IOStreams) int {
	cmd := NewCommand(streams)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	// If stderr itself fails there is nowhere left to report to; the exit code still tells.
	_, _ = fmt.Fprintf(streams.ErrOut, "error: %v\n", err)
	if exit, ok := errors.AsType[*exitError](err); ok {
		return exit.code
	}
	return ExitFailed
}
