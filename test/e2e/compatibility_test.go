//go:build e2e

/*
Copyright 2026.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package e2e

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// The compatibility check on a real control plane: once v2's migration has completed,
// the smoke test runs with v1's image (the serving revision's, read from its Deployment)
// against the active Service, so v1's code on the migrated database, and traffic moves
// only after it completed. The kwok Stages complete the check's pod as any Job pod; its
// failure stopping the release is in the envtest suite (compatibility_test.go).
var _ = Describe("A release with a compatibility check", Ordered, Serial, func() {
	const name = "compat"
	var (
		namespace string
		key       client.ObjectKey
	)

	BeforeAll(func(ctx SpecContext) {
		namespace = createNamespace(ctx, "e2e-compat")
		key = client.ObjectKey{Namespace: namespace, Name: name}
	})

	AfterEach(func(ctx SpecContext) {
		if CurrentSpecReport().Failed() {
			reportOnFailure(ctx, namespace)
		}
	})

	It("runs the smoke test with the serving image against the active Service after the migration, before the flip", func(ctx SpecContext) {
		const v1, v2 = "registry.example.com/softfactory:1.0.0", "registry.example.com/softfactory:2.0.0"
		r := newRelease(namespace, name, v1)
		r.Spec.Strategy.BlueGreen.SmokeTest = &deployv1alpha1.SmokeTestSpec{Command: []string{"pytest", "tests/smoke"}}
		r.Spec.Strategy.BlueGreen.CompatibilityCheck = &deployv1alpha1.CompatibilityCheckSpec{}
		Expect(k8s.Create(ctx, r)).To(Succeed())
		first := waitForSuccess(ctx, key)
		rev1 := first.Status.CurrentRevision
		Expect(findJob(ctx, namespace, first.CompatibilityCheckJobName(rev1, 1))).To(BeNil(),
			"the first release has no serving colour to check")

		updateRelease(ctx, key, func(r *deployv1alpha1.SoftFactoryRelease) { r.Spec.Image = v2 })
		second := waitForSuccess(ctx, key)
		rev2 := second.Status.CurrentRevision
		Expect(rev2).NotTo(Equal(rev1))

		check := findJob(ctx, namespace, second.CompatibilityCheckJobName(rev2, 1))
		Expect(check).NotTo(BeNil(), "the compatibility check's Job")
		Expect(check.Labels).To(HaveKeyWithValue(deployv1alpha1.LabelComponent, deployv1alpha1.ComponentCompatibilityCheck))
		container := check.Spec.Template.Spec.Containers[0]
		Expect(container.Image).To(Equal(v1), "the serving revision's image, not the new one")
		Expect(container.Command).To(Equal([]string{"pytest", "tests/smoke"}))
		activeURL := fmt.Sprintf("http://%s.%s.svc:80", name, namespace)
		Expect(container.Env).To(ContainElements(
			corev1.EnvVar{Name: "SERVICE_URL", Value: activeURL}, corev1.EnvVar{Name: "PREVIEW_URL", Value: activeURL}))
		complete, _ := jobFinished(check)
		Expect(complete).To(BeTrue())

		By("ordering: the migration completed before the check started, the check before the flip")
		migration := findJob(ctx, namespace, second.MigrationJobName(rev2))
		Expect(migration).NotTo(BeNil())
		Expect(migration.Status.CompletionTime).NotTo(BeNil())
		Expect(check.CreationTimestamp.Time).NotTo(BeTemporally("<", migration.Status.CompletionTime.Time))
		Expect(check.Status.CompletionTime).NotTo(BeNil())
		Expect(second.Status.History[0].Revision).To(Equal(rev2))
		Expect(second.Status.History[0].PromotedAt).NotTo(BeNil())
		Expect(second.Status.History[0].PromotedAt.Time).NotTo(BeTemporally("<", check.Status.CompletionTime.Time))
		Expect(activeColour(ctx, second)).To(Equal(string(second.Status.ActiveColor)))
	})
})
