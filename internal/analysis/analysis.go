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

// Package analysis evaluates a release's Prometheus gates (spec.strategy.blueGreen
// prePromotionAnalysis and postPromotionAnalysis): each check's PromQL query is run as
// an instant query and its single value compared with min and max.
//
// It keeps no state. The reconciler stores the counters between passes (they must
// survive an operator restart) and folds each evaluation into them with Fold, which
// decides Passed, Failed or Continue.
//
// Inconclusive (Prometheus unreachable, a query error, no data, more than one series)
// is never a pass: it breaks a run of consecutive successes and is reported as such, so
// a gate cannot open because Prometheus was down.
package analysis

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// Status is the result of one check, or of one evaluation of all checks.
type Status string

const (
	// StatusPass means the value is within min and max.
	StatusPass Status = "Pass"
	// StatusFail means the value is outside min or max.
	StatusFail Status = "Fail"
	// StatusInconclusive means no value could be judged; it never counts as a pass.
	StatusInconclusive Status = "Inconclusive"
)

// DefaultTimeout bounds one evaluation (all checks, run concurrently), so a Prometheus
// that accepts connections but never answers cannot hold a reconcile.
const DefaultTimeout = 10 * time.Second

// Target is what the query placeholders stand for.
type Target struct {
	// Color replaces $COLOR: the colour under test (preview before the flip, the new
	// active colour after it).
	Color deployv1alpha1.Color
	// Namespace replaces $NAMESPACE.
	Namespace string
	// Release replaces $RELEASE.
	Release string
}

// Substitute replaces $COLOR, $NAMESPACE and $RELEASE in a query. The values are a
// colour and DNS labels, so they need no PromQL escaping.
func Substitute(query string, t Target) string {
	return strings.NewReplacer(
		"$COLOR", string(t.Color),
		"$NAMESPACE", t.Namespace,
		"$RELEASE", t.Release,
	).Replace(query)
}

// CheckResult is the outcome of one check.
type CheckResult struct {
	// Name of the check.
	Name string
	// Query as sent, placeholders replaced.
	Query string
	// Status of the check.
	Status Status
	// Value returned by Prometheus; nil when there was none to judge.
	Value *float64
	// Message says why, naming the check: "check error-rate: value 0.12 above max 0.05".
	Message string
}

// Evaluation is one run of every check of an analysis.
type Evaluation struct {
	// Status is Fail if any check failed, else Inconclusive if any was inconclusive,
	// else Pass.
	Status Status
	// Checks in the spec's order.
	Checks []CheckResult
}

// Summary is a one-line message for a condition or an event: the failing checks first,
// then the inconclusive ones, or the values when all passed.
func (e Evaluation) Summary() string {
	var failed, inconclusive, passed []string
	for _, c := range e.Checks {
		switch c.Status {
		case StatusFail:
			failed = append(failed, c.Message)
		case StatusInconclusive:
			inconclusive = append(inconclusive, c.Message)
		default:
			passed = append(passed, fmt.Sprintf("%s %s", c.Name, formatValue(*c.Value)))
		}
	}
	switch e.Status {
	case StatusFail:
		return strings.Join(append(failed, inconclusive...), "; ")
	case StatusInconclusive:
		if len(inconclusive) == 0 {
			return "inconclusive, not counted as a pass: the analysis has no checks"
		}
		return "inconclusive, not counted as a pass: " + strings.Join(inconclusive, "; ")
	default:
		return fmt.Sprintf("all %d checks passed: %s", len(e.Checks), strings.Join(passed, ", "))
	}
}

// Evaluator runs checks against Prometheus' HTTP API.
type Evaluator struct {
	// RoundTripper drives the HTTP requests; nil means client_golang's default
	// transport, which honours the proxy environment like any in-cluster client.
	RoundTripper http.RoundTripper
	// Timeout bounds one evaluation; zero means DefaultTimeout.
	Timeout time.Duration
	// Now is the query time; nil leaves it to Prometheus' own clock, so a skewed
	// operator clock cannot push the query past the data.
	Now func() time.Time
}

// Evaluate runs every check of spec once, concurrently, for target.
func (e Evaluator) Evaluate(ctx context.Context, spec deployv1alpha1.AnalysisSpec, target Target) Evaluation {
	timeout := e.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var at time.Time // zero: Prometheus evaluates at its own now
	if e.Now != nil {
		at = e.Now()
	}

	results := make([]CheckResult, len(spec.Checks))
	client, err := promapi.NewClient(promapi.Config{Address: spec.PrometheusURL, RoundTripper: e.RoundTripper})
	if err != nil {
		// Only a malformed URL gets here; CEL requires http(s)://, so this is a URL that
		// parses as neither.
		for i, check := range spec.Checks {
			results[i] = inconclusive(check.Name, Substitute(check.Query, target),
				redactIn(fmt.Sprintf("prometheusURL %q is not usable: %v", spec.PrometheusURL, err), spec.PrometheusURL))
		}
		return Evaluation{Status: overall(results), Checks: results}
	}
	api := promv1.NewAPI(client)

	var wg sync.WaitGroup
	for i, check := range spec.Checks {
		wg.Go(func() {
			results[i] = evaluateCheck(ctx, api, spec.PrometheusURL, check, target, at)
		})
	}
	wg.Wait()
	return Evaluation{Status: overall(results), Checks: results}
}

