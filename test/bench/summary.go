//go:build bench

package main

import (
	"fmt"
	"sort"
	"strings"
)

// group is every round of one measurement (same kind, releases present, releases at
// once and context), pooled.
type group struct {
	Kind, Context    string
	Releases, AtOnce int
	Runs             []flipRun
}

func (g group) pooled(f func(flipSample) float64) summary {
	var v []float64
	for _, r := range g.Runs {
		for _, s := range r.Samples {
			v = append(v, f(s))
		}
	}
	return summarize(v)
}

// pooledRecorded pools a figure that older results may lack.
func (g group) pooledRecorded(f func(flipSample) *float64) summary {
	var all []flipSample
	for _, r := range g.Runs {
		all = append(all, r.Samples...)
	}
	return pickRecorded(all, f)
}

func timesOrNever(n int) string {
	if n == 0 {
		return "never"
	}
	return fmt.Sprintf("**%d**", n)
}

// roundMedian is the median over rounds of a per-round figure.
func (g group) roundMedian(f func(flipRun) float64) float64 {
	var v []float64
	for _, r := range g.Runs {
		v = append(v, f(r))
	}
	return median(v)
}

func (g group) roundMax(f func(flipRun) float64) float64 {
	var v []float64
	for _, r := range g.Runs {
		v = append(v, f(r))
	}
	return summarize(v).Max
}

func (res *results) groups() []group {
	var out []group
	index := map[string]int{}
	for _, r := range res.Runs {
		key := fmt.Sprintf("%s/%d/%d/%s", r.Kind, r.Releases, r.AtOnce, r.Context)
		i, ok := index[key]
		if !ok {
			i = len(out)
			index[key] = i
			out = append(out, group{Kind: r.Kind, Context: r.Context, Releases: r.Releases, AtOnce: r.AtOnce})
		}
		out[i].Runs = append(out[i].Runs, r)
	}
	return out
}

func writesPerRelease(r flipRun) float64 { return r.Requests.Writes / float64(r.Updated) }

// lastAvailableSeconds runs from the first patch of a round to the last new colour
// becoming fully available: how soon the cluster itself let the round finish.
func lastAvailableSeconds(r flipRun) float64 {
	var last float64
	for _, s := range r.Samples {
		at := s.Applied.Sub(r.Start).Seconds() + s.ApplyToAvailableMs/1000
		last = max(last, at)
	}
	return last
}

