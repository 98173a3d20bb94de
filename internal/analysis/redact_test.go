package analysis

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// A Prometheus URL with user:password@ reaches check messages, and from them the
// release's status, Events and logs: the password must not. Plain Go tests (not the
// Ginkgo suite, which needs a real Prometheus): each failure here is one that needs no
// Prometheus at all.

const secret = "s3cr%2Ft-Hunter2" // percent-encoded "s3cr/t-Hunter2", as a user must write a '/'

func evaluateOnce(t *testing.T, url string, timeout time.Duration) string {
	t.Helper()
	spec := deployv1alpha1.AnalysisSpec{PrometheusURL: url, Checks: []deployv1alpha1.MetricCheck{errorRate}}
	evaluation := Evaluator{Timeout: timeout}.Evaluate(context.Background(), spec, blue)
	if evaluation.Status != StatusInconclusive {
		t.Fatalf("status %s, want Inconclusive: %s", evaluation.Status, evaluation.Summary())
	}
	return evaluation.Summary()
}

func assertRedacted(t *testing.T, message, wantShown string) {
	t.Helper()
	for _, leak := range []string{secret, "s3cr/t-Hunter2", "Hunter2"} {
		if strings.Contains(message, leak) {
			t.Errorf("the password (%q) is in the message: %s", leak, message)
		}
	}
	if !strings.Contains(message, wantShown) {
		t.Errorf("the message does not say where Prometheus was (%s): %s", wantShown, message)
	}
}

func TestPrometheusPasswordIsNeverInACheckMessage(t *testing.T) {
	t.Run("nothing listens", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		_ = l.Close() // released: nothing listens there
		message := evaluateOnce(t, "http://admin:"+secret+"@"+addr, 0)
		assertRedacted(t, message, "Prometheus unreachable at http://admin:xxxxx@"+addr)
	})

	t.Run("accepts but never answers", func(t *testing.T) {
		silent, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = silent.Close() }()
		addr := silent.Addr().String()
		message := evaluateOnce(t, "http://admin:"+secret+"@"+addr, 300*time.Millisecond)
		assertRedacted(t, message, "Prometheus at http://admin:xxxxx@"+addr+" did not answer in time")
	})

	t.Run("answers with a server error", func(t *testing.T) {
		server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "upstream down", http.StatusBadGateway)
		}))
		defer server.Close()
		shown := "http://admin:xxxxx@" + strings.TrimPrefix(server.URL, "http://")
		message := evaluateOnce(t, strings.Replace(server.URL, "http://", "http://admin:"+secret+"@", 1), 0)
		assertRedacted(t, message, "Prometheus at "+shown+" answered with an error")
	})

	t.Run("a token in the query, and a server error", func(t *testing.T) {
		server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "upstream down", http.StatusBadGateway)
		}))
		defer server.Close()
		message := evaluateOnce(t, server.URL+"/?token="+secret, 0)
		assertRedacted(t, message, "Prometheus at "+server.URL+"/?token=xxxxx answered with an error")
	})

	t.Run("a URL that does not parse", func(t *testing.T) {
		message := evaluateOnce(t, "http://admin:"+secret+"@127.0.0.1:"+strconv.Itoa(99999)+"x", 0)
		assertRedacted(t, message, "prometheusURL \"http://xxxxx@127.0.0.1:99999x\" is not usable")
	})
}

func TestRedactURL(t *testing.T) {
	for raw, want := range map[string]string{
		"https://prometheus.monitoring:9090":                                   "https://prometheus.monitoring:9090",
		"https://admin:" + secret + "@prometheus:9090/p":                       "https://admin:xxxxx@prometheus:9090/p",
		"https://reader@prometheus:9090":                                       "https://reader@prometheus:9090",
		"https://admin:" + secret + "@prometheus:port":                         "https://xxxxx@prometheus:port",
		"https://prometheus:9090/p?token=" + secret + "&dedup=true":            "https://prometheus:9090/p?token=xxxxx&dedup=true",
		"https://prometheus:9090/?Api_Key=" + secret:                           "https://prometheus:9090/?Api_Key=xxxxx",
		"https://prometheus:9090/?orgId=1":                                     "https://prometheus:9090/?orgId=1",
		"https://admin:" + secret + "@prometheus:port/?access_token=" + secret: "https://xxxxx@prometheus:port/?xxxxx",
	} {
		if got := RedactURL(raw); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", raw, got, want)
		}
	}
}
