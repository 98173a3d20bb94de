//go:build bench

package main

import (
	"bufio"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// results is everything one run measured; it is written as JSON beside the operator's
// log, and the plot is drawn from it.
type results struct {
	Profile      string    `json:"profile"`
	Started      time.Time `json:"started"`
	Finished     time.Time `json:"finished"`
	Machine      machine   `json:"machine"`
	OperatorArgs []string  `json:"operatorArgs"`
	OperatorEnv  []string  `json:"operatorEnv,omitempty"`
	// Commit is the checkout the operator was built from, with "+dirty" when its code
	// (api/, cmd/, internal/) had uncommitted changes.
	Commit string `json:"commit"`
	// Cluster describes the cluster's options (nodes, component rate limits).
	Cluster string `json:"cluster"`
	// Note is what the person running it said about this run.
	Note      string          `json:"note,omitempty"`
	Creations []creation      `json:"creations"`
	Runs      []flipRun       `json:"runs"`
	Memory    []memoryPoint   `json:"memory"`
	Resync    []resyncResult  `json:"resync"`
	Restarts  []restartResult `json:"restarts"`
	Unrelated *unrelatedLoad  `json:"unrelated,omitempty"`
	// Outages is every moment an active Service listed no ready endpoint after it had
	// had one, over the whole run; ActiveServicesWatched how many active Services the
	// watcher followed.
	Outages               []outage `json:"outages"`
	ActiveServicesWatched int      `json:"activeServicesWatched"`
	// Jobs is the "revisions with Jobs" scenario (the jobs profile).
	Jobs *jobsResult `json:"jobs,omitempty"`
}

type machine struct {
	CPU        string `json:"cpu"`
	CPUs       int    `json:"cpus"`
	MemTotal   string `json:"memTotal"`
	Kernel     string `json:"kernel"`
	Go         string `json:"go"`
	LoadBefore string `json:"loadBefore"`
	LoadAfter  string `json:"loadAfter"`
}

type creation struct {
	Releases       int     `json:"releases"`
	Created        int     `json:"created"`
	SettledSeconds float64 `json:"settledSeconds"`
}

// flipRun is one round of updates: sequential (one at a time) or a burst (all at once).
type flipRun struct {
	Kind    string `json:"kind"`
	Context string `json:"context,omitempty"`
	// Releases is how many releases exist; AtOnce how many are updated together.
	Releases int       `json:"releases"`
	AtOnce   int       `json:"atOnce"`
	Updated  int       `json:"updated"`
	Round    int       `json:"round"`
	Start    time.Time `json:"start"`
	// ApplySeconds is how long sending the patches took; AllPromotedSeconds runs from the
	// first patch to the last flip (bursts only).
	ApplySeconds       float64         `json:"applySeconds,omitempty"`
	AllPromotedSeconds float64         `json:"allPromotedSeconds,omitempty"`
	Requests           requestDelta    `json:"requests"`
	Controller         controllerDelta `json:"controller"`
	Load               string          `json:"load"`
	Samples            []flipSample    `json:"samples"`
	// Outages lists the outages that started during the round, of any release.
	Outages []outage `json:"outages,omitempty"`

	// Flip is the flip latency (flipLatency); DeploymentFlip the same from the
	// Deployment's "available".
	Flip           summary            `json:"flip"`
	TrafficMoved   summary            `json:"trafficMoved"`
	FlipToTraffic  summary            `json:"flipToTraffic"`
	DeploymentFlip summary            `json:"deploymentFlip"`
	GateToFlip     summary            `json:"gateToFlip"`
	EndpointsLag   summary            `json:"endpointsLag"`
	ApplyToFlip    summary            `json:"applyToFlip"`
	FlipToStatus   summary            `json:"flipToStatus"`
	Overhead       summary            `json:"overhead"`
	Gaps           map[string]summary `json:"gaps"`
}

// flipSample is one release update as the watcher saw it (milliseconds).
type flipSample struct {
	Release string `json:"release"`
	// FlipMs: the new colour's Deployment fully available -> active Service selector
	// changed. Runs before 2026-11-26 05:00Z timed the flip only from this.
	FlipMs float64 `json:"flipMs"`
	// ReplicaSetFlipMs: the Deployment's new ReplicaSet fully available -> flip: the
	// issue's flip latency (its "new ReplicaSet fully available"). The Deployment
	// controller reports the Deployment available one write after its ReplicaSet, so
	// this is the earlier start. ReplicaSetLagMs: ReplicaSet -> Deployment available.
	// Both nil in results of runs that did not record them.
	ReplicaSetFlipMs *float64 `json:"replicaSetFlipMs,omitempty"`
	ReplicaSetLagMs  *float64 `json:"replicaSetLagMs,omitempty"`
	// TrafficMovedMs: the new ReplicaSet fully available (the Deployment's in runs that
	// did not record it) -> the active Service's EndpointSlices list only the new
	// colour's pods, at least replicas of them ready: what users feel. FlipToTrafficMs:
	// the selector change -> the same. Both nil in results of runs that did not record
	// them.
	TrafficMovedMs  *float64 `json:"trafficMovedMs,omitempty"`
	FlipToTrafficMs *float64 `json:"flipToTrafficMs,omitempty"`
	// GateToFlipMs: the later of "available" and "preview endpoints ready" -> flip.
	// "available" is the new ReplicaSet's (the Deployment's in runs that did not record
	// the ReplicaSet's).
	GateToFlipMs float64 `json:"gateToFlipMs"`
	// EndpointsLagMs: available -> preview EndpointSlices list every new pod ready
	// (negative when the endpoints came first).
	EndpointsLagMs     float64 `json:"endpointsLagMs"`
	ApplyToFlipMs      float64 `json:"applyToFlipMs"`
	ApplyToAvailableMs float64 `json:"applyToAvailableMs"`
	FlipToStatusMs     float64 `json:"flipToStatusMs"`
	OverheadMs         float64 `json:"overheadMs"`
	// PatchRTTMs is the round trip of the benchmark's own patch of the release, and
	// WatchDelayMs the time from its response to the watcher seeing the change: together
	// about the least a flip can take here (an event in, a patch out, an event back).
	PatchRTTMs   float64            `json:"patchRTTMs"`
	WatchDelayMs float64            `json:"watchDelayMs"`
	GapsMs       map[string]float64 `json:"gapsMs"`
	Applied      time.Time          `json:"applied"`
	Flipped      time.Time          `json:"flipped"`
}

func (r *flipRun) summarize() {
	pick := func(f func(flipSample) float64) summary {
		var v []float64
		for _, s := range r.Samples {
			v = append(v, f(s))
		}
		return summarize(v)
	}
	r.Flip = pick(flipLatency)
	r.TrafficMoved = pickRecorded(r.Samples, func(s flipSample) *float64 { return s.TrafficMovedMs })
	r.FlipToTraffic = pickRecorded(r.Samples, func(s flipSample) *float64 { return s.FlipToTrafficMs })
	r.DeploymentFlip = pick(func(s flipSample) float64 { return s.FlipMs })
	r.GateToFlip = pick(func(s flipSample) float64 { return s.GateToFlipMs })
	r.EndpointsLag = pick(func(s flipSample) float64 { return s.EndpointsLagMs })
	r.ApplyToFlip = pick(func(s flipSample) float64 { return s.ApplyToFlipMs })
	r.FlipToStatus = pick(func(s flipSample) float64 { return s.FlipToStatusMs })
	r.Overhead = pick(func(s flipSample) float64 { return s.OverheadMs })
	r.Gaps = map[string]summary{}
	for _, g := range []string{gapStartGreen, gapFlip, gapScaleDown, gapSucceeded} {
		r.Gaps[g] = pick(func(s flipSample) float64 { return s.GapsMs[g] })
	}
}

// pickRecorded summarizes a figure that older results may lack.
func pickRecorded(samples []flipSample, f func(flipSample) *float64) summary {
	var v []float64
	for _, s := range samples {
		if p := f(s); p != nil {
			v = append(v, *p)
		}
	}
	return summarize(v)
}

// flipLatency is the flip latency of a sample: from the new ReplicaSet fully
// available, or, in results of runs that did not record that, from the Deployment.
func flipLatency(s flipSample) float64 {
	if s.ReplicaSetFlipMs != nil {
		return *s.ReplicaSetFlipMs
	}
	return s.FlipMs
}

type memoryPoint struct {
	Releases      int     `json:"releases"`
	Label         string  `json:"label"`
	RSSMiB        float64 `json:"rssMiB"`
	RSSMaxMiB     float64 `json:"rssMaxMiB"`
	HeapInuseMiB  float64 `json:"heapInuseMiB"`
	GoSysMiB      float64 `json:"goSysMiB"`
	OperatorStart int     `json:"operatorStart"`
	Load          string  `json:"load"`
}

type resyncResult struct {
	Releases            int          `json:"releases"`
	Context             string       `json:"context,omitempty"`
	WindowSeconds       float64      `json:"windowSeconds"`
	Window              requestDelta `json:"window"`
	Annotated           requestDelta `json:"annotated"`
	Reconciles          float64      `json:"reconciles"`
	ReconcileAllSeconds float64      `json:"reconcileAllSeconds"`
}

type restartResult struct {
	Releases           int          `json:"releases"`
	Label              string       `json:"label"`
	CacheSyncMs        float64      `json:"cacheSyncMs"`
	ExecToWorkersMs    float64      `json:"execToWorkersMs"`
	ExecToReconciledMs float64      `json:"execToReconciledMs"`
	Requests           requestDelta `json:"requests"`
}

type unrelatedLoad struct {
	Secrets        int     `json:"secrets"`
	Deployments    int     `json:"deployments"`
	Pods           int     `json:"pods"`
	CreatedSeconds float64 `json:"createdSeconds"`
}

// checkoutCommit names the commit of the working directory's checkout (the benchmark
// runs from the repository root), or "" outside a git checkout.
func checkoutCommit() string {
	out, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return ""
	}
	commit := strings.TrimSpace(string(out))
	if dirty, err := exec.Command("git", "status", "--porcelain", "--", "api", "cmd", "internal", "go.mod", "go.sum").Output(); err == nil && len(dirty) > 0 {
		commit += "+dirty"
	}
	return commit
}

func loadAvg() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(raw))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func describeMachine() machine {
	m := machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), LoadBefore: loadAvg()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		_ = f.Close()
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
				m.MemTotal = strings.TrimSpace(v)
				break
			}
		}
		_ = f.Close()
	}
	if raw, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(raw))
	}
	return m
}
