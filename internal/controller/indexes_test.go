package controller

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
	"github.com/softfactory/release-operator/internal/cacheshape"
)

var _ = Describe("Listing a release's children from the indexed cache", func() {
	It("finds exactly what the label selector finds, through the index", func(specCtx SpecContext) {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "indexes-"}}
		Expect(k8sClient.Create(ctx, ns)).To(Succeed())
		for _, release := range []string{"shop", "shop-admin", "billing"} {
			job := &batchv1.Job{
				ObjectMeta: metav1.ObjectMeta{Name: release + "-backup-abc", Namespace: ns.Name, Labels: map[string]string{
					deployv1alpha1.LabelManagedBy: deployv1alpha1.ManagedBy, deployv1alpha1.LabelInstance: release}},
				Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "backup", Image: "postgres:15-alpine"}}}}},
			}
			Expect(k8sClient.Create(ctx, job)).To(Succeed())
			for _, svc := range []string{release, release + "-preview"} {
				slice := &discoveryv1.EndpointSlice{
					ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-x1", svc), Namespace: ns.Name, Labels: map[string]string{
						deployv1alpha1.LabelManagedBy: deployv1alpha1.ManagedBy, discoveryv1.LabelServiceName: svc}},
					AddressType: discoveryv1.AddressTypeIPv4,
				}
				Expect(k8sClient.Create(ctx, slice)).To(Succeed())
			}
		}

		cached := newCachedClient()
		jobs := &batchv1.JobList{}
		Expect(cached.List(specCtx, jobs, client.InNamespace(ns.Name), cacheshape.ChildrenOfRelease("shop"))).To(Succeed())
		Expect(jobs.Items).To(HaveLen(1))
		Expect(jobs.Items[0].Name).To(Equal("shop-backup-abc"))
		byLabel := &batchv1.JobList{}
		Expect(k8sClient.List(specCtx, byLabel, client.InNamespace(ns.Name), client.MatchingLabels{deployv1alpha1.LabelInstance: "shop"})).To(Succeed())
		Expect(byLabel.Items).To(HaveLen(1))
		Expect(byLabel.Items[0].Name).To(Equal(jobs.Items[0].Name))

		slices := &discoveryv1.EndpointSliceList{}
		Expect(cached.List(specCtx, slices, client.InNamespace(ns.Name), cacheshape.SlicesOfService("shop-preview"))).To(Succeed())
		Expect(slices.Items).To(HaveLen(1))
		Expect(slices.Items[0].Name).To(Equal("shop-preview-x1"))
	})
})
