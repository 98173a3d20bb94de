//go:build bench

package main

import (
	"context"
	"fmt"
	"log"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Labels and names the operator uses, spelled out here rather than imported: the
// benchmark judges the operator from outside, the way a user's own watcher would.
const (
	labelInstance    = "app.kubernetes.io/instance"
	labelColor       = "deploy.softfactory.io/color"
	scaleDownAtAnno  = "deploy.softfactory.io/scale-down-at"
	apiContainerName = "api"
)

// rollout is what the watcher saw of one release update, each time taken when the watch
// event reached the watcher (first sighting only). The benchmark's clock and the
// operator's are the same machine's.
type rollout struct {
	release  string
	image    string
	oldColor string // what the active Service selected before the update
	newColor string // the other colour: where the new image goes

	patchSent  time.Time // the benchmark sent its patch of spec.image
	applied    time.Time // the benchmark's patch of spec.image returned
	specSeen   time.Time // the release with the new spec.image was seen
	deploySeen time.Time // the new colour's Deployment with the new image was seen
	available  time.Time // that Deployment fully available: observedGeneration current, updated=ready=available=replicas
	// rsAvailable: the ReplicaSet of that Deployment with the new image fully available
	// (observedGeneration current, replicas=ready=available). The issue times the
	// competitor's flips from this, its own unit; ours waits for the Deployment, which the
	// Deployment controller reports one write later.
	rsAvailable time.Time
	endpoints   time.Time // the preview Service's EndpointSlices list all replicas of the new colour ready
	flipped     time.Time // the active Service's selector changed colour
	// trafficMoved: the active Service's EndpointSlices list only pods of the new colour,
	// at least replicas of them ready. What users feel: from then on every request
	// reaches the new pods.
	trafficMoved time.Time
	statusSeen   time.Time // the release's status reports the new image active
	scaleDownAt  time.Time // the deadline the operator stored on the old colour's Deployment
	scaledDown   time.Time // the old colour's Deployment scaled to 0
	succeeded    time.Time // the release's status: phase Succeeded for the current generation
}

// watcher is the benchmark's independent observer: informers on the releases and on
// the Deployments, ReplicaSets, Services and EndpointSlices of the benchmark's namespace. It never
// acts; it timestamps what it sees.
type watcher struct {
	cache    cache.Cache
	replicas int32

	mu       sync.Mutex
	rollouts map[string]*rollout // by release name: the update in flight
	// endpoints holds, per Service (active and preview), what each of its EndpointSlices
	// lists, so the union can be redone when one slice changes or goes.
	endpoints map[string]serviceEndpoints
	// outages watches every release's active Service, updated or not, for the whole run.
	outages outageLog
}

var releaseGVK = schemaGVK("deploy.softfactory.io", "v1alpha1", "SoftFactoryRelease")

func newWatcher(ctx context.Context, cfg *rest.Config, scheme *runtime.Scheme, namespace string, replicas int32) (*watcher, error) {
	c, err := cache.New(cfg, cache.Options{
		Scheme:            scheme,
		DefaultNamespaces: map[string]cache.Config{namespace: {}},
		DefaultTransform:  cache.TransformStripManagedFields(),
	})
	if err != nil {
		return nil, err
	}
	w := &watcher{cache: c, replicas: replicas, rollouts: map[string]*rollout{}, endpoints: map[string]serviceEndpoints{}}
	release := &unstructured.Unstructured{}
	release.SetGroupVersionKind(releaseGVK)
	for obj, handle := range map[client.Object]func(any, time.Time){
		release:                      w.onRelease,
		&appsv1.Deployment{}:         w.onDeployment,
		&appsv1.ReplicaSet{}:         w.onReplicaSet,
		&corev1.Service{}:            w.onService,
		&discoveryv1.EndpointSlice{}: w.onEndpointSlice,
	} {
		inf, err := c.GetInformer(ctx, obj)
		if err != nil {
			return nil, err
		}
		h := handle
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc:    func(o any) { h(o, time.Now()) },
			UpdateFunc: func(_, o any) { h(o, time.Now()) },
			DeleteFunc: func(o any) {
				at := time.Now()
				if tomb, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
					o = tomb.Obj
				}
				if s, ok := o.(*discoveryv1.EndpointSlice); ok {
					w.forgetSlice(s, at)
				}
			},
		}); err != nil {
			return nil, err
		}
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		return nil, fmt.Errorf("the watcher's caches did not sync")
	}
	return w, nil
}

