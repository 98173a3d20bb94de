//go:build bench

package main

// The "revisions with Jobs" scenario (hack/bench.sh jobs, make bench-jobs): releases
// with a backup and a migration, each taken through many revisions in a row, so that
// finished Jobs and their completed pods would pile up if nothing bounded them. It
// reports the operator's RSS (also after a forced GC), the Jobs and completed pods left
// in the cluster, and the operator's API writes per revision (docs/benchmarks.md).

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

type jobsPlan struct {
	releases, revisions int
	// historyLimit sets spec.revisionHistoryLimit when above 0 (the operator's default
	// is 10): Jobs of revisions past it are the ones the operator deletes.
	historyLimit int
	// stopAfter, when above 0, starts no revision once this long has passed since the
	// first create, and takes the end readings (idle, forced GC, fresh start) after the
	// last revision that ran: at 1,000 releases ten revisions take more than two hours
	// here.
	stopAfter time.Duration
}

// What every release of the scenario refers to; on kwok nothing reads the database or
// the volume, but the scheduler places a pod only once its claim is bound.
const (
	jobsDBSecret    = "bench-db"
	jobsBackupClaim = "bench-backups"
)

// jobsRevision is one revision taken by every release at once.
type jobsRevision struct {
	Revision int `json:"revision"`
	// SettledSeconds runs from the first patch to the last release settled (backup,
	// migration, flip, old colour scaled down, Succeeded).
	SettledSeconds float64         `json:"settledSeconds"`
	Requests       requestDelta    `json:"requests"`
	Controller     controllerDelta `json:"controller"`
	// WritesPerRelease is the operator's API writes for this revision, per release.
	WritesPerRelease float64 `json:"writesPerRelease"`
	// RSSMiB is the operator's RSS once the revision settled (one reading, mid-life:
	// the figures to compare are results.memory's).
	RSSMiB float64 `json:"rssMiB"`
	Load   string  `json:"load"`
}

// jobsLeft is what the cluster holds after the revisions.
type jobsLeft struct {
	Label string `json:"label"`
	// Jobs by component label (backup, migration, ...), and all of them.
	Jobs            int            `json:"jobs"`
	JobsByComponent map[string]int `json:"jobsByComponent"`
	// CompletedPods are pods in phase Succeeded or Failed (the Jobs' pods).
	CompletedPods int `json:"completedPods"`
	// RevisionsPerRelease is how many revisions each release had been through then.
	RevisionsPerRelease int `json:"revisionsPerRelease"`
}

type jobsResult struct {
	Releases  int `json:"releases"`
	Revisions int `json:"revisions"`
	// StoppedAfter is the last revision that ran when -jobs-stop-after cut the run
	// short, else 0.
	StoppedAfter int            `json:"stoppedAfter,omitempty"`
	PerRound     []jobsRevision `json:"perRevision"`
	Left         []jobsLeft     `json:"left"`
	// RSS after a forced GC (pprof's heap profile with gc=1), beside the plain readings
	// in results.memory.
	RSSAfterGCMiB []memoryPoint `json:"rssAfterGC"`
	TotalSeconds  float64       `json:"totalSeconds"`
	// HistoryLimit is spec.revisionHistoryLimit when the run set it (0: the default, 10).
	HistoryLimit int `json:"revisionHistoryLimit,omitempty"`
}

// jobsReleaseObject is releaseObject with the runbook's database steps: a backup to a
// claim and a migration, both Jobs per revision.
func (b *bench) jobsReleaseObject(name, image string) *unstructured.Unstructured {
	u := b.releaseObject(name, image)
	spec := u.Object["spec"].(map[string]any)
	spec["database"] = map[string]any{"urlSecretRef": map[string]any{"name": jobsDBSecret, "key": "DATABASE_URL"}}
	spec["backup"] = map[string]any{"volume": map[string]any{"persistentVolumeClaim": map[string]any{"claimName": jobsBackupClaim}}}
	spec["migration"] = map[string]any{"command": []any{"flask", "db", "upgrade"}}
	if l := b.cfg.jobs.historyLimit; l > 0 {
		spec["revisionHistoryLimit"] = int64(l)
	}
	return u
}

// jobsPrerequisites makes the database Secret and a pre-bound backup claim (the kwok
// cluster has no provisioner).
func (b *bench) jobsPrerequisites(ctx context.Context) error {
	ns := b.cfg.namespace
	if err := client.IgnoreAlreadyExists(b.k8s.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: jobsDBSecret, Namespace: ns},
		StringData: map[string]string{"DATABASE_URL": "postgresql://bench:bench@postgres.invalid:5432/bench"},
	})); err != nil {
		return err
	}
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: ns + "-backups"},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			PersistentVolumeSource: corev1.PersistentVolumeSource{
				HostPath: &corev1.HostPathVolumeSource{Path: "/var/lib/softfactory-backups"},
			},
			ClaimRef: &corev1.ObjectReference{Namespace: ns, Name: jobsBackupClaim},
		},
	}
	if err := client.IgnoreAlreadyExists(b.k8s.Create(ctx, pv)); err != nil {
		return err
	}
	return client.IgnoreAlreadyExists(b.k8s.Create(ctx, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: jobsBackupClaim, Namespace: ns},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
			StorageClassName: ptr.To(""),
			VolumeName:       pv.Name,
			Resources: corev1.VolumeResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			},
		},
	}))
}

