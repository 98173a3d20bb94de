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

// Package monitoring builds the PrometheusRule that carries the runbook's alerts for one
// release ("Alert Rules" in the runbook), and tells whether the PrometheusRule CRD is
// served so the reconciler can skip it where prometheus-operator is not installed.
//
// The runbook's rules select a single docker-compose container (job="softfactory-api",
// name="softfactory-api"). On Kubernetes the same facts arrive as kube-prometheus style
// series, and the rules here select them by the release's namespace and pod names:
//
//   - the app's own series (up, http_requests_total) scraped through a ServiceMonitor or
//     PodMonitor carry namespace and pod target labels;
//   - cAdvisor series (container_memory_working_set_bytes,
//     container_spec_memory_limit_bytes) carry namespace, pod and container;
//   - database series (pg_up from postgres_exporter, pg_slow_queries_total) are selected
//     by namespace only, because the database is not a pod the release owns;
//   - the operator's own series (internal/metrics) carry release_namespace and release.
//
// Pods are matched by `<release>-(blue|green)-<hash>-<suffix>`, the names the two colour
// Deployments give their pods; the character classes exclude '-', so release "shop"
// never matches the pods of a release called "shop-blue".
package monitoring

import (
	"fmt"
	"maps"
	"strconv"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
	"github.com/softfactory/release-operator/internal/metrics"
)

// Alert names: the runbook's five, then the three the operator adds.
const (
	AlertAPIDown         = "APIDown"
	AlertHighErrorRate   = "HighErrorRate"
	AlertHighMemoryUsage = "HighMemoryUsage"
	AlertDatabaseDown    = "DatabaseDown"
	AlertSlowQueries     = "SlowQueries"
	AlertBackupTooOld    = "BackupTooOld"
	AlertReleaseFailed   = "ReleaseFailed"
	// AlertServingDegraded fires while the serving colour of a release in flight has lost
	// ready pods or endpoints (the release's ServingDegraded condition).
	AlertServingDegraded = "SoftFactoryServingDegraded"
)

// Severities, the value of each alert's severity label.
const (
	SeverityCritical = "critical"
	SeverityWarning  = "warning"
)

// The runbook's thresholds, used where the spec leaves one unset (objects built in code
// or stored before the CRD defaults existed).
const (
	DefaultAPIDownFor           = "2m"
	DefaultErrorRatePercent     = 5
	DefaultErrorRateFor         = "5m"
	DefaultMemoryPercent        = 90
	DefaultMemoryFor            = "5m"
	DefaultDatabaseDownFor      = "1m"
	DefaultSlowQueriesPerMinute = 10
	DefaultSlowQueriesFor       = "10m"
	DefaultBackupMaxAgeHours    = 26
)

// apiContainer is the name of the API container in the colour Deployments' pods; CEL
// keeps sidecars from taking it.
const apiContainer = "api"

// evaluationInterval is the runbook's group interval.
const evaluationInterval = "30s"

// releaseFailedWindow is how long ReleaseFailed keeps firing after a failed or rolled
// back release: long enough for a notification, short enough to clear by itself once
// someone has re-applied a fixed release.
const releaseFailedWindow = "1h"

// ruleLabelKey is the label every alert carries with the release's name, for routing
// and silencing one release.
const ruleLabelKey = "release"

// PrometheusRule returns the desired PrometheusRule of a release. It is pure: the caller
// sets the owner reference and creates or updates it.
//
// Object labels are the user's spec.monitoring.prometheusRule.labels (what a Prometheus
// ruleSelector matches, for example release: prometheus) plus the operator's
// app.kubernetes.io labels, which win on conflict as they do on every child.
func PrometheusRule(r *deployv1alpha1.SoftFactoryRelease) *monitoringv1.PrometheusRule {
	labels := map[string]string{}
	maps.Copy(labels, r.Spec.Monitoring.PrometheusRule.Labels)
	labels[deployv1alpha1.LabelName] = deployv1alpha1.AppName
	labels[deployv1alpha1.LabelInstance] = r.Name
	labels[deployv1alpha1.LabelComponent] = deployv1alpha1.ComponentAlerts
	labels[deployv1alpha1.LabelManagedBy] = deployv1alpha1.ManagedBy

	return &monitoringv1.PrometheusRule{
		TypeMeta: metav1.TypeMeta{
			APIVersion: monitoringv1.SchemeGroupVersion.String(),
			Kind:       monitoringv1.PrometheusRuleKind,
		},
		ObjectMeta: metav1.ObjectMeta{
			Name:      r.PrometheusRuleName(),
			Namespace: r.Namespace,
			Labels:    labels,
		},
		Spec: monitoringv1.PrometheusRuleSpec{Groups: RuleGroups(r)},
	}
}

