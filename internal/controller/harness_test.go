package controller

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// countingClient counts the write calls a reconciler makes, so a test can prove that a
// settled release costs no write at all.
type countingClient struct {
	client.Client
	writes atomic.Int64
}

func (c *countingClient) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	c.writes.Add(1)
	return c.Client.Create(ctx, obj, opts...)
}

func (c *countingClient) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	c.writes.Add(1)
	return c.Client.Update(ctx, obj, opts...)
}

func (c *countingClient) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	c.writes.Add(1)
	return c.Client.Patch(ctx, obj, patch, opts...)
}

func (c *countingClient) Delete(ctx context.Context, obj client.Object, opts ...client.DeleteOption) error {
	c.writes.Add(1)
	return c.Client.Delete(ctx, obj, opts...)
}

func (c *countingClient) Status() client.SubResourceWriter {
	return &countingStatusWriter{SubResourceWriter: c.Client.Status(), writes: &c.writes}
}

type countingStatusWriter struct {
	client.SubResourceWriter
	writes *atomic.Int64
}

func (w *countingStatusWriter) Update(ctx context.Context, obj client.Object, opts ...client.SubResourceUpdateOption) error {
	w.writes.Add(1)
	return w.SubResourceWriter.Update(ctx, obj, opts...)
}

func (w *countingStatusWriter) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	w.writes.Add(1)
	return w.SubResourceWriter.Patch(ctx, obj, patch, opts...)
}

// harness drives one release in its own namespace. Reconcile is called directly, with a
// fake clock, so deadlines and delays are stepped instead of waited for.
type harness struct {
	ns      string
	name    string
	clock   *clocktesting.FakeClock
	client  *countingClient
	rec     *SoftFactoryReleaseReconciler
	history *events.FakeRecorder
}

func newHarness() *harness {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "release-"}}
	Expect(k8sClient.Create(ctx, ns)).To(Succeed())
	h := &harness{
		ns:      ns.Name,
		name:    "softfactory",
		clock:   clocktesting.NewFakeClock(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)),
		client:  &countingClient{Client: newCachedClient()},
		history: events.NewFakeRecorder(1000),
	}
	h.rec = h.newReconciler()
	return h
}

// newReconciler is a fresh operator process: nothing in memory, only the cluster.
func (h *harness) newReconciler() *SoftFactoryReleaseReconciler {
	return &SoftFactoryReleaseReconciler{Client: h.client, APIReader: k8sClient, Recorder: h.history, Clock: h.clock}
}

// release is the manifest the tests start from: backup, migration, two replicas.
func (h *harness) release(image string) *deployv1alpha1.SoftFactoryRelease {
	return &deployv1alpha1.SoftFactoryRelease{
		ObjectMeta: metav1.ObjectMeta{Name: h.name, Namespace: h.ns},
		Spec: deployv1alpha1.SoftFactoryReleaseSpec{
			Image:    image,
			Replicas: ptr.To[int32](2),
			Database: &deployv1alpha1.DatabaseSpec{URLSecretRef: deployv1alpha1.SecretKeyRef{Name: "softfactory-db"}},
			Backup: &deployv1alpha1.BackupSpec{
				Volume: deployv1alpha1.BackupVolume{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "backups"}},
			},
			Migration: &deployv1alpha1.MigrationSpec{},
		},
	}
}

func (h *harness) create(r *deployv1alpha1.SoftFactoryRelease) {
	Expect(k8sClient.Create(ctx, r)).To(Succeed())
}

func (h *harness) get() *deployv1alpha1.SoftFactoryRelease {
	r := &deployv1alpha1.SoftFactoryRelease{}
	Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: h.ns, Name: h.name}, r)).To(Succeed())
	return r
}

// update applies a change to the release's spec or metadata, as `kubectl apply` would.
func (h *harness) update(mutate func(r *deployv1alpha1.SoftFactoryRelease)) {
	Eventually(func() error {
		r := h.get()
		mutate(r)
		return k8sClient.Update(ctx, r)
	}).Should(Succeed())
}

func (h *harness) reconcile() ctrl.Result {
	GinkgoHelper()
	res, err := h.rec.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKey{Namespace: h.ns, Name: h.name}})
	Expect(err).NotTo(HaveOccurred())
	return res
}

// settle reconciles until a pass writes nothing, as the operator would on its own
// watches, and returns the last pass's result.
func (h *harness) settle() ctrl.Result {
	GinkgoHelper()
	var res ctrl.Result
	for range 10 {
		before := h.client.writes.Load()
		res = h.reconcile()
		if h.client.writes.Load() == before {
			return res
		}
	}
	Fail("the release did not settle within 10 passes")
	return res
}

