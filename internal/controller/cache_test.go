package controller

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
	"github.com/softfactory/release-operator/internal/cacheshape"
)

var _ = Describe("Jobs trimmed in the cache", func() {
	It("keep their metadata and the status a pass judges by, and drop the spec with its script", func() {
		r := newHarness().release(imageV1)
		j := buildBackupJob(r, "0123456789", "softfactory-0123456789-20261125T120000Z.dump")
		j.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"batch.kubernetes.io/controller-uid": "u"}}
		j.Status.Conditions = []batchv1.JobCondition{
			{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue},
			{Type: batchv1.JobComplete, Status: corev1.ConditionTrue},
		}
		j.Status.Succeeded = 1
		out, err := cacheshape.TrimJob(j)
		Expect(err).NotTo(HaveOccurred())
		trimmed := out.(*batchv1.Job)
		Expect(trimmed.Spec).To(Equal(batchv1.JobSpec{}))
		Expect(trimmed.Status.Conditions).To(ConsistOf(HaveField("Type", batchv1.JobComplete)))
		Expect(trimmed.Status.Succeeded).To(BeEquivalentTo(1))
		Expect(trimmed.Annotations).To(HaveKeyWithValue(deployv1alpha1.BackupFileAnnotation, "softfactory-0123456789-20261125T120000Z.dump"))
		Expect(trimmed.Labels).To(HaveKeyWithValue(deployv1alpha1.LabelRevision, "0123456789"))
		Expect(jobOutcome(trimmed)).To(Equal(jobSucceeded))
	})
})

var _ = Describe("Deployments trimmed in the cache", func() {
	It("keeps only what a pass reads", func() {
		h := newHarness()
		r := h.release(imageV1)
		d := buildDeployment(r, deployv1alpha1.Blue, "abc", 2)
		out, err := cacheshape.TrimDeployment(d)
		Expect(err).NotTo(HaveOccurred())
		trimmed := out.(*appsv1.Deployment)
		Expect(trimmed.Annotations).To(HaveKey(deployv1alpha1.SpecHashAnnotation))
		Expect(*trimmed.Spec.Replicas).To(Equal(int32(2)))
		Expect(trimmed.Spec.Template.Spec.Containers).To(HaveLen(1))
		Expect(trimmed.Spec.Template.Spec.Containers[0].Image).To(Equal(imageV1))
		Expect(trimmed.Spec.Template.Spec.Containers[0].ReadinessProbe).To(BeNil())
		Expect(trimmed.Spec.Template.Labels).To(BeEmpty())
	})

	It("keeps of a ReplicaSet its metadata, replicas, status and the hash of the template its Deployment has", func() {
		h := newHarness()
		d := buildDeployment(h.release(imageV1), deployv1alpha1.Blue, "abc", 2)
		template := d.Spec.Template.DeepCopy()
		template.Labels[appsv1.DefaultDeploymentUniqueLabelKey] = "5d9c7"
		rs := &appsv1.ReplicaSet{
			ObjectMeta: metav1.ObjectMeta{Name: "shop-blue-5d9c7", Labels: template.Labels,
				ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kube-controller-manager"}}},
			Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](2), Selector: &metav1.LabelSelector{MatchLabels: template.Labels},
				Template: *template},
			Status: appsv1.ReplicaSetStatus{Replicas: 2, ReadyReplicas: 2},
		}
		out, err := cacheshape.TrimReplicaSet(rs)
		Expect(err).NotTo(HaveOccurred())
		trimmed := out.(*appsv1.ReplicaSet)
		Expect(trimmed.Labels).To(HaveKeyWithValue(deployv1alpha1.LabelRevision, "abc"))
		Expect(trimmed.ManagedFields).To(BeNil())
		Expect(*trimmed.Spec.Replicas).To(Equal(int32(2)))
		Expect(trimmed.Spec.Selector).To(BeNil())
		Expect(trimmed.Spec.Template.Spec.Containers).To(BeEmpty())
		Expect(trimmed.Status.ReadyReplicas).To(Equal(int32(2)))

		trimmedDeployment, err := cacheshape.TrimDeployment(d)
		Expect(err).NotTo(HaveOccurred())
		hash := cacheshape.TemplateHash(&trimmedDeployment.(*appsv1.Deployment).Spec.Template)
		Expect(hash).NotTo(BeEmpty())
		Expect(cacheshape.TemplateHash(&trimmed.Spec.Template)).To(Equal(hash), "the ReplicaSet's copy differs only by the pod-template-hash label")

		other := buildDeployment(h.release(imageV2), deployv1alpha1.Blue, "def", 2)
		trimmedOther, err := cacheshape.TrimDeployment(other)
		Expect(err).NotTo(HaveOccurred())
		Expect(cacheshape.TemplateHash(&trimmedOther.(*appsv1.Deployment).Spec.Template)).NotTo(Equal(hash))
	})

	It("replaces the template whole without reading it, keeps others' metadata, and writes nothing once settled", func() {
		h := newHarness()
		r := h.release(imageV1)
		r.Spec.PodTemplate = &deployv1alpha1.PodTemplateOverrides{
			NodeSelector: map[string]string{"zone": "a", "disk": "ssd"},
			Annotations:  map[string]string{"example.com/scrape": "true"},
		}
		h.releaseFirst(r)
		h.startSecond(imageV2)
		h.makeColorAvailable(deployv1alpha1.Green)
		h.settle()
		Expect(h.activeSelectorColor()).To(Equal("green"))

		By("someone else annotating and labelling blue's Deployment, which also has a scale-down deadline left")
		blue := h.deployment(deployv1alpha1.Blue)
		blue.Annotations["example.com/owner"] = "team-a"
		blue.Annotations[deployv1alpha1.ScaleDownAtAnnotation] = h.clock.Now().UTC().Format(time.RFC3339)
		blue.Labels["example.com/cost-centre"] = "42"
		Expect(k8sClient.Update(ctx, blue)).To(Succeed())

		By("rolling blue, whose template still has the first release's overrides, to a third revision without them")
		h.update(func(r *deployv1alpha1.SoftFactoryRelease) {
			r.Spec.PodTemplate = &deployv1alpha1.PodTemplateOverrides{NodeSelector: map[string]string{"zone": "a"}}
		})
		h.startSecond(imageV3)
		blue = h.deployment(deployv1alpha1.Blue)
		Expect(blue.Spec.Template.Spec.Containers[0].Image).To(Equal(imageV3))
		Expect(blue.Spec.Template.Spec.NodeSelector).To(Equal(map[string]string{"zone": "a"}))
		Expect(blue.Spec.Template.Annotations).NotTo(HaveKey("example.com/scrape"))
		Expect(blue.Spec.Template.Spec.Containers[0].ReadinessProbe).NotTo(BeNil(), "the template was written whole, not trimmed")
		Expect(blue.Annotations).To(HaveKeyWithValue("example.com/owner", "team-a"), "only the template is replaced whole")
		Expect(blue.Labels).To(HaveKeyWithValue("example.com/cost-centre", "42"))
		Expect(blue.Annotations).NotTo(HaveKey(deployv1alpha1.ScaleDownAtAnnotation), "a colour taking a new revision has no deadline")

		h.makeColorAvailable(deployv1alpha1.Blue)
		h.settle()
		Expect(h.activeSelectorColor()).To(Equal("blue"))
		Expect(h.get().Status.ActiveImage).To(Equal(imageV3), "the image is read from the trimmed copy")
		before := h.client.writes.Load()
		h.reconcile()
		Expect(h.client.writes.Load()).To(Equal(before))
	})
})

