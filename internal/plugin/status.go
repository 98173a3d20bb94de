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
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

type statusOptions struct {
	*options
	timeout  time.Duration
	noFollow bool
	now      func() time.Time
}

func newStatusCommand(o *options) *cobra.Command {
	so := &statusOptions{options: o, now: time.Now}
	cmd := &cobra.Command{
		Use:   "status NAME",
		Short: "Follow a release until it succeeds or fails",
		Long: `Follow a release with a watch, printing each step as the operator reports it, until
the release settles. A status the operator wrote for an earlier spec never counts: right
after a new image is applied, status waits for the operator to pick it up.

A release waiting for a manual promotion, or paused, has not settled: status keeps
following it, saying so and how to go on, until someone acts or --timeout passes.

Exit codes: 0 the release succeeded; 1 it failed (Degraded, Failed or RolledBack) or the
command failed; 2 --timeout passed first. With --no-follow, status prints the release
once and exits 0 unless it has failed.`,
		Example: `  kubectl sfrelease status softfactory
  kubectl sfrelease status softfactory -n production --timeout 15m
  kubectl sfrelease status softfactory --no-follow`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return so.run(cmd.Context(), args[0])
		},
	}
	cmd.Flags().DurationVar(&so.timeout, "timeout", 0,
		"give up after this long (for example 10m), with exit code 2; 0 waits until the release settles")
	cmd.Flags().BoolVar(&so.noFollow, "no-follow", false, "print the release once instead of following it")
	return cmd
}

func (so *statusOptions) run(ctx context.Context, name string) error {
	if so.timeout < 0 {
		return errors.New("--timeout must not be negative")
	}
	client, namespace, err := so.releases()
	if err != nil {
		return err
	}
	if so.noFollow {
		r, err := getRelease(ctx, client, name)
		if err != nil {
			return err
		}
		printSummary(so.Out, r)
		if verdict, msg := Assess(r); verdict == VerdictFailed {
			return fmt.Errorf("softfactoryrelease/%s failed: %s", name, msg)
		}
		return nil
	}
	return so.follow(ctx, client, namespace, name)
}

// follow watches the release until it settles. UntilWithSync lists, then watches, and
// lists again when a watch expires, so a long release survives API server restarts and
// compacted resource versions without missing where it ended up.
func (so *statusOptions) follow(ctx context.Context, client dynamic.ResourceInterface, namespace, name string) error {
	ctx, cancel := watchtools.ContextWithOptionalTimeout(ctx, so.timeout)
	defer cancel()

	// One plain read first: the informer below retries a failing list forever, so a
	// wrong context, missing RBAC or a missing release would otherwise hang in silence.
	if _, err := client.Get(ctx, name, metav1.GetOptions{}); err != nil {
		return err
	}

	byName := fields.OneTermEqualSelector("metadata.name", name).String()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			opts.FieldSelector = byName
			return client.List(ctx, opts)
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			opts.FieldSelector = byName
			return client.Watch(ctx, opts)
		},
	}
	exists := func(store cache.Store) (bool, error) {
		_, found, err := store.GetByKey(namespace + "/" + name)
		if err != nil {
			return true, err
		}
		if !found {
			return true, apierrors.NewNotFound(releasesResource.GroupResource(), name)
		}
		return false, nil
	}

	p := &transitionPrinter{out: so.Out, name: name, namespace: namespace, now: so.now}
	_, err := watchtools.UntilWithSync(ctx, lw, &unstructured.Unstructured{}, exists, func(ev watch.Event) (bool, error) {
		switch ev.Type {
		case watch.Deleted:
			return false, fmt.Errorf("softfactoryrelease/%s was deleted", name)
		case watch.Error:
			return false, apierrors.FromObject(ev.Object)
		}
		u, ok := ev.Object.(*unstructured.Unstructured)
		if !ok {
			return false, fmt.Errorf("unexpected object %T in the watch", ev.Object)
		}
		r, err := toRelease(u)
		if err != nil {
			return false, err
		}
		switch verdict, msg := p.observe(r); verdict {
		case VerdictSucceeded:
			return true, nil
		case VerdictFailed:
			return true, fmt.Errorf("softfactoryrelease/%s failed: %s", name, msg)
		}
		return false, nil
	})
	if err != nil && ctx.Err() != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return &exitError{code: ExitTimeout, err: fmt.Errorf("timed out after %s waiting for softfactoryrelease/%s: %s",
				so.timeout, name, p.lastMessage())}
		}
		return fmt.Errorf("stopped following softfactoryrelease/%s: %w", name, ctx.Err())
	}
	return err
}

