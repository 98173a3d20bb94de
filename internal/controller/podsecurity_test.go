package controller

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// The API server's PodSecurity admission judges pods, not templates, so each template
// the operator builds is submitted as a Pod to a namespace that enforces "restricted".
var _ = Describe("Every pod the operator makes", func() {
	var ns string
	BeforeEach(func() {
		n := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			GenerateName: "restricted-",
			Labels:       map[string]string{"pod-security.kubernetes.io/enforce": "restricted"},
		}}
		Expect(k8sClient.Create(ctx, n)).To(Succeed())
		ns = n.Name
	})

	release := func() *deployv1alpha1.SoftFactoryRelease {
		r := (&harness{ns: ns, name: "softfactory"}).release(imageV1)
		r.Spec.Port = 8000
		r.Spec.Service.Port = 80
		r.Spec.HealthCheck = deployv1alpha1.HealthCheckSpec{Path: "/health", PeriodSeconds: 5, TimeoutSeconds: 2, FailureThreshold: 3}
		r.Spec.Database.URLSecretRef.Key = "DATABASE_URL"
		r.Spec.Backup.Image = "postgres:15-alpine"
		r.Spec.Backup.KeepLast = 10
		r.Spec.Migration.Command = []string{"flask", "db", "upgrade"}
		r.Spec.Strategy.BlueGreen.SmokeTest = &deployv1alpha1.SmokeTestSpec{Command: []string{"pytest", "tests/smoke"}}
		return r
	}
	admit := func(name string, spec corev1.PodSpec) error {
		return k8sClient.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: spec})
	}

	It("is admitted in a namespace that enforces Pod Security restricted", func() {
		r := release()
		rev := revisionOf(r)
		Expect(admit("app", buildDeployment(r, deployv1alpha1.Blue, rev, 2).Spec.Template.Spec)).To(Succeed())
		Expect(admit("backup", buildBackupJob(r, rev, "softfactory-x.dump").Spec.Template.Spec)).To(Succeed())
		Expect(admit("migrate", buildMigrationJob(r, rev).Spec.Template.Spec)).To(Succeed())
		Expect(admit("restore", buildRestoreJob(r, rev, "softfactory-x.dump").Spec.Template.Spec)).To(Succeed())
		Expect(admit("smoke", buildSmokeTestJob(r, rev).Spec.Template.Spec)).To(Succeed())
		r.Spec.Backup.Schedule = "@daily"
		Expect(admit("scheduled-backup", buildScheduledBackupCronJob(r, rev).Spec.JobTemplate.Spec.Template.Spec)).To(Succeed())
	})

	It("is admitted there with a sidecar that brings no securityContext, run as the uid the user gave", func() {
		r := release()
		r.Spec.PodTemplate = &deployv1alpha1.PodTemplateOverrides{
			Sidecars:        []corev1.Container{{Name: "nginx", Image: "nginx"}},
			SecurityContext: &deployv1alpha1.RunAsSpec{RunAsUser: ptr.To[int64](1000), FSGroup: ptr.To[int64](1000)},
		}
		r.Spec.Backup.SecurityContext = &deployv1alpha1.RunAsSpec{RunAsUser: ptr.To[int64](999)}
		rev := revisionOf(r)
		Expect(admit("app", buildDeployment(r, deployv1alpha1.Blue, rev, 2).Spec.Template.Spec)).To(Succeed())
		Expect(admit("migrate", buildMigrationJob(r, rev).Spec.Template.Spec)).To(Succeed())
		Expect(admit("smoke", buildSmokeTestJob(r, rev).Spec.Template.Spec)).To(Succeed())
		Expect(admit("backup", buildBackupJob(r, rev, "softfactory-x.dump").Spec.Template.Spec)).To(Succeed())
	})

	It("would be refused there without the operator's security defaults (the check is real)", func() {
		spec := buildDeployment(release(), deployv1alpha1.Blue, "0123456789", 2).Spec.Template.Spec
		spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = new(true)
		err := admit("unsafe", spec)
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring(`violates PodSecurity "restricted`))
	})
})
