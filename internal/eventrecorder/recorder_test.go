package eventrecorder

import (
	"context"
	goruntime "runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	clienttesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/softfactory/release-operator/internal/testenv"
)

// TestAgainstAPIServer records Events through a real kube-apiserver (envtest), which
// validates them as it would in a cluster (events.k8s.io/v1 requires the reporting
// controller and instance, the action and the event time).
func TestAgainstAPIServer(t *testing.T) {
	cfg := testenv.Start(t)
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, eventsv1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	regarding := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "default"}}
	if err := c.Create(ctx, regarding); err != nil {
		t.Fatal(err)
	}
	clock := clienttesting.NewFakePassiveClock(time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC))
	r := New(c, scheme, "softfactory-release-operator", clock)
	go func() { _ = r.Start(ctx) }()

	// Only the Events about regarding: the API server records its own (in "default",
	// about the kubernetes Service) while it starts.
	stored := func() []eventsv1.Event {
		list := &eventsv1.EventList{}
		if err := c.List(ctx, list, client.InNamespace("default")); err != nil {
			t.Fatal(err)
		}
		var out []eventsv1.Event
		for _, e := range list.Items {
			if e.Regarding.UID == regarding.UID {
				out = append(out, e)
			}
		}
		return out
	}
	notes := func() []string {
		events := stored()
		out := make([]string, 0, len(events))
		for _, e := range events {
			out = append(out, e.Reason+": "+e.Note)
		}
		return out
	}
	waitFor := func(n int) []string {
		t.Helper()
		var got []string
		err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
			got = notes()
			return len(got) >= n, nil
		})
		if err != nil {
			t.Fatalf("waiting for %d Events, have %v", n, got)
		}
		return got
	}

	r.Eventf(regarding, nil, corev1.EventTypeNormal, "Deploying", "Deploy", "Rolling %s to revision %s", "shop-green", "abc")
	got := waitFor(1)
	e := stored()[0]
	if e.ReportingController != "softfactory-release-operator" || !strings.HasPrefix(e.ReportingInstance, "softfactory-release-operator") ||
		e.Action != "Deploy" || e.Type != corev1.EventTypeNormal || e.Regarding.Kind != "ConfigMap" || e.Regarding.Name != "shop" {
		t.Errorf("the Event as stored: %+v", e)
	}
	if got[0] != "Deploying: Rolling shop-green to revision abc" {
		t.Errorf("Events %v", got)
	}

	// An exact repeat about the same version of the object within the window is not
	// recorded again; anything that differs is.
	r.Eventf(regarding, nil, corev1.EventTypeNormal, "Deploying", "Deploy", "Rolling %s to revision %s", "shop-green", "abc")
	r.Eventf(regarding, nil, corev1.EventTypeWarning, "ReconcileError", "Reconcile", "the API server said no")
	waitFor(2)
	clock.SetTime(clock.Now().Add(time.Minute))
	r.Eventf(regarding, nil, corev1.EventTypeWarning, "ReconcileError", "Reconcile", "the API server said no")
	clock.SetTime(clock.Now().Add(RepeatWindow))
	r.Eventf(regarding, nil, corev1.EventTypeWarning, "ReconcileError", "Reconcile", "the API server said no")
	waitFor(3)
	if n := r.remembered(); n != 1 {
		t.Errorf("fingerprints older than the window are forgotten: holding %d, want 1", n)
	}

	// The same fact about a later version of the object is news (the next release's
	// ScaledDown reads the same as the one two releases back).
	regarding.Data = map[string]string{"revision": "def"}
	if err := c.Update(ctx, regarding); err != nil {
		t.Fatal(err)
	}
	r.Eventf(regarding, nil, corev1.EventTypeNormal, "Deploying", "Deploy", "Rolling %s to revision %s", "shop-green", "abc")
	waitFor(4)

	// A note longer than the API server takes is cut, not refused. (Repeats are dropped
	// before they are queued, so once this one is stored nothing else can arrive.)
	r.Eventf(regarding, nil, corev1.EventTypeWarning, "ReconcileError", "Reconcile", "%s", strings.Repeat("é", 600))
	waitFor(5)
	if got = notes(); len(got) != 5 {
		t.Errorf("want the first Event, one ReconcileError, the same error past the window, Deploying about the new version and the long note; got %v", got)
	}
}

// BenchmarkRememberedEventBytes reports the heap one remembered Event holds in the
// repeat table (remembered-B/event; 10,000 Events, a window's worth at 1,000 releases).
func BenchmarkRememberedEventBytes(b *testing.B) {
	const events = 10000
	heap := func() int64 {
		goruntime.GC()
		var m goruntime.MemStats
		goruntime.ReadMemStats(&m)
		return int64(m.HeapAlloc)
	}
	clock := clienttesting.NewFakePassiveClock(time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC))
	ref := &corev1.ObjectReference{Kind: "SoftFactoryRelease", Namespace: "team-a", Name: "shop", UID: "uid-of-shop"}
	var perEvent float64
	for range b.N {
		r := New(nil, runtime.NewScheme(), "softfactory-release-operator", clock)
		before := heap()
		for i := range events {
			ref.ResourceVersion = strconv.Itoa(i)
			r.isRepeat(fingerprint(ref, corev1.EventTypeNormal, "Deploying", "Deploy", "Rolling shop-green to revision abc"), clock.Now())
		}
		perEvent = float64(heap()-before) / events
		goruntime.KeepAlive(r)
	}
	b.ReportMetric(perEvent, "remembered-B/event")
}