// lookup reads the object of that name in the harness namespace, or returns nil.
func lookup[T client.Object](h *harness, name string, obj T) T {
	if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: h.ns, Name: name}, obj); err != nil {
		var none T
		return none
	}
	return obj
}

func (h *harness) job(name string) *batchv1.Job { return lookup(h, name, &batchv1.Job{}) }

func (h *harness) jobs(component string) []batchv1.Job {
	list := &batchv1.JobList{}
	Expect(k8sClient.List(ctx, list, client.InNamespace(h.ns), client.MatchingLabels{deployv1alpha1.LabelComponent: component})).To(Succeed())
	return list.Items
}

func (h *harness) deployment(c deployv1alpha1.Color) *appsv1.Deployment {
	return lookup(h, h.name+"-"+string(c), &appsv1.Deployment{})
}

func (h *harness) service(name string) *corev1.Service { return lookup(h, name, &corev1.Service{}) }

// activeSelectorColor is what the active Service selects ("" when there is none yet).
func (h *harness) activeSelectorColor() string {
	svc := h.service(h.name)
	if svc == nil {
		return ""
	}
	return svc.Spec.Selector[deployv1alpha1.LabelColor]
}

func (h *harness) condition(t string) *metav1.Condition {
	return meta.FindStatusCondition(h.get().Status.Conditions, t)
}

// finishJob plays the Job controller: envtest runs none, so the test marks the Job
// Complete or Failed the way the Job controller would.
func (h *harness) finishJob(name string, succeeded bool) {
	GinkgoHelper()
	j := h.job(name)
	Expect(j).NotTo(BeNil(), "Job %s does not exist", name)
	now := metav1.NewTime(h.clock.Now())
	j.Status.StartTime = &now
	if succeeded {
		j.Status.Succeeded = 1
		j.Status.CompletionTime = &now
		j.Status.Conditions = []batchv1.JobCondition{
			{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastTransitionTime: now, Reason: "CompletionsReached"},
			{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: now, Reason: "CompletionsReached"},
		}
	} else {
		j.Status.Failed = 1
		j.Status.Conditions = []batchv1.JobCondition{
			{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, LastTransitionTime: now, Reason: "BackoffLimitExceeded", Message: "Job has reached the specified backoff limit"},
			{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, LastTransitionTime: now, Reason: "BackoffLimitExceeded", Message: "Job has reached the specified backoff limit"},
		}
	}
	Expect(k8sClient.Status().Update(ctx, j)).To(Succeed())
}

// setReady plays the Deployment controller and kubelet: envtest runs neither, so the
// test writes the Deployment's status (ready of its replicas) itself.
func (h *harness) setReady(c deployv1alpha1.Color, ready int32) {
	GinkgoHelper()
	d := h.deployment(c)
	Expect(d).NotTo(BeNil())
	want := ptr.Deref(d.Spec.Replicas, 1)
	d.Status = appsv1.DeploymentStatus{
		ObservedGeneration: d.Generation,
		Replicas:           want,
		UpdatedReplicas:    want,
		ReadyReplicas:      ready,
		AvailableReplicas:  ready,
	}
	Expect(k8sClient.Status().Update(ctx, d)).To(Succeed())
}

// setGreenReplicaSetReady plays the Deployment and ReplicaSet controllers up to the moment
// before the Deployment reports its pods ready: the Deployment has seen its spec and
// made a ReplicaSet of its template, and the ReplicaSet has ready of its pods ready (green:
// every spec that needs this moment releases its second revision there).
// envtest runs neither controller. The reconciler matches the two templates by the hashes
// the cache keeps of them (cacheshape).
func (h *harness) setGreenReplicaSetReady(ready int32) {
	GinkgoHelper()
	d := h.deployment(deployv1alpha1.Green)
	Expect(d).NotTo(BeNil())
	want := ptr.Deref(d.Spec.Replicas, 1)
	d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: want}
	Expect(k8sClient.Status().Update(ctx, d)).To(Succeed())

	rs := &appsv1.ReplicaSet{}
	key := client.ObjectKey{Namespace: h.ns, Name: d.Name + "-" + deploymentRevision(d)}
	if err := k8sClient.Get(ctx, key, rs); err != nil {
		template := d.Spec.Template.DeepCopy()
		template.Labels[appsv1.DefaultDeploymentUniqueLabelKey] = deploymentRevision(d)
		rs = &appsv1.ReplicaSet{
			ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: h.ns, Labels: template.Labels,
				OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(d, appsv1.SchemeGroupVersion.WithKind("Deployment"))}},
			Spec: appsv1.ReplicaSetSpec{Replicas: new(want), Selector: &metav1.LabelSelector{MatchLabels: template.Labels}, Template: *template},
		}
		Expect(k8sClient.Create(ctx, rs)).To(Succeed())
	}
	rs.Status = appsv1.ReplicaSetStatus{ObservedGeneration: rs.Generation, Replicas: want, ReadyReplicas: ready, AvailableReplicas: ready}
	Expect(k8sClient.Status().Update(ctx, rs)).To(Succeed())
}