// expect registers an update about to be applied, so the watcher records its steps.
func (w *watcher) expect(r *rollout) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.rollouts[r.release] = r
}

// done forgets a finished update and returns what was seen of it.
func (w *watcher) done(release string) rollout {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := *w.rollouts[release]
	delete(w.rollouts, release)
	return r
}

// snapshot copies an update in flight.
func (w *watcher) snapshot(release string) (rollout, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	r, ok := w.rollouts[release]
	if !ok {
		return rollout{}, false
	}
	return *r, true
}

func setOnce(t *time.Time, at time.Time) {
	if t.IsZero() {
		*t = at
	}
}

func (w *watcher) onRelease(obj any, at time.Time) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return
	}
	image, _, _ := unstructured.NestedString(u.Object, "spec", "image")
	activeImage, _, _ := unstructured.NestedString(u.Object, "status", "activeImage")
	phase, _, _ := unstructured.NestedString(u.Object, "status", "phase")
	observed, _, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration")

	w.mu.Lock()
	defer w.mu.Unlock()
	r := w.rollouts[u.GetName()]
	if r == nil || image != r.image {
		return
	}
	setOnce(&r.specSeen, at)
	if activeImage == r.image {
		setOnce(&r.statusSeen, at)
	}
	// The new generation can only reach Succeeded after its flip and scale-down.
	if phase == "Succeeded" && observed == u.GetGeneration() {
		setOnce(&r.succeeded, at)
	}
}