// snapshot is what status prints about a release, to tell what changed between events.
type snapshot struct {
	generation  int64
	observed    bool
	image       string
	revision    string
	phase       deployv1alpha1.Phase
	activeColor deployv1alpha1.Color
	activeImage string
	conditions  map[string]metav1.Condition
	verdict     Verdict
	message     string
}

func takeSnapshot(r *deployv1alpha1.SoftFactoryRelease) *snapshot {
	s := &snapshot{
		generation: r.Generation,
		observed:   observed(r),
		image:      r.Spec.Image,
		conditions: map[string]metav1.Condition{},
	}
	s.verdict, s.message = Assess(r)
	// A status written for an older spec is not news about this one; leave it out so the
	// new generation's conditions all print once the operator reports on it. Conditions
	// already stamped with this generation are news (a pass failing, say) and stay.
	for _, c := range r.Status.Conditions {
		if s.observed || c.ObservedGeneration == r.Generation {
			s.conditions[c.Type] = c
		}
	}
	if s.observed {
		s.revision = r.Status.CurrentRevision
		s.phase = r.Status.Phase
		s.activeColor = r.Status.ActiveColor
		s.activeImage = r.Status.ActiveImage
	}
	return s
}

// transitions are the lines that say how cur differs from prev (nil: nothing seen yet).
func transitions(prev, cur *snapshot, name string) []string {
	if prev == nil {
		prev = &snapshot{conditions: map[string]metav1.Condition{}, verdict: -1}
	}
	var lines []string
	if !cur.observed {
		if prev.observed || prev.generation != cur.generation || prev.verdict == -1 {
			lines = append(lines, "generation "+itoa(cur.generation)+" (image "+cur.image+
				"): waiting for the operator to observe it")
		}
		return append(lines, conditionLines(prev, cur)...)
	}
	if !prev.observed || prev.revision != cur.revision {
		line := "revision " + cur.revision + " (image " + cur.image + ", generation " + itoa(cur.generation) + ")"
		if cur.activeColor != "" {
			line += "; traffic on " + string(cur.activeColor)
			if cur.activeImage != "" {
				line += " (" + cur.activeImage + ")"
			}
		}
		lines = append(lines, line)
	} else if prev.activeColor != cur.activeColor && cur.activeColor != "" {
		lines = append(lines, "traffic now on "+string(cur.activeColor)+" ("+cur.activeImage+")")
	}
	if !prev.observed || prev.phase != cur.phase {
		lines = append(lines, "phase "+string(cur.phase))
	}
	lines = append(lines, conditionLines(prev, cur)...)
	verdictChanged := prev.verdict != cur.verdict || prev.message != cur.message
	switch {
	case !verdictChanged:
	case cur.verdict == VerdictAwaitingPromotion:
		lines = append(lines, "waiting for promotion: "+cur.message+"; promote it with: kubectl sfrelease promote "+name)
	case cur.verdict == VerdictPaused:
		lines = append(lines, "paused: "+cur.message)
	case cur.verdict == VerdictSucceeded:
		lines = append(lines, "succeeded: "+cur.message)
	case cur.verdict == VerdictFailed:
		lines = append(lines, "failed: "+cur.message)
	case prev.verdict == VerdictAwaitingPromotion || prev.verdict == VerdictPaused:
		// Leaving a wait is news even when the next step has not reported yet.
		lines = append(lines, cur.message)
	}
	return lines
}

// conditionLines are the conditions that are new or changed since prev.
func conditionLines(prev, cur *snapshot) []string {
	var lines []string
	for _, t := range orderedConditionTypes(cur.conditions) {
		c := cur.conditions[t]
		was, seen := prev.conditions[t]
		if seen && was.Status == c.Status && was.Reason == c.Reason && was.Message == c.Message {
			continue
		}
		lines = append(lines, "  "+t+"="+string(c.Status)+"  "+describe(&c, c.Reason))
	}
	return lines
}