// summary is the run in Markdown: what docs/benchmarks.md quotes.
func (res *results) summary() string {
	var b strings.Builder
	m := res.Machine
	fmt.Fprintf(&b, "# Benchmark run (%s profile)\n\n", res.Profile)
	fmt.Fprintf(&b, "%s → %s (%s). Machine: %s, %d CPUs, %s RAM, Linux %s, %s; load average %s before, %s after.\n",
		res.Started.UTC().Format("2006-01-02 15:04Z"), res.Finished.UTC().Format("15:04Z"), res.Finished.Sub(res.Started).Round(1e9),
		m.CPU, m.CPUs, m.MemTotal, m.Kernel, m.Go, m.LoadBefore, m.LoadAfter)
	fmt.Fprintf(&b, "Operator built from %s. Cluster: %s.\n", res.Commit, res.Cluster)
	if res.Note != "" {
		fmt.Fprintf(&b, "Note: %s\n", res.Note)
	}
	if len(res.OperatorEnv) > 0 {
		fmt.Fprintf(&b, "Operator environment beyond the benchmark's: `%s`.\n", strings.Join(res.OperatorEnv, " "))
	}
	if len(res.OperatorArgs) > 0 {
		fmt.Fprintf(&b, "Operator flags beyond the defaults: `%s`.\n", strings.Join(res.OperatorArgs, " "))
	}

	b.WriteString("\n## Traffic moved (ms), pooled over rounds\n\n")
	b.WriteString("Traffic moved: the new colour's new ReplicaSet fully available → the active Service's EndpointSlices list only pods of the new colour, at least `replicas` of them ready (what users feel: every request now reaches the new pods). Flip→moved: the selector change → the same (the EndpointSlice controller's pass). No ready endpoint: how often, during the measurement, any release's active Service listed no ready endpoint after it had had one (an outage).\n\n")
	b.WriteString("| updates | releases present | rounds × releases | traffic moved p50 | p90 | p99 | max | flip→moved p50 | flip→moved p99 | no ready endpoint |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, g := range res.groups() {
		moved := g.pooledRecorded(func(s flipSample) *float64 { return s.TrafficMovedMs })
		fromFlip := g.pooledRecorded(func(s flipSample) *float64 { return s.FlipToTrafficMs })
		if moved.N == 0 {
			continue // a run from before the watcher recorded it
		}
		outages := 0
		for _, r := range g.Runs {
			outages += len(r.Outages)
		}
		fmt.Fprintf(&b, "| %s | %d | %d × %d | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %s |\n", g.describe(), g.Releases, len(g.Runs), g.Runs[0].Updated,
			moved.P50, moved.P90, moved.P99, moved.Max, fromFlip.P50, fromFlip.P99, timesOrNever(outages))
	}
	fmt.Fprintf(&b, "\nActive Services with no ready endpoint over the whole run (%d watched, from their first ready endpoint): %s.\n",
		res.ActiveServicesWatched, timesOrNever(len(res.Outages)))
	for _, o := range res.Outages {
		fmt.Fprintf(&b, "- %s\n", o)
	}

	b.WriteString("\n## Flip latency (ms), pooled over rounds\n\n")
	b.WriteString("Flip: the new colour's new ReplicaSet fully available → active Service selector changed (the issue's definition). From Deployment: the same from the Deployment fully available, which its controller reports one write after the ReplicaSet. Gate→flip: the later of available (the ReplicaSet) and preview endpoints ready → flip. Overhead: the step gaps summed per release.\n\n")
	b.WriteString("| updates | releases present | rounds × releases | flip p50 | flip p99 | from Deployment p50 | from Deployment p99 | gate→flip p50 | gate→flip p99 | endpoints after available p50 | apply→flip p50 | all promoted (s, median / max over rounds) | overhead p50 | overhead p99 | writes per release (median) |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, g := range res.groups() {
		what := g.describe()
		flip := g.pooled(flipLatency)
		fromDeployment := g.pooled(func(s flipSample) float64 { return s.FlipMs })
		gate := g.pooled(func(s flipSample) float64 { return s.GateToFlipMs })
		lag := g.pooled(func(s flipSample) float64 { return s.EndpointsLagMs })
		apply := g.pooled(func(s flipSample) float64 { return s.ApplyToFlipMs })
		over := g.pooled(func(s flipSample) float64 { return s.OverheadMs })
		all := "–"
		if g.Kind == "burst" {
			all = fmt.Sprintf("%.1f / %.1f (last available %.1f)", g.roundMedian(func(r flipRun) float64 { return r.AllPromotedSeconds }),
				g.roundMax(func(r flipRun) float64 { return r.AllPromotedSeconds }), g.roundMedian(lastAvailableSeconds))
		}
		fmt.Fprintf(&b, "| %s | %d | %d × %d | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.0f | %s | %.0f | %.0f | %.1f |\n",
			what, g.Releases, len(g.Runs), g.Runs[0].Updated, flip.P50, flip.P99, fromDeployment.P50, fromDeployment.P99, gate.P50, gate.P99, lag.P50, apply.P50, all,
			over.P50, over.P99, g.roundMedian(writesPerRelease))
	}

	b.WriteString("\n## The floor: the API server's round trip and watch delay here (ms)\n\n")
	b.WriteString("The benchmark's own merge patch of a release (round trip), and its response → the watcher seeing the change (watch delay). A flip is at least an event in, a patch out and an event back.\n\n| updates | releases present | patch round trip p50 | p99 | watch delay p50 | p99 |\n|---|---|---|---|---|---|\n")
	for _, g := range res.groups() {
		rtt := g.pooled(func(s flipSample) float64 { return s.PatchRTTMs })
		wd := g.pooled(func(s flipSample) float64 { return s.WatchDelayMs })
		fmt.Fprintf(&b, "| %s | %d | %.1f | %.1f | %.1f | %.1f |\n", g.describe(), g.Releases, rtt.P50, rtt.P99, wd.P50, wd.P99)
	}

	b.WriteString("\n## Per round\n\n| updates | releases | round | flip p50 | flip p99 | gate→flip p99 | all promoted (s) | patches took (s) | overhead p99 | requests by verb | passes per release | ms per pass | ms queued | load |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range res.Runs {
		fmt.Fprintf(&b, "| %s %d%s | %d | %d | %.1f | %.1f | %.1f | %.1f | %.1f | %.0f | %s | %.1f | %.1f | %.1f | %s |\n",
			r.Kind, r.AtOnce, ctxSuffix(r.Context), r.Releases, r.Round, r.Flip.P50, r.Flip.P99, r.GateToFlip.P99,
			r.AllPromotedSeconds, r.ApplySeconds, r.Overhead.P99, verbsAndConflicts(r.Requests),
			r.Controller.Reconciles/float64(r.Updated), r.Controller.MeanReconcileMs, r.Controller.MeanQueueWaitMs, r.Load)
	}

	b.WriteString("\n## Controller overhead per release: step gaps (ms, pooled over the rounds of each measurement)\n\n| updates | releases present | gap | p50 | p99 | max |\n|---|---|---|---|---|---|\n")
	for _, g := range res.groups() {
		for _, gap := range []string{gapStartGreen, gapFlip, gapScaleDown, gapSucceeded} {
			s := g.pooled(func(s flipSample) float64 { return s.GapsMs[gap] })
			fmt.Fprintf(&b, "| %s | %d | %s | %.1f | %.1f | %.1f |\n", g.describe(), g.Releases, gap, s.P50, s.P99, s.Max)
		}
	}

	b.WriteString("\n## Operator RSS\n\n| releases | when | RSS (MiB, median of samples) | RSS max | Go heap in use (MiB) | operator start # | load |\n|---|---|---|---|---|---|---|\n")
	for _, p := range res.Memory {
		fmt.Fprintf(&b, "| %d | %s | %.1f | %.1f | %.1f | %d | %s |\n", p.Releases, p.Label, p.RSSMiB, p.RSSMaxMiB, p.HeapInuseMiB, p.OperatorStart, p.Load)
	}
	b.WriteString(res.Jobs.summary())
	if u := res.Unrelated; u != nil {
		fmt.Fprintf(&b, "\nUnrelated objects: %d Secrets, %d Deployments, %d running pods (created in %.0f s).\n", u.Secrets, u.Deployments, u.Pods, u.CreatedSeconds)
	}

	b.WriteString("\n## API requests with settled releases\n\n| releases | what | requests by verb | writes |\n|---|---|---|---|\n")
	for _, r := range res.Resync {
		fmt.Fprintf(&b, "| %d | idle %.0f s%s | %s | %.0f |\n", r.Releases, r.WindowSeconds, ctxSuffix(r.Context), verbs(r.Window.ByVerb), r.Window.Writes)
		fmt.Fprintf(&b, "| %d | every release annotated: %.0f reconciles in %.1f s%s | %s | %.0f |\n", r.Releases, r.Reconciles, r.ReconcileAllSeconds, ctxSuffix(r.Context), verbs(r.Annotated.ByVerb), r.Annotated.Writes)
	}
	for _, r := range res.Restarts {
		fmt.Fprintf(&b, "| %d | restart (%s): start-up and the first pass over every release | %s | %.0f |\n", r.Releases, r.Label, verbs(r.Requests.ByVerb), r.Requests.Writes)
	}

	b.WriteString("\n## Start-up\n\n| releases | context | cache sync (first informer started → workers started) | exec → workers | exec → every release reconciled |\n|---|---|---|---|---|\n")
	for _, r := range res.Restarts {
		fmt.Fprintf(&b, "| %d | %s | %.0f ms | %.0f ms | %.0f ms |\n", r.Releases, r.Label, r.CacheSyncMs, r.ExecToWorkersMs, r.ExecToReconciledMs)
	}
	if len(res.Creations) > 0 {
		b.WriteString("\n## Creating releases\n\n| releases in all | created | all settled after (s) |\n|---|---|---|\n")
		for _, c := range res.Creations {
			fmt.Fprintf(&b, "| %d | %d | %.1f |\n", c.Releases, c.Created, c.SettledSeconds)
		}
	}
	return b.String()
}

func ctxSuffix(c string) string {
	if c == "" {
		return ""
	}
	return " (" + c + ")"
}

func verbs(m map[string]float64) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %.0f", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func verbsAndConflicts(d requestDelta) string {
	if d.Conflicts == 0 {
		return verbs(d.ByVerb)
	}
	return fmt.Sprintf("%s (%.0f conflicts)", verbs(d.ByVerb), d.Conflicts)
}

func (g group) describe() string {
	what := "one at a time"
	if g.Kind == "burst" {
		what = fmt.Sprintf("%d at once", g.AtOnce)
	}
	if g.Context != "" {
		what += " (" + g.Context + ")"
	}
	return what
}