func evaluateCheck(ctx context.Context, api promv1.API, url string, check deployv1alpha1.MetricCheck, target Target, at time.Time) CheckResult {
	query := Substitute(check.Query, target)
	value, _, err := api.Query(ctx, query, at)
	if err != nil {
		return inconclusive(check.Name, query, redactIn(describeQueryError(RedactURL(url), err), url))
	}
	number, problem := singleNumber(value)
	if problem != "" {
		return inconclusive(check.Name, query, problem)
	}
	return Judge(check, query, number)
}

// describeQueryError tells an unreachable Prometheus from one that refused the query.
func describeQueryError(url string, err error) string {
	if apiErr, ok := errors.AsType[*promv1.Error](err); ok {
		switch apiErr.Type {
		case promv1.ErrBadData, promv1.ErrExec:
			return "query error: " + apiErr.Msg
		case promv1.ErrTimeout, promv1.ErrCanceled:
			return "query timed out in Prometheus: " + apiErr.Msg
		default:
			return fmt.Sprintf("Prometheus at %s answered with an error: %s", url, apiErr.Error())
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("Prometheus at %s did not answer in time", url)
	}
	return fmt.Sprintf("Prometheus unreachable at %s: %v", url, err)
}

// singleNumber extracts the one number a check judges, or says why there is none.
func singleNumber(value model.Value) (float64, string) {
	switch v := value.(type) {
	case *model.Scalar:
		return float64(v.Value), ""
	case model.Vector:
		switch len(v) {
		case 0:
			return 0, "no data: the query returned no series"
		case 1:
			return float64(v[0].Value), ""
		default:
			return 0, fmt.Sprintf("the query returned %d series, need exactly one: aggregate with sum(), max() or avg()", len(v))
		}
	default:
		return 0, fmt.Sprintf("the query returned a %s, need an instant vector of one series or a scalar", value.Type())
	}
}

// Judge compares a check's value with its min and max. NaN (for example a ratio with no
// traffic, 0/0) is no evidence either way, so it is inconclusive.
func Judge(check deployv1alpha1.MetricCheck, query string, value float64) CheckResult {
	if math.IsNaN(value) {
		return inconclusive(check.Name, query, "value NaN: no traffic to judge?")
	}
	result := CheckResult{Name: check.Name, Query: query, Value: &value, Status: StatusPass}
	var bounds []string
	if check.Min != nil {
		minimum, err := strconv.ParseFloat(*check.Min, 64)
		if err != nil {
			return inconclusive(check.Name, query, fmt.Sprintf("min %q is not a number", *check.Min))
		}
		if value < minimum {
			result.Status = StatusFail
			result.Message = fmt.Sprintf("check %s: value %s below min %s", check.Name, formatValue(value), *check.Min)
			return result
		}
		bounds = append(bounds, "min "+*check.Min)
	}
	if check.Max != nil {
		maximum, err := strconv.ParseFloat(*check.Max, 64)
		if err != nil {
			return inconclusive(check.Name, query, fmt.Sprintf("max %q is not a number", *check.Max))
		}
		if value > maximum {
			result.Status = StatusFail
			result.Message = fmt.Sprintf("check %s: value %s above max %s", check.Name, formatValue(value), *check.Max)
			return result
		}
		bounds = append(bounds, "max "+*check.Max)
	}
	result.Message = fmt.Sprintf("check %s: value %s within %s", check.Name, formatValue(value), strings.Join(bounds, " and "))
	return result
}

func inconclusive(name, query, why string) CheckResult {
	return CheckResult{Name: name, Query: query, Status: StatusInconclusive, Message: fmt.Sprintf("check %s: %s", name, why)}
}

func overall(results []CheckResult) Status {
	if len(results) == 0 {
		// Nothing judged is no evidence; CEL requires a check, this guards code paths
		// that skip it.
		return StatusInconclusive
	}
	status := StatusPass
	for _, r := range results {
		switch r.Status {
		case StatusFail:
			return StatusFail
		case StatusInconclusive:
			status = StatusInconclusive
		}
	}
	return status
}

// formatValue prints six significant digits: enough to compare with a threshold,
// short enough for a condition message.
func formatValue(v float64) string {
	return strconv.FormatFloat(v, 'g', 6, 64)
}