func (w *watcher) onDeployment(obj any, at time.Time) {
	d, ok := obj.(*appsv1.Deployment)
	if !ok {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	r := w.rollouts[d.Labels[labelInstance]]
	if r == nil {
		return
	}
	switch d.Name {
	case r.release + "-" + r.newColor:
		if deploymentImage(d) != r.image {
			return
		}
		setOnce(&r.deploySeen, at)
		if saturated(d, w.replicas) {
			setOnce(&r.available, at)
		}
	case r.release + "-" + r.oldColor:
		if s := d.Annotations[scaleDownAtAnno]; s != "" && r.scaleDownAt.IsZero() && !r.flipped.IsZero() {
			if t, err := time.Parse(time.RFC3339, s); err == nil {
				r.scaleDownAt = t
			}
		}
		if ptr.Deref(d.Spec.Replicas, 1) == 0 && !r.flipped.IsZero() {
			setOnce(&r.scaledDown, at)
		}
	}
}

// saturated is the "fully available": the Deployment controller observed the
// current generation and every replica is updated, ready and available.
func saturated(d *appsv1.Deployment, want int32) bool {
	st := d.Status
	return st.ObservedGeneration >= d.Generation && ptr.Deref(d.Spec.Replicas, 1) == want &&
		st.Replicas == want && st.UpdatedReplicas == want && st.ReadyReplicas == want && st.AvailableReplicas == want
}

func deploymentImage(d *appsv1.Deployment) string { return podImage(&d.Spec.Template.Spec) }

func podImage(spec *corev1.PodSpec) string {
	for _, c := range spec.Containers {
		if c.Name == apiContainerName {
			return c.Image
		}
	}
	return ""
}

// onReplicaSet records when the new colour's ReplicaSet for the new image is fully
// available: the moment the "new ReplicaSet fully available" names.
func (w *watcher) onReplicaSet(obj any, at time.Time) {
	rs, ok := obj.(*appsv1.ReplicaSet)
	if !ok {
		return
	}
	owner := metav1.GetControllerOf(rs)
	if owner == nil || owner.Kind != "Deployment" {
		return
	}
	cut := strings.LastIndex(owner.Name, "-")
	if cut < 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	r := w.rollouts[owner.Name[:cut]]
	if r == nil || owner.Name != r.release+"-"+r.newColor || podImage(&rs.Spec.Template.Spec) != r.image {
		return
	}
	st := rs.Status
	if st.ObservedGeneration >= rs.Generation && ptr.Deref(rs.Spec.Replicas, 1) == w.replicas &&
		st.Replicas == w.replicas && st.ReadyReplicas == w.replicas && st.AvailableReplicas == w.replicas {
		setOnce(&r.rsAvailable, at)
	}
}

func (w *watcher) onService(obj any, at time.Time) {
	svc, ok := obj.(*corev1.Service)
	if !ok {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	r := w.rollouts[svc.Name]
	if r == nil {
		return
	}
	if c := svc.Spec.Selector[labelColor]; c != "" && c != r.oldColor {
		setOnce(&r.flipped, at)
	}
}

func (w *watcher) onEndpointSlice(obj any, at time.Time) {
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return
	}
	var listed []endpointSeen
	for _, ep := range s.Endpoints {
		if ep.TargetRef == nil {
			continue
		}
		// Per the EndpointSlice API, an unset ready condition means ready.
		listed = append(listed, endpointSeen{pod: ep.TargetRef.Name, ready: ep.Conditions.Ready == nil || *ep.Conditions.Ready})
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	svcName := s.Labels[discoveryv1.LabelServiceName]
	eps := w.endpoints[svcName]
	if eps == nil {
		eps = serviceEndpoints{}
		w.endpoints[svcName] = eps
	}
	eps[s.Name] = listed
	w.endpointsChanged(svcName, at)
}

func (w *watcher) forgetSlice(s *discoveryv1.EndpointSlice, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	svcName := s.Labels[discoveryv1.LabelServiceName]
	delete(w.endpoints[svcName], s.Name)
	w.endpointsChanged(svcName, at)
}

// endpointsChanged records what a change of a Service's EndpointSlices means: for a
// preview Service, whether the new colour's pods are listed ready (the gate's half);
// for an active Service, whether it still has a ready endpoint and whether the traffic
// has moved to the new colour. Called with w.mu held.
func (w *watcher) endpointsChanged(svcName string, at time.Time) {
	eps := w.endpoints[svcName]
	if release, isPreview := strings.CutSuffix(svcName, "-preview"); isPreview {
		r := w.rollouts[release]
		if r != nil && !r.deploySeen.IsZero() && eps.readyWithPrefix(podPrefix(r.release, r.newColor)) >= int(w.replicas) {
			setOnce(&r.endpoints, at)
		}
		return
	}
	// Every other Service of the namespace is a release's active Service, named after it.
	release := svcName
	w.outages.observe(release, eps.readyWithPrefix("") > 0, at)
	if r := w.rollouts[release]; r != nil && eps.servesOnly(podPrefix(r.release, r.newColor), int(w.replicas)) {
		setOnce(&r.trafficMoved, at)
	}
}

// podPrefix starts the name of every pod of a release's colour: its Deployment's name.
func podPrefix(release, color string) string { return release + "-" + color + "-" }

// endpointSeen is one endpoint of an EndpointSlice: the pod behind it and whether the
// slice lists it ready.
type endpointSeen struct {
	pod   string
	ready bool
}

// serviceEndpoints is what each EndpointSlice of one Service lists, by slice name.
type serviceEndpoints map[string][]endpointSeen

// readyWithPrefix counts the distinct pods named with prefix that some slice lists
// ready ("" counts every ready pod). A pod can briefly sit in two slices.
func (se serviceEndpoints) readyWithPrefix(prefix string) int {
	ready := map[string]bool{}
	for _, listed := range se {
		for _, ep := range listed {
			if ep.ready && strings.HasPrefix(ep.pod, prefix) {
				ready[ep.pod] = true
			}
		}
	}
	return len(ready)
}

// servesOnly: the slices list no pod but those named with prefix (ready or not: a
// listed pod of the old colour may still be sent requests while it terminates), and at
// least want of them ready.
func (se serviceEndpoints) servesOnly(prefix string, want int) bool {
	for _, listed := range se {
		for _, ep := range listed {
			if !strings.HasPrefix(ep.pod, prefix) {
				return false
			}
		}
	}
	return se.readyWithPrefix(prefix) >= want
}

// outage is a stretch of time during which a release's active Service had no ready
// endpoint, after it had had one: nothing could answer its clients.
type outage struct {
	Release string    `json:"release"`
	Start   time.Time `json:"start"`
	// End is when a ready endpoint came back; zero if none had when the run ended.
	End time.Time `json:"end,omitzero"`
}

func (o outage) String() string {
	if o.End.IsZero() {
		return fmt.Sprintf("%s from %s, not over at the end of the run", o.Release, o.Start.UTC().Format("15:04:05.000"))
	}
	return fmt.Sprintf("%s at %s for %.1f ms", o.Release, o.Start.UTC().Format("15:04:05.000"), ms(o.End.Sub(o.Start)))
}

// outageLog follows the ready endpoints of every release's active Service and records
// each moment one has none, once it first had one (a new Service's slices start
// empty). It judges what the slices say together, as kube-proxy does.
type outageLog struct {
	served map[string]bool // releases whose active Service has listed a ready endpoint
	open   map[string]int  // index in all of an outage not over yet, by release
	all    []outage
}

func (l *outageLog) observe(release string, anyReady bool, at time.Time) {
	if l.served == nil {
		l.served, l.open = map[string]bool{}, map[string]int{}
	}
	i, isOpen := l.open[release]
	switch {
	case anyReady:
		l.served[release] = true
		if isOpen {
			l.all[i].End = at
			delete(l.open, release)
		}
	case l.served[release] && !isOpen:
		l.open[release] = len(l.all)
		l.all = append(l.all, outage{Release: release, Start: at})
		log.Printf("OUTAGE: the active Service of %s lists no ready endpoint", release)
	}
}

// between lists the outages that started in [from, to).
func (l *outageLog) between(from, to time.Time) []outage {
	var out []outage
	for _, o := range l.all {
		if !o.Start.Before(from) && o.Start.Before(to) {
			out = append(out, o)
		}
	}
	return out
}

// outagesBetween lists the outages the watcher saw start in [from, to).
func (w *watcher) outagesBetween(from, to time.Time) []outage {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.outages.between(from, to)
}

// allOutages lists every outage the watcher saw, and how many active Services it
// watched.
func (w *watcher) allOutages() ([]outage, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]outage(nil), w.outages.all...), len(w.outages.served)
}

