//go:build bench

// Command bench measures the release operator on a local kwok cluster: flip latency one
// release at a time and many at once, time until all are promoted, controller overhead
// per release, API writes per release and on a steady-state resync, RSS against the
// number of releases (and with unrelated objects in the cluster), and cache sync time at
// start-up. docs/benchmarks.md has the method and the figures; hack/bench.sh makes the
// cluster, builds the operator and runs this.
//
//	go run -tags bench ./test/bench -kubeconfig K -operator bin/manager -profile smoke -out DIR
//	go run -tags bench ./test/bench -plot DIR/results.json -png docs/benchmarks.png
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap/zapcore"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

type burstPlan struct{ size, rounds int }

type unrelatedPlan struct{ secrets, deployments, podsPerDeployment int }

type config struct {
	kubeconfig, operatorBin, outDir, namespace string
	clusterNote, note                          string
	operatorArgs                               []string
	profile                                    string
	// heapProfiles lets the operator sample allocations (-heap-profiles).
	heapProfiles bool

	replicas, scaleDownDelaySeconds int
	// scales are the release counts the run grows through; at each, the sequential
	// rounds, the bursts that fit, and the memory readings run.
	scales               []int
	seqReleases, rounds  int
	bursts               []burstPlan
	resyncWindow         time.Duration
	settleIdle           time.Duration
	rssSamples           int
	unrelated            unrelatedPlan
	requireZeroResyncIOs bool
	// jobs, when set, runs the "revisions with Jobs" scenario instead (jobs.go).
	jobs *jobsPlan
}

func profile(name string) (config, error) {
	c := config{profile: name, namespace: "bench", replicas: 2, scaleDownDelaySeconds: 30, seqReleases: 20, requireZeroResyncIOs: true}
	switch name {
	case "smoke":
		// CI: every kind of measurement once, on 20 releases, in a few minutes.
		c.scales = []int{20}
		c.rounds = 1
		c.bursts = []burstPlan{{20, 1}}
		c.resyncWindow, c.settleIdle, c.rssSamples = 15*time.Second, 5*time.Second, 5
	case "full":
		c.scales = []int{20, 100, 1000}
		c.rounds = 3
		c.bursts = []burstPlan{{10, 3}, {100, 3}, {1000, 1}}
		c.resyncWindow, c.settleIdle, c.rssSamples = 60*time.Second, 15*time.Second, 10
		c.unrelated = unrelatedPlan{secrets: 5000, deployments: 1000, podsPerDeployment: 10}
	case "jobs":
		// Releases with a backup and a migration through many revisions (jobs.go). A 5 s
		// scale-down delay: the old colour's wait is not what is measured here.
		c.jobs = &jobsPlan{releases: 100, revisions: 10}
		c.scaleDownDelaySeconds = 5
		c.settleIdle, c.rssSamples = 10*time.Second, 5
	default:
		return c, fmt.Errorf("unknown profile %q (smoke, full or jobs)", name)
	}
	return c, nil
}

