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
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/softfactory/release-operator/internal/monitoring/prometheustest"
)

func TestAnalysis(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Analysis Suite")
}

// prometheusURL is the real Prometheus server the suite starts, scraping appServer.
var prometheusURL string

var _ = BeforeSuite(func() {
	app := httptest.NewServer(newApp())
	DeferCleanup(app.Close)

	// Start fails, never skips, when the binary is missing: the gates are only proven
	// against a real Prometheus.
	started := time.Now()
	server, err := prometheustest.Start(prometheustest.Options{
		Dir:           GinkgoT().TempDir(),
		JobName:       "softfactory-api",
		ScrapeTargets: []string{app.Listener.Addr().String()},
		Log:           GinkgoWriter,
	})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(server.Stop)
	prometheusURL = server.URL
	AddReportEntry("prometheus ready", time.Since(started).Round(time.Millisecond).String())
})

// newApp is a stand-in for the SoftFactory API's /metrics: every scrape adds a second's
// worth of traffic, so rates are steady. Blue is healthy (1% errors, 100 ms answers);
// green is not (20% errors, 800 ms answers).
func newApp() http.Handler {
	registry := prometheus.NewRegistry()
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "http_requests_total", Help: "HTTP requests by colour and status.",
	}, []string{"namespace", "release", "color", "status"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "http_request_duration_seconds", Help: "HTTP request latency.",
		Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5},
	}, []string{"namespace", "release", "color"})
	registry.MustRegister(requests, latency)
	metrics := promhttp.HandlerFor(registry, promhttp.HandlerOpts{})

	traffic := func(color string, ok, failed float64, seconds float64) {
		requests.WithLabelValues("prod", "shop", color, "200").Add(ok)
		requests.WithLabelValues("prod", "shop", color, "500").Add(failed)
		for range int(ok + failed) {
			latency.WithLabelValues("prod", "shop", color).Observe(seconds)
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		traffic("blue", 99, 1, 0.1)
		traffic("green", 80, 20, 0.8)
		metrics.ServeHTTP(w, r)
	})
}

// freePort returns a port on 127.0.0.1 that nothing listens on.
func freePort() int {
	port, err := prometheustest.FreePort()
	Expect(err).NotTo(HaveOccurred())
	return port
}