// RuleGroups returns the rule groups of a release, the PrometheusRule's spec.groups.
// The API alerts are always there; DatabaseDown and SlowQueries only when the release
// declares a database, BackupTooOld only when it takes backups.
func RuleGroups(r *deployv1alpha1.SoftFactoryRelease) []monitoringv1.RuleGroup {
	t := thresholdsWithDefaults(r.Spec.Monitoring.PrometheusRule.Thresholds)
	b := ruleBuilder{
		namespace:  r.Namespace,
		release:    r.Name,
		runbookURL: r.Spec.Monitoring.PrometheusRule.RunbookURL,
	}

	rules := []monitoringv1.Rule{
		b.apiDown(t.APIDownFor),
		b.highErrorRate(t.ErrorRatePercent, t.ErrorRateFor),
		b.highMemoryUsage(t.MemoryPercent, t.MemoryFor),
	}
	if r.Spec.Database != nil {
		rules = append(rules,
			b.databaseDown(t.DatabaseDownFor),
			b.slowQueries(t.SlowQueriesPerMinute, t.SlowQueriesFor))
	}
	if r.Spec.Backup != nil {
		rules = append(rules, b.backupTooOld(t.BackupMaxAgeHours))
	}
	rules = append(rules, b.releaseFailed(), b.servingDegraded())

	interval := monitoringv1.Duration(evaluationInterval)
	return []monitoringv1.RuleGroup{{
		Name:     "softfactory-release." + r.Namespace + "." + r.Name,
		Interval: &interval,
		Rules:    rules,
	}}
}

// thresholdsWithDefaults fills unset thresholds with the runbook's values.
func thresholdsWithDefaults(t deployv1alpha1.AlertThresholds) deployv1alpha1.AlertThresholds {
	orDuration := func(d deployv1alpha1.PrometheusDuration, def string) deployv1alpha1.PrometheusDuration {
		if d == "" {
			return deployv1alpha1.PrometheusDuration(def)
		}
		return d
	}
	orNumber := func(n, def int32) int32 {
		if n <= 0 {
			return def
		}
		return n
	}
	t.APIDownFor = orDuration(t.APIDownFor, DefaultAPIDownFor)
	t.ErrorRatePercent = orNumber(t.ErrorRatePercent, DefaultErrorRatePercent)
	t.ErrorRateFor = orDuration(t.ErrorRateFor, DefaultErrorRateFor)
	t.MemoryPercent = orNumber(t.MemoryPercent, DefaultMemoryPercent)
	t.MemoryFor = orDuration(t.MemoryFor, DefaultMemoryFor)
	t.DatabaseDownFor = orDuration(t.DatabaseDownFor, DefaultDatabaseDownFor)
	t.SlowQueriesPerMinute = orNumber(t.SlowQueriesPerMinute, DefaultSlowQueriesPerMinute)
	t.SlowQueriesFor = orDuration(t.SlowQueriesFor, DefaultSlowQueriesFor)
	t.BackupMaxAgeHours = orNumber(t.BackupMaxAgeHours, DefaultBackupMaxAgeHours)
	return t
}

// ruleBuilder holds what every rule of one release shares.
type ruleBuilder struct {
	namespace, release, runbookURL string
}

// podSelector matches the release's API pods of both colours in its namespace.
func (b ruleBuilder) podSelector() string {
	return fmt.Sprintf(`namespace=%q, pod=~"%s-(blue|green)-[a-z0-9]+-[a-z0-9]+"`, b.namespace, b.release)
}

// byColor adds a color label taken from the pod name, so an alert says which colour is
// affected: the preview colour's test traffic must not hide, or be hidden by, the
// active colour's.
func (b ruleBuilder) byColor(expr string) string {
	return fmt.Sprintf(`label_replace(%s, "color", "$1", "pod", "%s-(blue|green)-.*")`, expr, b.release)
}

// operatorSelector matches the operator's own series of this release.
func (b ruleBuilder) operatorSelector() string {
	return fmt.Sprintf(`%s=%q, %s=%q`, metrics.LabelReleaseNamespace, b.namespace, metrics.LabelRelease, b.release)
}

