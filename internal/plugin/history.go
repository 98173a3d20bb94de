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
	var output string
	cmd := &cobra.Command{
		Use:   "history NAME",
		Short: "List a release's past releases, newest first",
		Long: `List the releases recorded in status.history, newest first: revision, image, colour,
how each ended and why, when it was promoted and finished, and the backup taken before
it. Times are UTC. The operator keeps spec.revisionHistoryLimit of them. With -o wide,
also what happened to each, in the operator's words.`,
		Example: `  kubectl sfrelease history softfactory
  kubectl sfrelease history softfactory -o wide`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "" && output != "wide" {
				return fmt.Errorf("--output %q is not supported: leave it out, or use wide", output)
			}
			client, _, err := o.releases()
			if err != nil {
				return err
			}
			r, err := getRelease(cmd.Context(), client, args[0])
			if err != nil {
				return err
			}
			printHistory(o.Out, r, output == "wide")
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "wide adds each release's message")
	return cmd
}

// printHistory prints status.history as a table, in the order the operator keeps it.
func printHistory(out io.Writer, r *deployv1alpha1.SoftFactoryRelease, wide bool) {
	if len(r.Status.History) == 0 {
		// Output to the terminal: a failed write has nowhere better to be reported.
		_, _ = fmt.Fprintf(out, "No releases recorded for softfactoryrelease/%s yet.\n", r.Name)
		return
	}
	// kubectl's table spacing, so the output sits well beside kubectl get.
	w := tabwriter.NewWriter(out, 6, 4, 3, ' ', 0)
	// The tabwriter buffers; its write errors surface (and are dropped) at Flush.
	row := func(cells ...string) { _, _ = fmt.Fprintln(w, strings.Join(cells, "\t")) }
	header := []string{"REVISION", "IMAGE", "COLOR", "OUTCOME", "REASON", "PROMOTED", "FINISHED", "BACKUP"}
	if wide {
		header = append(header, "MESSAGE")
	}
	row(header...)
	for _, h := range r.Status.History {
		cells := []string{h.Revision, h.Image, orNone(string(h.Color)), string(h.Outcome), orNone(h.Reason),
			timeOrNone(h.PromotedAt), timeOrNone(h.FinishedAt), orNone(h.BackupFile)}
		if wide {
			cells = append(cells, orNone(h.Message))
		}
		row(cells...)
	}
	_ = w.Flush()
}
