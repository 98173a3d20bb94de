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

// Package metrics holds the operator's own Prometheus metrics, served on the manager's
// /metrics endpoint through controller-runtime's registry. docs/metrics.md describes
// each one; the BackupTooOld and ReleaseFailed alerts of internal/monitoring read them.
//
// Every series of a release carries the labels release_namespace and release. They are
// deliberately not called namespace and name: Prometheus attaches the operator pod's own
// namespace label to everything it scrapes from it, and a scraped label of the same name
// would be renamed exported_namespace unless the ServiceMonitor sets honorLabels, so
// alert selectors on it would silently never match.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// Metric names, exported so the alert rules in internal/monitoring select exactly what
// this package exposes.
const (
	PhaseName               = "softfactory_release_phase"
	ActiveColorName         = "softfactory_release_active_color"
	StepDurationName        = "softfactory_release_step_duration_seconds"
	GreenReadyToFlipName    = "softfactory_release_green_ready_to_flip_seconds"
	LastBackupTimestampName = "softfactory_release_last_backup_timestamp_seconds"
	OutcomesName            = "softfactory_release_outcomes_total"
	ServingDegradedName     = "softfactory_release_serving_degraded"
	LabelReleaseNamespace   = "release_namespace"
	LabelRelease            = "release"
	LabelPhase              = "phase"
	LabelColor              = "color"
	LabelStep               = "step"
	LabelOutcome            = "outcome"
	LabelReason             = "reason"
)

// Step names one timed step of a release, the value of the step label.
type Step string

// The timed steps, in release order.
const (
	// StepBackup is the backup Job, from creation to verified completion.
	StepBackup Step = "backup"
	// StepMigration is the migration Job, from creation to completion.
	StepMigration Step = "migration"
	// StepGreenReady is the new colour, from getting its template to fully available.
	StepGreenReady Step = "green_ready"
	// StepFlip is the selector switch, from the promotion decision to the patched Service.
	StepFlip Step = "flip"
)

// allPhases lists every phase, so a phase left behind is deleted instead of lingering.
var allPhases = []deployv1alpha1.Phase{
	deployv1alpha1.PhasePending,
	deployv1alpha1.PhaseBackingUp,
	deployv1alpha1.PhaseMigrating,
	deployv1alpha1.PhaseDeploying,
	deployv1alpha1.PhaseVerifying,
	deployv1alpha1.PhaseAwaitingPromotion,
	deployv1alpha1.PhasePromoting,
	deployv1alpha1.PhaseSucceeded,
	deployv1alpha1.PhaseFailed,
	deployv1alpha1.PhaseRolledBack,
	deployv1alpha1.PhasePaused,
}

var allColors = []deployv1alpha1.Color{deployv1alpha1.Blue, deployv1alpha1.Green}

// stepBuckets span a sub-second flip to an hour-long backup or migration (the Jobs'
// default deadlines are 600 s and 3600 s).
var stepBuckets = []float64{0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600}

// greenReadyToFlipBuckets reach a day: with manual promotion a human decides when to
// flip, and that wait is what this histogram is for.
var greenReadyToFlipBuckets = []float64{0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400}

var (
	phase = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: PhaseName,
		Help: "Phase of a release: one series, for the phase it is in, with value 1.",
	}, []string{LabelReleaseNamespace, LabelRelease, LabelPhase})

	activeColor = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: ActiveColorName,
		Help: "Colour the release's active Service selects: 1 for that colour, 0 for the other; both 0 before the first flip.",
	}, []string{LabelReleaseNamespace, LabelRelease, LabelColor})

	stepDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    StepDurationName,
		Help:    "Duration of each completed release step (backup, migration, green_ready, flip) in seconds.",
		Buckets: stepBuckets,
	}, []string{LabelReleaseNamespace, LabelStep})

	greenReadyToFlip = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    GreenReadyToFlipName,
		Help:    "Time from the new colour becoming available to traffic flipping to it, in seconds (includes gates and manual promotion).",
		Buckets: greenReadyToFlipBuckets,
	}, []string{LabelReleaseNamespace})

	lastBackup = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: LastBackupTimestampName,
		Help: "Completion time of the release's last successful, verified backup, in seconds since the Unix epoch.",
	}, []string{LabelReleaseNamespace, LabelRelease})

	servingDegraded = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: ServingDegradedName,
		Help: "1 while the serving colour of a release in flight has fewer ready pods or endpoints than it wants (ServingDegraded), 0 otherwise.",
	}, []string{LabelReleaseNamespace, LabelRelease})

	outcomes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: OutcomesName,
		Help: "Releases that ended, by outcome (Promoted, Failed, Aborted, RolledBack, Superseded) and machine-readable reason.",
	}, []string{LabelReleaseNamespace, LabelRelease, LabelOutcome, LabelReason})
)

