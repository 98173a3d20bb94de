package controller

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
	"github.com/softfactory/release-operator/internal/monitoring/prometheustest"
)

// colourApp stands in for the SoftFactory API's /metrics on both colours: each scrape
// adds 100 requests per colour, with the error percentage the test sets for that colour.
// Series carry the number of the current test (run), so a test never judges the
// traffic of the one before, which the rate window would still hold.
type colourApp struct {
	errorPercent map[deployv1alpha1.Color]*atomic.Int64
	run          atomic.Int64
	handler      http.Handler
}

func newColourApp() *colourApp {
	registry := prometheus.NewRegistry()
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "http_requests_total", Help: "HTTP requests by colour and status.",
	}, []string{"run", "color", "status"})
	registry.MustRegister(requests)
	app := &colourApp{errorPercent: map[deployv1alpha1.Color]*atomic.Int64{
		deployv1alpha1.Blue: {}, deployv1alpha1.Green: {},
	}}
	metrics := promhttp.HandlerFor(registry, promhttp.HandlerOpts{})
	app.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		run := fmt.Sprint(app.run.Load())
		for c, pct := range app.errorPercent {
			failed := float64(pct.Load())
			requests.WithLabelValues(run, string(c), "200").Add(100 - failed)
			requests.WithLabelValues(run, string(c), "500").Add(failed)
		}
		metrics.ServeHTTP(w, r)
	})
	return app
}

// errorRateCheck is the runbook's staging check: 5xx ratio below 5%, over this test's series.
func errorRateCheck(prometheusURL string, run int64) deployv1alpha1.AnalysisSpec {
	return deployv1alpha1.AnalysisSpec{
		PrometheusURL: prometheusURL,
		Checks: []deployv1alpha1.MetricCheck{{
			Name:  "error-rate",
			Query: fmt.Sprintf(`sum(rate(http_requests_total{run="%d",color="$COLOR",status=~"5.."}[5s])) / sum(rate(http_requests_total{run="%[1]d",color="$COLOR"}[5s]))`, run),
			Max:   new("0.05"),
		}},
		IntervalSeconds: 1,
		SuccessfulRuns:  2,
		FailureLimit:    1,
	}
}