// setEndpoints plays the EndpointSlice controller for the preview Service: ready
// endpoints for n pods of colour c.
func (h *harness) setEndpoints(c deployv1alpha1.Color, n int) {
	GinkgoHelper()
	name := h.name + "-preview-" + string(c)
	slice := &discoveryv1.EndpointSlice{}
	err := k8sClient.Get(ctx, client.ObjectKey{Namespace: h.ns, Name: name}, slice)
	exists := err == nil
	slice = &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.ns, ResourceVersion: slice.ResourceVersion, Labels: map[string]string{
			discoveryv1.LabelServiceName:  h.name + "-preview",
			deployv1alpha1.LabelManagedBy: deployv1alpha1.ManagedBy,
			deployv1alpha1.LabelInstance:  h.name,
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	for i := range n {
		slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{fmt.Sprintf("10.0.0.%d", i+1)},
			Conditions: discoveryv1.EndpointConditions{Ready: new(true)},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Name: fmt.Sprintf("%s-%s-5d9c7-%d", h.name, c, i)},
		})
	}
	if exists {
		Expect(k8sClient.Update(ctx, slice)).To(Succeed())
	} else {
		Expect(k8sClient.Create(ctx, slice)).To(Succeed())
	}
}

// makeColorAvailable plays every controller needed for colour c to be fully available.
func (h *harness) makeColorAvailable(c deployv1alpha1.Color) {
	GinkgoHelper()
	h.setReady(c, 2)
	h.setEndpoints(c, 2)
}

// releaseFirst takes the harness release through its first, blue release (its smoke
// test too, when it has one).
func (h *harness) releaseFirst(r *deployv1alpha1.SoftFactoryRelease) string {
	GinkgoHelper()
	h.create(r)
	h.settle()
	rev := h.get().Status.CurrentRevision
	h.finishJob(h.name+"-backup-"+rev, true)
	h.settle()
	h.finishJob(h.name+"-migrate-"+rev, true)
	h.settle()
	h.makeColorAvailable(deployv1alpha1.Blue)
	h.settle()
	if r.Spec.Strategy.BlueGreen.SmokeTest != nil {
		h.finishJob(h.get().SmokeTestJobName(rev), true)
		h.settle()
	}
	Expect(h.activeSelectorColor()).To(Equal("blue"))
	Expect(h.jobs(deployv1alpha1.ComponentCompatibilityCheck)).To(BeEmpty(), "the first release has no serving colour to check")
	return rev
}

// startSecond applies a second image and runs its backup and migration.
func (h *harness) startSecond(image string) string {
	GinkgoHelper()
	return h.applyImageAndMigrate(image, true)
}

// startSecondWithFailedMigration applies image and fails its migration.
func (h *harness) startSecondWithFailedMigration(image string) string {
	GinkgoHelper()
	return h.applyImageAndMigrate(image, false)
}

// applyImageAndMigrate applies image, completes its backup and ends its migration as
// migrationSucceeds says.
func (h *harness) applyImageAndMigrate(image string, migrationSucceeds bool) string {
	GinkgoHelper()
	h.update(func(r *deployv1alpha1.SoftFactoryRelease) { r.Spec.Image = image })
	h.settle()
	rev := h.get().Status.CurrentRevision
	h.finishJob(h.name+"-backup-"+rev, true)
	h.settle()
	if !migrationSucceeds {
		// A migration that fails has run: its container started and exited non-zero.
		h.runJobPod(h.name+"-migrate-"+rev, true, "", "")
	}
	h.finishJob(h.name+"-migrate-"+rev, migrationSucceeds)
	h.settle()
	return rev
}

// events drains the Events recorded so far.
func (h *harness) events() []string {
	var out []string
	for {
		select {
		case e := <-h.history.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}