func (b ruleBuilder) rule(alert, expr string, forDuration deployv1alpha1.PrometheusDuration, severity, summary, description string) monitoringv1.Rule {
	rule := monitoringv1.Rule{
		Alert: alert,
		Expr:  intstr.FromString(expr),
		Labels: map[string]string{
			"severity":   severity,
			ruleLabelKey: b.release,
		},
		Annotations: map[string]string{
			"summary":     summary,
			"description": description,
		},
	}
	if forDuration != "" && forDuration != "0" {
		d := monitoringv1.Duration(forDuration)
		rule.For = &d
	}
	if url := runbookLink(b.runbookURL, alert); url != "" {
		rule.Annotations["runbook_url"] = url
	}
	return rule
}

// runbookLink points at the alert's own section (docs/monitoring.md has one heading per
// alert) unless the user's URL already names a section.
func runbookLink(base, alert string) string {
	if base == "" || strings.Contains(base, "#") {
		return base
	}
	return base + "#" + strings.ToLower(alert)
}

// apiDown fires when no pod of a colour answers its scrape: that colour's API is down.
// One pod down out of several is the Deployment's business (and kube-prometheus'
// KubePodCrashLooping), not an outage.
func (b ruleBuilder) apiDown(forDuration deployv1alpha1.PrometheusDuration) monitoringv1.Rule {
	expr := fmt.Sprintf(`max by (namespace, color) (%s) == 0`, b.byColor(fmt.Sprintf(`up{%s}`, b.podSelector())))
	return b.rule(AlertAPIDown, expr, forDuration, SeverityCritical,
		"API Server Down",
		fmt.Sprintf("No {{ $labels.color }} API pod of release {{ $labels.namespace }}/%s has answered its scrape for %s.", b.release, forDuration))
}

// highErrorRate compares 5xx responses with all responses per colour, summed over pods.
// The runbook's expression divides series by series, which matches each 5xx series with
// itself and reads 100% as soon as any 5xx exists; summing first gives the real share.
func (b ruleBuilder) highErrorRate(percent int32, forDuration deployv1alpha1.PrometheusDuration) monitoringv1.Rule {
	errors := b.byColor(fmt.Sprintf(`rate(http_requests_total{%s, status=~"5.."}[5m])`, b.podSelector()))
	all := b.byColor(fmt.Sprintf(`rate(http_requests_total{%s}[5m])`, b.podSelector()))
	expr := fmt.Sprintf("sum by (namespace, color) (%s)\n/\nsum by (namespace, color) (%s)\n> %s", errors, all, ratio(percent))
	return b.rule(AlertHighErrorRate, expr, forDuration, SeverityCritical,
		fmt.Sprintf("High Error Rate (%d%%+)", percent),
		fmt.Sprintf("{{ $value | humanizePercentage }} of the {{ $labels.color }} API's responses in release {{ $labels.namespace }}/%s are 5xx, above the %d%% threshold.", b.release, percent))
}

// highMemoryUsage compares each API container's working set (what the OOM killer
// judges) with its own limit; containers without a limit report 0 and are left out.
func (b ruleBuilder) highMemoryUsage(percent int32, forDuration deployv1alpha1.PrometheusDuration) monitoringv1.Rule {
	sel := fmt.Sprintf(`%s, container=%q`, b.podSelector(), apiContainer)
	expr := fmt.Sprintf("max by (namespace, pod, container) (container_memory_working_set_bytes{%s})\n/\nmax by (namespace, pod, container) (container_spec_memory_limit_bytes{%s} > 0)\n> %s",
		sel, sel, ratio(percent))
	return b.rule(AlertHighMemoryUsage, expr, forDuration, SeverityWarning,
		fmt.Sprintf("High Memory Usage (%d%%+)", percent),
		fmt.Sprintf("API pod {{ $labels.namespace }}/{{ $labels.pod }} uses {{ $value | humanizePercentage }} of its memory limit, above %d%%.", percent))
}

// databaseDown fires when postgres_exporter in the release's namespace cannot reach
// PostgreSQL (pg_up is 0).
func (b ruleBuilder) databaseDown(forDuration deployv1alpha1.PrometheusDuration) monitoringv1.Rule {
	expr := fmt.Sprintf(`pg_up{namespace=%q} == 0`, b.namespace)
	return b.rule(AlertDatabaseDown, expr, forDuration, SeverityCritical,
		"Database Offline",
		fmt.Sprintf("PostgreSQL of release {{ $labels.namespace }}/%s is not responding (pg_up is 0 on {{ $labels.instance }}).", b.release))
}

