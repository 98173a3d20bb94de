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
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/yaml"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
	"github.com/softfactory/release-operator/internal/metrics"
)

// These tests hand the generated rules to Prometheus' own promtool: `check rules` parses
// every expression, and `test rules` evaluates the alerts over synthetic series, so each
// alert is shown to fire above its threshold and to stay silent below it.

// The promtool unit-test file format (prometheus.io/docs/prometheus/latest/configuration/unit_testing_rules).
type promtoolFile struct {
	RuleFiles          []string       `json:"rule_files"`
	EvaluationInterval string         `json:"evaluation_interval"`
	Tests              []promtoolTest `json:"tests"`
}

type promtoolTest struct {
	Interval       string          `json:"interval"`
	InputSeries    []inputSeries   `json:"input_series"`
	AlertRuleTests []alertRuleTest `json:"alert_rule_test"`
}

type inputSeries struct {
	Series string `json:"series"`
	Values string `json:"values"`
}

type alertRuleTest struct {
	EvalTime  string     `json:"eval_time"`
	Alertname string     `json:"alertname"`
	ExpAlerts []expAlert `json:"exp_alerts"`
}

type expAlert struct {
	ExpLabels      map[string]string `json:"exp_labels"`
	ExpAnnotations map[string]string `json:"exp_annotations"`
}

// Pod names as the colour Deployments make them: <deployment>-<template hash>-<suffix>.
const (
	bluePod1 = "shop-blue-7d9f8c6b5-x2k4p"
	bluePod2 = "shop-blue-7d9f8c6b5-q8w3z"
	greenPod = "shop-green-5c6d7f8b9-m4n5p"
)

// writeRules renders the PrometheusRule's groups as a Prometheus rules file, the way
// prometheus-operator hands them to Prometheus, and returns its path.
func writeRules(dir string, r *deployv1alpha1.SoftFactoryRelease) string {
	data, err := yaml.Marshal(PrometheusRule(r).Spec)
	Expect(err).NotTo(HaveOccurred())
	path := filepath.Join(dir, "rules.yaml")
	Expect(os.WriteFile(path, data, 0o600)).To(Succeed())
	return path
}

func runPromtool(args ...string) (string, error) {
	out, err := exec.Command(promtoolPath, args...).CombinedOutput()
	return string(out), err
}

// silent expects no firing alert.
func silent(alert, at string) alertRuleTest {
	return alertRuleTest{EvalTime: at, Alertname: alert, ExpAlerts: []expAlert{}}
}

// firing expects exactly the given alerts.
func firing(alert, at string, alerts ...expAlert) alertRuleTest {
	return alertRuleTest{EvalTime: at, Alertname: alert, ExpAlerts: alerts}
}

// expect builds an expected alert: the rule's labels plus the series', and the
// annotations with the runbook link of newRelease.
func expect(alert string, labels map[string]string, summary, description string) expAlert {
	return expAlert{
		ExpLabels: labels,
		ExpAnnotations: map[string]string{
			"summary":     summary,
			"description": description,
			"runbook_url": "https://example.com/docs/monitoring.md#" + strings.ToLower(alert),
		},
	}
}

func series(s, values string) inputSeries { return inputSeries{Series: s, Values: values} }

func up(pod, values string) inputSeries {
	return series(`up{job="shop", namespace="prod", pod="`+pod+`"}`, values)
}

func requests(pod, status, values string) inputSeries {
	return series(`http_requests_total{job="shop", namespace="prod", pod="`+pod+`", status="`+status+`"}`, values)
}

func memory(pod, container, usage, limit string) []inputSeries {
	labels := `{namespace="prod", pod="` + pod + `", container="` + container + `", id="/kubepods/` + pod + `"}`
	return []inputSeries{
		series("container_memory_working_set_bytes"+labels, usage),
		series("container_spec_memory_limit_bytes"+labels, limit),
	}
}

func outcome(outcome, reason, values string) inputSeries {
	return series(metrics.OutcomesName+`{namespace="operators", pod="operator-1", release_namespace="prod", release="shop", outcome="`+
		outcome+`", reason="`+reason+`"}`, values)
}