// planJobs is the jobs profile's plan: create the releases, take them all through the
// revisions one revision at a time, then count what is left and read the memory.
func (b *bench) planJobs(ctx context.Context) error {
	plan := b.cfg.jobs
	n := plan.releases
	res := &jobsResult{Releases: n, Revisions: plan.revisions, HistoryLimit: plan.historyLimit}
	b.res.Jobs = res
	start := time.Now()
	if err := b.memory(0, "no releases"); err != nil {
		return err
	}
	if err := b.jobsPrerequisites(ctx); err != nil {
		return err
	}
	names := b.names(n)
	image := b.nextImage()
	log.Printf("Creating %d releases with a backup and a migration", n)
	created := time.Now()
	if err := parallel(names, 16, func(name string) error {
		return b.k8s.Create(ctx, b.jobsReleaseObject(name, image))
	}); err != nil {
		return err
	}
	for _, name := range names {
		b.images[name] = image
	}
	if err := b.waitSettled(ctx, names, time.Duration(n)*time.Second+5*time.Minute); err != nil {
		return err
	}
	b.res.Creations = append(b.res.Creations, creation{Releases: n, Created: n, SettledSeconds: time.Since(created).Seconds()})
	log.Printf("%d releases settled (revision 1), %s after the first create", n, time.Since(created).Round(time.Millisecond))

	ran := 1
	for rev := 2; rev <= plan.revisions+1; rev++ {
		if plan.stopAfter > 0 && time.Since(created) > plan.stopAfter {
			log.Printf("Stopping after revision %d of %d: -jobs-stop-after %s has passed", rev-1, plan.revisions+1, plan.stopAfter)
			res.StoppedAfter = rev - 1
			break
		}
		ran = rev
		image := b.nextImage()
		before, err := b.op.scrape()
		if err != nil {
			return err
		}
		t0 := time.Now()
		patch := fmt.Appendf(nil, `{"spec":{"image":%q}}`, image)
		if err := parallel(names, 16, func(name string) error {
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(releaseGVK)
			u.SetNamespace(b.cfg.namespace)
			u.SetName(name)
			return b.k8s.Patch(ctx, u, client.RawPatch(types.MergePatchType, patch))
		}); err != nil {
			return err
		}
		for _, name := range names {
			b.images[name] = image
		}
		// Two seconds a release: at 1,000 a revision took 21 min on 2 CPUs (docs/benchmarks.md).
		timeout := time.Duration(b.cfg.scaleDownDelaySeconds)*time.Second + 2*time.Duration(n)*time.Second + 5*time.Minute
		if err := b.waitSettled(ctx, names, timeout); err != nil {
			return err
		}
		took := time.Since(t0)
		// Job deletions and Events follow the pass that reported Succeeded.
		if err := b.settle(3 * time.Second); err != nil {
			return err
		}
		after, err := b.op.scrape()
		if err != nil {
			return err
		}
		r := jobsRevision{Revision: rev, SettledSeconds: took.Seconds(), Requests: deltaRequests(before, after),
			Controller: deltaController(before, after), Load: loadAvg()}
		r.WritesPerRelease = r.Requests.Writes / float64(n)
		if rss, err := b.op.rss(); err == nil {
			r.RSSMiB = float64(rss) / (1 << 20)
		}
		res.PerRound = append(res.PerRound, r)
		left, err := b.countJobs(ctx, fmt.Sprintf("after revision %d", rev), rev)
		if err != nil {
			return err
		}
		log.Printf("Revision %d of %d releases settled in %.1f s: %.1f writes per release %v; %d Jobs %v and %d completed pods in the cluster; operator CPU %.1f s, %.0f GCs, RSS %.1f MiB",
			rev, n, took.Seconds(), r.WritesPerRelease, verbsAndConflicts(r.Requests), left.Jobs, left.JobsByComponent, left.CompletedPods,
			r.Controller.CPUSeconds, r.Controller.GCs, r.RSSMiB)
		res.Left = append(res.Left, left)
	}
	if err := b.memory(n, fmt.Sprintf("after %d revisions with Jobs", ran)); err != nil {
		return err
	}
	if err := b.memoryAfterGC(n, "same process, forced GC"); err != nil {
		return err
	}
	if err := b.restart(n, "releases with Jobs"); err != nil {
		return err
	}
	if err := b.memory(n, "fresh start, with what the Jobs left"); err != nil {
		return err
	}
	if err := b.memoryAfterGC(n, "fresh start, forced GC"); err != nil {
		return err
	}
	left, err := b.countJobs(ctx, "at the end", ran)
	if err != nil {
		return err
	}
	res.Left = append(res.Left, left)
	res.TotalSeconds = time.Since(start).Seconds()
	return nil
}

