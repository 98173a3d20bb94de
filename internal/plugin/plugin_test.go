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
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// Bounds for waiting on the plugin: it reacts to watch events, so a few seconds is
// generous on a loaded machine.
const (
	eventually = 20 * time.Second
	poll       = 50 * time.Millisecond
)

const (
	image1 = "registry.example.com/softfactory:1.4.3"
	image2 = "registry.example.com/softfactory:1.4.4"
	rev1   = "7d9f4c2b1e"
	rev2   = "3a6e0f8c52"
)

// sfrelease runs the plugin to completion, as a user at a shell would.
func sfrelease(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = Run(ctx, append([]string{"--kubeconfig", kubeconfig}, args...),
		genericiooptions.IOStreams{In: &bytes.Buffer{}, Out: &out, ErrOut: &errOut})
	GinkgoWriter.Printf("kubectl sfrelease %v: exit %d\n%s%s", args, code, out.String(), errOut.String())
	return code, out.String(), errOut.String()
}

// following is a plugin run in the background, for status, which only returns once the
// release settles.
type following struct {
	out, errOut *gbytes.Buffer
	exit        chan int
}

func follow(args ...string) *following {
	f := &following{out: gbytes.NewBuffer(), errOut: gbytes.NewBuffer(), exit: make(chan int, 1)}
	runCtx, stop := context.WithCancel(ctx)
	// A spec that fails must not leave a watch running into the next one.
	DeferCleanup(stop)
	go func() {
		defer GinkgoRecover()
		f.exit <- Run(runCtx, append([]string{"--kubeconfig", kubeconfig}, args...),
			genericiooptions.IOStreams{In: &bytes.Buffer{}, Out: io.MultiWriter(f.out, GinkgoWriter), ErrOut: io.MultiWriter(f.errOut, GinkgoWriter)})
	}()
	return f
}

// newNamespace gives each spec its own namespace, so releases never meet.
func newNamespace() string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "plugin-" + utilrand.String(6)}}
	Expect(k8sClient.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

// newRelease applies a release with the given image, as `kubectl apply` would.
func newRelease(namespace, image string) *deployv1alpha1.SoftFactoryRelease {
	r := &deployv1alpha1.SoftFactoryRelease{
		ObjectMeta: metav1.ObjectMeta{Name: "softfactory", Namespace: namespace},
		Spec:       deployv1alpha1.SoftFactoryReleaseSpec{Image: image},
	}
	Expect(k8sClient.Create(ctx, r)).To(Succeed())
	return r
}

// changeImage applies a new image: a new generation, which the operator has not seen.
func changeImage(r *deployv1alpha1.SoftFactoryRelease, image string) {
	Eventually(func() error {
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(r), r); err != nil {
			return err
		}
		r.Spec.Image = image
		return k8sClient.Update(ctx, r)
	}, eventually, poll).Should(Succeed())
}

// operatorReports plays the operator: it writes the status of the release's current
// generation, as fill leaves it. Conditions get that generation too.
func operatorReports(r *deployv1alpha1.SoftFactoryRelease, fill func(st *deployv1alpha1.SoftFactoryReleaseStatus)) {
	Eventually(func() error {
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(r), r); err != nil {
			return err
		}
		st := &r.Status
		st.ObservedGeneration = r.Generation
		fill(st)
		for i := range st.Conditions {
			st.Conditions[i].ObservedGeneration = r.Generation
			if st.Conditions[i].LastTransitionTime.IsZero() {
				st.Conditions[i].LastTransitionTime = metav1.Now()
			}
		}
		return k8sClient.Status().Update(ctx, r)
	}, eventually, poll).Should(Succeed())
}

// operatorFailsAPass plays an operator whose pass failed: conditions describe the
// current generation, observedGeneration stays where it was.
func operatorFailsAPass(r *deployv1alpha1.SoftFactoryRelease, why string) {
	Eventually(func() error {
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(r), r); err != nil {
			return err
		}
		meta.SetStatusCondition(&r.Status.Conditions, metav1.Condition{
			Type: deployv1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: "ReconcileError",
			Message: "The last pass failed and will be retried: " + why, ObservedGeneration: r.Generation,
		})
		return k8sClient.Status().Update(ctx, r)
	}, eventually, poll).Should(Succeed())
}

