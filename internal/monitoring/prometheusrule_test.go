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

package monitoring

import (
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// newRelease is a release as stored after the CRD defaults: database and backup set,
// thresholds left to the runbook's values.
func newRelease(mutators ...func(*deployv1alpha1.SoftFactoryRelease)) *deployv1alpha1.SoftFactoryRelease {
	r := &deployv1alpha1.SoftFactoryRelease{
		ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "prod"},
		Spec: deployv1alpha1.SoftFactoryReleaseSpec{
			Image:    "registry.example.com/softfactory:1.4.2",
			Database: &deployv1alpha1.DatabaseSpec{URLSecretRef: deployv1alpha1.SecretKeyRef{Name: "db", Key: "DATABASE_URL"}},
			Backup:   &deployv1alpha1.BackupSpec{},
		},
	}
	r.Spec.Monitoring.PrometheusRule.RunbookURL = "https://example.com/docs/monitoring.md"
	for _, mutate := range mutators {
		mutate(r)
	}
	return r
}

func alertNames(rule *monitoringv1.PrometheusRule) []string {
	var names []string
	for _, group := range rule.Spec.Groups {
		for _, r := range group.Rules {
			names = append(names, r.Alert)
		}
	}
	return names
}

func findRule(rule *monitoringv1.PrometheusRule, alert string) monitoringv1.Rule {
	for _, group := range rule.Spec.Groups {
		for _, r := range group.Rules {
			if r.Alert == alert {
				return r
			}
		}
	}
	Fail("no rule for alert " + alert)
	return monitoringv1.Rule{}
}

func durationOf(r monitoringv1.Rule) string {
	if r.For == nil {
		return ""
	}
	return string(*r.For)
}

