//go:build bench

package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	operatorprocess "github.com/softfactory/release-operator/test/support/operator"
)

// operator is the operator under test, run as its own process exactly as a user runs
// bin/manager, with plain-HTTP metrics on a loopback port so the benchmark can read its
// client and controller metrics, and optionally Go's pprof (so the benchmark can force a
// garbage collection before reading RSS).
type operator struct {
	*operatorprocess.Process
}

const (
	metricsFlag = "--metrics-bind-address"
	pprofFlag   = "--pprof-bind-address"
)

// With pprof but not heapProfiles, the operator samples no allocation (as it does in
// production, where pprof is off): its pprof still forces a collection for the readings
// after a GC, and RSS does not include the sampled stacks' table (~3 MiB of heap after
// ten revisions at 100 releases), which only a heap profile reads.
func newOperator(binary, kubeconfig, logPath string, extraArgs []string, pprof, heapProfiles bool) *operator {
	addrFlags := []string{metricsFlag}
	var env []string
	if pprof {
		addrFlags = append(addrFlags, pprofFlag)
		if !heapProfiles {
			env = append(env, "GODEBUG=memprofilerate=0")
		}
	}
	return &operator{Process: &operatorprocess.Process{
		Env:    env,
		Binary: binary, Kubeconfig: kubeconfig, LogPath: logPath, Suite: "bench",
		// Timestamps in RFC 3339 with nanoseconds, so start-up phases can be timed from the log.
		Args:         append([]string{"--leader-elect=false", "--metrics-secure=false", "--zap-time-encoding=rfc3339nano"}, extraArgs...),
		AddrFlags:    addrFlags,
		StartTimeout: 2 * time.Minute,
		// The metrics server binds its port apart from the probes.
		Ready: func(p *operatorprocess.Process) bool { return operatorprocess.Answers(p.Addr(metricsFlag), "/metrics") },
	}}
}

