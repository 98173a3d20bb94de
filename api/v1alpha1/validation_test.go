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

package v1alpha1_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// loadSample reads a manifest from config/samples exactly as a user would apply it.
func loadSample(name, namespace string) *unstructured.Unstructured {
	raw, err := os.ReadFile(filepath.Join("..", "..", "config", "samples", name))
	Expect(err).NotTo(HaveOccurred())
	u := &unstructured.Unstructured{}
	Expect(yaml.Unmarshal(raw, &u.Object)).To(Succeed())
	u.SetNamespace(namespace)
	return u
}

func newNamespace() string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "contract-"}}
	Expect(k8sClient.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

// minimal is the smallest valid manifest, as an unstructured object to mutate.
func minimal(namespace string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "deploy.softfactory.io/v1alpha1",
		"kind":       "SoftFactoryRelease",
		"metadata":   map[string]any{"name": "softfactory", "namespace": namespace},
		"spec":       map[string]any{"image": "registry.example.com/softfactory:1.4.2"},
	}}
}

// withDatabaseAndBackup is the spec fragment that a migration or restore needs.
func withDatabaseAndBackup(spec map[string]any) {
	spec["database"] = map[string]any{"urlSecretRef": map[string]any{"name": "db"}}
	spec["backup"] = map[string]any{"volume": map[string]any{"persistentVolumeClaim": map[string]any{"claimName": "backups"}}}
}

