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
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// An expand/contract migration on a real control plane: v2's contract step runs only
// once blue, v1's colour, is at 0 replicas with none of its pods left, on a fresh backup;
// re-applying v1's spec afterwards is refused, since v1's code was written for the
// schema the contract changed.
var _ = Describe("A release with a contract step", Ordered, Serial, func() {
	const name = "contracted"
	var (
		namespace string
		key       client.ObjectKey
	)

	BeforeAll(func(ctx SpecContext) {
		namespace = createNamespace(ctx, "e2e-contract")
		key = client.ObjectKey{Namespace: namespace, Name: name}
	})

	AfterEach(func(ctx SpecContext) {
		if CurrentSpecReport().Failed() {
			reportOnFailure(ctx, namespace)
		}
	})

	It("runs the contract only after blue is at 0 replicas with no pods, then refuses v1 again", func(ctx SpecContext) {
		Expect(k8s.Create(ctx, newRelease(namespace, name, "registry.example.com/softfactory:1.0.0"))).To(Succeed())
		rev1 := waitForSuccess(ctx, key).Status.CurrentRevision

		updateRelease(ctx, key, func(r *deployv1alpha1.SoftFactoryRelease) {
			r.Spec.Image = "registry.example.com/softfactory:2.0.0"
			r.Spec.Migration.Contract = &deployv1alpha1.ContractSpec{Command: []string{"flask", "db", "contract"}}
		})

		By("watching blue from the moment the contract step's first Job exists")
		r := &deployv1alpha1.SoftFactoryRelease{}
		sawPending := false
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, key, r)).To(Succeed())
			if c := meta.FindStatusCondition(r.Status.Conditions, deployv1alpha1.ConditionContractSucceeded); c != nil &&
				c.Reason == deployv1alpha1.ReasonContractPending && r.Status.CurrentRevision != rev1 {
				sawPending = true
			}
			rev2 := r.Status.CurrentRevision
			g.Expect(rev2).NotTo(Equal(rev1))
			if findJob(ctx, namespace, r.ContractBackupJobName(rev2, 1)) == nil {
				Expect(findJob(ctx, namespace, r.ContractJobName(rev2, 1))).To(BeNil(), "the contract ran before its backup")
				g.Expect(findJob(ctx, namespace, r.ContractBackupJobName(rev2, 1))).NotTo(BeNil(), "no pre-contract backup yet")
			}
			// The operator created it only once blue was gone, and a colour at 0 never
			// gets a pod back: blue must be gone now, at the first sight of it.
			blue := getDeployment(ctx, namespace, name+"-blue")
			Expect(ptr.Deref(blue.Spec.Replicas, 1)).To(BeZero(), "the contract step started while blue had replicas")
			pods := &corev1.PodList{}
			Expect(k8s.List(ctx, pods, client.InNamespace(namespace), client.MatchingLabels{
				deployv1alpha1.LabelInstance: name, deployv1alpha1.LabelComponent: deployv1alpha1.ComponentApp,
				deployv1alpha1.LabelColor: string(deployv1alpha1.Blue),
			})).To(Succeed())
			Expect(pods.Items).To(BeEmpty(), "the contract step started while a pod of blue was left")
		}).WithContext(ctx).WithPolling(100 * time.Millisecond).Should(Succeed())
		Expect(sawPending).To(BeTrue(), "ContractSucceeded said the contract was pending while blue was up")

		r = waitForSuccess(ctx, key)
		rev2 := r.Status.CurrentRevision
		Expect(activeColour(ctx, r)).To(Equal("green"))
		contract := findJob(ctx, namespace, r.ContractJobName(rev2, 1))
		Expect(contract).NotTo(BeNil())
		backupJob := findJob(ctx, namespace, r.ContractBackupJobName(rev2, 1))
		Expect(backupJob.Status.CompletionTime).NotTo(BeNil())
		Expect(contract.CreationTimestamp.Time).NotTo(BeTemporally("<", backupJob.Status.CompletionTime.Time), "the backup first")
		c := meta.FindStatusCondition(r.Status.Conditions, deployv1alpha1.ConditionContractSucceeded)
		Expect(c.Reason).To(Equal(deployv1alpha1.ReasonContractCompleted))
		rec := r.Status.RevisionRecordOf(rev2)
		Expect(rec.Contract.State).To(Equal(deployv1alpha1.StepSucceeded))
		Expect(strings.HasSuffix(rec.ContractBackup.File, "-precontract.dump")).To(BeTrue(), rec.ContractBackup.File)
		expectOneJobPerStep(ctx, r)

		By("re-applying v1's spec")
		updateRelease(ctx, key, func(r *deployv1alpha1.SoftFactoryRelease) {
			r.Spec.Image = "registry.example.com/softfactory:1.0.0"
			r.Spec.Migration.Contract = nil
		})
		r = waitForFailure(ctx, key, deployv1alpha1.ReasonSchemaContracted)
		Expect(r.Status.CurrentRevision).To(Equal(rev1))
		degraded := meta.FindStatusCondition(r.Status.Conditions, deployv1alpha1.ConditionDegraded)
		Expect(degraded.Message).To(ContainSubstring(deployv1alpha1.AllowRollbackPastContractAnnotation + "=" + rev1))
		Expect(activeColour(ctx, r)).To(Equal("green"), "traffic stays on the contracted revision")
		Consistently(func() int32 {
			return ptr.Deref(getDeployment(ctx, namespace, name+"-blue").Spec.Replicas, 1)
		}).WithContext(ctx).WithTimeout(3*time.Second).Should(BeZero(), "v1 is not deployed to blue")
	})
})