func lastBackup(values string) inputSeries {
	return series(metrics.LastBackupTimestampName+`{namespace="operators", pod="operator-1", release_namespace="prod", release="shop"}`, values)
}

func servingDegraded(values string) inputSeries {
	return series(metrics.ServingDegradedName+`{namespace="operators", pod="operator-1", release_namespace="prod", release="shop"}`, values)
}

func flatten(groups ...[]inputSeries) []inputSeries {
	var out []inputSeries
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

var _ = Describe("The generated rules, checked by promtool", func() {
	It("pass promtool check rules, for the defaults and for custom thresholds", func() {
		for _, r := range []*deployv1alpha1.SoftFactoryRelease{
			newRelease(),
			newRelease(func(r *deployv1alpha1.SoftFactoryRelease) {
				r.Spec.Monitoring.PrometheusRule.Thresholds = deployv1alpha1.AlertThresholds{
					APIDownFor: "1h30m", ErrorRatePercent: 1, ErrorRateFor: "0", MemoryPercent: 100,
					MemoryFor: "1d", DatabaseDownFor: "90s", SlowQueriesPerMinute: 100000, SlowQueriesFor: "1w",
					BackupMaxAgeHours: 8760,
				}
			}),
		} {
			out, err := runPromtool("check", "rules", writeRules(GinkgoT().TempDir(), r))
			Expect(err).NotTo(HaveOccurred(), "promtool check rules:\n%s", out)
			Expect(out).To(ContainSubstring("SUCCESS: 8 rules found"))
		}
	})

	DescribeTable("promtool test rules",
		func(mutate func(*deployv1alpha1.SoftFactoryRelease), test promtoolTest) {
			dir := GinkgoT().TempDir()
			writeRules(dir, newRelease(mutate))
			data, err := yaml.Marshal(promtoolFile{
				RuleFiles:          []string{"rules.yaml"},
				EvaluationInterval: "30s",
				Tests:              []promtoolTest{test},
			})
			Expect(err).NotTo(HaveOccurred())
			testFile := filepath.Join(dir, "test.yaml")
			Expect(os.WriteFile(testFile, data, 0o600)).To(Succeed())

			out, err := runPromtool("test", "rules", testFile)
			Expect(err).NotTo(HaveOccurred(), "promtool test rules:\n%s\n--- test file:\n%s", out, data)
			Expect(out).To(ContainSubstring("SUCCESS"))
		},

		// APIDown
		Entry("APIDown fires when every pod of a colour stops answering for 2m", defaults, promtoolTest{
			Interval: "1m",
			InputSeries: []inputSeries{
				up(bluePod1, "0x6"), up(bluePod2, "0x6"), up(greenPod, "1x6"),
			},
			AlertRuleTests: []alertRuleTest{
				silent(AlertAPIDown, "1m"), // still pending: the runbook's 2m has not passed
				firing(AlertAPIDown, "3m", expect(AlertAPIDown,
					map[string]string{"namespace": "prod", "color": "blue", "release": "shop", "severity": "critical"},
					"API Server Down", "No blue API pod of release prod/shop has answered its scrape for 2m.")),
			},
		}),
		Entry("APIDown stays silent while one pod of the colour still answers", defaults, promtoolTest{
			Interval:       "1m",
			InputSeries:    []inputSeries{up(bluePod1, "0x6"), up(bluePod2, "1x6")},
			AlertRuleTests: []alertRuleTest{silent(AlertAPIDown, "5m")},
		}),
		Entry("APIDown ignores another namespace and a release whose name starts the same", defaults, promtoolTest{
			Interval: "1m",
			InputSeries: []inputSeries{
				series(`up{namespace="staging", pod="`+bluePod1+`"}`, "0x6"),
				series(`up{namespace="prod", pod="shop-blue-blue-7d9f8c6b5-x2k4p"}`, "0x6"),
				series(`up{namespace="prod", pod="shopfront-blue-7d9f8c6b5-x2k4p"}`, "0x6"),
			},
			AlertRuleTests: []alertRuleTest{silent(AlertAPIDown, "5m")},
		}),
		Entry("APIDown waits for the spec's apiDownFor", thresholds(deployv1alpha1.AlertThresholds{APIDownFor: "5m"}), promtoolTest{
			Interval:    "1m",
			InputSeries: []inputSeries{up(bluePod1, "0x8")},
			AlertRuleTests: []alertRuleTest{
				silent(AlertAPIDown, "3m"),
				firing(AlertAPIDown, "6m", expect(AlertAPIDown,
					map[string]string{"namespace": "prod", "color": "blue", "release": "shop", "severity": "critical"},
					"API Server Down", "No blue API pod of release prod/shop has answered its scrape for 5m.")),
			},
		}),

		// HighErrorRate
		Entry("HighErrorRate fires when 10% of a colour's responses are 5xx for 5m", defaults, promtoolTest{
			Interval: "1m",
			InputSeries: []inputSeries{
				// Two blue pods: 108 of 1080 requests a minute fail, summed over both.
				requests(bluePod1, "200", "0+500x20"), requests(bluePod1, "500", "0+100x20"),
				requests(bluePod2, "200", "0+472x20"), requests(bluePod2, "503", "0+8x20"),
				requests(greenPod, "200", "0+60x20"),
			},
			AlertRuleTests: []alertRuleTest{
				silent(AlertHighErrorRate, "4m"),
				firing(AlertHighErrorRate, "12m", expect(AlertHighErrorRate,
					map[string]string{"namespace": "prod", "color": "blue", "release": "shop", "severity": "critical"},
					"High Error Rate (5%+)", "10% of the blue API's responses in release prod/shop are 5xx, above the 5% threshold.")),
			},
		}),
		Entry("HighErrorRate stays silent at 4% errors", defaults, promtoolTest{
			Interval: "1m",
			InputSeries: []inputSeries{
				requests(bluePod1, "200", "0+96x20"), requests(bluePod1, "500", "0+4x20"),
			},
			AlertRuleTests: []alertRuleTest{silent(AlertHighErrorRate, "12m")},
		}),
		Entry("HighErrorRate judges the preview colour on its own, not diluted by the active one", defaults, promtoolTest{
			Interval: "1m",
			InputSeries: []inputSeries{
				requests(bluePod1, "200", "0+10000x20"),
				requests(greenPod, "200", "0+5x20"), requests(greenPod, "500", "0+5x20"),
			},
			AlertRuleTests: []alertRuleTest{
				firing(AlertHighErrorRate, "12m", expect(AlertHighErrorRate,
					map[string]string{"namespace": "prod", "color": "green", "release": "shop", "severity": "critical"},
					"High Error Rate (5%+)", "50% of the green API's responses in release prod/shop are 5xx, above the 5% threshold.")),
			},
		}),
		Entry("HighErrorRate uses the spec's percentage", thresholds(deployv1alpha1.AlertThresholds{ErrorRatePercent: 20}), promtoolTest{
			Interval: "1m",
			InputSeries: []inputSeries{
				requests(bluePod1, "200", "0+90x20"), requests(bluePod1, "500", "0+10x20"),
			},
			AlertRuleTests: []alertRuleTest{silent(AlertHighErrorRate, "12m")},
		}),

		// HighMemoryUsage
		Entry("HighMemoryUsage fires when the API container uses 95% of its limit for 5m", defaults, promtoolTest{
			Interval:    "1m",
			InputSeries: memory(bluePod1, "api", "486539264x8", "512000000x8"),
			AlertRuleTests: []alertRuleTest{
				firing(AlertHighMemoryUsage, "6m", expect(AlertHighMemoryUsage,
					map[string]string{"namespace": "prod", "pod": bluePod1, "container": "api", "release": "shop", "severity": "warning"},
					"High Memory Usage (90%+)", "API pod prod/"+bluePod1+" uses 95.03% of its memory limit, above 90%.")),
			},
		}),
		Entry("HighMemoryUsage stays silent at 85%, for sidecars and without a limit", defaults, promtoolTest{
			Interval: "1m",
			InputSeries: flatten(
				memory(bluePod1, "api", "85x8", "100x8"),
				memory(bluePod2, "nginx", "99x8", "100x8"),
				memory(greenPod, "api", "99x8", "0x8"),
			),
			AlertRuleTests: []alertRuleTest{silent(AlertHighMemoryUsage, "6m")},
		}),

		// DatabaseDown
		Entry("DatabaseDown fires when PostgreSQL is unreachable for 1m", defaults, promtoolTest{
			Interval: "30s",
			InputSeries: []inputSeries{
				series(`pg_up{namespace="prod", instance="postgres-exporter:9187"}`, "0x6"),
			},
			AlertRuleTests: []alertRuleTest{
				silent(AlertDatabaseDown, "30s"),
				firing(AlertDatabaseDown, "2m", expect(AlertDatabaseDown,
					map[string]string{"namespace": "prod", "instance": "postgres-exporter:9187", "release": "shop", "severity": "critical"},
					"Database Offline", "PostgreSQL of release prod/shop is not responding (pg_up is 0 on postgres-exporter:9187).")),
			},
		}),
		Entry("DatabaseDown stays silent while PostgreSQL is up, and for other namespaces", defaults, promtoolTest{
			Interval: "30s",
			InputSeries: []inputSeries{
				series(`pg_up{namespace="prod", instance="postgres-exporter:9187"}`, "1x6"),
				series(`pg_up{namespace="staging", instance="postgres-exporter:9187"}`, "0x6"),
			},
			AlertRuleTests: []alertRuleTest{silent(AlertDatabaseDown, "3m")},
		}),

		// SlowQueries
		Entry("SlowQueries fires at 20 slow queries a minute for 10m", defaults, promtoolTest{
			Interval: "1m",
			InputSeries: []inputSeries{
				series(`pg_slow_queries_total{namespace="prod", instance="postgres-exporter:9187"}`, "0+20x30"),
			},
			AlertRuleTests: []alertRuleTest{
				silent(AlertSlowQueries, "8m"),
				firing(AlertSlowQueries, "20m", expect(AlertSlowQueries,
					map[string]string{"namespace": "prod", "release": "shop", "severity": "warning"},
					"High Slow Query Rate", "20 slow queries per minute in prod, more than 10.")),
			},
		}),
		Entry("SlowQueries stays silent at 5 a minute, which the runbook's per-second rule would not", defaults, promtoolTest{
			Interval: "1m",
			InputSeries: []inputSeries{
				series(`pg_slow_queries_total{namespace="prod", instance="postgres-exporter:9187"}`, "0+5x30"),
			},
			AlertRuleTests: []alertRuleTest{silent(AlertSlowQueries, "20m")},
		}),

		// BackupTooOld
		Entry("BackupTooOld fires once the last backup is older than 26h", defaults, promtoolTest{
			Interval:    "1h",
			InputSeries: []inputSeries{lastBackup("0x30")},
			AlertRuleTests: []alertRuleTest{
				silent(AlertBackupTooOld, "25h"),
				firing(AlertBackupTooOld, "27h", expect(AlertBackupTooOld,
					map[string]string{"namespace": "prod", "release_namespace": "prod", "release": "shop", "severity": "warning"},
					"Backup Too Old", "The last verified backup of release prod/shop finished 1d 3h 0m 0s ago, more than 26h.")),
			},
		}),
		Entry("BackupTooOld stays silent while backups keep coming", defaults, promtoolTest{
			Interval:       "1h",
			InputSeries:    []inputSeries{lastBackup("0+3600x30")},
			AlertRuleTests: []alertRuleTest{silent(AlertBackupTooOld, "27h")},
		}),
		Entry("BackupTooOld uses the spec's maximum age", thresholds(deployv1alpha1.AlertThresholds{BackupMaxAgeHours: 48}), promtoolTest{
			Interval:       "1h",
			InputSeries:    []inputSeries{lastBackup("0x30")},
			AlertRuleTests: []alertRuleTest{silent(AlertBackupTooOld, "27h")},
		}),

		// ReleaseFailed
		Entry("ReleaseFailed fires on the first failure of a reason and clears an hour later", defaults, promtoolTest{
			Interval: "1m",
			// The series appears at 10m, at 1: the counter's first increment.
			InputSeries: []inputSeries{outcome("Failed", "MigrationFailed", "_x10 1x100")},
			AlertRuleTests: []alertRuleTest{
				silent(AlertReleaseFailed, "5m"),
				firing(AlertReleaseFailed, "15m", expect(AlertReleaseFailed,
					map[string]string{"namespace": "prod", "release_namespace": "prod", "release": "shop", "outcome": "Failed",
						"reason": "MigrationFailed", "severity": "warning"},
					"Release Failed", "A release of prod/shop ended Failed (MigrationFailed) within the last 1h; the previous colour keeps serving. See kubectl describe sfrelease shop -n prod.")),
				silent(AlertReleaseFailed, "80m"),
			},
		}),
		Entry("ReleaseFailed fires again on a later rollback", defaults, promtoolTest{
			Interval:    "1m",
			InputSeries: []inputSeries{outcome("RolledBack", "AnalysisFailed", "1x100 2x60")},
			AlertRuleTests: []alertRuleTest{
				silent(AlertReleaseFailed, "90m"),
				firing(AlertReleaseFailed, "105m", expect(AlertReleaseFailed,
					map[string]string{"namespace": "prod", "release_namespace": "prod", "release": "shop", "outcome": "RolledBack",
						"reason": "AnalysisFailed", "severity": "warning"},
					"Release Failed", "A release of prod/shop ended RolledBack (AnalysisFailed) within the last 1h; the previous colour keeps serving. See kubectl describe sfrelease shop -n prod.")),
			},
		}),
		Entry("ReleaseFailed stays silent for promoted, aborted and superseded releases", defaults, promtoolTest{
			Interval: "1m",
			InputSeries: []inputSeries{
				outcome("Promoted", "Promoted", "_x10 1x10 2x10"),
				outcome("Aborted", "AbortRequested", "_x10 1x20"),
				outcome("Superseded", "NewSpec", "_x10 1x20"),
			},
			AlertRuleTests: []alertRuleTest{silent(AlertReleaseFailed, "15m"), silent(AlertReleaseFailed, "25m")},
		}),

		// SoftFactoryServingDegraded
		Entry("SoftFactoryServingDegraded fires while the serving colour is degraded, and clears when it recovers", defaults, promtoolTest{
			Interval: "1m",
			// Healthy for 5m, degraded for 5m, then recovered; a second operator pod's
			// series (after a restart) does not split the alert.
			InputSeries: []inputSeries{
				servingDegraded("0x4 1x4 0x10"),
				series(metrics.ServingDegradedName+`{namespace="operators", pod="operator-2", release_namespace="prod", release="shop"}`, "_x6 1x2 0x10"),
			},
			AlertRuleTests: []alertRuleTest{
				silent(AlertServingDegraded, "3m"),
				firing(AlertServingDegraded, "7m", expect(AlertServingDegraded,
					map[string]string{"namespace": "prod", "release_namespace": "prod", "release": "shop", "severity": "critical"},
					"Serving Colour Degraded During A Release",
					"The colour serving prod/shop lost ready pods or endpoints while a new revision was on its way (a migration it cannot live with?). "+
						"See the ServingDegraded condition: kubectl describe sfrelease shop -n prod.")),
				silent(AlertServingDegraded, "12m"),
			},
		}),
		Entry("SoftFactoryServingDegraded ignores another release", defaults, promtoolTest{
			Interval:       "1m",
			InputSeries:    []inputSeries{series(metrics.ServingDegradedName+`{namespace="operators", pod="operator-1", release_namespace="prod", release="shop2"}`, "1x10")},
			AlertRuleTests: []alertRuleTest{silent(AlertServingDegraded, "5m")},
		}),
	)
})

// defaults leaves the release as newRelease makes it: the runbook's thresholds.
func defaults(*deployv1alpha1.SoftFactoryRelease) {}

func thresholds(t deployv1alpha1.AlertThresholds) func(*deployv1alpha1.SoftFactoryRelease) {
	return func(r *deployv1alpha1.SoftFactoryRelease) { r.Spec.Monitoring.PrometheusRule.Thresholds = t }
}
