package controller

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
	"github.com/softfactory/release-operator/internal/monitoring"
)

// Every child a release can make must be accepted by the API server for every release
// the API accepts. The longest names CEL lets through (40 characters for metadata.name,
// 55 for spec.service.name) are applied, and every child is built and created for real.
var _ = Describe("Names of a release's children", func() {
	It("fit every kind's limit for the longest names the API accepts", func() {
		h := newHarness()
		longest := "a" + strings.Repeat("b", 38) + "c"
		Expect(longest).To(HaveLen(40))
		for _, serviceName := range []string{"", "s" + strings.Repeat("v", 53) + "c"} {
			r := h.release(imageV1)
			r.Name = longest
			if serviceName != "" {
				r.Name = longest[:39] + "d"
				r.Spec.Service.Name = serviceName
				Expect(serviceName).To(HaveLen(55))
			}
			r.Spec.Backup.Schedule = "0 3 * * *"
			r.Spec.Strategy.BlueGreen.SmokeTest = &deployv1alpha1.SmokeTestSpec{Command: []string{"pytest"}}
			r.Spec.Rollback.RestoreDatabase = true
			Expect(k8sClient.Create(ctx, r)).To(Succeed(), "the API accepts the release")
			rev := revisionOf(r)

			children := []client.Object{
				buildDeployment(r, deployv1alpha1.Blue, rev, 1),
				buildDeployment(r, deployv1alpha1.Green, rev, 1),
				buildActiveService(r, deployv1alpha1.Blue),
				buildPreviewService(r, deployv1alpha1.Green),
				buildBackupJob(r, rev, "x.dump"),
				buildMigrationJob(r, rev),
				buildRestoreJob(r, rev, "x.dump"),
				buildSmokeTestJob(r, rev),
				buildScheduledBackupCronJob(r, rev),
			}
			for _, child := range children {
				// The API server checks the name, the labels (a Job's pods get its name
				// as their job-name label) and, for a CronJob, its 52 characters.
				Expect(k8sClient.Create(ctx, child)).To(Succeed(), "%T %s (%d characters)", child, child.GetName(), len(child.GetName()))
			}
			// The PrometheusRule CRD is not installed in this suite: its name is checked
			// as the API server checks a custom resource's name.
			rule := monitoring.PrometheusRule(r)
			Expect(validation.IsDNS1123Subdomain(rule.Name)).To(BeEmpty(), rule.Name)
			for _, v := range rule.Labels {
				Expect(validation.IsValidLabelValue(v)).To(BeEmpty(), v)
			}
		}

		By("shortening only the names that would not fit, so existing CronJobs keep theirs")
		short := &deployv1alpha1.SoftFactoryRelease{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}
		Expect(short.ScheduledBackupName()).To(Equal("shop-backup-scheduled"))
		long := &deployv1alpha1.SoftFactoryRelease{ObjectMeta: metav1.ObjectMeta{Name: longest}}
		other := &deployv1alpha1.SoftFactoryRelease{ObjectMeta: metav1.ObjectMeta{Name: longest[:39] + "d"}}
		Expect(long.ScheduledBackupName()).To(HaveLen(deployv1alpha1.MaxCronJobNameLength))
		Expect(long.ScheduledBackupName()).NotTo(Equal(other.ScheduledBackupName()), "two long names sharing a prefix still differ")
	})

	It("let a release with the longest name and a backup schedule run its runbook", func() {
		h := newHarness()
		h.name = "a" + strings.Repeat("b", 38) + "c"
		r := h.release(imageV1)
		r.Spec.Backup.Schedule = "0 3 * * *"
		h.create(r)
		h.settle()
		rev := h.get().Status.CurrentRevision
		Expect(h.job(r.BackupJobName(rev))).NotTo(BeNil(), "the backup ran")
		c := h.condition(deployv1alpha1.ConditionScheduledBackupReady)
		Expect(c).NotTo(BeNil())
		Expect(c.Status).To(Equal(metav1.ConditionTrue), c.Message)
		Expect(lookup(h, r.ScheduledBackupName(), &batchv1.CronJob{})).NotTo(BeNil())
	})
})

var _ = Describe("Scheduled backups, an optional step", func() {
	It("never hold the runbook: a CronJob name held by someone else goes to its own condition", func() {
		h := newHarness()
		r := h.release(imageV1)
		r.Spec.Backup.Schedule = "0 3 * * *"
		theirs := &batchv1.CronJob{
			ObjectMeta: metav1.ObjectMeta{Name: r.ScheduledBackupName(), Namespace: h.ns},
			Spec: batchv1.CronJobSpec{Schedule: "@daily", JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{
				Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					Containers:    []corev1.Container{{Name: "c", Image: "busybox"}},
				}},
			}}},
		}
		Expect(k8sClient.Create(ctx, theirs)).To(Succeed())
		h.rec.Client = &labelledOnlyClient{countingClient: h.client}
		h.create(r)
		h.passes(2)
		Expect(h.reconcile().RequeueAfter).To(BeNumerically("<=", optionalRetryMin), "the optional step is tried again")
		c := h.condition(deployv1alpha1.ConditionScheduledBackupReady)
		Expect(c).NotTo(BeNil())
		Expect(c.Status).To(Equal(metav1.ConditionFalse))
		Expect(c.Reason).To(Equal(deployv1alpha1.ReasonOwnershipConflict))
		Expect(c.Message).To(ContainSubstring("CronJob " + theirs.Name + " is not this release's"))
		Expect(h.job(r.BackupJobName(h.get().Status.CurrentRevision))).NotTo(BeNil(), "the runbook went on")
		Expect(h.condition(deployv1alpha1.ConditionDegraded).Status).To(Equal(metav1.ConditionFalse))

		By("trying again on a growing delay while it keeps failing")
		h.clock.Step(optionalRetryMin)
		Expect(h.reconcile().RequeueAfter).To(BeNumerically("==", 2*optionalRetryMin))
		got := &batchv1.CronJob{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(theirs), got)).To(Succeed())
		Expect(got.Spec.Schedule).To(Equal("@daily"), "their CronJob was not written")

		By("taking the name once it is free")
		Expect(k8sClient.Delete(ctx, got)).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(theirs), got))
		}).Should(BeTrue())
		h.settle()
		Expect(h.condition(deployv1alpha1.ConditionScheduledBackupReady).Status).To(Equal(metav1.ConditionTrue))
	})
})
