//go:build bench

package main

import (
	"math"
	"sort"
	"time"

	"gonum.org/v1/gonum/stat"
)

// summary is the distribution of one measurement, in milliseconds.
type summary struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
	Min float64 `json:"min"`
}

// percentile is the nearest-rank percentile (gonum's Empirical quantile): the smallest
// sample with at least p% of the samples at or below it. With 20 samples, p99 is the
// largest; it never interpolates a value nobody measured.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	return stat.Quantile(p/100, stat.Empirical, sorted, nil)
}

func summarize(samples []float64) summary {
	s := append([]float64(nil), samples...)
	sort.Float64s(s)
	if len(s) == 0 {
		return summary{}
	}
	return summary{N: len(s), P50: percentile(s, 50), P90: percentile(s, 90), P99: percentile(s, 99), Min: s[0], Max: s[len(s)-1]}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func median(samples []float64) float64 { return summarize(samples).P50 }

func mib(bytes int64) float64 { return float64(bytes) / (1 << 20) }

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// earlier is the earlier of two times, ignoring a zero one.
func earlier(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}
