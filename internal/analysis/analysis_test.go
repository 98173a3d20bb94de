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

import (
	"context"
	"math"
	"net"
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// The runbook's staging checks, written the way a user would put them in the spec.
const (
	errorRateQuery = `sum(rate(http_requests_total{namespace="$NAMESPACE", release="$RELEASE", color="$COLOR", status=~"5.."}[5s]))
/ sum(rate(http_requests_total{namespace="$NAMESPACE", release="$RELEASE", color="$COLOR"}[5s]))`
	availabilityQuery = `sum(rate(http_requests_total{namespace="$NAMESPACE", release="$RELEASE", color="$COLOR", status!~"5.."}[5s]))
/ sum(rate(http_requests_total{namespace="$NAMESPACE", release="$RELEASE", color="$COLOR"}[5s]))`
	p95Query = `histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{namespace="$NAMESPACE", release="$RELEASE", color="$COLOR"}[5s])))`
)

var (
	errorRate    = deployv1alpha1.MetricCheck{Name: "error-rate", Query: errorRateQuery, Max: new("0.05")}
	availability = deployv1alpha1.MetricCheck{Name: "availability", Query: availabilityQuery, Min: new("0.95")}
	p95Latency   = deployv1alpha1.MetricCheck{Name: "p95-latency", Query: p95Query, Max: new("0.5")}

	blue  = Target{Color: deployv1alpha1.Blue, Namespace: "prod", Release: "shop"}
	green = Target{Color: deployv1alpha1.Green, Namespace: "prod", Release: "shop"}
)

func analysisOf(url string, checks ...deployv1alpha1.MetricCheck) deployv1alpha1.AnalysisSpec {
	return deployv1alpha1.AnalysisSpec{PrometheusURL: url, Checks: checks, SuccessfulRuns: 3, FailureLimit: 2}
}

// conclusive evaluates until Prometheus has scraped enough for the rates (a few
// seconds after start), then returns the first judged evaluation.
func conclusive(spec deployv1alpha1.AnalysisSpec, target Target) Evaluation {
	var evaluation Evaluation
	EventuallyWithOffset(1, func() Status {
		evaluation = Evaluator{}.Evaluate(context.Background(), spec, target)
		return evaluation.Status
	}).WithTimeout(60*time.Second).WithPolling(250*time.Millisecond).ShouldNot(Equal(StatusInconclusive),
		"the checks stayed inconclusive: is Prometheus scraping the test app?")
	return evaluation
}

var _ = Describe("Analysis against a real Prometheus", func() {
	BeforeEach(func() {
		// Every spec here needs scraped data, whichever runs first.
		conclusive(analysisOf(prometheusURL, errorRate), blue)
	})

	It("passes the healthy colour on every check", func() {
		evaluation := conclusive(analysisOf(prometheusURL, errorRate, availability, p95Latency), blue)

		Expect(evaluation.Status).To(Equal(StatusPass), evaluation.Summary())
		Expect(evaluation.Checks).To(HaveLen(3))
		Expect(*evaluation.Checks[0].Value).To(BeNumerically("~", 0.01, 0.001))
		Expect(*evaluation.Checks[1].Value).To(BeNumerically("~", 0.99, 0.001))
		Expect(*evaluation.Checks[2].Value).To(BeNumerically("<", 0.1))
		Expect(evaluation.Summary()).To(HavePrefix("all 3 checks passed: error-rate 0.01"))
	})

	It("fails the unhealthy colour, naming each failing check and its value", func() {
		evaluation := conclusive(analysisOf(prometheusURL, errorRate, availability, p95Latency), green)

		Expect(evaluation.Status).To(Equal(StatusFail))
		Expect(evaluation.Checks[0].Message).To(Equal("check error-rate: value 0.2 above max 0.05"))
		Expect(evaluation.Checks[1].Message).To(Equal("check availability: value 0.8 below min 0.95"))
		Expect(evaluation.Checks[2].Message).To(MatchRegexp(`^check p95-latency: value 0\.9\d* above max 0\.5$`))
		Expect(evaluation.Summary()).To(HavePrefix("check error-rate: value 0.2 above max 0.05; check availability: value 0.8 below min 0.95; "))
	})

	It("fills in the release's namespace and name: another namespace has no data", func() {
		evaluation := Evaluator{}.Evaluate(context.Background(), analysisOf(prometheusURL, errorRate),
			Target{Color: deployv1alpha1.Blue, Namespace: "staging", Release: "shop"})
		Expect(evaluation.Status).To(Equal(StatusInconclusive))
		Expect(evaluation.Checks[0].Query).To(ContainSubstring(`namespace="staging", release="shop", color="blue"`))
	})

	DescribeTable("is inconclusive, never passing, when there is no single number to judge",
		func(query, want string) {
			check := deployv1alpha1.MetricCheck{Name: "c", Query: query, Max: new("1000000")}
			evaluation := Evaluator{}.Evaluate(context.Background(), analysisOf(prometheusURL, check), blue)
			Expect(evaluation.Status).To(Equal(StatusInconclusive))
			Expect(evaluation.Checks[0].Value).To(BeNil())
			Expect(evaluation.Checks[0].Message).To(HavePrefix("check c: " + want))
			Expect(evaluation.Summary()).To(HavePrefix("inconclusive, not counted as a pass: check c: " + want))
		},
		Entry("no series", `no_such_metric{color="$COLOR"}`, "no data: the query returned no series"),
		Entry("several series", `http_requests_total{color="$COLOR"}`, "the query returned 2 series, need exactly one"),
		Entry("a query error", `sum(rate(http_requests_total[5s])`, "query error: "),
		Entry("a range vector", `http_requests_total{color="$COLOR", status="200"}[5s]`, "the query returned a matrix"),
		Entry("NaN, a ratio without traffic", `0/0`, "value NaN"),
	)

	It("judges a scalar query", func() {
		check := deployv1alpha1.MetricCheck{Name: "scalar", Query: `scalar(sum(up{job="softfactory-api"}))`, Min: new("1")}
		evaluation := Evaluator{}.Evaluate(context.Background(), analysisOf(prometheusURL, check), blue)
		Expect(evaluation.Status).To(Equal(StatusPass), evaluation.Summary())
	})

	It("fails the evaluation when one check fails, even with another inconclusive", func() {
		broken := deployv1alpha1.MetricCheck{Name: "broken", Query: `sum(`, Max: new("1")}
		evaluation := conclusive(analysisOf(prometheusURL, broken, errorRate), green)
		Expect(evaluation.Status).To(Equal(StatusFail))
		Expect(evaluation.Summary()).To(MatchRegexp(`^check error-rate: value 0\.2 above max 0\.05; check broken: query error: `))
	})

	It("opens the gate after successfulRuns healthy evaluations and closes it at failureLimit for an unhealthy one", func() {
		spec := analysisOf(prometheusURL, errorRate, p95Latency)
		conclusive(spec, blue) // wait for data once

		run := func(target Target) (Counters, Decision, int) {
			var counters Counters
			decision := DecisionContinue
			evaluations := 0
			for decision == DecisionContinue && evaluations < 10 {
				evaluation := Evaluator{}.Evaluate(context.Background(), spec, target)
				counters, decision = Fold(counters, evaluation.Status, spec.SuccessfulRuns, spec.FailureLimit)
				evaluations++
			}
			return counters, decision, evaluations
		}

		counters, decision, evaluations := run(blue)
		Expect(decision).To(Equal(DecisionPassed))
		Expect(evaluations).To(Equal(3))
		Expect(counters).To(Equal(Counters{ConsecutiveSuccesses: 3}))

		counters, decision, evaluations = run(green)
		Expect(decision).To(Equal(DecisionFailed))
		Expect(evaluations).To(Equal(2))
		Expect(counters).To(Equal(Counters{Failures: 2}))
	})
})

var _ = Describe("Analysis when Prometheus cannot answer", func() {
	It("is inconclusive when nothing listens, and never opens the gate", func() {
		url := "http://127.0.0.1:" + strconv.Itoa(freePort()) // released: nothing listens there
		spec := analysisOf(url, errorRate, p95Latency)

		var counters Counters
		for range 10 {
			evaluation := Evaluator{}.Evaluate(context.Background(), spec, blue)
			Expect(evaluation.Status).To(Equal(StatusInconclusive))
			Expect(evaluation.Checks[0].Message).To(HavePrefix("check error-rate: Prometheus unreachable at " + url))
			Expect(evaluation.Summary()).To(HavePrefix("inconclusive, not counted as a pass: check error-rate: Prometheus unreachable"))

			var decision Decision
			counters, decision = Fold(counters, evaluation.Status, spec.SuccessfulRuns, spec.FailureLimit)
			Expect(decision).To(Equal(DecisionContinue))
		}
		Expect(counters).To(Equal(Counters{Inconclusive: 10}))
	})

	It("gives up after the timeout when Prometheus accepts but never answers", func() {
		// A listener that never reads: connections are accepted by the kernel and hang.
		silent, err := net.Listen("tcp", "127.0.0.1:0")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(silent.Close)
		url := "http://" + silent.Addr().String()

		started := time.Now()
		evaluation := Evaluator{Timeout: 500 * time.Millisecond}.Evaluate(context.Background(), analysisOf(url, errorRate), blue)
		elapsed := time.Since(started)

		Expect(evaluation.Status).To(Equal(StatusInconclusive))
		Expect(evaluation.Checks[0].Message).To(Equal("check error-rate: Prometheus at " + url + " did not answer in time"))
		Expect(elapsed).To(BeNumerically("<", 5*time.Second))
		AddReportEntry("timeout of an unanswered evaluation", elapsed.Round(time.Millisecond).String())
	})
})

var _ = Describe("Evaluate without checks", func() {
	It("is inconclusive: no evidence never opens a gate", func() {
		evaluation := Evaluator{}.Evaluate(context.Background(), deployv1alpha1.AnalysisSpec{PrometheusURL: prometheusURL}, blue)
		Expect(evaluation.Status).To(Equal(StatusInconclusive))
		Expect(evaluation.Summary()).To(Equal("inconclusive, not counted as a pass: the analysis has no checks"))
	})
})

var _ = Describe("Substitute", func() {
	It("replaces every placeholder, as often as it appears", func() {
		Expect(Substitute(`x{color="$COLOR", ns="$NAMESPACE", r="$RELEASE"} / y{color="$COLOR"}`, green)).
			To(Equal(`x{color="green", ns="prod", r="shop"} / y{color="green"}`))
	})
})

var _ = DescribeTable("Judge",
	func(minimum, maximum *string, value float64, want Status, message string) {
		result := Judge(deployv1alpha1.MetricCheck{Name: "c", Min: minimum, Max: maximum}, "q", value)
		Expect(result.Status).To(Equal(want))
		Expect(result.Message).To(Equal(message))
	},
	Entry("below max", nil, new("0.05"), 0.01, StatusPass, "check c: value 0.01 within max 0.05"),
	Entry("at max: the bound is inclusive", nil, new("0.05"), 0.05, StatusPass, "check c: value 0.05 within max 0.05"),
	Entry("above max", nil, new("0.05"), 0.12, StatusFail, "check c: value 0.12 above max 0.05"),
	Entry("at min", new("0.95"), nil, 0.95, StatusPass, "check c: value 0.95 within min 0.95"),
	Entry("below min", new("0.95"), nil, 0.9, StatusFail, "check c: value 0.9 below min 0.95"),
	Entry("between both", new("1"), new("10"), 5.0, StatusPass, "check c: value 5 within min 1 and max 10"),
	Entry("negative bounds", new("-1"), new("-0.5"), -0.75, StatusPass, "check c: value -0.75 within min -1 and max -0.5"),
	Entry("+Inf above max", nil, new("0.5"), math.Inf(1), StatusFail, "check c: value +Inf above max 0.5"),
	Entry("NaN", nil, new("0.5"), math.NaN(), StatusInconclusive, "check c: value NaN: no traffic to judge?"),
	Entry("a min that is not a number", new("low"), nil, 1.0, StatusInconclusive, `check c: min "low" is not a number`),
)

var _ = DescribeTable("Fold",
	func(start Counters, status Status, successfulRuns, failureLimit int32, want Counters, decision Decision) {
		got, gotDecision := Fold(start, status, successfulRuns, failureLimit)
		Expect(got).To(Equal(want))
		Expect(gotDecision).To(Equal(decision))
	},
	Entry("a pass short of successfulRuns continues", Counters{ConsecutiveSuccesses: 1}, StatusPass, int32(3), int32(1),
		Counters{ConsecutiveSuccesses: 2}, DecisionContinue),
	Entry("the successfulRuns-th pass in a row passes", Counters{ConsecutiveSuccesses: 2}, StatusPass, int32(3), int32(1),
		Counters{ConsecutiveSuccesses: 3}, DecisionPassed),
	Entry("an inconclusive evaluation restarts the run of passes", Counters{ConsecutiveSuccesses: 2}, StatusInconclusive, int32(3), int32(1),
		Counters{Inconclusive: 1}, DecisionContinue),
	Entry("inconclusive evaluations never fail the analysis", Counters{Inconclusive: 99}, StatusInconclusive, int32(3), int32(1),
		Counters{Inconclusive: 100}, DecisionContinue),
	Entry("a failure below failureLimit continues and restarts the run", Counters{ConsecutiveSuccesses: 2}, StatusFail, int32(3), int32(2),
		Counters{Failures: 1}, DecisionContinue),
	Entry("failures count towards failureLimit even when not consecutive", Counters{Failures: 1, ConsecutiveSuccesses: 1}, StatusFail, int32(3), int32(2),
		Counters{Failures: 2}, DecisionFailed),
	Entry("the API defaults apply to unset limits: one failure fails", Counters{}, StatusFail, int32(0), int32(0),
		Counters{Failures: 1}, DecisionFailed),
	Entry("the API defaults apply to unset limits: three passes pass", Counters{ConsecutiveSuccesses: 2}, StatusPass, int32(0), int32(0),
		Counters{ConsecutiveSuccesses: 3}, DecisionPassed),
)

var _ = DescribeTable("NextEvaluation",
	func(last time.Time, interval int32, want time.Duration) {
		now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		Expect(NextEvaluation(last, now, interval)).To(Equal(want))
	},
	Entry("none ran yet: now", time.Time{}, int32(30), time.Duration(0)),
	Entry("ran 10 s ago with a 30 s interval: in 20 s", time.Date(2026, 3, 1, 11, 59, 50, 0, time.UTC), int32(30), 20*time.Second),
	Entry("overdue: now", time.Date(2026, 3, 1, 11, 50, 0, 0, time.UTC), int32(30), time.Duration(0)),
	Entry("unset interval: the API's 30 s", time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), int32(0), 30*time.Second),
)