var _ = Describe("The SoftFactoryRelease API", func() {
	var namespace string
	BeforeEach(func() { namespace = newNamespace() })

	It("accepts the full manifest of the README exactly as written and fills in the rest", func() {
		u := loadSample("deploy_v1alpha1_softfactoryrelease.yaml", namespace)
		Expect(k8sClient.Create(ctx, u)).To(Succeed())

		got := &deployv1alpha1.SoftFactoryRelease{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(u), got)).To(Succeed())
		spec := got.Spec
		By("keeping what the user wrote")
		Expect(spec.Image).To(Equal("registry.example.com/softfactory:1.4.2"))
		Expect(spec.Replicas).To(Equal(ptr.To[int32](4)))
		Expect(spec.EnvFrom[0].SecretRef.Name).To(Equal("softfactory-env"))
		Expect(spec.Resources.Limits[corev1.ResourceMemory]).To(Equal(resource.MustParse("512Mi")))
		Expect(spec.Service.Name).To(Equal("softfactory-api"))
		Expect(spec.Database.URLSecretRef).To(Equal(deployv1alpha1.SecretKeyRef{Name: "softfactory-db", Key: "DATABASE_URL"}))
		Expect(spec.Backup.Volume.PersistentVolumeClaim.ClaimName).To(Equal("softfactory-backups"))
		Expect(spec.Migration.Command).To(Equal([]string{"flask", "db", "upgrade"}))
		Expect(spec.Monitoring.PrometheusRule.Labels).To(HaveKeyWithValue("release", "prometheus"))

		By("defaulting what the user left out")
		Expect(spec.Backup.Image).To(Equal("postgres:15-alpine"))
		Expect(spec.Backup.Verify.Enabled).To(Equal(new(true)))
		Expect(spec.Backup.BackoffLimit).To(Equal(ptr.To[int32](1)))
		Expect(spec.Migration.BackoffLimit).To(Equal(ptr.To[int32](0)))
		Expect(spec.Service.Type).To(Equal(corev1.ServiceTypeClusterIP))
		Expect(spec.Rollback.OnFailure).To(Equal(deployv1alpha1.FailurePolicyScaleDown))
		Expect(spec.Monitoring.PrometheusRule.Thresholds.ErrorRatePercent).To(Equal(int32(5)))
	})

	It("accepts the minimal manifest (spec.image alone) and shows every default when read back", func() {
		u := loadSample("deploy_v1alpha1_softfactoryrelease_minimal.yaml", namespace)
		Expect(k8sClient.Create(ctx, u)).To(Succeed())

		got := &deployv1alpha1.SoftFactoryRelease{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(u), got)).To(Succeed())
		Expect(got.Spec).To(Equal(deployv1alpha1.SoftFactoryReleaseSpec{
			Image:    "registry.example.com/softfactory:1.4.2",
			Replicas: ptr.To[int32](2),
			Port:     8000,
			HealthCheck: deployv1alpha1.HealthCheckSpec{
				Path: "/health", PeriodSeconds: 5, TimeoutSeconds: 2, FailureThreshold: 3,
			},
			Service: deployv1alpha1.ServiceSpec{Port: 80, Type: corev1.ServiceTypeClusterIP},
			Strategy: deployv1alpha1.StrategySpec{BlueGreen: deployv1alpha1.BlueGreenSpec{
				AutoPromote:             new(true),
				ScaleDownDelaySeconds:   ptr.To[int32](30),
				ProgressDeadlineSeconds: 600,
				OnServingDegraded:       deployv1alpha1.ServingDegradedStop,
			}},
			Rollback: deployv1alpha1.RollbackSpec{OnFailure: deployv1alpha1.FailurePolicyScaleDown},
			Monitoring: deployv1alpha1.MonitoringSpec{PrometheusRule: deployv1alpha1.PrometheusRuleSpec{
				Enabled:    new(true),
				RunbookURL: "https://github.com/softfactory/release-operator/blob/main/docs/monitoring.md",
				Thresholds: deployv1alpha1.AlertThresholds{
					APIDownFor:           "2m",
					ErrorRatePercent:     5,
					ErrorRateFor:         "5m",
					MemoryPercent:        90,
					MemoryFor:            "5m",
					DatabaseDownFor:      "1m",
					SlowQueriesPerMinute: 10,
					SlowQueriesFor:       "10m",
					BackupMaxAgeHours:    26,
				},
			}},
			RevisionHistoryLimit: 10,
		}))
	})

	It("defaults the migration command to the runbook's flask db upgrade", func() {
		u := minimal(namespace)
		spec := u.Object["spec"].(map[string]any)
		withDatabaseAndBackup(spec)
		spec["migration"] = map[string]any{}
		Expect(k8sClient.Create(ctx, u)).To(Succeed())
		got := &deployv1alpha1.SoftFactoryRelease{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(u), got)).To(Succeed())
		Expect(got.Spec.Migration.Command).To(Equal([]string{"flask", "db", "upgrade"}))
		Expect(got.Spec.Migration.ActiveDeadlineSeconds).To(Equal(int64(600)))
		Expect(got.Spec.Database.URLSecretRef.Key).To(Equal("DATABASE_URL"))
		Expect(got.Spec.Backup.KeepLast).To(Equal(int32(10)))
	})

	// Each entry breaks one rule; the API server must refuse it with the message that
	// says what to fix.
	DescribeTable("refuses an invalid manifest at apply time with a message that says what to fix",
		func(mutate func(obj map[string]any, spec map[string]any), wantMessage string) {
			u := minimal(namespace)
			mutate(u.Object, u.Object["spec"].(map[string]any))
			err := k8sClient.Create(ctx, u)
			Expect(err).To(HaveOccurred(), "the API server accepted an invalid manifest")
			Expect(err.Error()).To(ContainSubstring(wantMessage))
		},
		Entry("an empty image", func(_, s map[string]any) { s["image"] = "" },
			"spec.image must not be empty or whitespace"),
		Entry("a whitespace image", func(_, s map[string]any) { s["image"] = "   " },
			"spec.image must not be empty or whitespace"),
		Entry("an image with a space inside", func(_, s map[string]any) { s["image"] = "softfactory 1.4.2" },
			"spec.image must not contain whitespace"),
		Entry("zero replicas", func(_, s map[string]any) { s["replicas"] = 0 },
			"spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1"),
		Entry("a backup without a database", func(_, s map[string]any) {
			s["backup"] = map[string]any{"volume": map[string]any{"persistentVolumeClaim": map[string]any{"claimName": "b"}}}
		}, "spec.backup needs spec.database"),
		Entry("a migration without a backup", func(_, s map[string]any) {
			s["migration"] = map[string]any{"command": []any{"flask", "db", "upgrade"}}
		}, "spec.migration needs spec.backup"),
		Entry("a restore without a database or backup", func(_, s map[string]any) {
			s["rollback"] = map[string]any{"restoreDatabase": true}
		}, "spec.rollback.restoreDatabase needs spec.database and spec.backup"),
		Entry("a restore without a migration to undo", func(_, s map[string]any) {
			withDatabaseAndBackup(s)
			s["rollback"] = map[string]any{"restoreDatabase": true}
		}, "spec.rollback.restoreDatabase only applies when spec.migration is set"),
		Entry("a second database in spec.env beside spec.database", func(_, s map[string]any) {
			withDatabaseAndBackup(s)
			s["env"] = []any{map[string]any{"name": "DATABASE_URL", "value": "postgresql://other/db"}}
		}, "spec.env must not set DATABASE_URL when spec.database is set"),
		Entry("a second database in spec.migration.env beside spec.database", func(_, s map[string]any) {
			withDatabaseAndBackup(s)
			s["migration"] = map[string]any{"env": []any{map[string]any{"name": "DATABASE_URL", "value": "postgresql://other/db"}}}
		}, "spec.migration.env must not set DATABASE_URL when spec.database is set"),
		Entry("a second database in spec.migration.contract.env beside spec.database", func(_, s map[string]any) {
			withDatabaseAndBackup(s)
			s["migration"] = map[string]any{"contract": map[string]any{"command": []any{"drop-old-columns"},
				"env": []any{map[string]any{"name": "DATABASE_URL", "value": "postgresql://other/db"}}}}
		}, "spec.migration.contract.env must not set DATABASE_URL when spec.database is set"),
		Entry("a contract step without a command", func(_, s map[string]any) {
			withDatabaseAndBackup(s)
			s["migration"] = map[string]any{"contract": map[string]any{}}
		}, "spec.migration.contract.command: Required value"),
		Entry("a compatibility check without a smoke test", func(_, s map[string]any) {
			withDatabaseAndBackup(s)
			s["migration"] = map[string]any{"command": []any{"flask", "db", "upgrade"}}
			s["strategy"] = map[string]any{"blueGreen": map[string]any{"compatibilityCheck": map[string]any{}}}
		}, "spec.strategy.blueGreen.compatibilityCheck needs smokeTest and spec.migration"),
		Entry("a compatibility check without a migration", func(_, s map[string]any) {
			s["strategy"] = map[string]any{"blueGreen": map[string]any{"compatibilityCheck": map[string]any{},
				"smokeTest": map[string]any{"command": []any{"pytest"}}}}
		}, "spec.strategy.blueGreen.compatibilityCheck needs smokeTest and spec.migration"),
		Entry("an unknown serving-degraded policy", func(_, s map[string]any) {
			s["strategy"] = map[string]any{"blueGreen": map[string]any{"onServingDegraded": "Ignore"}}
		}, `supported values: "Stop", "Promote"`),
		Entry("a restore mode without a migration to undo", func(_, s map[string]any) {
			withDatabaseAndBackup(s)
			s["rollback"] = map[string]any{"restore": "Manual"}
		}, "spec.rollback.restore needs spec.database, spec.backup and spec.migration"),
		Entry("restoreDatabase contradicting the restore mode", func(_, s map[string]any) {
			withDatabaseAndBackup(s)
			s["migration"] = map[string]any{}
			s["rollback"] = map[string]any{"restoreDatabase": true, "restore": "Manual"}
		}, "spec.rollback.restoreDatabase: true means restore: Automatic"),
		Entry("an unknown restore mode", func(_, s map[string]any) {
			withDatabaseAndBackup(s)
			s["migration"] = map[string]any{}
			s["rollback"] = map[string]any{"restore": "Sometimes"}
		}, `Unsupported value: "Sometimes"`),
		Entry("a negative scale-down delay", func(_, s map[string]any) {
			s["strategy"] = map[string]any{"blueGreen": map[string]any{"scaleDownDelaySeconds": -1}}
		}, "spec.strategy.blueGreen.scaleDownDelaySeconds in body should be greater than or equal to 0"),
		Entry("a zero progress deadline", func(_, s map[string]any) {
			s["strategy"] = map[string]any{"blueGreen": map[string]any{"progressDeadlineSeconds": 0}}
		}, "spec.strategy.blueGreen.progressDeadlineSeconds in body should be greater than or equal to 1"),
		Entry("a negative migration deadline", func(_, s map[string]any) {
			withDatabaseAndBackup(s)
			s["migration"] = map[string]any{"activeDeadlineSeconds": -5}
		}, "spec.migration.activeDeadlineSeconds in body should be greater than or equal to 1"),
		Entry("an error-rate threshold above 100%", func(_, s map[string]any) {
			s["monitoring"] = map[string]any{"prometheusRule": map[string]any{"thresholds": map[string]any{"errorRatePercent": 150}}}
		}, "spec.monitoring.prometheusRule.thresholds.errorRatePercent in body should be less than or equal to 100"),
		Entry("an alert duration that Prometheus cannot read", func(_, s map[string]any) {
			s["monitoring"] = map[string]any{"prometheusRule": map[string]any{"thresholds": map[string]any{"apiDownFor": "2 minutes"}}}
		}, "spec.monitoring.prometheusRule.thresholds.apiDownFor in body should match"),
		Entry("a health-check path without a leading slash", func(_, s map[string]any) {
			s["healthCheck"] = map[string]any{"path": "health"}
		}, "spec.healthCheck.path must start with '/'"),
		Entry("a health-check path with a query", func(_, s map[string]any) {
			s["healthCheck"] = map[string]any{"path": "/health?full=1"}
		}, "spec.healthCheck.path must be a plain URL path"),
		Entry("a release name too long for its Job names", func(o, _ map[string]any) {
			o["metadata"].(map[string]any)["name"] = strings.Repeat("a", 41)
		}, "metadata.name must be at most 40 characters"),
		Entry("a release name that cannot name a Service", func(o, _ map[string]any) {
			o["metadata"].(map[string]any)["name"] = "1softfactory"
		}, "metadata.name must be a DNS-1035 label"),
		Entry("a Service name with capitals", func(_, s map[string]any) {
			s["service"] = map[string]any{"name": "SoftFactory"}
		}, "spec.service.name must be a DNS-1035 label"),
		Entry("a port out of range", func(_, s map[string]any) { s["port"] = 70000 },
			"spec.port in body should be less than or equal to 65535"),
		Entry("an unknown failure policy", func(_, s map[string]any) {
			s["rollback"] = map[string]any{"onFailure": "Explode"}
		}, `spec.rollback.onFailure: Unsupported value: "Explode"`),
		Entry("a Prometheus check that can never fail", func(_, s map[string]any) {
			s["strategy"] = map[string]any{"blueGreen": map[string]any{"prePromotionAnalysis": map[string]any{
				"prometheusURL": "http://prometheus:9090",
				"checks":        []any{map[string]any{"name": "errors", "query": "vector(0)"}},
			}}}
		}, "a check needs min, max or both"),
		Entry("a Prometheus check with min above max", func(_, s map[string]any) {
			s["strategy"] = map[string]any{"blueGreen": map[string]any{"prePromotionAnalysis": map[string]any{
				"prometheusURL": "http://prometheus:9090",
				"checks":        []any{map[string]any{"name": "errors", "query": "vector(0)", "min": "0.5", "max": "0.1"}},
			}}}
		}, "a check's min must not be above its max"),
		Entry("a Prometheus address that is not a URL", func(_, s map[string]any) {
			s["strategy"] = map[string]any{"blueGreen": map[string]any{"prePromotionAnalysis": map[string]any{
				"prometheusURL": "prometheus:9090",
				"checks":        []any{map[string]any{"name": "errors", "query": "vector(0)", "max": "0.05"}},
			}}}
		}, "prometheusURL must start with http:// or https://"),
		Entry("a backup schedule that is not cron", func(_, s map[string]any) {
			withDatabaseAndBackup(s)
			s["backup"].(map[string]any)["schedule"] = "every night"
		}, "spec.backup.schedule must be a cron expression"),
		Entry("a keepLast of zero, which would prune the backup just taken", func(_, s map[string]any) {
			withDatabaseAndBackup(s)
			s["backup"].(map[string]any)["keepLast"] = 0
		}, "spec.backup.keepLast in body should be greater than or equal to 1"),
		Entry("a sidecar named like the API container", func(_, s map[string]any) {
			s["podTemplate"] = map[string]any{"sidecars": []any{map[string]any{"name": "api", "image": "x"}}}
		}, "spec.podTemplate.sidecars must not be named 'api'"),
		Entry("a revision history of zero", func(_, s map[string]any) { s["revisionHistoryLimit"] = 0 },
			"spec.revisionHistoryLimit in body should be greater than or equal to 1"),
		Entry("app pods running as root", func(_, s map[string]any) {
			s["podTemplate"] = map[string]any{"securityContext": map[string]any{"runAsUser": 0}}
		}, "spec.podTemplate.securityContext.runAsUser: Invalid value: 0: runAsUser must be a non-root uid above 0, such as 1000: the operator keeps runAsNonRoot"),
		Entry("backup pods running as root", func(_, s map[string]any) {
			withDatabaseAndBackup(s)
			s["backup"].(map[string]any)["securityContext"] = map[string]any{"runAsUser": 0}
		}, "spec.backup.securityContext.runAsUser: Invalid value: 0: runAsUser must be a non-root uid above 0"),
		Entry("a negative fsGroup", func(_, s map[string]any) {
			s["podTemplate"] = map[string]any{"securityContext": map[string]any{"fsGroup": -1}}
		}, "spec.podTemplate.securityContext.fsGroup in body should be greater than or equal to 0"),
	)

	It("keeps restoreDatabase: true meaning an automatic restore, takes DATABASE_URL from env only without spec.database, and defaults maxAge to 1h", func() {
		u := minimal(namespace)
		spec := u.Object["spec"].(map[string]any)
		withDatabaseAndBackup(spec)
		spec["migration"] = map[string]any{}
		spec["rollback"] = map[string]any{"restoreDatabase": true}
		Expect(k8sClient.Create(ctx, u)).To(Succeed())
		got := &deployv1alpha1.SoftFactoryRelease{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(u), got)).To(Succeed())
		Expect(got.Spec.Rollback.RestoreModeOf()).To(Equal(deployv1alpha1.RestoreAutomatic))
		Expect(got.Spec.Backup.MaxAge.Duration).To(Equal(time.Hour))

		plain := minimal(namespace)
		plain.SetName("no-database")
		plain.Object["spec"].(map[string]any)["env"] = []any{map[string]any{"name": "DATABASE_URL", "value": "postgresql://db/app"}}
		Expect(k8sClient.Create(ctx, plain)).To(Succeed(), "without spec.database, env is the only place for the URL")
	})

	It("keeps the identity the pods run as, for an image without a non-root USER", func() {
		u := minimal(namespace)
		spec := u.Object["spec"].(map[string]any)
		withDatabaseAndBackup(spec)
		spec["podTemplate"] = map[string]any{"securityContext": map[string]any{"runAsUser": 1000, "runAsGroup": 0, "fsGroup": 1000}}
		spec["backup"].(map[string]any)["securityContext"] = map[string]any{"runAsUser": 999}
		Expect(k8sClient.Create(ctx, u)).To(Succeed())
		got := &deployv1alpha1.SoftFactoryRelease{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(u), got)).To(Succeed())
		Expect(got.Spec.PodTemplate.SecurityContext).To(Equal(&deployv1alpha1.RunAsSpec{
			RunAsUser: ptr.To[int64](1000), RunAsGroup: ptr.To[int64](0), FSGroup: ptr.To[int64](1000),
		}))
		Expect(got.Spec.Backup.SecurityContext).To(Equal(&deployv1alpha1.RunAsSpec{RunAsUser: ptr.To[int64](999)}))
	})

	It("rejects the invalid table above for the right reason, not because the base manifest is wrong", func() {
		Expect(k8sClient.Create(ctx, minimal(namespace))).To(Succeed(), fmt.Sprintf("the base manifest of the table must be valid in %s", namespace))
	})
})
