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

package analysis

import "time"

// Counters are what the reconciler keeps between evaluations of one analysis (one
// revision, pre- or post-promotion), in status so an operator restart neither resets
// nor repeats them. Start each analysis from the zero value.
type Counters struct {
	// ConsecutiveSuccesses is the current run of passing evaluations; a failing or
	// inconclusive one ends it.
	ConsecutiveSuccesses int32 `json:"consecutiveSuccesses,omitempty"`
	// Failures counts failing evaluations, consecutive or not, towards failureLimit.
	Failures int32 `json:"failures,omitempty"`
	// Inconclusive counts evaluations that could not be judged, for the condition
	// message; they neither pass nor fail the analysis.
	Inconclusive int32 `json:"inconclusive,omitempty"`
}

// Decision is what the reconciler does after an evaluation.
type Decision string

const (
	// DecisionContinue evaluates again after the interval.
	DecisionContinue Decision = "Continue"
	// DecisionPassed opens the gate: successfulRuns consecutive evaluations passed.
	DecisionPassed Decision = "Passed"
	// DecisionFailed closes it: failureLimit evaluations failed. Before the flip the
	// release is refused; after it, traffic flips back.
	DecisionFailed Decision = "Failed"
)

// The API's defaults, for a spec built in code that skipped the CRD defaulting.
const (
	DefaultSuccessfulRuns  = 3
	DefaultFailureLimit    = 1
	DefaultIntervalSeconds = 30
)

// Fold adds one evaluation's status to the counters and decides. It is pure: the
// reconciler stores the returned counters and acts on the decision.
//
// An inconclusive evaluation ends the run of successes, so "successfulRuns in a row"
// means in a row of judged-and-passed evaluations: a Prometheus outage in the middle
// starts the count again. It never fails the analysis by itself; the release's
// progressDeadlineSeconds (before the flip) or the analysis window (after it) bounds
// how long an analysis may stay inconclusive.
func Fold(c Counters, status Status, successfulRuns, failureLimit int32) (Counters, Decision) {
	if successfulRuns <= 0 {
		successfulRuns = DefaultSuccessfulRuns
	}
	if failureLimit <= 0 {
		failureLimit = DefaultFailureLimit
	}
	switch status {
	case StatusPass:
		c.ConsecutiveSuccesses++
	case StatusFail:
		c.ConsecutiveSuccesses = 0
		c.Failures++
	default:
		c.ConsecutiveSuccesses = 0
		c.Inconclusive++
	}
	switch {
	case c.Failures >= failureLimit:
		return c, DecisionFailed
	case c.ConsecutiveSuccesses >= successfulRuns:
		return c, DecisionPassed
	default:
		return c, DecisionContinue
	}
}

// NextEvaluation is how long to wait before the next evaluation, given when the last
// one ran: zero when it is due (or none ran yet), otherwise the RequeueAfter to use.
func NextEvaluation(last, now time.Time, intervalSeconds int32) time.Duration {
	if last.IsZero() {
		return 0
	}
	if intervalSeconds <= 0 {
		intervalSeconds = DefaultIntervalSeconds
	}
	wait := last.Add(time.Duration(intervalSeconds) * time.Second).Sub(now)
	if wait < 0 {
		return 0
	}
	return wait
}