func setCondition(st *deployv1alpha1.SoftFactoryReleaseStatus, t string, s metav1.ConditionStatus, reason, message string) {
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: t, Status: s, Reason: reason, Message: message})
}

// Status fillers for the states the specs walk through. A second release (rev2, image2
// to blue) while rev1 (image1) serves on green.

func servingRev1(st *deployv1alpha1.SoftFactoryReleaseStatus) {
	st.Phase = deployv1alpha1.PhaseSucceeded
	st.ActiveColor, st.ActiveImage = deployv1alpha1.Green, image1
	st.CurrentRevision, st.StableRevision = rev1, rev1
	setCondition(st, deployv1alpha1.ConditionReady, metav1.ConditionTrue, "Succeeded", "Revision "+rev1+" serves traffic on green")
	setCondition(st, deployv1alpha1.ConditionDegraded, metav1.ConditionFalse, "AsExpected", "No failure")
}

func releasingRev2(phase deployv1alpha1.Phase, reason, message string) func(st *deployv1alpha1.SoftFactoryReleaseStatus) {
	return func(st *deployv1alpha1.SoftFactoryReleaseStatus) {
		st.Phase = phase
		st.ActiveColor, st.ActiveImage = deployv1alpha1.Green, image1
		st.CurrentRevision, st.StableRevision = rev2, rev1
		setCondition(st, deployv1alpha1.ConditionReady, metav1.ConditionFalse, reason, message)
	}
}

func awaitingPromotionOfRev2(st *deployv1alpha1.SoftFactoryReleaseStatus) {
	releasingRev2(deployv1alpha1.PhaseAwaitingPromotion, "AwaitingPromotion", "Blue passed its gates")(st)
	setCondition(st, deployv1alpha1.ConditionGreenAvailable, metav1.ConditionTrue, "Available", "2 of 2 blue endpoints ready")
}

func servingRev2(st *deployv1alpha1.SoftFactoryReleaseStatus) {
	st.Phase = deployv1alpha1.PhaseSucceeded
	st.ActiveColor, st.ActiveImage = deployv1alpha1.Blue, image2
	st.CurrentRevision, st.StableRevision = rev2, rev2
	setCondition(st, deployv1alpha1.ConditionPromoted, metav1.ConditionTrue, "Promoted", "The active Service selects blue")
	setCondition(st, deployv1alpha1.ConditionReady, metav1.ConditionTrue, "Succeeded", "Revision "+rev2+" serves traffic on blue")
}

func annotations(r *deployv1alpha1.SoftFactoryRelease) map[string]string {
	got := &deployv1alpha1.SoftFactoryRelease{}
	Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(r), got)).To(Succeed())
	return got.Annotations
}