var _ = Describe("Objects read from the cache", func() {
	It("cannot be written back whole: the API server refuses the trimmed copy and the stored object keeps its template", func() {
		h := newHarness()
		h.create(h.release(imageV1))
		r := h.get() // as the API server defaulted it
		deployment := buildDeployment(r, deployv1alpha1.Blue, "abc", 2)
		job := buildBackupJob(r, "0123456789", "softfactory-0123456789-20261125T120000Z.dump")
		template := deployment.Spec.Template.DeepCopy()
		template.Labels[appsv1.DefaultDeploymentUniqueLabelKey] = "5d9c7"
		replicaSet := &appsv1.ReplicaSet{
			ObjectMeta: metav1.ObjectMeta{Name: deployment.Name + "-5d9c7", Namespace: h.ns, Labels: template.Labels},
			Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](2), Selector: &metav1.LabelSelector{MatchLabels: template.Labels},
				Template: *template},
		}
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: deployment.Name + "-5d9c7-x2k4q", Namespace: h.ns, Labels: template.Labels},
			Spec:       *template.Spec.DeepCopy(),
		}
		cached := newCachedClient()
		for _, obj := range []client.Object{deployment, job, replicaSet, pod} {
			Expect(k8sClient.Create(ctx, obj)).To(Succeed())
			fromCache := obj.DeepCopyObject().(client.Object)
			Expect(cached.Get(ctx, client.ObjectKeyFromObject(obj), fromCache)).To(Succeed())

			err := k8sClient.Update(ctx, fromCache)
			Expect(apierrors.IsInvalid(err)).To(BeTrue(), "%T: an Update of the cached copy must be refused, got %v", obj, err)

			stored := obj.DeepCopyObject().(client.Object)
			Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), stored)).To(Succeed())
			Expect(stored.GetResourceVersion()).To(Equal(obj.GetResourceVersion()), "%T was not written", obj)
		}
		stored := &appsv1.Deployment{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(deployment), stored)).To(Succeed())
		Expect(stored.Spec.Template.Spec.Containers[0].ReadinessProbe).NotTo(BeNil())
		Expect(stored.Spec.Template.Annotations).NotTo(HaveKey(cacheshape.TemplateHashAnnotation), "the cache's hash never reaches the API server")
	})
})

var _ = Describe("Pods in the cache", func() {
	It("leave it once they ran to completion; a failed pod stays, its words explain the failure", func() {
		h := newHarness()
		pod := func(name string) *corev1.Pod {
			p := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.ns, Labels: map[string]string{
					deployv1alpha1.LabelManagedBy: deployv1alpha1.ManagedBy,
				}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "example"}}},
			}
			Expect(k8sClient.Create(ctx, p)).To(Succeed())
			return p
		}
		// Status as a kubelet would write it: none runs in envtest.
		finish := func(p *corev1.Pod, phase corev1.PodPhase) {
			p.Status = corev1.PodStatus{Phase: phase}
			Expect(k8sClient.Status().Update(ctx, p)).To(Succeed())
		}
		cached := func(p *corev1.Pod) error {
			return informers.Get(ctx, client.ObjectKeyFromObject(p), &corev1.Pod{})
		}
		done, failed := pod(h.name+"-done"), pod(h.name+"-failed")
		Expect(cached(done)).To(Succeed(), "a pending pod is cached")

		finish(done, corev1.PodSucceeded)
		finish(failed, corev1.PodFailed)
		Eventually(func() bool { return apierrors.IsNotFound(cached(done)) }).WithTimeout(10*time.Second).Should(BeTrue(),
			"a pod that ran to completion leaves the cache")
		Expect(cached(failed)).To(Succeed(), "a failed pod stays")
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(done), &corev1.Pod{})).To(Succeed(), "the pod itself is still in the API")
	})
})