// countJobs counts the Jobs and the completed pods in the releases' namespace.
func (b *bench) countJobs(ctx context.Context, label string, revisions int) (jobsLeft, error) {
	out := jobsLeft{Label: label, JobsByComponent: map[string]int{}, RevisionsPerRelease: revisions}
	jobs := &batchv1.JobList{}
	if err := b.k8s.List(ctx, jobs, client.InNamespace(b.cfg.namespace)); err != nil {
		return out, err
	}
	for _, j := range jobs.Items {
		out.Jobs++
		out.JobsByComponent[j.Labels["app.kubernetes.io/component"]]++
	}
	pods := &corev1.PodList{}
	if err := b.k8s.List(ctx, pods, client.InNamespace(b.cfg.namespace)); err != nil {
		return out, err
	}
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			out.CompletedPods++
		}
	}
	return out, nil
}

// memoryAfterGC makes the operator collect its garbage (pprof's heap profile with gc=1
// runs runtime.GC first; the operator serves pprof only when the scenario asks for it),
// waits a few seconds for the scavenger to return freed pages, and reads RSS.
func (b *bench) memoryAfterGC(releases int, label string) error {
	if b.op.Addr(pprofFlag) == "" {
		return nil
	}
	resp, err := http.Get("http://" + b.op.Addr(pprofFlag) + "/debug/pprof/heap?gc=1")
	if err != nil {
		return err
	}
	// The profile itself is kept beside results.json: `go tool pprof` on it says what
	// the live heap is made of.
	profile, err := os.Create(filepath.Join(b.cfg.outDir, "heap-"+strings.NewReplacer(" ", "-", ",", "").Replace(label)+".pb.gz"))
	if err != nil {
		_ = resp.Body.Close()
		return err
	}
	_, err = io.Copy(profile, resp.Body)
	_ = resp.Body.Close()
	if cerr := profile.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	time.Sleep(5 * time.Second)
	p, err := b.sampleMemory(releases, label)
	if err != nil {
		return err
	}
	b.res.Jobs.RSSAfterGCMiB = append(b.res.Jobs.RSSAfterGCMiB, p)
	log.Printf("RSS with %d releases (%s): %.1f MiB (Go heap in use %.1f MiB)", releases, label, p.RSSMiB, p.HeapInuseMiB)
	return nil
}

// summary is the scenario's part of summary.md; empty when the run had none.
func (r *jobsResult) summary() string {
	if r == nil {
		return ""
	}
	var b strings.Builder
	limit := "the default revisionHistoryLimit (10)"
	if r.HistoryLimit > 0 {
		limit = fmt.Sprintf("revisionHistoryLimit %d", r.HistoryLimit)
	}
	fmt.Fprintf(&b, "\n## Revisions with Jobs: %d releases with a backup and a migration, %d revisions after the first, %s\n\n", r.Releases, r.Revisions, limit)
	if r.StoppedAfter > 0 {
		fmt.Fprintf(&b, "Stopped after revision %d by -jobs-stop-after: the end readings are after it.\n\n", r.StoppedAfter)
	}
	b.WriteString("| revision | all settled after (s) | operator writes per release | requests by verb | passes per release | operator CPU (s) | GCs | RSS (MiB) | load |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, p := range r.PerRound {
		fmt.Fprintf(&b, "| %d | %.1f | %.1f | %s | %.1f | %.1f | %.0f | %.1f | %s |\n", p.Revision, p.SettledSeconds, p.WritesPerRelease, verbsAndConflicts(p.Requests),
			p.Controller.Reconciles/float64(r.Releases), p.Controller.CPUSeconds, p.Controller.GCs, p.RSSMiB, p.Load)
	}
	b.WriteString("\n| when | revisions per release | Jobs left | by component | completed pods left |\n|---|---|---|---|---|\n")
	for _, l := range r.Left {
		fmt.Fprintf(&b, "| %s | %d | %d | %s | %d |\n", l.Label, l.RevisionsPerRelease, l.Jobs, counts(l.JobsByComponent), l.CompletedPods)
	}
	if len(r.RSSAfterGCMiB) > 0 {
		b.WriteString("\n| RSS after a forced GC | RSS (MiB) | Go heap in use (MiB) | operator start # |\n|---|---|---|---|\n")
		for _, p := range r.RSSAfterGCMiB {
			fmt.Fprintf(&b, "| %s | %.1f | %.1f | %d |\n", p.Label, p.RSSMiB, p.HeapInuseMiB, p.OperatorStart)
		}
	}
	fmt.Fprintf(&b, "\nThe scenario took %.0f s.\n", r.TotalSeconds)
	return b.String()
}

func counts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