var _ = Describe("kubectl sfrelease status", func() {
	var namespace string
	BeforeEach(func() { namespace = newNamespace() })

	It("follows a first release through backup, migration and verification, and exits 0 once it serves", func() {
		r := newRelease(namespace, image1)
		f := follow("-n", namespace, "status", "softfactory")
		Eventually(f.out, eventually).Should(gbytes.Say("Following softfactoryrelease/softfactory in namespace " + namespace))
		Eventually(f.out, eventually).Should(gbytes.Say(`generation 1 \(image ` + image1 + `\): waiting for the operator to observe it`))

		operatorReports(r, func(st *deployv1alpha1.SoftFactoryReleaseStatus) {
			st.Phase, st.CurrentRevision = deployv1alpha1.PhaseBackingUp, rev1
			setCondition(st, deployv1alpha1.ConditionBackupSucceeded, metav1.ConditionUnknown, "BackupRunning", "Job softfactory-backup-"+rev1+" is running")
			setCondition(st, deployv1alpha1.ConditionReady, metav1.ConditionFalse, "BackingUp", "Taking the pre-migration backup")
		})
		Eventually(f.out, eventually).Should(gbytes.Say(`revision ` + rev1 + ` \(image ` + image1 + `, generation 1\)`))
		Eventually(f.out, eventually).Should(gbytes.Say(`phase BackingUp`))
		Eventually(f.out, eventually).Should(gbytes.Say(`BackupSucceeded=Unknown  BackupRunning: Job softfactory-backup-` + rev1 + ` is running`))

		operatorReports(r, func(st *deployv1alpha1.SoftFactoryReleaseStatus) {
			st.Phase = deployv1alpha1.PhaseMigrating
			setCondition(st, deployv1alpha1.ConditionBackupSucceeded, metav1.ConditionTrue, "BackupVerified", "softfactory-"+rev1+".dump verified")
			setCondition(st, deployv1alpha1.ConditionMigrationSucceeded, metav1.ConditionUnknown, "MigrationRunning", "Job softfactory-migrate-"+rev1+" is running")
		})
		Eventually(f.out, eventually).Should(gbytes.Say(`phase Migrating`))
		Eventually(f.out, eventually).Should(gbytes.Say(`BackupSucceeded=True  BackupVerified`))
		Eventually(f.out, eventually).Should(gbytes.Say(`MigrationSucceeded=Unknown  MigrationRunning`))

		operatorReports(r, func(st *deployv1alpha1.SoftFactoryReleaseStatus) {
			st.Phase = deployv1alpha1.PhaseVerifying
			setCondition(st, deployv1alpha1.ConditionMigrationSucceeded, metav1.ConditionTrue, "MigrationCompleted", "Job softfactory-migrate-"+rev1+" completed")
			setCondition(st, deployv1alpha1.ConditionGreenAvailable, metav1.ConditionFalse, "EndpointsNotReady", "1 of 2 green endpoints ready")
		})
		Eventually(f.out, eventually).Should(gbytes.Say(`phase Verifying`))
		Eventually(f.out, eventually).Should(gbytes.Say(`GreenAvailable=False  EndpointsNotReady: 1 of 2 green endpoints ready`))
		Expect(f.exit).NotTo(Receive(), "a release still verifying has not settled")

		operatorReports(r, func(st *deployv1alpha1.SoftFactoryReleaseStatus) {
			servingRev1(st)
			setCondition(st, deployv1alpha1.ConditionGreenAvailable, metav1.ConditionTrue, "Available", "2 of 2 green endpoints ready")
		})
		Eventually(f.exit, eventually).Should(Receive(Equal(ExitOK)))
		Expect(f.out).To(gbytes.Say(`traffic now on green \(` + image1 + `\)`))
		Expect(f.out).To(gbytes.Say(`phase Succeeded`))
		Expect(f.out).To(gbytes.Say(`succeeded: serving ` + image1 + ` on green \(revision ` + rev1 + `\)`))
	})

	It("does not take the last release's Ready for a new spec, and exits 1 with the reason when it fails", func() {
		r := newRelease(namespace, image1)
		operatorReports(r, servingRev1)
		changeImage(r, image2)

		f := follow("-n", namespace, "status", "softfactory")
		Eventually(f.out, eventually).Should(gbytes.Say(`generation 2 \(image ` + image2 + `\): waiting for the operator to observe it`))
		Consistently(f.exit, time.Second, poll).ShouldNot(Receive(), "Ready=True describes generation 1, not the new image")

		// A pass that fails holds observedGeneration back, but its Ready, stamped with the
		// new generation, says why: that is news.
		operatorFailsAPass(r, "jobs.batch is forbidden")
		Eventually(f.out, eventually).Should(gbytes.Say(`Ready=False  ReconcileError: The last pass failed and will be retried: jobs.batch is forbidden`))
		Expect(f.exit).NotTo(Receive())

		operatorReports(r, releasingRev2(deployv1alpha1.PhaseMigrating, "Migrating", "Job softfactory-migrate-"+rev2+" is running"))
		Eventually(f.out, eventually).Should(gbytes.Say(`revision ` + rev2 + ` \(image ` + image2 + `, generation 2\); traffic on green \(` + image1 + `\)`))
		Eventually(f.out, eventually).Should(gbytes.Say(`phase Migrating`))

		operatorReports(r, func(st *deployv1alpha1.SoftFactoryReleaseStatus) {
			releasingRev2(deployv1alpha1.PhaseFailed, "Failed", "Release "+rev2+" failed; green still serves "+rev1)(st)
			setCondition(st, deployv1alpha1.ConditionMigrationSucceeded, metav1.ConditionFalse, "MigrationFailed", "Job softfactory-migrate-"+rev2+" failed")
			setCondition(st, deployv1alpha1.ConditionDegraded, metav1.ConditionTrue, "MigrationFailed", "Job softfactory-migrate-"+rev2+" failed; green still serves "+rev1)
		})
		Eventually(f.exit, eventually).Should(Receive(Equal(ExitFailed)))
		Expect(f.out).To(gbytes.Say(`failed: MigrationFailed: Job softfactory-migrate-` + rev2 + ` failed; green still serves ` + rev1))
		Expect(f.errOut).To(gbytes.Say(`error: softfactoryrelease/softfactory failed: MigrationFailed`))
	})

	It("keeps following a release waiting for promotion, says how to promote it, and exits 2 at --timeout", func() {
		r := newRelease(namespace, image2)
		operatorReports(r, awaitingPromotionOfRev2)

		f := follow("-n", namespace, "status", "softfactory", "--timeout", "2s")
		Eventually(f.out, eventually).Should(gbytes.Say(
			`waiting for promotion: revision ` + rev2 + ` is ready on the preview Service and waits for promotion; ` +
				`promote it with: kubectl sfrelease promote softfactory`))
		Eventually(f.exit, eventually).Should(Receive(Equal(ExitTimeout)))
		Expect(f.errOut).To(gbytes.Say(`error: timed out after 2s waiting for softfactoryrelease/softfactory: revision ` + rev2))
	})

	It("follows a manual promotion made with kubectl sfrelease promote through to the flip", func() {
		r := newRelease(namespace, image2)
		operatorReports(r, awaitingPromotionOfRev2)
		f := follow("-n", namespace, "status", "softfactory")
		Eventually(f.out, eventually).Should(gbytes.Say(`waiting for promotion`))

		code, _, _ := sfrelease("-n", namespace, "promote", "softfactory")
		Expect(code).To(Equal(ExitOK))
		// The annotation is news to the follower before the operator acts on it.
		Eventually(f.out, eventually).Should(gbytes.Say(`promotion of revision ` + rev2 + ` requested; waiting for the operator to switch traffic`))

		Expect(annotations(r)).To(HaveKeyWithValue(deployv1alpha1.PromoteAnnotation, rev2))
		operatorReports(r, servingRev2)
		Eventually(f.exit, eventually).Should(Receive(Equal(ExitOK)))
		Expect(f.out).To(gbytes.Say(`traffic now on blue \(` + image2 + `\)`))
		Expect(f.out).To(gbytes.Say(`succeeded: serving ` + image2 + ` on blue`))
	})

	It("prints the release once with --no-follow, exiting 0 unless it has failed", func() {
		r := newRelease(namespace, image2)
		operatorReports(r, awaitingPromotionOfRev2)
		code, out, _ := sfrelease("-n", namespace, "status", "softfactory", "--no-follow")
		Expect(code).To(Equal(ExitOK))
		Expect(out).To(MatchRegexp(`Phase:\s+AwaitingPromotion`))
		Expect(out).To(MatchRegexp(`Revision:\s+` + rev2 + ` \(serving: ` + rev1 + `\)`))
		Expect(out).To(MatchRegexp(`Active:\s+green \(` + image1 + `\)`))
		Expect(out).To(MatchRegexp(`Verdict:\s+AwaitingPromotion: revision ` + rev2))
		Expect(out).To(ContainSubstring("promote it with: kubectl sfrelease promote softfactory"))
		Expect(out).To(MatchRegexp(`GreenAvailable\s+True\s+Available\s+2 of 2 blue endpoints ready`))

		operatorReports(r, func(st *deployv1alpha1.SoftFactoryReleaseStatus) {
			releasingRev2(deployv1alpha1.PhaseFailed, "ProgressDeadlineExceeded", "Blue was not available after 600s")(st)
		})
		code, out, errOut := sfrelease("-n", namespace, "status", "softfactory", "--no-follow")
		Expect(code).To(Equal(ExitFailed))
		Expect(out).To(MatchRegexp(`Verdict:\s+Failed: ProgressDeadlineExceeded: Blue was not available after 600s`))
		Expect(errOut).To(ContainSubstring("softfactoryrelease/softfactory failed: ProgressDeadlineExceeded"))
	})

	It("says so when the release does not exist", func() {
		code, _, errOut := sfrelease("-n", namespace, "status", "nosuchrelease", "--timeout", "10s")
		Expect(code).To(Equal(ExitFailed))
		Expect(errOut).To(ContainSubstring(`softfactoryreleases.deploy.softfactory.io "nosuchrelease" not found`))

		code, _, errOut = sfrelease("-n", namespace, "status", "nosuchrelease", "--no-follow")
		Expect(code).To(Equal(ExitFailed))
		Expect(errOut).To(ContainSubstring(`"nosuchrelease" not found`))
	})
})