// rss is the operator process's resident set size (VmRSS in /proc/<pid>/status), in bytes.
func (o *operator) rss() (int64, error) {
	pid := o.Pid()
	if pid == 0 {
		return 0, fmt.Errorf("the operator is not running")
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// scrape reads the operator's /metrics.
func (o *operator) scrape() (metricSet, error) {
	resp, err := http.Get("http://" + o.Addr(metricsFlag) + "/metrics")
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, err
	}
	return metricSet(families), nil
}

// metricSet is one scrape of the operator's metrics.
type metricSet map[string]*dto.MetricFamily

// sum adds the values of every series of a counter or gauge whose labels include match.
func (m metricSet) sum(name string, match map[string]string) float64 {
	f := m[name]
	if f == nil {
		return 0
	}
	var total float64
	for _, mt := range f.Metric {
		if !labelsMatch(mt.Label, match) {
			continue
		}
		switch {
		case mt.Counter != nil:
			total += mt.Counter.GetValue()
		case mt.Gauge != nil:
			total += mt.Gauge.GetValue()
		case mt.Untyped != nil:
			total += mt.Untyped.GetValue()
		}
	}
	return total
}

func labelsMatch(labels []*dto.LabelPair, match map[string]string) bool {
	for k, v := range match {
		found := false
		for _, l := range labels {
			if l.GetName() == k && l.GetValue() == v {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// requestsByVerb is the operator's API requests so far, by HTTP method, from client-go's
// rest_client_requests_total (every client in the process: the cache's lists and
// watches, the controller's reads and writes, the event recorder).
func (m metricSet) requestsByVerb() map[string]float64 {
	out := map[string]float64{}
	if f := m["rest_client_requests_total"]; f != nil {
		for _, mt := range f.Metric {
			for _, l := range mt.Label {
				if l.GetName() == "method" {
					out[l.GetValue()] += mt.Counter.GetValue()
				}
			}
		}
	}
	return out
}

// writeVerbs are the HTTP methods that change something on the API server.
var writeVerbs = []string{"POST", "PUT", "PATCH", "DELETE"}

// requestDelta is what happened between two scrapes, by verb, with the writes summed.
type requestDelta struct {
	ByVerb map[string]float64 `json:"byVerb"`
	Writes float64            `json:"writes"`
	// Conflicts are requests answered 409 (an optimistic lock or a create that lost).
	Conflicts float64 `json:"conflicts"`
}

func deltaRequests(before, after metricSet) requestDelta {
	b, a := before.requestsByVerb(), after.requestsByVerb()
	d := requestDelta{ByVerb: map[string]float64{},
		Conflicts: after.sum("rest_client_requests_total", map[string]string{"code": "409"}) -
			before.sum("rest_client_requests_total", map[string]string{"code": "409"})}
	for verb, v := range a {
		if diff := v - b[verb]; diff != 0 {
			d.ByVerb[verb] = diff
		}
	}
	for _, verb := range writeVerbs {
		d.Writes += d.ByVerb[verb]
	}
	return d
}

// reconciles is the number of reconcile passes the release controller finished so far.
func (m metricSet) reconciles() float64 {
	return m.sum("controller_runtime_reconcile_total", map[string]string{"controller": "softfactoryrelease"})
}

// queueDepth is the release controller's work queue length.
func (m metricSet) queueDepth() float64 {
	return m.sum("workqueue_depth", map[string]string{"name": "softfactoryrelease"})
}

// startupTimes reads the last start's log, waiting up to a minute for it: when the
// controller started its first event source (an informer) and when its workers started.
// controller-runtime starts every source and waits for all of them to sync between the
// two, so the gap is the cache sync at start-up.
func (o *operator) startupTimes() (sourcesStart, workersStart time.Time, err error) {
	deadline := time.Now().Add(time.Minute)
	for {
		sourcesStart, workersStart, err = o.readStartupTimes()
		if err == nil || time.Now().After(deadline) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (o *operator) readStartupTimes() (sourcesStart, workersStart time.Time, err error) {
	f, err := os.Open(o.LogPath)
	if err != nil {
		return
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	marker := fmt.Sprintf("=== %s: operator start #%d ", o.Suite, o.Starts())
	inThisStart := false
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, marker) {
			inThisStart = true
			continue
		}
		if !inThisStart || !strings.HasPrefix(line, "{") {
			continue
		}
		var entry struct {
			TS  string `json:"ts"`
			Msg string `json:"msg"`
		}
		if json.Unmarshal([]byte(line), &entry) != nil {
			continue
		}
		ts, perr := time.Parse(time.RFC3339Nano, entry.TS)
		if perr != nil {
			continue
		}
		switch {
		case entry.Msg == "Starting EventSource" && sourcesStart.IsZero():
			sourcesStart = ts
		case entry.Msg == "Starting workers":
			workersStart = ts
		}
	}
	if sourcesStart.IsZero() || workersStart.IsZero() {
		err = fmt.Errorf("no \"Starting EventSource\"/\"Starting workers\" lines in %s for start #%d", o.LogPath, o.Starts())
	}
	return
}

// histogram is the sum and count of a histogram's series whose labels include match.
func (m metricSet) histogram(name string, match map[string]string) (sum, count float64) {
	f := m[name]
	if f == nil {
		return 0, 0
	}
	for _, mt := range f.Metric {
		if mt.Histogram != nil && labelsMatch(mt.Label, match) {
			sum += mt.Histogram.GetSampleSum()
			count += float64(mt.Histogram.GetSampleCount())
		}
	}
	return sum, count
}

// summaryCount is the observation count of a summary's series.
func (m metricSet) summaryCount(name string) float64 {
	f := m[name]
	if f == nil {
		return 0
	}
	var count float64
	for _, mt := range f.Metric {
		if mt.Summary != nil {
			count += float64(mt.Summary.GetSampleCount())
		}
	}
	return count
}

// controllerDelta is what the release controller did between two scrapes.
type controllerDelta struct {
	Reconciles float64 `json:"reconciles"`
	// MeanReconcileMs is the mean time of one pass; MeanQueueWaitMs the mean time a
	// release waited in the work queue before a worker took it.
	MeanReconcileMs float64 `json:"meanReconcileMs"`
	MeanQueueWaitMs float64 `json:"meanQueueWaitMs"`
	// CPUSeconds is the operator process's CPU time (process_cpu_seconds_total) and GCs
	// its garbage collections (go_gc_duration_seconds' count): what the collector's
	// pacing costs.
	CPUSeconds float64 `json:"cpuSeconds"`
	GCs        float64 `json:"gcs"`
}

func deltaController(before, after metricSet) controllerDelta {
	ctrl := map[string]string{"controller": "softfactoryrelease"}
	queue := map[string]string{"name": "softfactoryrelease"}
	rs0, rc0 := before.histogram("controller_runtime_reconcile_time_seconds", ctrl)
	rs1, rc1 := after.histogram("controller_runtime_reconcile_time_seconds", ctrl)
	qs0, qc0 := before.histogram("workqueue_queue_duration_seconds", queue)
	qs1, qc1 := after.histogram("workqueue_queue_duration_seconds", queue)
	d := controllerDelta{
		Reconciles: after.reconciles() - before.reconciles(),
		CPUSeconds: after.sum("process_cpu_seconds_total", nil) - before.sum("process_cpu_seconds_total", nil),
		GCs:        after.summaryCount("go_gc_duration_seconds") - before.summaryCount("go_gc_duration_seconds"),
	}
	if rc1 > rc0 {
		d.MeanReconcileMs = (rs1 - rs0) / (rc1 - rc0) * 1000
	}
	if qc1 > qc0 {
		d.MeanQueueWaitMs = (qs1 - qs0) / (qc1 - qc0) * 1000
	}
	return d
}