// slowQueries turns the per-second rate into the per-minute figure the spec and the
// runbook's description use (the runbook compares the per-second rate with 10).
func (b ruleBuilder) slowQueries(perMinute int32, forDuration deployv1alpha1.PrometheusDuration) monitoringv1.Rule {
	expr := fmt.Sprintf(`sum by (namespace) (rate(pg_slow_queries_total{namespace=%q}[5m])) * 60 > %d`, b.namespace, perMinute)
	return b.rule(AlertSlowQueries, expr, forDuration, SeverityWarning,
		"High Slow Query Rate",
		fmt.Sprintf("{{ $value | humanize }} slow queries per minute in {{ $labels.namespace }}, more than %d.", perMinute))
}

// backupTooOld reads the operator's last-backup gauge. max by drops the operator pod's
// own labels, so a second replica or a restart does not split the alert.
func (b ruleBuilder) backupTooOld(maxAgeHours int32) monitoringv1.Rule {
	expr := fmt.Sprintf(`time() - max by (%s, %s) (%s{%s}) > %d`,
		metrics.LabelReleaseNamespace, metrics.LabelRelease, metrics.LastBackupTimestampName, b.operatorSelector(), int64(maxAgeHours)*3600)
	rule := b.rule(AlertBackupTooOld, expr, "", SeverityWarning,
		"Backup Too Old",
		fmt.Sprintf("The last verified backup of release %s/%s finished {{ $value | humanizeDuration }} ago, more than %dh.", b.namespace, b.release, maxAgeHours))
	rule.Labels["namespace"] = b.namespace
	return rule
}

// releaseFailed fires for releaseFailedWindow after a release ends Failed or
// RolledBack. The counter series of a reason is created by its first increment, at 1,
// so increase() alone never sees that first failure; the second operand catches a
// series that exists now but did not exist a window ago.
func (b ruleBuilder) releaseFailed() monitoringv1.Rule {
	sel := fmt.Sprintf(`%s{%s, %s=~"%s|%s"}`, metrics.OutcomesName, b.operatorSelector(), metrics.LabelOutcome,
		deployv1alpha1.OutcomeFailed, deployv1alpha1.OutcomeRolledBack)
	by := strings.Join([]string{metrics.LabelReleaseNamespace, metrics.LabelRelease, metrics.LabelOutcome, metrics.LabelReason}, ", ")
	expr := fmt.Sprintf("sum by (%s) (increase(%s[%s])) > 0\nor\nmax by (%s) (%s unless %s offset %s)",
		by, sel, releaseFailedWindow, by, sel, sel, releaseFailedWindow)
	rule := b.rule(AlertReleaseFailed, expr, "", SeverityWarning,
		"Release Failed",
		fmt.Sprintf("A release of %s/%s ended {{ $labels.outcome }} ({{ $labels.reason }}) within the last %s; the previous colour keeps serving. See kubectl describe sfrelease %s -n %s.",
			b.namespace, b.release, releaseFailedWindow, b.release, b.namespace))
	rule.Labels["namespace"] = b.namespace
	return rule
}

// servingDegraded fires while the operator's serving-degraded gauge is 1: the colour
// still taking all the traffic lost ready pods or endpoints while a new revision was on
// its way (often a migration it cannot live with). No for: the operator has judged it
// already, and under onServingDegraded: Stop the release has stopped on it. max by drops
// the operator pod's own labels.
func (b ruleBuilder) servingDegraded() monitoringv1.Rule {
	expr := fmt.Sprintf(`max by (%s, %s) (%s{%s}) == 1`,
		metrics.LabelReleaseNamespace, metrics.LabelRelease, metrics.ServingDegradedName, b.operatorSelector())
	rule := b.rule(AlertServingDegraded, expr, "", SeverityCritical,
		"Serving Colour Degraded During A Release",
		fmt.Sprintf("The colour serving %s/%s lost ready pods or endpoints while a new revision was on its way (a migration it cannot live with?). "+
			"See the ServingDegraded condition: kubectl describe sfrelease %s -n %s.", b.namespace, b.release, b.release, b.namespace))
	rule.Labels["namespace"] = b.namespace
	return rule
}

// ratio turns a percentage into the fraction PromQL compares with, without float noise.
func ratio(percent int32) string {
	return strconv.FormatFloat(float64(percent)/100, 'f', -1, 64)
}