var _ = Describe("kubectl sfrelease promote", func() {
	var namespace string
	BeforeEach(func() { namespace = newNamespace() })

	It("sets the promote annotation to the revision awaiting promotion, replacing a stale one", func() {
		r := newRelease(namespace, image2)
		r.Annotations = map[string]string{deployv1alpha1.PromoteAnnotation: rev1}
		Expect(k8sClient.Update(ctx, r)).To(Succeed())
		operatorReports(r, awaitingPromotionOfRev2)

		code, out, _ := sfrelease("-n", namespace, "promote", "softfactory")
		Expect(code).To(Equal(ExitOK))
		Expect(out).To(ContainSubstring("softfactoryrelease/softfactory: promotion of revision " + rev2 + " requested"))
		Expect(out).To(ContainSubstring("Follow it with: kubectl sfrelease status softfactory"))
		Expect(annotations(r)).To(HaveKeyWithValue(deployv1alpha1.PromoteAnnotation, rev2))

		code, out, _ = sfrelease("-n", namespace, "promote", "softfactory")
		Expect(code).To(Equal(ExitOK))
		Expect(out).To(ContainSubstring("promotion of revision " + rev2 + " was already requested"))
	})

	It("refuses a release that is not awaiting promotion, unless forced", func() {
		r := newRelease(namespace, image2)
		operatorReports(r, releasingRev2(deployv1alpha1.PhaseVerifying, "Verifying", "1 of 2 blue endpoints ready"))

		code, _, errOut := sfrelease("-n", namespace, "promote", "softfactory")
		Expect(code).To(Equal(ExitFailed))
		Expect(errOut).To(ContainSubstring("softfactoryrelease/softfactory is not awaiting promotion (phase Verifying, revision " + rev2 + ")"))
		Expect(annotations(r)).NotTo(HaveKey(deployv1alpha1.PromoteAnnotation))

		code, out, _ := sfrelease("-n", namespace, "promote", "softfactory", "--force")
		Expect(code).To(Equal(ExitOK))
		Expect(out).To(ContainSubstring("promotion of revision " + rev2 + " requested"))
		Expect(annotations(r)).To(HaveKeyWithValue(deployv1alpha1.PromoteAnnotation, rev2))
	})

	It("refuses before the operator has observed a new spec, whose revision it cannot know yet", func() {
		r := newRelease(namespace, image2)
		operatorReports(r, awaitingPromotionOfRev2)
		changeImage(r, "registry.example.com/softfactory:1.4.5")

		code, _, errOut := sfrelease("-n", namespace, "promote", "softfactory")
		Expect(code).To(Equal(ExitFailed))
		Expect(errOut).To(ContainSubstring("the operator has not observed generation 2 of softfactoryrelease/softfactory yet"))
		Expect(annotations(r)).NotTo(HaveKey(deployv1alpha1.PromoteAnnotation))
	})

	It("refuses a release the operator has not reported on, even when forced", func() {
		newRelease(namespace, image2)
		code, _, errOut := sfrelease("-n", namespace, "promote", "softfactory", "--force")
		Expect(code).To(Equal(ExitFailed))
		Expect(errOut).To(ContainSubstring("has no revision yet"))
	})
})

