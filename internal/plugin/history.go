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
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

func newHistoryCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "history NAME",
		Short: "List a release's past releases, newest first",
		Long: `List the releases recorded in status.history, newest first: revision, image, colour,
how each ended and why, when it was promoted and finished, and the backup taken before
it. Times are UTC. The operator keeps spec.revisionHistoryLimit of them.`,
		Example: `  kubectl sfrelease history softfactory`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, _, err := o.releases()
			if err != nil {
				return err
			}
			r, err := getRelease(cmd.Context(), client, args[0])
			if err != nil {
				return err
			}
			printHistory(o.Out, r)
			return nil
		},
	}
}

// printHistory prints status.history as a table, in the order the operator keeps it.
func printHistory(out io.Writer, r *deployv1alpha1.SoftFactoryRelease) {
	if len(r.Status.History) == 0 {
		fmt.Fprintf(out, "No releases recorded for softfactoryrelease/%s yet.\n", r.Name)
		return
	}
	// kubectl's table spacing, so the output sits well beside kubectl get.
	w := tabwriter.NewWriter(out, 6, 4, 3, ' ', 0)
	row := func(cells ...string) { fmt.Fprintln(w, strings.Join(cells, "\t")) }
	row("REVISION", "IMAGE", "COLOR", "OUTCOME", "REASON", "PROMOTED", "FINISHED", "BACKUP")
	for _, h := range r.Status.History {
		row(h.Revision, h.Image, orNone(string(h.Color)), string(h.Outcome), orNone(h.Reason),
			timeOrNone(h.PromotedAt), timeOrNone(h.FinishedAt), orNone(h.BackupFile))
	}
	_ = w.Flush()
}