// init registers with controller-runtime's registry, the one the manager serves on
// /metrics, beside its own controller and workqueue metrics.
func init() {
	ctrlmetrics.Registry.MustRegister(phase, activeColor, stepDuration, greenReadyToFlip, lastBackup, outcomes, servingDegraded)
}

// RecordPhase sets the release's phase: one series, phase=<current> with value 1; the
// series of the phase it left is deleted. (A series per possible phase, 0 for all but
// one, would be eleven series per release for one fact: at 1,000 releases, 11,000.)
func RecordPhase(namespace, name string, p deployv1alpha1.Phase) {
	if p == "" {
		return
	}
	current := prometheus.Labels{LabelReleaseNamespace: namespace, LabelRelease: name, LabelPhase: string(p)}
	for _, candidate := range allPhases {
		if candidate != p {
			phase.Delete(prometheus.Labels{LabelReleaseNamespace: namespace, LabelRelease: name, LabelPhase: string(candidate)})
		}
	}
	phase.With(current).Set(1)
}

// SetActiveColor sets the active colour gauge from the colour read back from the active
// Service. An empty colour (no flip yet) sets both colours to 0.
func SetActiveColor(namespace, name string, c deployv1alpha1.Color) {
	for _, candidate := range allColors {
		value := 0.0
		if candidate == c {
			value = 1
		}
		activeColor.WithLabelValues(namespace, name, string(candidate)).Set(value)
	}
}

// SetServingDegraded says whether the serving colour is degraded now. Call it on every
// pass (false when it is not watched), so the SoftFactoryServingDegraded alert clears as
// soon as the serving colour recovers or the release is settled.
func SetServingDegraded(namespace, name string, degraded bool) {
	value := 0.0
	if degraded {
		value = 1
	}
	servingDegraded.WithLabelValues(namespace, name).Set(value)
}

// ObserveStep records how long a completed step of a release in namespace took. Call it
// once, on the pass that sees the step finish, with the time measured from objects (Job
// start and completion times, annotations), so an operator restart neither loses nor
// repeats it.
//
// The histograms are per namespace, not per release: with their buckets a histogram per
// release would be ~50 series for a handful of observations each (the heap profile at
// 1,000 releases had them as a quarter of the operator's live memory), and a release's
// own steps are in its status and Events.
func ObserveStep(namespace string, step Step, d time.Duration) {
	stepDuration.WithLabelValues(namespace, string(step)).Observe(d.Seconds())
}

// ObserveGreenReadyToFlip records the time from the new colour of a release in namespace
// becoming available to the flip. Call it once per flip.
func ObserveGreenReadyToFlip(namespace string, d time.Duration) {
	greenReadyToFlip.WithLabelValues(namespace).Observe(d.Seconds())
}

// SetLastBackup records when the last successful, verified backup completed. Call it on
// every pass from status.lastBackup.completedAt, so the gauge is back right after an
// operator restart and the BackupTooOld alert keeps working.
func SetLastBackup(namespace, name string, t time.Time) {
	lastBackup.WithLabelValues(namespace, name).Set(float64(t.UnixNano()) / 1e9)
}

// RecordOutcome counts a release that ended. Call it once per release, when its outcome
// is written to status.history, never on every pass. reason must come from a fixed
// vocabulary (a condition reason such as MigrationFailed), never a free-text message:
// each distinct value is a new series.
func RecordOutcome(namespace, name string, outcome deployv1alpha1.Outcome, reason string) {
	outcomes.WithLabelValues(namespace, name, string(outcome), reason).Inc()
}

// Forget deletes every series of a release. Call it when the release is deleted, so
// /metrics does not keep reporting a release that no longer exists. The namespace's
// histograms stay: they hold other releases' observations too.
func Forget(namespace, name string) {
	match := prometheus.Labels{LabelReleaseNamespace: namespace, LabelRelease: name}
	phase.DeletePartialMatch(match)
	activeColor.DeletePartialMatch(match)
	lastBackup.DeletePartialMatch(match)
	outcomes.DeletePartialMatch(match)
	servingDegraded.DeletePartialMatch(match)
}
