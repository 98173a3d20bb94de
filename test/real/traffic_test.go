//go:build real && linux

package real

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/informers"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// How soon traffic reaches the new pods, on real pods whose readiness a kubelet probes:
// the benchmark measures it on kwok (docs/benchmarks.md), where pods are ready in the
// millisecond they are created and the EndpointSlice controller meets its stale-cache
// retry; here the same gate meets real timing. Reported, not asserted (timings belong
// to benchmarks); asserted is what a user must never see: an active Service without a
// ready endpoint, or a failed request.
var _ = Describe("Traffic on a real cluster", func() {
	const flips = 5

	It("moves to the new pods once they are ready, never leaving the active Service without a ready endpoint", func(ctx SpecContext) {
		ns := createNamespace(ctx, "traffic")
		key := client.ObjectKey{Namespace: ns, Name: "softfactory"}
		DeferCleanup(func(ctx SpecContext) { reportOnFailure(ctx, ns) })

		By("a release whose first revision makes the schema; then flips with no Job, the database kept")
		db := createDatabase(ctx, ns)
		r := newRelease(db, key.Name, appV2)
		r.Spec.Strategy.BlueGreen.ScaleDownDelaySeconds = ptr.To[int32](5)
		Expect(k8s.Create(ctx, r)).To(Succeed())
		r = waitForSuccess(ctx, key)
		url := serviceURL(ctx, ns, r.ActiveServiceName())

		// kube-proxy programs a new Service a moment after it exists; a connection tried
		// before that waits out its SYN retries (as the first spec does, wait for it).
		expectVersion(ctx, url, "2.0.0")

		w := watchTraffic(ctx, ns, r)
		load := startLoad("five flips, no Job", url)
		var each, previewLag []time.Duration
		asked := 0 // flips in which the gate asked for the preview's endpoints again
		for i := 1; i <= flips; i++ {
			updateRelease(ctx, key, func(r *deployv1alpha1.SoftFactoryRelease) {
				r.Spec.Backup, r.Spec.Migration = nil, nil
				r.Spec.Env = []corev1.EnvVar{{Name: "RELEASE_NOTE", Value: fmt.Sprint(i)}}
			})
			r = waitForSuccess(ctx, key)
			available, previewReady, traffic := w.times(r.Status.CurrentRevision)
			Expect(available).NotTo(BeZero(), "flip %d: the new ReplicaSet was never seen fully available", i)
			Expect(traffic).NotTo(BeZero(), "flip %d: the active Service's EndpointSlices never listed only the new pods", i)
			each = append(each, traffic.Sub(available))
			if !previewReady.IsZero() {
				previewLag = append(previewLag, previewReady.Sub(available))
			}
			preview := &corev1.Service{}
			Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: r.PreviewServiceName()}, preview)).To(Succeed())
			if preview.Annotations[deployv1alpha1.EndpointsRequestedAnnotation] == r.Status.CurrentRevision {
				asked++
			}
		}
		rep := load.Stop()
		moved := slices.Sorted(slices.Values(each))
		line := fmt.Sprintf("traffic moved (new ReplicaSet fully available -> active EndpointSlices list only its pods, ready), %d flips: "+
			"median %s, max %s; each: %v; the preview Service listed them ready (the gate's evidence) %v after the ReplicaSet was available; "+
			"the gate asked for the preview's endpoints again in %d of %d flips",
			flips, moved[len(moved)/2].Round(time.Millisecond), moved[len(moved)-1].Round(time.Millisecond), roundAll(each), roundAll(previewLag), asked, flips)
		AddReportEntry("traffic moved", line)
		GinkgoWriter.Println(line)
		recordTrafficReport(line)

		expectNoFailedRequest(rep)
		Expect(w.outages()).To(BeEmpty(), "moments the active Service had no ready endpoint")
	})
})

func roundAll(ds []time.Duration) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond).String()
	}
	return out
}

// trafficWatch follows, through the API server on the host's loopback, the ReplicaSets
// of a namespace and the EndpointSlices of the release's active and preview Services,
// timestamping what it sees as it arrives, like a user's own watcher. It never talks to
// a pod.
type trafficWatch struct {
	replicas        int32
	active, preview string

	mu sync.Mutex
	// revisionOf maps a ReplicaSet's name (a pod's name without its last part) to the
	// release revision of its pod template.
	revisionOf map[string]string
	// available, previewReady and moved are the first moments, per revision, its
	// ReplicaSet was fully available, the preview Service's slices listed its pods ready
	// (the gate's evidence), and the active Service's slices listed only its pods, ready.
	available, previewReady, moved map[string]time.Time
	// ready holds the ready endpoints' pod names by Service, then by slice.
	ready    map[string]map[string][]string
	hadReady bool
	gaps     []time.Time
}