func main() {
	var (
		cfg                                     config
		profileName, operatorArgs, scales       string
		plotFrom, plotPNG, summaryFrom          string
		plotCompare, plotCompareLabel           string
		rounds, unrelatedPods, unrelatedSecrets int
		jobsReleases, jobsRevisions, jobsLimit  int
		jobsStopAfter                           time.Duration
	)
	flag.StringVar(&profileName, "profile", "smoke", "smoke (20 releases, CI), full (up to 1,000 releases and unrelated load) or jobs (releases with backup and migration Jobs through many revisions)")
	flag.IntVar(&jobsReleases, "jobs-releases", 0, "with -profile jobs: override the number of releases (100)")
	flag.IntVar(&jobsRevisions, "jobs-revisions", 0, "with -profile jobs: override the revisions each release goes through after its first (10)")
	flag.DurationVar(&jobsStopAfter, "jobs-stop-after", 0, "with -profile jobs: start no revision after this long since the first create, and take the end readings (0: run every revision)")
	flag.IntVar(&jobsLimit, "jobs-history-limit", 0, "with -profile jobs: set the releases' spec.revisionHistoryLimit (default: unset, the operator's 10)")
	flag.BoolVar(&cfg.heapProfiles, "heap-profiles", false, "with -profile jobs: let the operator sample allocations, so the heap-*.pb.gz beside results.json say what the heap holds (its RSS then includes the sampler's table: 4.7 MiB more at 100 releases after 11 revisions)")
	flag.StringVar(&cfg.kubeconfig, "kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the benchmark cluster")
	flag.StringVar(&cfg.operatorBin, "operator", "bin/manager", "the operator binary to run")
	flag.StringVar(&operatorArgs, "operator-args", "", "extra flags for the operator, space-separated (e.g. \"--kube-api-qps=100\")")
	flag.StringVar(&cfg.outDir, "out", ".cache/bench", "directory for results.json, summary.md and the operator's log")
	flag.StringVar(&cfg.namespace, "namespace", "bench", "namespace for the releases (must hold none); unrelated objects go to <namespace>-unrelated")
	flag.StringVar(&scales, "scales", "", "override the profile's release counts, comma-separated (e.g. 20,100)")
	flag.IntVar(&rounds, "rounds", 0, "override the profile's rounds per measurement")
	flag.IntVar(&unrelatedPods, "unrelated-pods", -1, "override the unrelated pods (10 per Deployment; 0 skips the unrelated load)")
	flag.IntVar(&unrelatedSecrets, "unrelated-secrets", -1, "override the unrelated Secrets")
	flag.StringVar(&cfg.clusterNote, "cluster", "", "a description of the cluster, recorded with the results (hack/bench.sh sets it)")
	flag.StringVar(&cfg.note, "note", "", "a note recorded with the results (e.g. which build of the operator this is)")
	flag.StringVar(&plotFrom, "plot", "", "draw the plot from this results.json instead of running")
	flag.StringVar(&plotPNG, "png", "docs/benchmarks.png", "where -plot writes the PNG")
	flag.StringVar(&plotCompare, "compare", "", "with -plot: a second results.json, drawn dashed")
	flag.StringVar(&plotCompareLabel, "compare-label", "the comparison run", "with -compare: what the dashed lines are")
	flag.StringVar(&summaryFrom, "summarize", "", "print the Markdown summary of this results.json instead of running")
	flag.Parse()
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	// The watcher's cache logs through controller-runtime: errors only.
	logf.SetLogger(zap.New(zap.Level(zapcore.ErrorLevel)))

	if summaryFrom != "" {
		res, err := readResults(summaryFrom)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Print(res.summary())
		return
	}
	if plotFrom != "" {
		if err := plotFile(plotFrom, plotCompare, plotCompareLabel, plotPNG); err != nil {
			log.Fatal(err)
		}
		return
	}

	p, err := profile(profileName)
	if err != nil {
		log.Fatal(err)
	}
	p.kubeconfig, p.operatorBin, p.outDir, p.namespace, p.clusterNote, p.note = cfg.kubeconfig, cfg.operatorBin, cfg.outDir, cfg.namespace, cfg.clusterNote, cfg.note
	p.operatorArgs = strings.Fields(operatorArgs)
	if scales != "" {
		p.scales = nil
		for _, s := range strings.Split(scales, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil {
				log.Fatalf("-scales: %v", err)
			}
			p.scales = append(p.scales, n)
		}
	}
	if rounds > 0 {
		p.rounds = rounds
		for i := range p.bursts {
			p.bursts[i].rounds = min(p.bursts[i].rounds, rounds)
		}
	}
	if unrelatedPods >= 0 {
		p.unrelated.deployments = unrelatedPods / 10
		p.unrelated.podsPerDeployment = 10
	}
	if unrelatedSecrets >= 0 {
		p.unrelated.secrets = unrelatedSecrets
	}
	if p.jobs != nil && jobsReleases > 0 {
		p.jobs.releases = jobsReleases
	}
	if p.jobs != nil && jobsRevisions > 0 {
		p.jobs.revisions = jobsRevisions
	}
	if p.jobs != nil {
		p.jobs.historyLimit = jobsLimit
		p.jobs.stopAfter = jobsStopAfter
	}

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if err := run(ctx, p); err != nil {
		log.Printf("FAILED: %v", err)
		cancel()
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config) error {
	if err := os.MkdirAll(cfg.outDir, 0o755); err != nil {
		return err
	}
	restConfig, err := clientcmd.BuildConfigFromFlags("", cfg.kubeconfig)
	if err != nil {
		return err
	}
	// The benchmark's own client must not be what paces the updates.
	restConfig.QPS, restConfig.Burst = 1000, 2000
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	k8s, err := client.New(restConfig, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	opLog, _ := filepath.Abs(filepath.Join(cfg.outDir, "operator.log"))
	_ = os.Remove(opLog)
	op := newOperator(cfg.operatorBin, cfg.kubeconfig, opLog, cfg.operatorArgs, cfg.jobs != nil, cfg.heapProfiles)
	b := &bench{
		cfg: cfg, k8s: k8s, images: map[string]string{}, op: op,
		res: &results{Profile: cfg.profile, Started: time.Now(), Machine: describeMachine(), OperatorArgs: cfg.operatorArgs, OperatorEnv: op.Env, Commit: checkoutCommit(), Cluster: cfg.clusterNote, Note: cfg.note},
	}
	if err := b.ensureNamespace(ctx, cfg.namespace); err != nil {
		return err
	}
	if b.w, err = newWatcher(ctx, restConfig, scheme, cfg.namespace, int32(cfg.replicas)); err != nil {
		return err
	}
	if states, err := b.w.states(ctx, cfg.namespace); err != nil {
		return err
	} else if len(states) > 0 {
		return fmt.Errorf("namespace %s already holds %d releases; use a fresh cluster (hack/bench.sh makes one) or -namespace", cfg.namespace, len(states))
	}
	log.Printf("Starting the operator %s %s (log: %s)", cfg.operatorBin, strings.Join(cfg.operatorArgs, " "), opLog)
	if err := b.op.Start(); err != nil {
		return err
	}
	defer func() { _ = b.op.Stop() }()

	var runErr error
	if cfg.jobs != nil {
		runErr = b.planJobs(ctx)
	} else {
		runErr = b.plan(ctx)
	}
	b.res.Finished = time.Now()
	b.res.Machine.LoadAfter = loadAvg()
	b.res.Outages, b.res.ActiveServicesWatched = b.w.allOutages()
	if err := b.write(); err != nil {
		return err
	}
	if runErr != nil {
		return runErr
	}
	return b.check()
}

// plan runs the measurements in order, growing the number of releases.
func (b *bench) plan(ctx context.Context) error {
	cfg := b.cfg
	if err := b.memory(0, "no releases"); err != nil {
		return err
	}
	prev := 0
	for _, n := range cfg.scales {
		if err := b.ensureReleases(ctx, n); err != nil {
			return err
		}
		if err := b.memory(n, "after creating them"); err != nil {
			return err
		}
		if err := b.sequential(ctx, n, min(cfg.seqReleases, n), cfg.rounds, ""); err != nil {
			return err
		}
		for _, bp := range cfg.bursts {
			if bp.size > prev && bp.size <= n {
				if err := b.burst(ctx, n, bp.size, bp.rounds); err != nil {
					return err
				}
			}
		}
		if err := b.memory(n, "after the flips"); err != nil {
			return err
		}
		prev = n
	}
	n := prev
	if err := b.resync(ctx, n, ""); err != nil {
		return err
	}
	if err := b.restart(n, "releases only"); err != nil {
		return err
	}
	if err := b.memory(n, "fresh start"); err != nil {
		return err
	}
	if u := cfg.unrelated; u.deployments > 0 || u.secrets > 0 {
		if err := b.unrelated(ctx); err != nil {
			return err
		}
		if err := b.memory(n, "unrelated objects added, same process"); err != nil {
			return err
		}
		if err := b.restart(n, "with unrelated objects"); err != nil {
			return err
		}
		if err := b.memory(n, "with unrelated objects, fresh start"); err != nil {
			return err
		}
		if err := b.sequential(ctx, n, min(cfg.seqReleases, n), 1, "with unrelated objects"); err != nil {
			return err
		}
		if err := b.resync(ctx, n, "with unrelated objects"); err != nil {
			return err
		}
	}
	return nil
}

func (b *bench) write() error {
	raw, err := json.MarshalIndent(b.res, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(b.cfg.outDir, "results.json")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		return err
	}
	summary := b.res.summary()
	if err := os.WriteFile(filepath.Join(b.cfg.outDir, "summary.md"), []byte(summary), 0o644); err != nil {
		return err
	}
	fmt.Print(summary)
	log.Printf("Results: %s", path)
	return nil
}

// check fails the run where a figure that does not depend on the machine is wrong: an
// active Service must never list no ready endpoint (an outage, whatever the load), and
// a settled release must cost no API write, whether nothing happens, every release is
// reconciled again, or the operator restarts.
func (b *bench) check() error {
	if n := len(b.res.Outages); n > 0 {
		var each []string
		for _, o := range b.res.Outages {
			each = append(each, o.String())
		}
		return fmt.Errorf("%d time(s) an active Service listed no ready endpoint (an outage: traffic must only move to pods the endpoint machinery lists ready): %s",
			n, strings.Join(each, "; "))
	}
	if !b.cfg.requireZeroResyncIOs {
		return nil
	}
	var problems []string
	for _, r := range b.res.Resync {
		if r.Window.Writes != 0 {
			problems = append(problems, fmt.Sprintf("%v writes while %d settled releases sat idle for %.0f s", r.Window.ByVerb, r.Releases, r.WindowSeconds))
		}
		if r.Annotated.Writes != 0 {
			problems = append(problems, fmt.Sprintf("%v writes reconciling %d settled releases again", r.Annotated.ByVerb, r.Releases))
		}
	}
	for _, r := range b.res.Restarts {
		if r.Requests.Writes != 0 {
			problems = append(problems, fmt.Sprintf("%v writes when the operator restarted with %d settled releases", r.Requests.ByVerb, r.Releases))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("a steady state must cost no API write: %s", strings.Join(problems, "; "))
	}
	return nil
}
