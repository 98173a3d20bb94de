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
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/model"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/yaml"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
	"github.com/softfactory/release-operator/internal/metrics"
	"github.com/softfactory/release-operator/internal/monitoring/prometheustest"
)

// The promtool tests prove the expressions over synthetic series; this one proves the
// rules and the operator's metrics fit together: a real Prometheus loads the generated
// rules and scrapes the operator's real /metrics registry, and the operator-driven
// alerts fire when the reconciler's calls say so.
var _ = Describe("The generated rules in a real Prometheus scraping the operator", Ordered, func() {
	var api promv1.API

	BeforeAll(func() {
		operator := httptest.NewServer(promhttp.HandlerFor(ctrlmetrics.Registry, promhttp.HandlerOpts{}))
		DeferCleanup(operator.Close)
		DeferCleanup(func() {
			metrics.Forget("prod", "shop")
			metrics.Forget("prod", "other")
		})

		dir := GinkgoT().TempDir()
		rule := PrometheusRule(newRelease())
		// Evaluate every second rather than the runbook's 30s, so the test waits seconds;
		// the expressions are the generated ones, unchanged.
		fast := monitoringv1.Duration("1s")
		rule.Spec.Groups[0].Interval = &fast
		data, err := yaml.Marshal(rule.Spec)
		Expect(err).NotTo(HaveOccurred())
		rules := filepath.Join(dir, "rules.yaml")
		Expect(os.WriteFile(rules, data, 0o600)).To(Succeed())

		server, err := prometheustest.Start(prometheustest.Options{
			Dir:           dir,
			JobName:       "release-operator",
			ScrapeTargets: []string{operator.Listener.Addr().String()},
			RuleFiles:     []string{rules},
			Log:           GinkgoWriter,
		})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(server.Stop)

		client, err := promapi.NewClient(promapi.Config{Address: server.URL})
		Expect(err).NotTo(HaveOccurred())
		api = promv1.NewAPI(client)

		// The operator has been scraped before anything fails, so the outcome counter
		// appears mid-run at 1, the case increase() alone cannot see.
		Eventually(func() int { return len(query(api, `up{job="release-operator"} == 1`)) }).
			WithTimeout(60 * time.Second).WithPolling(250 * time.Millisecond).Should(Equal(1))
	})

	firing := func(alert string) func() []model.Metric {
		return func() []model.Metric {
			samples := query(api, `ALERTS{alertstate="firing", alertname="`+alert+`"}`)
			out := make([]model.Metric, 0, len(samples))
			for _, sample := range samples {
				out = append(out, sample.Metric)
			}
			return out
		}
	}

	It("fires ReleaseFailed when the reconciler records a failed release, with its reason", func() {
		metrics.RecordOutcome("prod", "other", deployv1alpha1.OutcomeFailed, "MigrationFailed") // another release
		metrics.RecordOutcome("prod", "shop", deployv1alpha1.OutcomePromoted, "Promoted")
		metrics.RecordOutcome("prod", "shop", deployv1alpha1.OutcomeFailed, "MigrationFailed")

		Eventually(firing(AlertReleaseFailed)).WithTimeout(30 * time.Second).WithPolling(250 * time.Millisecond).Should(ConsistOf(
			And(
				HaveKeyWithValue(model.LabelName("release"), model.LabelValue("shop")),
				HaveKeyWithValue(model.LabelName("namespace"), model.LabelValue("prod")),
				HaveKeyWithValue(model.LabelName("outcome"), model.LabelValue("Failed")),
				HaveKeyWithValue(model.LabelName("reason"), model.LabelValue("MigrationFailed")),
				HaveKeyWithValue(model.LabelName("severity"), model.LabelValue("warning")),
			),
		))
	})

	It("fires BackupTooOld when the last backup is older than 26h, and clears on a new one", func() {
		metrics.SetLastBackup("prod", "shop", time.Now().Add(-27*time.Hour))
		Eventually(firing(AlertBackupTooOld)).WithTimeout(30 * time.Second).WithPolling(250 * time.Millisecond).Should(ConsistOf(
			And(
				HaveKeyWithValue(model.LabelName("release"), model.LabelValue("shop")),
				HaveKeyWithValue(model.LabelName("namespace"), model.LabelValue("prod")),
			),
		))

		metrics.SetLastBackup("prod", "shop", time.Now())
		Eventually(firing(AlertBackupTooOld)).WithTimeout(30 * time.Second).WithPolling(250 * time.Millisecond).Should(BeEmpty())
	})
})

func query(api promv1.API, q string) model.Vector {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	value, _, err := api.Query(ctx, q, time.Now())
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	vector, ok := value.(model.Vector)
	ExpectWithOffset(1, ok).To(BeTrue(), "query %s returned a %s", q, value.Type())
	return vector
}
