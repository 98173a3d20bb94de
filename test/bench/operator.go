//go:build bench

package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// operator is the operator under test, run as its own process exactly as a user runs
// bin/manager, with plain-HTTP metrics on a loopback port so the benchmark can read its
// client and controller metrics.
type operator struct {
	binary, kubeconfig, logPath string
	extraArgs                   []string
	// pprof serves Go's pprof on a loopback port (pprofAddr), so the benchmark can force a
	// garbage collection before reading RSS.
	pprof bool

	pprofAddr string

	cmd         *exec.Cmd
	exited      chan struct{}
	startedAt   time.Time
	metricsAddr string
	healthAddr  string
	starts      int
}

// freeLoopbackAddr asks the kernel for a free port on 127.0.0.1: the machine is shared,
// so fixed ports could clash.
func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String(), nil
}

// errPortTaken: a loopback port freeLoopbackAddr picked was taken by another process
// (an outgoing connection's ephemeral port, say) before the operator bound it.
var errPortTaken = errors.New("a loopback port was taken before the operator bound it")

// start runs the operator and waits until its readiness and metrics endpoints answer,
// on other ports again if one was taken meanwhile. The log is appended to, with a
// marker line per start, and timestamps in RFC 3339 with nanoseconds so start-up phases
// can be timed from it.
func (o *operator) start() error {
	var err error
	for range 3 {
		if err = o.startOnce(); !errors.Is(err, errPortTaken) {
			return err
		}
		log.Printf("The operator lost a loopback port to another process before binding it; starting it again on others")
	}
	return err
}

func (o *operator) startOnce() error {
	if o.cmd != nil {
		return fmt.Errorf("the operator is already running")
	}
	var err error
	if o.metricsAddr, err = freeLoopbackAddr(); err != nil {
		return err
	}
	if o.healthAddr, err = freeLoopbackAddr(); err != nil {
		return err
	}
	args := []string{
		"--leader-elect=false",
		"--metrics-secure=false",
		"--metrics-bind-address=" + o.metricsAddr,
		"--health-probe-bind-address=" + o.healthAddr,
		"--zap-time-encoding=rfc3339nano",
	}
	if o.pprof {
		if o.pprofAddr, err = freeLoopbackAddr(); err != nil {
			return err
		}
		args = append(args, "--pprof-bind-address="+o.pprofAddr)
	}
	logFile, err := os.OpenFile(o.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	o.starts++
	_, _ = fmt.Fprintf(logFile, "=== bench: operator start #%d at %s ===\n", o.starts, time.Now().Format(time.RFC3339Nano))
	args = append(args, o.extraArgs...)
	cmd := exec.Command(o.binary, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+o.kubeconfig)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = dieWithParent()
	o.startedAt = time.Now()
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return err
	}
	_ = logFile.Close()
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	o.cmd, o.exited = cmd, exited

	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			o.cmd = nil
			if strings.Contains(tail(o.logPath, 40), "address already in use") {
				return errPortTaken
			}
			return fmt.Errorf("the operator exited during start-up; the end of its log (%s):\n%s", o.logPath, tail(o.logPath, 15))
		default:
		}
		if answers(o.healthAddr, "/readyz") {
			// The metrics server binds its port apart from the probes; if that port was
			// taken, /metrics answers from someone else, or not at all.
			if answers(o.metricsAddr, "/metrics") {
				return nil
			}
			if strings.Contains(tail(o.logPath, 40), "address already in use") {
				o.stop()
				return errPortTaken
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("the operator was not ready within 2 minutes; see %s", o.logPath)
}

// answers says whether GET http://addr+path returns 200.
func answers(addr, path string) bool {
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// stop shuts the operator down cleanly (SIGTERM), or kills it after 15 s.
func (o *operator) stop() {
	if o.cmd == nil {
		return
	}
	_ = o.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-o.exited:
	case <-time.After(15 * time.Second):
		_ = o.cmd.Process.Kill()
		<-o.exited
	}
	o.cmd = nil
}

// alive reports whether the operator is still running: a crash during a measurement
// invalidates it.
func (o *operator) alive() bool {
	if o.cmd == nil {
		return false
	}
	select {
	case <-o.exited:
		return false
	default:
		return true
	}
}

// rss is the operator process's resident set size (VmRSS in /proc/<pid>/status), in bytes.
func (o *operator) rss() (int64, error) {
	if !o.alive() {
		return 0, fmt.Errorf("the operator is not running")
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", o.cmd.Process.Pid))
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
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", o.cmd.Process.Pid)
}

// scrape reads the operator's /metrics.
func (o *operator) scrape() (metricSet, error) {
	resp, err := http.Get("http://" + o.metricsAddr + "/metrics")
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
	f, err := os.Open(o.logPath)
	if err != nil {
		return
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	marker := fmt.Sprintf("=== bench: operator start #%d ", o.starts)
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
		err = fmt.Errorf("no \"Starting EventSource\"/\"Starting workers\" lines in %s for start #%d", o.logPath, o.starts)
	}
	return
}

// tail is the last n lines of a file, for error messages.
func tail(path string, n int) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
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

// controllerDelta is what the release controller did between two scrapes.
type controllerDelta struct {
	Reconciles float64 `json:"reconciles"`
	// MeanReconcileMs is the mean time of one pass; MeanQueueWaitMs the mean time a
	// release waited in the work queue before a worker took it.
	MeanReconcileMs float64 `json:"meanReconcileMs"`
	MeanQueueWaitMs float64 `json:"meanQueueWaitMs"`
}

func deltaController(before, after metricSet) controllerDelta {
	ctrl := map[string]string{"controller": "softfactoryrelease"}
	queue := map[string]string{"name": "softfactoryrelease"}
	rs0, rc0 := before.histogram("controller_runtime_reconcile_time_seconds", ctrl)
	rs1, rc1 := after.histogram("controller_runtime_reconcile_time_seconds", ctrl)
	qs0, qc0 := before.histogram("workqueue_queue_duration_seconds", queue)
	qs1, qc1 := after.histogram("workqueue_queue_duration_seconds", queue)
	d := controllerDelta{Reconciles: after.reconciles() - before.reconciles()}
	if rc1 > rc0 {
		d.MeanReconcileMs = (rs1 - rs0) / (rc1 - rc0) * 1000
	}
	if qc1 > qc0 {
		d.MeanQueueWaitMs = (qs1 - qs0) / (qc1 - qc0) * 1000
	}
	return d
}