// The Prometheus gates against a real Prometheus (Debian's binary, started here),
// scraping an exporter the test controls. The Kubernetes side is envtest as elsewhere:
// the test plays the Deployment and EndpointSlice controllers.
var _ = Describe("The Prometheus gates", Ordered, func() {
	var (
		app           *colourApp
		prometheusURL string
		h             *harness
	)

	BeforeAll(func() {
		app = newColourApp()
		exporter := httptest.NewServer(app.handler)
		DeferCleanup(exporter.Close)
		server, err := prometheustest.Start(prometheustest.Options{
			Dir:           GinkgoT().TempDir(),
			JobName:       "softfactory-api",
			ScrapeTargets: []string{exporter.Listener.Addr().String()},
			Log:           GinkgoWriter,
		})
		Expect(err).NotTo(HaveOccurred(), "the gates are only proven against a real Prometheus")
		DeferCleanup(server.Stop)
		prometheusURL = server.URL
	})
	BeforeEach(func() {
		h = newHarness()
		app.run.Add(1)
		app.errorPercent[deployv1alpha1.Blue].Store(1)
		app.errorPercent[deployv1alpha1.Green].Store(1)
	})

	// untilSelector steps the fake clock by the analysis interval and reconciles until the
	// active Service selects colour, or the real-time bound passes (Prometheus needs a few
	// real scrapes before a rate has data).
	untilSelector := func(color string) {
		GinkgoHelper()
		Eventually(func() string {
			h.clock.Step(time.Second)
			h.reconcile()
			return h.activeSelectorColor()
		}).WithTimeout(45 * time.Second).WithPolling(500 * time.Millisecond).Should(Equal(color))
	}

	It("promote a healthy preview once the checks pass the required times in a row", func() {
		r := h.release(imageV1)
		spec := errorRateCheck(prometheusURL, app.run.Load())
		r.Spec.Strategy.BlueGreen.PrePromotionAnalysis = &spec
		h.releaseFirst(r)
		h.startSecond(imageV2)
		h.makeColorAvailable(deployv1alpha1.Green)
		h.reconcile()
		Expect(h.activeSelectorColor()).To(Equal("blue"), "not before the checks have passed")
		Expect(h.get().Status.Phase).To(Equal(deployv1alpha1.PhaseVerifying))

		untilSelector("green")
		a := h.get().Status.Analysis
		Expect(a.Result).To(Equal(deployv1alpha1.AnalysisPassed))
		Expect(a.ConsecutiveSuccesses).To(BeNumerically(">=", 2))
		Expect(a.Message).To(ContainSubstring("error-rate"))
	})

	It("refuse an unhealthy preview and keep blue serving", func() {
		app.errorPercent[deployv1alpha1.Green].Store(20)
		r := h.release(imageV1)
		spec := errorRateCheck(prometheusURL, app.run.Load())
		r.Spec.Strategy.BlueGreen.PrePromotionAnalysis = &spec
		h.releaseFirst(r)
		h.startSecond(imageV2)
		h.makeColorAvailable(deployv1alpha1.Green)
		Eventually(func() string {
			h.clock.Step(time.Second)
			h.reconcile()
			return h.condition(deployv1alpha1.ConditionDegraded).Reason
		}).WithTimeout(45 * time.Second).WithPolling(500 * time.Millisecond).Should(Equal(deployv1alpha1.ReasonAnalysisFailed))
		Expect(h.activeSelectorColor()).To(Equal("blue"))
		Expect(h.condition(deployv1alpha1.ConditionDegraded).Message).To(MatchRegexp(`error-rate.*above max 0\.05`))
		Expect(*h.deployment(deployv1alpha1.Green).Spec.Replicas).To(BeZero())
	})

	It("flip back at once when the new colour fails after the flip, keeping the old colour", func() {
		r := h.release(imageV1)
		spec := errorRateCheck(prometheusURL, app.run.Load())
		r.Spec.Strategy.BlueGreen.PostPromotionAnalysis = &deployv1alpha1.PostPromotionAnalysisSpec{AnalysisSpec: spec, WindowSeconds: 600}
		rev1 := h.releaseFirst(r)
		rev2 := h.startSecond(imageV2)
		h.makeColorAvailable(deployv1alpha1.Green)
		h.settle()
		Expect(h.activeSelectorColor()).To(Equal("green"))
		Expect(h.condition(deployv1alpha1.ConditionDegraded).Status).To(Equal(metav1.ConditionFalse), "%v", h.condition(deployv1alpha1.ConditionDegraded).Message)

		// Annotations bump a Deployment's generation, and the flip annotated blue with its
		// scale-down time: play the Deployment controller observing it.
		h.setReady(deployv1alpha1.Blue, 2)

		By("green going bad inside the window")
		app.errorPercent[deployv1alpha1.Green].Store(30)
		untilSelector("blue")
		st := h.get().Status
		Expect(st.Phase).To(Equal(deployv1alpha1.PhaseRolledBack))
		Expect(st.StableRevision).To(Equal(rev1))
		Expect(historyRecord(h.get(), rev2).Outcome).To(Equal(deployv1alpha1.OutcomeRolledBack))
		Expect(h.condition(deployv1alpha1.ConditionDegraded).Message).To(ContainSubstring("error-rate"))
		Expect(*h.deployment(deployv1alpha1.Blue).Spec.Replicas).To(Equal(int32(2)), "blue was kept up through the window")
	})

	It("watch the serving colour with the same checks during the migration, and stop the release when its error rate rises", func() {
		r := h.release(imageV1)
		spec := errorRateCheck(prometheusURL, app.run.Load())
		r.Spec.Strategy.BlueGreen.PrePromotionAnalysis = &spec
		rev1 := h.releaseFirst(r)
		Expect(h.get().Status.ServingAnalysis).To(BeNil(), "a settled release watches nothing")

		rev2 := h.startMigration()
		By("counting passes against blue while it answers well: they never end the watch")
		Eventually(func() int32 {
			h.clock.Step(time.Second)
			h.reconcile()
			a := h.get().Status.ServingAnalysis
			if a == nil {
				return 0
			}
			return a.ConsecutiveSuccesses
		}).WithTimeout(45 * time.Second).WithPolling(500 * time.Millisecond).Should(BeNumerically(">=", 2))
		a := h.get().Status.ServingAnalysis
		Expect(a.Stage).To(Equal(deployv1alpha1.AnalysisServing))
		Expect(a.Revision).To(Equal(rev2))
		Expect(a.Result).To(Equal(deployv1alpha1.AnalysisRunning))
		Expect(h.condition(deployv1alpha1.ConditionServingDegraded).Reason).To(Equal(deployv1alpha1.ReasonServingHealthy))

		By("blue's error rate rising to 50% while its pods stay ready")
		app.errorPercent[deployv1alpha1.Blue].Store(50)
		Eventually(func() string {
			h.clock.Step(time.Second)
			h.reconcile()
			return h.condition(deployv1alpha1.ConditionServingDegraded).Reason
		}).WithTimeout(45 * time.Second).WithPolling(500 * time.Millisecond).Should(Equal(deployv1alpha1.ReasonServingDegraded))
		c := h.condition(deployv1alpha1.ConditionServingDegraded)
		Expect(c.Message).To(ContainSubstring(fmt.Sprintf("blue (revision %s)", rev1)))
		Expect(c.Message).To(ContainSubstring("its pre-promotion checks fail (check error-rate: value"))
		Expect(h.get().Status.ServingAnalysis.Result).To(Equal(deployv1alpha1.AnalysisFailed))
		d := h.condition(deployv1alpha1.ConditionDegraded)
		Expect(d.Reason).To(Equal(deployv1alpha1.ReasonServingDegraded))
		Expect(d.Message).To(ContainSubstring("traffic never moved"))

		By("never deploying green once the migration completes")
		h.finishJob(h.name+"-migrate-"+rev2, true)
		h.settle()
		Expect(h.deployment(deployv1alpha1.Green)).To(BeNil())
		Expect(h.activeSelectorColor()).To(Equal("blue"))
	})

	It("count an unreachable Prometheus as inconclusive, never as a pass", func() {
		port, err := prometheustest.FreePort()
		Expect(err).NotTo(HaveOccurred())
		r := h.release(imageV1)
		spec := errorRateCheck(fmt.Sprintf("http://127.0.0.1:%d", port), app.run.Load()) // nothing listens there
		r.Spec.Strategy.BlueGreen.PrePromotionAnalysis = &spec
		h.releaseFirst(r)
		h.startSecond(imageV2)
		h.makeColorAvailable(deployv1alpha1.Green)
		for range 5 {
			h.clock.Step(time.Second)
			h.reconcile()
		}
		Expect(h.activeSelectorColor()).To(Equal("blue"))
		a := h.get().Status.Analysis
		Expect(a.Inconclusive).To(BeNumerically(">=", 5))
		Expect(a.ConsecutiveSuccesses).To(BeZero())
		promoted := h.condition(deployv1alpha1.ConditionPromoted)
		Expect(promoted.Status).To(Equal(metav1.ConditionFalse))
		Expect(promoted.Message).To(ContainSubstring("inconclusive"))
	})
})
