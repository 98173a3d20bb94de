//go:build bench

package main

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// These drive the watcher's EndpointSlice handlers with the slices the EndpointSlice
// controller writes, in the order a watch delivers them: what `make bench-smoke` fails
// on must be judged right.

func slice(service, name string, endpoints map[string]bool) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: service}}}
	for pod, ready := range endpoints {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Name: pod},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ready)},
		})
	}
	return s
}

func testWatcher() *watcher {
	return &watcher{replicas: 2, rollouts: map[string]*rollout{}, endpoints: map[string]serviceEndpoints{}}
}

func TestAnActiveServiceWithoutReadyEndpointsIsAnOutage(t *testing.T) {
	w := testWatcher()
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

	// A new active Service: its slice starts empty, then lists the pods not ready, then
	// ready. Not an outage: it never served.
	w.onEndpointSlice(slice("r0000", "r0000-a", nil), at(0))
	w.onEndpointSlice(slice("r0000", "r0000-a", map[string]bool{"r0000-blue-x-1": false}), at(1))
	if got, _ := w.allOutages(); len(got) != 0 {
		t.Fatalf("a Service that never had a ready endpoint had outages: %v", got)
	}
	w.onEndpointSlice(slice("r0000", "r0000-a", map[string]bool{"r0000-blue-x-1": true}), at(2))

	// The flip as a stale EndpointSlice controller would write it: the old pods out, the
	// new ones in but not ready. Then a second slice lists them ready: the outage ends.
	w.onEndpointSlice(slice("r0000", "r0000-a", map[string]bool{"r0000-green-y-1": false, "r0000-green-y-2": false}), at(10))
	w.onEndpointSlice(slice("r0000", "r0000-b", map[string]bool{"r0000-green-y-3": true}), at(15))
	// A slice deleted while the other lists nothing ready: a second outage.
	w.forgetSlice(slice("r0000", "r0000-b", nil), at(20))
	// The preview Service is not an active one: its slices emptying is no outage.
	w.onEndpointSlice(slice("r0000-preview", "r0000-preview-a", map[string]bool{"r0000-green-y-1": true}), at(21))
	w.onEndpointSlice(slice("r0000-preview", "r0000-preview-a", nil), at(22))

	got, watched := w.allOutages()
	if watched != 1 {
		t.Errorf("watched %d active Services, want 1", watched)
	}
	if len(got) != 2 {
		t.Fatalf("outages %v, want 2", got)
	}
	if got[0].Release != "r0000" || !got[0].Start.Equal(at(10)) || !got[0].End.Equal(at(15)) {
		t.Errorf("first outage %+v, want r0000 from +10 ms to +15 ms", got[0])
	}
	if !got[1].Start.Equal(at(20)) || !got[1].End.IsZero() {
		t.Errorf("second outage %+v, want from +20 ms, not over", got[1])
	}
	if n := len(w.outagesBetween(at(11), at(30))); n != 1 {
		t.Errorf("%d outages started in [+11, +30) ms, want 1", n)
	}
}

func TestTrafficMovesWhenOnlyTheNewColoursPodsAreListedReady(t *testing.T) {
	w := testWatcher()
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	r := &rollout{release: "r0001", oldColor: "blue", newColor: "green", deploySeen: t0}
	w.expect(r)

	w.onEndpointSlice(slice("r0001", "r0001-a", map[string]bool{"r0001-blue-x-1": true, "r0001-blue-x-2": true}), at(1))
	// The preview Service lists both new pods ready: the gate's half, not the traffic.
	w.onEndpointSlice(slice("r0001-preview", "r0001-preview-a", map[string]bool{"r0001-green-y-1": true, "r0001-green-y-2": true}), at(2))
	// Old and new together, or the new ones not all ready: not moved yet.
	w.onEndpointSlice(slice("r0001", "r0001-a", map[string]bool{"r0001-blue-x-1": true, "r0001-green-y-1": true, "r0001-green-y-2": true}), at(3))
	w.onEndpointSlice(slice("r0001", "r0001-a", map[string]bool{"r0001-green-y-1": true, "r0001-green-y-2": false}), at(4))
	w.onEndpointSlice(slice("r0001", "r0001-a", map[string]bool{"r0001-green-y-1": true, "r0001-green-y-2": true}), at(5))

	got := w.done("r0001")
	if !got.endpoints.Equal(at(2)) {
		t.Errorf("preview endpoints ready at %v, want +2 ms", got.endpoints.Sub(t0))
	}
	if !got.trafficMoved.Equal(at(5)) {
		t.Errorf("traffic moved at %v, want +5 ms", got.trafficMoved.Sub(t0))
	}
	if o, _ := w.allOutages(); len(o) != 0 {
		t.Errorf("outages %v, want none", o)
	}
}

func TestARunWithAnOutageFails(t *testing.T) {
	start := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	b := &bench{cfg: config{requireZeroResyncIOs: true}, res: &results{}}
	if err := b.check(); err != nil {
		t.Fatalf("a run without outages or writes failed: %v", err)
	}
	b.res.Outages = []outage{{Release: "r0007", Start: start, End: start.Add(35 * time.Millisecond)}}
	err := b.check()
	if err == nil {
		t.Fatal("a run with an outage passed")
	}
	for _, want := range []string{"r0007", "03:00:00.000", "35.0 ms", "no ready endpoint"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the failure %q does not say %q", err, want)
		}
	}
}