var _ = Describe("kubectl sfrelease abort", func() {
	var namespace string
	BeforeEach(func() { namespace = newNamespace() })

	It("sets the abort annotation to the revision in flight", func() {
		r := newRelease(namespace, image2)
		operatorReports(r, releasingRev2(deployv1alpha1.PhaseMigrating, "Migrating", "Job softfactory-migrate-"+rev2+" is running"))

		code, out, _ := sfrelease("-n", namespace, "abort", "softfactory")
		Expect(code).To(Equal(ExitOK))
		Expect(out).To(ContainSubstring("softfactoryrelease/softfactory: abort of revision " + rev2 + " requested"))
		Expect(annotations(r)).To(HaveKeyWithValue(deployv1alpha1.AbortAnnotation, rev2))
	})

	It("refuses when no release is in flight", func() {
		r := newRelease(namespace, image1)
		operatorReports(r, servingRev1)

		code, _, errOut := sfrelease("-n", namespace, "abort", "softfactory")
		Expect(code).To(Equal(ExitFailed))
		Expect(errOut).To(ContainSubstring("has no release in flight (phase Succeeded, revision " + rev1 + ", serving " + rev1 + "): nothing to abort"))
		Expect(annotations(r)).NotTo(HaveKey(deployv1alpha1.AbortAnnotation))
	})
})

