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

package metrics

import (
	"bytes"
	"os/exec"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// The tests read series back from controller-runtime's registry, the one the manager
// serves on /metrics, rather than from the collectors: that also proves registration.
// Each test uses its own release name and forgets it afterwards, because the registry
// is process-wide.

// series returns the gathered series of one metric whose labels include want.
func series(name string, want map[string]string) []*dto.Metric {
	families, err := ctrlmetrics.Registry.Gather()
	Expect(err).NotTo(HaveOccurred())
	var out []*dto.Metric
	for _, family := range families {
		if family.GetName() != name {
			continue
		}
		for _, m := range family.GetMetric() {
			if hasLabels(m, want) {
				out = append(out, m)
			}
		}
	}
	return out
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	got := map[string]string{}
	for _, pair := range m.GetLabel() {
		got[pair.GetName()] = pair.GetValue()
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

func release(ns, name string, extra ...string) map[string]string {
	labels := map[string]string{LabelReleaseNamespace: ns, LabelRelease: name}
	for i := 0; i+1 < len(extra); i += 2 {
		labels[extra[i]] = extra[i+1]
	}
	return labels
}

// gauge returns the value of the single series of name matching labels.
func gauge(name string, labels map[string]string) float64 {
	found := series(name, labels)
	ExpectWithOffset(1, found).To(HaveLen(1), "series %s%v", name, labels)
	return found[0].GetGauge().GetValue()
}

var _ = Describe("Operator metrics", func() {
	const ns = "shop"

	forgetAfter := func(name string) {
		DeferCleanup(func() { Forget(ns, name) })
	}

	It("reports the current phase as the one series of the release, with value 1", func() {
		forgetAfter("phases")
		RecordPhase(ns, "phases", deployv1alpha1.PhaseMigrating)
		RecordPhase(ns, "phases", deployv1alpha1.PhaseVerifying)

		Expect(series(PhaseName, release(ns, "phases"))).To(HaveLen(1), "one series per release, not one per phase")
		Expect(gauge(PhaseName, release(ns, "phases", LabelPhase, "Verifying"))).To(Equal(1.0))
		Expect(series(PhaseName, release(ns, "phases", LabelPhase, "Migrating"))).To(BeEmpty(), "the phase it left is gone")

		RecordPhase(ns, "phases", deployv1alpha1.PhaseSucceeded)
		Expect(series(PhaseName, release(ns, "phases"))).To(HaveLen(1))
		Expect(gauge(PhaseName, release(ns, "phases", LabelPhase, "Succeeded"))).To(Equal(1.0))
	})

	It("leaves the phase alone while status has none yet", func() {
		forgetAfter("nophase")
		RecordPhase(ns, "nophase", "")
		Expect(series(PhaseName, release(ns, "nophase"))).To(BeEmpty())
	})

	It("reports the active colour, and neither before the first flip", func() {
		forgetAfter("colors")
		SetActiveColor(ns, "colors", "")
		Expect(gauge(ActiveColorName, release(ns, "colors", LabelColor, "blue"))).To(Equal(0.0))
		Expect(gauge(ActiveColorName, release(ns, "colors", LabelColor, "green"))).To(Equal(0.0))

		SetActiveColor(ns, "colors", deployv1alpha1.Green)
		Expect(gauge(ActiveColorName, release(ns, "colors", LabelColor, "blue"))).To(Equal(0.0))
		Expect(gauge(ActiveColorName, release(ns, "colors", LabelColor, "green"))).To(Equal(1.0))
	})

	It("observes step durations per namespace and step in seconds, from every release there", func() {
		const stepsNS = "steps"
		ObserveStep(stepsNS, StepBackup, 90*time.Second)
		ObserveStep(stepsNS, StepBackup, 30*time.Second)
		ObserveStep(stepsNS, StepFlip, 200*time.Millisecond)

		backup := series(StepDurationName, map[string]string{LabelReleaseNamespace: stepsNS, LabelStep: "backup"})
		Expect(backup).To(HaveLen(1))
		Expect(backup[0].GetHistogram().GetSampleCount()).To(Equal(uint64(2)))
		Expect(backup[0].GetHistogram().GetSampleSum()).To(Equal(120.0))
		Expect(backup[0].GetLabel()).To(HaveLen(2), "no per-release label: a histogram per release is ~50 series")

		flip := series(StepDurationName, map[string]string{LabelReleaseNamespace: stepsNS, LabelStep: "flip"})
		Expect(flip).To(HaveLen(1))
		// 0.2 s lands in the 0.5 s bucket, not the 0.1 s one.
		buckets := flip[0].GetHistogram().GetBucket()
		Expect(buckets[0].GetUpperBound()).To(Equal(0.1))
		Expect(buckets[0].GetCumulativeCount()).To(Equal(uint64(0)))
		Expect(buckets[1].GetUpperBound()).To(Equal(0.5))
		Expect(buckets[1].GetCumulativeCount()).To(Equal(uint64(1)))
	})

	It("observes the time from green ready to the flip per namespace", func() {
		const waitNS = "wait"
		ObserveGreenReadyToFlip(waitNS, 45*time.Minute)
		found := series(GreenReadyToFlipName, map[string]string{LabelReleaseNamespace: waitNS})
		Expect(found).To(HaveLen(1))
		Expect(found[0].GetHistogram().GetSampleSum()).To(Equal(2700.0))
	})

	It("exposes the last backup as seconds since the epoch", func() {
		forgetAfter("backup")
		completed := time.Date(2026, 3, 1, 3, 0, 0, 500_000_000, time.UTC)
		SetLastBackup(ns, "backup", completed)
		Expect(gauge(LastBackupTimestampName, release(ns, "backup"))).To(Equal(float64(completed.Unix()) + 0.5))
	})

	It("counts outcomes by outcome and reason", func() {
		forgetAfter("outcomes")
		RecordOutcome(ns, "outcomes", deployv1alpha1.OutcomeFailed, "MigrationFailed")
		RecordOutcome(ns, "outcomes", deployv1alpha1.OutcomeFailed, "MigrationFailed")
		RecordOutcome(ns, "outcomes", deployv1alpha1.OutcomePromoted, "Promoted")

		failed := series(OutcomesName, release(ns, "outcomes", LabelOutcome, "Failed", LabelReason, "MigrationFailed"))
		Expect(failed).To(HaveLen(1))
		Expect(failed[0].GetCounter().GetValue()).To(Equal(2.0))
		promoted := series(OutcomesName, release(ns, "outcomes", LabelOutcome, "Promoted"))
		Expect(promoted).To(HaveLen(1))
		Expect(promoted[0].GetCounter().GetValue()).To(Equal(1.0))
	})

	It("reports whether the serving colour is degraded, 1 or 0", func() {
		forgetAfter("serving")
		SetServingDegraded(ns, "serving", true)
		Expect(gauge(ServingDegradedName, release(ns, "serving"))).To(Equal(1.0))
		SetServingDegraded(ns, "serving", false)
		Expect(gauge(ServingDegradedName, release(ns, "serving"))).To(Equal(0.0))
	})

	It("forgets every series of a deleted release and only that release", func() {
		forgetAfter("kept")
		for _, name := range []string{"deleted", "kept"} {
			RecordPhase(ns, name, deployv1alpha1.PhaseSucceeded)
			SetActiveColor(ns, name, deployv1alpha1.Blue)
			ObserveStep(ns, StepMigration, time.Minute)
			ObserveGreenReadyToFlip(ns, time.Minute)
			SetLastBackup(ns, name, time.Now())
			RecordOutcome(ns, name, deployv1alpha1.OutcomePromoted, "Promoted")
			SetServingDegraded(ns, name, false)
		}
		// A release of the same name in another namespace is another release.
		RecordPhase("other", "deleted", deployv1alpha1.PhaseSucceeded)
		DeferCleanup(func() { Forget("other", "deleted") })

		Forget(ns, "deleted")

		all := []string{PhaseName, ActiveColorName, LastBackupTimestampName, OutcomesName, ServingDegradedName}
		for _, name := range all {
			Expect(series(name, release(ns, "deleted"))).To(BeEmpty(), name)
			Expect(series(name, release(ns, "kept"))).NotTo(BeEmpty(), name)
		}
		// The namespace's histograms hold the kept release's observations too.
		Expect(series(StepDurationName, map[string]string{LabelReleaseNamespace: ns})).NotTo(BeEmpty())
		Expect(series(PhaseName, release("other", "deleted"))).NotTo(BeEmpty())
	})

	It("passes promtool's naming and help lint", func() {
		promtool, err := exec.LookPath("promtool")
		Expect(err).NotTo(HaveOccurred(), "promtool is not on PATH: run hack/install-prometheus.sh (installs Debian's prometheus package)")

		forgetAfter("lint")
		RecordPhase(ns, "lint", deployv1alpha1.PhasePending)
		SetActiveColor(ns, "lint", deployv1alpha1.Blue)
		ObserveStep(ns, StepGreenReady, time.Second)
		ObserveGreenReadyToFlip(ns, time.Second)
		SetLastBackup(ns, "lint", time.Now())
		RecordOutcome(ns, "lint", deployv1alpha1.OutcomePromoted, "Promoted")
		SetServingDegraded(ns, "lint", true)

		// Only this package's families: controller-runtime's own are not ours to lint.
		families, err := ctrlmetrics.Registry.Gather()
		Expect(err).NotTo(HaveOccurred())
		var exposition bytes.Buffer
		ours := 0
		for _, family := range families {
			if strings.HasPrefix(family.GetName(), "softfactory_release_") {
				_, err := expfmt.MetricFamilyToText(&exposition, family)
				Expect(err).NotTo(HaveOccurred())
				ours++
			}
		}
		Expect(ours).To(Equal(7))

		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = &exposition
		out, err := cmd.CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), "promtool check metrics:\n%s", out)
		Expect(strings.TrimSpace(string(out))).To(BeEmpty())
	})
})
