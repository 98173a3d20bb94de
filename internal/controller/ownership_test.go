package controller

import (
	"context"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// labelledOnlyClient reads child objects as the operator's cache holds them: only those
// carrying its managed-by label (cmd/main.go cacheOptions). envtest's direct client sees
// everything, which would hide what the operator cannot see.
type labelledOnlyClient struct {
	*countingClient
}

func cachedByLabel(obj client.Object) bool {
	if _, isRelease := obj.(*deployv1alpha1.SoftFactoryRelease); isRelease {
		return true
	}
	return obj.GetLabels()[deployv1alpha1.LabelManagedBy] == deployv1alpha1.ManagedBy
}

func (c *labelledOnlyClient) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if err := c.countingClient.Get(ctx, key, obj, opts...); err != nil {
		return err
	}
	if !cachedByLabel(obj) {
		return apierrors.NewNotFound(schema.GroupResource{Resource: strings.ToLower(c.kind(obj)) + "s"}, key.Name)
	}
	return nil
}

func (c *labelledOnlyClient) kind(obj client.Object) string {
	gvk, _ := c.GroupVersionKindFor(obj)
	return gvk.Kind
}

func (c *labelledOnlyClient) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if err := c.countingClient.List(ctx, list, opts...); err != nil {
		return err
	}
	var kept []runtime.Object
	if err := meta.EachListItem(list, func(o runtime.Object) error {
		if cachedByLabel(o.(client.Object)) {
			kept = append(kept, o)
		}
		return nil
	}); err != nil {
		return err
	}
	return meta.SetList(list, kept)
}

// sibling is a second release in the harness's namespace, driven by its own reconciler
// on the same clock and client.
func (h *harness) sibling(name string) *harness {
	s := &harness{ns: h.ns, name: name, clock: h.clock, client: h.client, history: h.history}
	s.rec = s.newReconciler()
	s.rec.Client = h.rec.Client
	return s
}

// passes runs n passes. A release held by an object the cache cannot see tries its
// create again on each pass (a write attempt), so settle would never see a quiet pass.
func (h *harness) passes(n int) {
	GinkgoHelper()
	for range n {
		h.reconcile()
	}
}

// revisionAsApplied is the revision of r once the API server has defaulted it.
func revisionAsApplied(r *deployv1alpha1.SoftFactoryRelease) string {
	GinkgoHelper()
	applied := r.DeepCopy()
	Expect(k8sClient.Create(ctx, applied, client.DryRunAll)).To(Succeed())
	return revisionOf(applied)
}

// expectConflict asserts the release stopped on an ownership conflict naming the
// object and its owner.
func (h *harness) expectConflict(kind, name, owner string) {
	GinkgoHelper()
	for _, t := range []string{deployv1alpha1.ConditionReady, deployv1alpha1.ConditionDegraded} {
		c := h.condition(t)
		Expect(c).NotTo(BeNil())
		Expect(c.Reason).To(Equal(deployv1alpha1.ReasonOwnershipConflict), "%s: %s", t, c.Message)
		Expect(c.Message).To(ContainSubstring(kind+" "+name+" is not this release's"), t)
		Expect(c.Message).To(ContainSubstring(owner), t)
	}
	Expect(h.get().Status.Phase).To(Equal(deployv1alpha1.PhaseFailed))
}