var _ = Describe("kubectl sfrelease restore", func() {
	var namespace string
	BeforeEach(func() { namespace = newNamespace() })

	It("approves the restore awaiting approval by setting the restore annotation to its revision", func() {
		r := newRelease(namespace, image2)
		operatorReports(r, func(st *deployv1alpha1.SoftFactoryReleaseStatus) {
			releasingRev2(deployv1alpha1.PhaseFailed, deployv1alpha1.ReasonMigrationFailed, "Migration Job softfactory-migrate-"+rev2+" failed")(st)
			st.Revisions = []deployv1alpha1.RevisionRecord{{Revision: rev2,
				Restore: &deployv1alpha1.RestoreRecord{Phase: deployv1alpha1.RestoreAwaitingApproval}}}
		})

		code, out, _ := sfrelease("-n", namespace, "restore", "softfactory")
		Expect(code).To(Equal(ExitOK))
		Expect(out).To(ContainSubstring("softfactoryrelease/softfactory: restore of revision " + rev2 + " requested"))
		Expect(annotations(r)).To(HaveKeyWithValue(deployv1alpha1.RestoreAnnotation, rev2))
	})

	It("refuses when no restore awaits approval", func() {
		r := newRelease(namespace, image2)
		operatorReports(r, releasingRev2(deployv1alpha1.PhaseFailed, deployv1alpha1.ReasonMigrationNeverRan, "Migration Job never ran"))

		code, _, errOut := sfrelease("-n", namespace, "restore", "softfactory")
		Expect(code).To(Equal(ExitFailed))
		Expect(errOut).To(ContainSubstring("has no restore awaiting approval (phase Failed, revision " + rev2 + ")"))
		Expect(annotations(r)).NotTo(HaveKey(deployv1alpha1.RestoreAnnotation))
	})
})

