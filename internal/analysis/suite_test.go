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
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func TestAnalysis(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Analysis Suite")
}

// prometheusURL is the real Prometheus server the suite starts, scraping appServer.
var prometheusURL string

var _ = BeforeSuite(func() {
	binary, err := exec.LookPath("prometheus")
	// Fail, never skip: the gates are only proven against a real Prometheus.
	Expect(err).NotTo(HaveOccurred(),
		"prometheus is not on PATH: run hack/install-prometheus.sh (installs Debian's prometheus package)")

	app := httptest.NewServer(newApp())
	DeferCleanup(app.Close)

	started := time.Now()
	prometheusURL = startPrometheus(binary, app.Listener.Addr().String())
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

// startPrometheus runs the Debian prometheus binary on 127.0.0.1 with a free port and
// its own storage, scraping target every second, and returns its URL once ready. A
// port taken between choosing and binding makes Prometheus exit; the next try picks
// another.
func startPrometheus(binary, target string) string {
	dir := GinkgoT().TempDir()
	config := filepath.Join(dir, "prometheus.yml")
	Expect(os.WriteFile(config, fmt.Appendf(nil, `global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: softfactory-api
    static_configs:
      - targets: [%q]
`, target), 0o600)).To(Succeed())

	for attempt := 1; ; attempt++ {
		port := freePort()
		url := "http://127.0.0.1:" + strconv.Itoa(port)
		cmd := exec.Command(binary,
			"--config.file="+config,
			"--storage.tsdb.path="+filepath.Join(dir, fmt.Sprintf("data-%d", attempt)),
			"--web.listen-address=127.0.0.1:"+strconv.Itoa(port),
			"--log.level=warn",
		)
		cmd.Stdout, cmd.Stderr = GinkgoWriter, GinkgoWriter
		Expect(cmd.Start()).To(Succeed())
		exited := make(chan struct{})
		go func() {
			_ = cmd.Wait()
			close(exited)
		}()

		ready := func() bool {
			resp, err := http.Get(url + "/-/ready")
			if err != nil {
				return false
			}
			_ = resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		}
		// Ready, or gone: polled, bounded, never slept.
		Eventually(func() bool { return ready() || isClosed(exited) }).
			WithTimeout(60 * time.Second).WithPolling(100 * time.Millisecond).Should(BeTrue())
		if ready() {
			DeferCleanup(func() {
				// SIGTERM lets it shut down cleanly; the channel says when it has.
				_ = cmd.Process.Signal(syscall.SIGTERM)
				Eventually(exited).WithTimeout(30 * time.Second).Should(BeClosed())
			})
			return url
		}
		Expect(attempt).To(BeNumerically("<", 3), "prometheus exited three times before becoming ready; see its log above")
	}
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// freePort asks the kernel for a free port on 127.0.0.1 and releases it for the caller.
func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}