var _ = Describe("Ownership of the objects a release writes", func() {
	var h *harness
	BeforeEach(func() {
		h = newHarness()
		h.name = "shop"
		h.rec.Client = &labelledOnlyClient{countingClient: h.client}
	})

	It("stops a second release naming the first one's Service, and never moves the first one's traffic", func() {
		h.releaseFirst(h.release(imageV1))
		active, preview := h.service("shop"), h.service("shop-preview")

		intruder := h.sibling("intruder")
		r := intruder.release(imageV2)
		r.Spec.Service.Name = "shop"
		intruder.create(r)
		intruder.settle()
		intruder.expectConflict("Service", "shop", "controlled by SoftFactoryRelease shop")
		rev := intruder.get().Status.CurrentRevision
		Expect(intruder.job("intruder-backup-"+rev)).To(BeNil(), "the release stopped before its first step")

		By("staying stopped, and writing nothing to either Service")
		intruder.clock.Step(conflictRecheckInterval)
		intruder.settle()
		Expect(intruder.deployment(deployv1alpha1.Blue)).To(BeNil())
		Expect(h.service("shop").ResourceVersion).To(Equal(active.ResourceVersion), "the active Service was not written")
		Expect(h.service("shop-preview").ResourceVersion).To(Equal(preview.ResourceVersion), "the preview Service was not written")
		Expect(h.service("shop").Spec.Selector).To(HaveKeyWithValue(deployv1alpha1.LabelInstance, "shop"))
		Expect(h.events()).To(ContainElement(And(ContainSubstring("Warning"), ContainSubstring(deployv1alpha1.ReasonOwnershipConflict))))
	})

	It("stops a release named shop-preview, whose Service is the preview Service of shop", func() {
		h.releaseFirst(h.release(imageV1))
		preview := h.service("shop-preview")

		other := h.sibling("shop-preview")
		other.create(other.release(imageV2))
		other.settle()
		other.expectConflict("Service", "shop-preview", "controlled by SoftFactoryRelease shop")
		Expect(h.service("shop-preview").ResourceVersion).To(Equal(preview.ResourceVersion))
		Expect(other.job("shop-preview-backup-" + other.get().Status.CurrentRevision)).To(BeNil())

		By("going on by itself once the name is free")
		Expect(k8sClient.Delete(ctx, h.get())).To(Succeed())
		Expect(k8sClient.Delete(ctx, h.service("shop-preview"))).To(Succeed()) // envtest runs no garbage collector
		other.settle()
		Expect(other.condition(deployv1alpha1.ConditionDegraded).Status).To(Equal(metav1.ConditionFalse))
		Expect(other.job("shop-preview-backup-" + other.get().Status.CurrentRevision)).NotTo(BeNil())
	})

	It("adopts a Service a user made by hand, keeping its traffic until the flip", func() {
		handMade := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: h.ns, Labels: map[string]string{"team": "web"}},
			Spec: corev1.ServiceSpec{
				Selector: map[string]string{"app": "legacy-shop"},
				Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}},
			},
		}
		Expect(k8sClient.Create(ctx, handMade)).To(Succeed())
		r := h.release(imageV1)
		h.create(r)
		h.settle()
		rev := h.get().Status.CurrentRevision
		h.finishJob("shop-backup-"+rev, true)
		h.settle()
		h.finishJob("shop-migrate-"+rev, true)
		h.settle()
		Expect(h.service("shop").Spec.Selector).To(Equal(map[string]string{"app": "legacy-shop"}),
			"until the new pods are ready, the Service keeps sending traffic where the user pointed it")

		h.makeColorAvailable(deployv1alpha1.Blue)
		h.settle()
		svc := h.service("shop")
		Expect(metav1.IsControlledBy(svc, h.get())).To(BeTrue())
		Expect(svc.Labels).To(HaveKeyWithValue(deployv1alpha1.LabelManagedBy, deployv1alpha1.ManagedBy))
		Expect(svc.Labels).To(HaveKeyWithValue("team", "web"), "the user's labels stay")
		Expect(svc.Spec.Selector).To(Equal(appSelector(h.get(), deployv1alpha1.Blue)), "the whole selector is the release's after the flip")
		Expect(svc.Spec.Ports[0].TargetPort).To(Equal(buildActiveService(h.get(), deployv1alpha1.Blue).Spec.Ports[0].TargetPort))
		Expect(h.get().Status.Phase).To(Equal(deployv1alpha1.PhaseSucceeded))
		Expect(h.events()).To(ContainElement(ContainSubstring(deployv1alpha1.ReasonAdopted)))
	})

	It("never counts a Job someone else made under the backup Job's name as the backup", func() {
		r := h.release(imageV1)
		rev := revisionAsApplied(r)
		// A namespace user pre-creates the predicted name, running `true`, labelled as
		// the operator labels its own (so the operator's cache holds it) and marked
		// Complete by the test (envtest runs no Job controller).
		fake := buildBackupJob(r, rev, "none.dump")
		fake.Spec.Template.Spec.Containers[0].Command = []string{"true"}
		fake.Spec.Template.Spec.Containers[0].Image = "busybox"
		fake.Spec.Template.Spec.Containers[0].Env = nil
		Expect(k8sClient.Create(ctx, fake)).To(Succeed())
		h.finishJob(fake.Name, true)

		h.create(r)
		h.passes(3)
		h.expectConflict("Job", fake.Name, "it has no controller")
		Expect(h.job("shop-migrate-"+rev)).To(BeNil(), "no migration without this release's own verified backup")
		Expect(h.condition(deployv1alpha1.ConditionBackupSucceeded).Status).To(Equal(metav1.ConditionFalse))
	})

	It("stops before the colour's Deployment when one of that name is another's, leaving it untouched", func() {
		labels := map[string]string{"team": "web"}
		theirs := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "shop-blue", Namespace: h.ns, Labels: labels},
			Spec: appsv1.DeploymentSpec{
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "registry.example.com/theirs:1"}}},
				},
			},
		}
		Expect(k8sClient.Create(ctx, theirs)).To(Succeed())
		r := h.release(imageV1)
		h.create(r)
		h.settle()
		rev := h.get().Status.CurrentRevision
		h.finishJob("shop-backup-"+rev, true)
		h.settle()
		h.finishJob("shop-migrate-"+rev, true)
		h.passes(3)
		h.expectConflict("Deployment", "shop-blue", "it has no controller")
		d := h.deployment(deployv1alpha1.Blue)
		Expect(d.ResourceVersion).To(Equal(theirs.ResourceVersion), "their Deployment was not written")
		Expect(h.service("shop")).To(BeNil(), "no traffic moved")
	})

	It("names the owner of an unlabelled Job in the way, instead of retrying for ever", func() {
		r := h.release(imageV1)
		rev := revisionAsApplied(r)
		fake := &batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{Name: "shop-backup-" + rev, Namespace: h.ns},
			Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers:    []corev1.Container{{Name: "true", Image: "busybox", Command: []string{"true"}}},
			}}},
		}
		Expect(k8sClient.Create(ctx, fake)).To(Succeed())
		h.create(r)
		h.passes(3)
		h.expectConflict("Job", fake.Name, "it has no controller")
		Expect(h.job("shop-migrate-" + rev)).To(BeNil())
	})
})