// orderedConditionTypes lists the runbook's conditions in runbook order, then any others.
func orderedConditionTypes(conditions map[string]metav1.Condition) []string {
	var types []string
	for _, t := range conditionOrder {
		if _, ok := conditions[t]; ok {
			types = append(types, t)
		}
	}
	for _, t := range slices.Sorted(maps.Keys(conditions)) {
		if !slices.Contains(conditionOrder, t) {
			types = append(types, t)
		}
	}
	return types
}

// transitionPrinter prints, with the time, what changed since the last event.
type transitionPrinter struct {
	out       io.Writer
	name      string
	namespace string
	now       func() time.Time
	last      *snapshot
}

func (p *transitionPrinter) observe(r *deployv1alpha1.SoftFactoryRelease) (Verdict, string) {
	cur := takeSnapshot(r)
	// Progress lines to the terminal: a failed write must not stop the follow loop.
	if p.last == nil {
		_, _ = fmt.Fprintf(p.out, "Following softfactoryrelease/%s in namespace %s (Ctrl-C stops following; the release carries on).\n",
			p.name, p.namespace)
	}
	for _, line := range transitions(p.last, cur, p.name) {
		_, _ = fmt.Fprintf(p.out, "%s  %s\n", p.now().Format(time.TimeOnly), line)
	}
	p.last = cur
	return cur.verdict, cur.message
}

func (p *transitionPrinter) lastMessage() string {
	if p.last == nil {
		return "no status seen"
	}
	return p.last.message
}

// printSummary prints the release once, for status --no-follow.
func printSummary(out io.Writer, r *deployv1alpha1.SoftFactoryRelease) {
	st := &r.Status
	verdict, msg := Assess(r)
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	// The tabwriter buffers; its write errors surface (and are dropped) at Flush.
	row := func(cells ...string) { _, _ = fmt.Fprintln(w, strings.Join(cells, "\t")) }
	row("Name:", r.Name)
	row("Namespace:", r.Namespace)
	row("Image:", r.Spec.Image)
	if !observed(r) {
		row("Status:", "describes generation "+itoa(st.ObservedGeneration)+
			"; the operator has not observed generation "+itoa(r.Generation)+" yet")
	}
	row("Phase:", orNone(string(st.Phase)))
	revision := orNone(st.CurrentRevision)
	if st.StableRevision != "" && st.StableRevision != st.CurrentRevision {
		revision += " (serving: " + st.StableRevision + ")"
	}
	row("Revision:", revision)
	if st.ActiveColor != "" {
		row("Active:", string(st.ActiveColor)+" ("+st.ActiveImage+")")
	}
	if b := st.LastBackup; b != nil {
		row("Last backup:", b.File+" (job "+b.JobName+", revision "+b.Revision+", "+timeOrNone(b.CompletedAt)+")")
	}
	if m := st.LastMigration; m != nil {
		row("Last migration:", "job "+m.JobName+" (revision "+m.Revision+", "+timeOrNone(m.CompletedAt)+")")
	}
	row("Verdict:", verdictName(verdict)+": "+msg)
	if verdict == VerdictAwaitingPromotion {
		row("", "promote it with: kubectl sfrelease promote "+r.Name)
	}
	if len(st.Conditions) > 0 {
		row("Conditions:")
		row("  TYPE", "STATUS", "REASON", "MESSAGE")
		byType := map[string]metav1.Condition{}
		for _, c := range st.Conditions {
			byType[c.Type] = c
		}
		for _, t := range orderedConditionTypes(byType) {
			c := byType[t]
			row("  "+c.Type, string(c.Status), orNone(c.Reason), orNone(c.Message))
		}
	}
	_ = w.Flush()
}

func verdictName(v Verdict) string {
	switch v {
	case VerdictAwaitingPromotion:
		return "AwaitingPromotion"
	case VerdictPaused:
		return "Paused"
	case VerdictSucceeded:
		return "Succeeded"
	case VerdictFailed:
		return "Failed"
	}
	return "Progressing"
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

func timeOrNone(t *metav1.Time) string {
	if t == nil {
		return "<none>"
	}
	return t.UTC().Format(time.RFC3339)
}