// releaseState is what the cache says of one release right now.
type releaseState struct {
	image, phase, activeColor string
	generation, observed      int64
	// oldColorUp: a Deployment of the colour that does not serve still has replicas.
	oldColorUp bool
}

func (s releaseState) settled(image string) bool {
	return s.image == image && s.phase == "Succeeded" && s.observed == s.generation && s.activeColor != "" && !s.oldColorUp
}

// states reads every release of the namespace, with its Services and Deployments, from
// the watcher's cache.
func (w *watcher) states(ctx context.Context, namespace string) (map[string]releaseState, error) {
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(schemaGVK("deploy.softfactory.io", "v1alpha1", "SoftFactoryReleaseList"))
	if err := w.cache.List(ctx, list, client.InNamespace(namespace)); err != nil {
		return nil, err
	}
	svcs := &corev1.ServiceList{}
	if err := w.cache.List(ctx, svcs, client.InNamespace(namespace)); err != nil {
		return nil, err
	}
	deps := &appsv1.DeploymentList{}
	if err := w.cache.List(ctx, deps, client.InNamespace(namespace)); err != nil {
		return nil, err
	}
	out := make(map[string]releaseState, len(list.Items))
	for _, u := range list.Items {
		st := releaseState{generation: u.GetGeneration()}
		st.image, _, _ = unstructured.NestedString(u.Object, "spec", "image")
		st.phase, _, _ = unstructured.NestedString(u.Object, "status", "phase")
		st.observed, _, _ = unstructured.NestedInt64(u.Object, "status", "observedGeneration")
		out[u.GetName()] = st
	}
	for _, s := range svcs.Items {
		if st, ok := out[s.Name]; ok {
			st.activeColor = s.Spec.Selector[labelColor]
			out[s.Name] = st
		}
	}
	for _, d := range deps.Items {
		rel := d.Labels[labelInstance]
		st, ok := out[rel]
		if !ok || d.Name == rel+"-"+st.activeColor {
			continue
		}
		if ptr.Deref(d.Spec.Replicas, 1) > 0 {
			st.oldColorUp = true
			out[rel] = st
		}
	}
	return out, nil
}