var _ = Describe("PrometheusRule builder", func() {
	It("names the object after the release and puts it in the release's namespace", func() {
		rule := PrometheusRule(newRelease())
		Expect(rule.Name).To(Equal("shop-alerts"))
		Expect(rule.Namespace).To(Equal("prod"))
		Expect(rule.APIVersion).To(Equal("monitoring.coreos.com/v1"))
		Expect(rule.Kind).To(Equal("PrometheusRule"))
		Expect(rule.OwnerReferences).To(BeEmpty(), "the reconciler sets the owner; the builder stays pure")
	})

	It("carries the user's labels so a Prometheus ruleSelector picks the rule up", func() {
		rule := PrometheusRule(newRelease(func(r *deployv1alpha1.SoftFactoryRelease) {
			r.Spec.Monitoring.PrometheusRule.Labels = map[string]string{
				"release":                "prometheus",
				deployv1alpha1.LabelName: "not-ours",
				"team":                   "payments",
			}
		}))
		Expect(rule.Labels).To(HaveKeyWithValue("release", "prometheus"))
		Expect(rule.Labels).To(HaveKeyWithValue(deployv1alpha1.LabelInstance, "shop"))
		Expect(rule.Labels).To(HaveKeyWithValue(deployv1alpha1.LabelComponent, deployv1alpha1.ComponentAlerts))
		Expect(rule.Labels).To(HaveKeyWithValue(deployv1alpha1.LabelManagedBy, deployv1alpha1.ManagedBy))
		Expect(rule.Labels).To(HaveKeyWithValue(deployv1alpha1.LabelName, deployv1alpha1.AppName), "the operator's labels win")
		Expect(rule.Labels).To(HaveKeyWithValue("team", "payments"))
	})

	It("does not share the user's label map", func() {
		r := newRelease(func(r *deployv1alpha1.SoftFactoryRelease) {
			r.Spec.Monitoring.PrometheusRule.Labels = map[string]string{"release": "prometheus"}
		})
		PrometheusRule(r)
		Expect(r.Spec.Monitoring.PrometheusRule.Labels).To(HaveLen(1))
	})

	DescribeTable("includes the alerts the release's spec calls for",
		func(mutate func(*deployv1alpha1.SoftFactoryRelease), want []string) {
			Expect(alertNames(PrometheusRule(newRelease(mutate)))).To(Equal(want))
		},
		Entry("database and backup: all eight", func(*deployv1alpha1.SoftFactoryRelease) {},
			[]string{AlertAPIDown, AlertHighErrorRate, AlertHighMemoryUsage, AlertDatabaseDown, AlertSlowQueries, AlertBackupTooOld, AlertReleaseFailed, AlertServingDegraded}),
		Entry("no backup: no BackupTooOld, whose gauge would never exist",
			func(r *deployv1alpha1.SoftFactoryRelease) { r.Spec.Backup = nil },
			[]string{AlertAPIDown, AlertHighErrorRate, AlertHighMemoryUsage, AlertDatabaseDown, AlertSlowQueries, AlertReleaseFailed, AlertServingDegraded}),
		Entry("no database: no database alerts",
			func(r *deployv1alpha1.SoftFactoryRelease) { r.Spec.Database, r.Spec.Backup = nil, nil },
			[]string{AlertAPIDown, AlertHighErrorRate, AlertHighMemoryUsage, AlertReleaseFailed, AlertServingDegraded}),
	)

	DescribeTable("takes thresholds and durations from the spec, with the runbook's as defaults",
		func(thresholds deployv1alpha1.AlertThresholds, alert, wantFor, wantInExpr string) {
			rule := findRule(PrometheusRule(newRelease(func(r *deployv1alpha1.SoftFactoryRelease) {
				r.Spec.Monitoring.PrometheusRule.Thresholds = thresholds
			})), alert)
			Expect(durationOf(rule)).To(Equal(wantFor))
			Expect(rule.Expr.StrVal).To(ContainSubstring(wantInExpr))
		},
		Entry("APIDown defaults to 2m", deployv1alpha1.AlertThresholds{}, AlertAPIDown, "2m", "== 0"),
		Entry("APIDown from the spec", deployv1alpha1.AlertThresholds{APIDownFor: "30s"}, AlertAPIDown, "30s", "== 0"),
		Entry("HighErrorRate defaults to 5% for 5m", deployv1alpha1.AlertThresholds{}, AlertHighErrorRate, "5m", "> 0.05"),
		Entry("HighErrorRate from the spec", deployv1alpha1.AlertThresholds{ErrorRatePercent: 2, ErrorRateFor: "1m"}, AlertHighErrorRate, "1m", "> 0.02"),
		Entry("HighMemoryUsage defaults to 90% for 5m", deployv1alpha1.AlertThresholds{}, AlertHighMemoryUsage, "5m", "> 0.9"),
		Entry("HighMemoryUsage from the spec", deployv1alpha1.AlertThresholds{MemoryPercent: 75, MemoryFor: "15m"}, AlertHighMemoryUsage, "15m", "> 0.75"),
		Entry("DatabaseDown defaults to 1m", deployv1alpha1.AlertThresholds{}, AlertDatabaseDown, "1m", "pg_up"),
		Entry("DatabaseDown from the spec", deployv1alpha1.AlertThresholds{DatabaseDownFor: "3m"}, AlertDatabaseDown, "3m", "pg_up"),
		Entry("SlowQueries defaults to 10 a minute for 10m", deployv1alpha1.AlertThresholds{}, AlertSlowQueries, "10m", "* 60 > 10"),
		Entry("SlowQueries from the spec", deployv1alpha1.AlertThresholds{SlowQueriesPerMinute: 50, SlowQueriesFor: "2m"}, AlertSlowQueries, "2m", "* 60 > 50"),
		Entry("BackupTooOld defaults to 26h", deployv1alpha1.AlertThresholds{}, AlertBackupTooOld, "", "> 93600"),
		Entry("BackupTooOld from the spec", deployv1alpha1.AlertThresholds{BackupMaxAgeHours: 170}, AlertBackupTooOld, "", "> 612000"),
	)

	It("scopes the app's alerts to the release's namespace and its colour pods", func() {
		rule := PrometheusRule(newRelease())
		for _, alert := range []string{AlertAPIDown, AlertHighErrorRate, AlertHighMemoryUsage} {
			Expect(findRule(rule, alert).Expr.StrVal).To(
				ContainSubstring(`namespace="prod", pod=~"shop-(blue|green)-[a-z0-9]+-[a-z0-9]+"`), alert)
		}
		for _, alert := range []string{AlertDatabaseDown, AlertSlowQueries} {
			Expect(findRule(rule, alert).Expr.StrVal).To(ContainSubstring(`namespace="prod"`), alert)
		}
		for _, alert := range []string{AlertBackupTooOld, AlertReleaseFailed, AlertServingDegraded} {
			Expect(findRule(rule, alert).Expr.StrVal).To(
				ContainSubstring(`release_namespace="prod", release="shop"`), alert)
		}
	})

	It("gives every alert a severity, the release, a summary, a description and its runbook section", func() {
		for _, group := range PrometheusRule(newRelease()).Spec.Groups {
			Expect(group.Interval).NotTo(BeNil())
			Expect(string(*group.Interval)).To(Equal("30s"), "the runbook's evaluation interval")
			for _, r := range group.Rules {
				Expect(r.Labels).To(HaveKey("severity"), r.Alert)
				Expect(r.Labels).To(HaveKeyWithValue("release", "shop"), r.Alert)
				Expect(r.Annotations).To(HaveKey("summary"), r.Alert)
				Expect(r.Annotations).To(HaveKey("description"), r.Alert)
				Expect(r.Annotations).To(HaveKeyWithValue("runbook_url",
					"https://example.com/docs/monitoring.md#"+strings.ToLower(r.Alert)), r.Alert)
			}
		}
	})

	DescribeTable("links the runbook",
		func(url, want string) {
			rule := findRule(PrometheusRule(newRelease(func(r *deployv1alpha1.SoftFactoryRelease) {
				r.Spec.Monitoring.PrometheusRule.RunbookURL = url
			})), AlertAPIDown)
			if want == "" {
				Expect(rule.Annotations).NotTo(HaveKey("runbook_url"))
				return
			}
			Expect(rule.Annotations).To(HaveKeyWithValue("runbook_url", want))
		},
		Entry("at the alert's own section", "https://wiki.example.com/runbook", "https://wiki.example.com/runbook#apidown"),
		Entry("at the user's section when the URL names one", "https://wiki.example.com/runbook#api", "https://wiki.example.com/runbook#api"),
		Entry("not at all when the user cleared it", "", ""),
	)

	It("reflects a threshold change in the rule, so the reconciler's update carries it", func() {
		before := PrometheusRule(newRelease())
		after := PrometheusRule(newRelease(func(r *deployv1alpha1.SoftFactoryRelease) {
			r.Spec.Monitoring.PrometheusRule.Thresholds.ErrorRatePercent = 1
		}))
		Expect(after.Spec).NotTo(Equal(before.Spec))
		Expect(PrometheusRule(newRelease()).Spec).To(Equal(before.Spec), "same spec, same rule: no update")
	})
})