var _ = Describe("kubectl sfrelease history", func() {
	var namespace string
	BeforeEach(func() { namespace = newNamespace() })

	It("lists past releases newest first, in the namespace of the kubeconfig context", func() {
		r := newRelease(namespace, image2)
		promoted := metav1.NewTime(time.Date(2026, 11, 25, 10, 17, 2, 0, time.UTC))
		finished := metav1.NewTime(time.Date(2026, 11, 25, 10, 17, 32, 0, time.UTC))
		failed := metav1.NewTime(time.Date(2026, 11, 26, 8, 1, 30, 0, time.UTC))
		operatorReports(r, func(st *deployv1alpha1.SoftFactoryReleaseStatus) {
			releasingRev2(deployv1alpha1.PhaseFailed, "Failed", "Release "+rev2+" failed")(st)
			st.History = []deployv1alpha1.ReleaseRecord{
				{Revision: rev2, Image: image2, Color: deployv1alpha1.Blue, BackupFile: "softfactory-" + rev2 + ".dump",
					Outcome: deployv1alpha1.OutcomeFailed, Reason: "MigrationFailed", FinishedAt: &failed,
					Message: "Migration Job softfactory-migrate-" + rev2 + " failed"},
				{Revision: rev1, Image: image1, Color: deployv1alpha1.Green,
					Outcome: deployv1alpha1.OutcomePromoted, Reason: "Promoted", PromotedAt: &promoted, FinishedAt: &finished},
			}
		})

		// No -n: the namespace comes from the kubeconfig's context, as with kubectl.
		code, out, _ := sfreleaseWithKubeconfig(kubeconfigInNamespace(namespace), "history", "softfactory")
		Expect(code).To(Equal(ExitOK))
		lines := strings.Split(strings.TrimSpace(out), "\n")
		Expect(lines).To(HaveLen(3))
		Expect(strings.Fields(lines[0])).To(Equal([]string{"REVISION", "IMAGE", "COLOR", "OUTCOME", "REASON", "PROMOTED", "FINISHED", "BACKUP"}))
		Expect(strings.Fields(lines[1])).To(Equal([]string{rev2, image2, "blue", "Failed", "MigrationFailed",
			"<none>", "2026-11-26T08:01:30Z", "softfactory-" + rev2 + ".dump"}))
		Expect(strings.Fields(lines[2])).To(Equal([]string{rev1, image1, "green", "Promoted", "Promoted",
			"2026-11-25T10:17:02Z", "2026-11-25T10:17:32Z", "<none>"}))

		code, out, _ = sfrelease("-n", namespace, "history", "softfactory", "-o", "wide")
		Expect(code).To(Equal(ExitOK))
		lines = strings.Split(strings.TrimSpace(out), "\n")
		Expect(lines).To(HaveLen(3))
		Expect(lines[0]).To(HaveSuffix("MESSAGE"))
		Expect(lines[1]).To(HaveSuffix("Migration Job softfactory-migrate-" + rev2 + " failed"))
		Expect(lines[2]).To(HaveSuffix("<none>"))

		code, _, errOut := sfrelease("-n", namespace, "history", "softfactory", "-o", "json")
		Expect(code).To(Equal(ExitFailed))
		Expect(errOut).To(ContainSubstring(`--output "json" is not supported`))
	})

	It("says when there is no history yet", func() {
		newRelease(namespace, image1)
		code, out, _ := sfrelease("-n", namespace, "history", "softfactory")
		Expect(code).To(Equal(ExitOK))
		Expect(out).To(Equal("No releases recorded for softfactoryrelease/softfactory yet.\n"))
	})
})

// kubeconfigInNamespace writes a copy of the suite's kubeconfig whose current context
// has namespace as its default.
func kubeconfigInNamespace(namespace string) string {
	cfg, err := clientcmd.LoadFromFile(kubeconfig)
	Expect(err).NotTo(HaveOccurred())
	cfg.Contexts[cfg.CurrentContext].Namespace = namespace
	path := filepath.Join(GinkgoT().TempDir(), "kubeconfig")
	Expect(clientcmd.WriteToFile(*cfg, path)).To(Succeed())
	_, err = os.Stat(path)
	Expect(err).NotTo(HaveOccurred())
	return path
}

func sfreleaseWithKubeconfig(path string, args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = Run(ctx, append([]string{"--kubeconfig", path}, args...),
		genericiooptions.IOStreams{In: &bytes.Buffer{}, Out: &out, ErrOut: &errOut})
	return code, out.String(), errOut.String()
}