func watchTraffic(ctx SpecContext, namespace string, r *deployv1alpha1.SoftFactoryRelease) *trafficWatch {
	GinkgoHelper()
	w := &trafficWatch{replicas: *r.Spec.Replicas, active: r.ActiveServiceName(), preview: r.PreviewServiceName(),
		revisionOf: map[string]string{}, available: map[string]time.Time{}, previewReady: map[string]time.Time{},
		moved: map[string]time.Time{}, ready: map[string]map[string][]string{}}
	factory := informers.NewSharedInformerFactoryWithOptions(clientset, 0, informers.WithNamespace(namespace))
	rsInformer := factory.Apps().V1().ReplicaSets().Informer()
	sliceInformer := factory.Discovery().V1().EndpointSlices().Informer()
	_, err := rsInformer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { w.onReplicaSet(o, time.Now()) },
		UpdateFunc: func(_, o any) { w.onReplicaSet(o, time.Now()) },
	})
	Expect(err).NotTo(HaveOccurred())
	_, err = sliceInformer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { w.onSlice(o, time.Now(), false) },
		UpdateFunc: func(_, o any) { w.onSlice(o, time.Now(), false) },
		DeleteFunc: func(o any) { w.onSlice(o, time.Now(), true) },
	})
	Expect(err).NotTo(HaveOccurred())
	stop := make(chan struct{})
	DeferCleanup(func() { close(stop) })
	factory.Start(stop)
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		Expect(ok).To(BeTrue(), "the %v informer did not sync", typ)
	}
	return w
}

func (w *trafficWatch) onReplicaSet(obj any, at time.Time) {
	rs, ok := obj.(*appsv1.ReplicaSet)
	if !ok {
		return
	}
	rev := rs.Spec.Template.Labels[deployv1alpha1.LabelRevision]
	st := rs.Status
	full := st.ObservedGeneration >= rs.Generation && ptr.Deref(rs.Spec.Replicas, 1) == w.replicas &&
		st.Replicas == w.replicas && st.ReadyReplicas == w.replicas && st.AvailableReplicas == w.replicas
	w.mu.Lock()
	defer w.mu.Unlock()
	w.revisionOf[rs.Name] = rev
	if _, seen := w.available[rev]; full && !seen {
		w.available[rev] = at
	}
}

func (w *trafficWatch) onSlice(obj any, at time.Time, deleted bool) {
	if tomb, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return
	}
	service := s.Labels[discoveryv1.LabelServiceName]
	if service != w.active && service != w.preview {
		return
	}
	var ready []string
	for _, ep := range s.Endpoints {
		if ep.TargetRef != nil && (ep.Conditions.Ready == nil || *ep.Conditions.Ready) {
			ready = append(ready, ep.TargetRef.Name)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	bySlice := w.ready[service]
	if bySlice == nil {
		bySlice = map[string][]string{}
		w.ready[service] = bySlice
	}
	if deleted {
		delete(bySlice, s.Name)
	} else {
		bySlice[s.Name] = ready
	}
	revisions := map[string]int32{}
	var total int32
	for _, names := range bySlice {
		for _, pod := range names {
			total++
			if cut := strings.LastIndex(pod, "-"); cut > 0 {
				revisions[w.revisionOf[pod[:cut]]]++
			}
		}
	}
	if service == w.preview {
		for rev, n := range revisions {
			if _, seen := w.previewReady[rev]; rev != "" && n >= w.replicas && !seen {
				w.previewReady[rev] = at
			}
		}
		return
	}
	switch {
	case total > 0:
		w.hadReady = true
	case w.hadReady:
		w.gaps = append(w.gaps, at)
	}
	if len(revisions) == 1 {
		for rev, n := range revisions {
			if _, seen := w.moved[rev]; rev != "" && n >= w.replicas && !seen {
				w.moved[rev] = at
			}
		}
	}
}

// times says when revision's ReplicaSet was first fully available, when the preview
// Service first listed its pods ready, and when traffic first went to its pods only.
func (w *trafficWatch) times(revision string) (available, previewReady, moved time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.available[revision], w.previewReady[revision], w.moved[revision]
}

// outages are the moments the active Service's slices listed no ready endpoint after
// they had listed one.
func (w *trafficWatch) outages() []time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.gaps)
}
