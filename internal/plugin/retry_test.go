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

package plugin

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// failedWith plays the operator recording rev2's failure in history and its records.
func failedWith(reason string, rec deployv1alpha1.RevisionRecord) func(st *deployv1alpha1.SoftFactoryReleaseStatus) {
	return func(st *deployv1alpha1.SoftFactoryReleaseStatus) {
		releasingRev2(deployv1alpha1.PhaseFailed, reason, "it failed")(st)
		st.History = []deployv1alpha1.ReleaseRecord{{Revision: rev2, Outcome: deployv1alpha1.OutcomeFailed, Reason: reason, Message: "it failed"}}
		rec.Revision = rev2
		st.Revisions = []deployv1alpha1.RevisionRecord{rec}
	}
}

var _ = Describe("kubectl sfrelease retry", func() {
	var namespace string
	BeforeEach(func() { namespace = newNamespace() })

	It("asks for the next attempt of a failed revision, says what runs again, and lifts an abort of it", func() {
		r := newRelease(namespace, image2)
		r.Annotations = map[string]string{deployv1alpha1.AbortAnnotation: rev2}
		Expect(k8sClient.Update(ctx, r)).To(Succeed())
		operatorReports(r, failedWith(deployv1alpha1.ReasonSmokeTestFailed, deployv1alpha1.RevisionRecord{
			Backup:    &deployv1alpha1.StepRecord{JobName: "softfactory-backup-" + rev2, State: deployv1alpha1.StepSucceeded, File: "softfactory-" + rev2 + ".dump"},
			Migration: &deployv1alpha1.StepRecord{JobName: "softfactory-migrate-" + rev2, State: deployv1alpha1.StepSucceeded},
		}))

		code, out, _ := sfrelease("-n", namespace, "retry", "softfactory")
		Expect(code).To(Equal(ExitOK))
		Expect(out).To(ContainSubstring("retry " + rev2 + "/2 of revision " + rev2 + " requested (it failed with SmokeTestFailed)"))
		Expect(out).To(ContainSubstring("kept: the backup softfactory-" + rev2 + ".dump, the migration softfactory-migrate-" + rev2))
		Expect(annotations(r)).To(HaveKeyWithValue(deployv1alpha1.RetryAnnotation, rev2+"/2"))
		Expect(annotations(r)).NotTo(HaveKey(deployv1alpha1.AbortAnnotation))
	})

	It("writes a new value for a second retry after a second failure", func() {
		r := newRelease(namespace, image2)
		operatorReports(r, failedWith(deployv1alpha1.ReasonMigrationFailed, deployv1alpha1.RevisionRecord{
			Migration: &deployv1alpha1.StepRecord{JobName: "softfactory-migrate-" + rev2 + "-2", State: deployv1alpha1.StepFailed, ContainerStarted: true},
			Retries:   []deployv1alpha1.RetryRecord{{Request: rev2 + "/2", Reason: deployv1alpha1.ReasonMigrationFailed}},
		}))

		code, out, _ := sfrelease("-n", namespace, "retry", "softfactory")
		Expect(code).To(Equal(ExitOK))
		Expect(out).To(ContainSubstring("a fresh backup (the failed migration may have changed the database), then the migration as Job softfactory-migrate-" + rev2 + "-3"))
		Expect(annotations(r)).To(HaveKeyWithValue(deployv1alpha1.RetryAnnotation, rev2+"/3"))
	})

	It("refuses a release whose current revision has not failed", func() {
		r := newRelease(namespace, image2)
		operatorReports(r, releasingRev2(deployv1alpha1.PhaseMigrating, "Migrating", "Job softfactory-migrate-"+rev2+" is running"))

		code, _, errOut := sfrelease("-n", namespace, "retry", "softfactory")
		Expect(code).To(Equal(ExitFailed))
		Expect(errOut).To(ContainSubstring("has not failed (phase Migrating, Ready reason Migrating, revision " + rev2 + "): nothing to retry"))
		Expect(annotations(r)).NotTo(HaveKey(deployv1alpha1.RetryAnnotation))
	})

	It("refuses a failure a retry does not clear", func() {
		r := newRelease(namespace, image2)
		operatorReports(r, failedWith(deployv1alpha1.ReasonMigrationLost, deployv1alpha1.RevisionRecord{}))

		code, _, errOut := sfrelease("-n", namespace, "retry", "softfactory")
		Expect(code).To(Equal(ExitFailed))
		Expect(errOut).To(ContainSubstring("stopped with MigrationLost, which a retry does not clear"))
		Expect(annotations(r)).NotTo(HaveKey(deployv1alpha1.RetryAnnotation))
	})
})
