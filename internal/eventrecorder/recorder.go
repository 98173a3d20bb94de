// Package eventrecorder records the operator's Events (events.k8s.io/v1) without
// client-go's series cache.
//
// client-go's events broadcaster keeps every Event it sent for six to twelve minutes, to
// turn repeats into a series. The operator records one Event per fact of a release
// (Deploying, Promoted, ScaledDown...), which almost never repeat, so that cache is
// mostly a copy of everything recently said: about 2 KB per Event, 13 MB of the live
// heap after 1,000 releases flipped at once (docs/benchmarks.md). This recorder keeps a
// fingerprint and a time per recent Event instead, and drops an exact repeat about the
// same version of the object (same resourceVersion, type, reason, action and note)
// within the repeat window: a pass that fails the same way on every retry says so once
// per window, while the same fact about a later version of the release (the next
// release's ScaledDown) is recorded again.
//
// Events are best effort, as in client-go: they are queued without blocking the caller,
// sent by a few workers with a short retry, and dropped with a log line when the queue
// is full or the API server refuses them.
package eventrecorder

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
	"sync"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/reference"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
)

const (
	// RepeatWindow is how long an exact repeat of an Event about the same version of an
	// object is not recorded again.
	RepeatWindow = 10 * time.Minute
	// queueSize is how many Events may wait to be sent, as in client-go.
	queueSize = 1000
	// senders is how many Events are sent at once. One is enough when the API server
	// answers in milliseconds; when it answers in 200 ms (1,000 releases updated at once)
	// one sender falls behind the six Events per release.
	senders = 4
	// attempts is how often an Event is sent before it is dropped.
	attempts = 3
	// maxNoteBytes is the API server's limit on an Event's note.
	maxNoteBytes = 1024
)

// Recorder implements client-go's events.EventRecorder. Start it (it is a manager
// Runnable) before Events are expected to reach the API server; Events recorded before
// wait in the queue.
type Recorder struct {
	client     client.Client
	scheme     *runtime.Scheme
	clock      clock.PassiveClock
	controller string
	instance   string
	queue      chan *eventsv1.Event
	retryDelay time.Duration

	mu sync.Mutex
	// recent holds, per fingerprint of an Event recorded within RepeatWindow, when it
	// was recorded (Unix nanoseconds). Eight bytes of fingerprint and eight of time: at
	// 1,000 releases a window holds ~10,000 Events, and the 32-byte hash with a
	// time.Time took 4x the memory. Two different Events sharing 64 bits of a SHA-256
	// (odds ~10^-11 at that size) would cost one best-effort Event, nothing else.
	recent    map[uint64]int64
	lastPrune time.Time
}

// New returns a recorder that creates Events with c, as reportingController
// controller. c should have a rate limit of its own: Events must not hold up the
// reconciler's requests.
func New(c client.Client, scheme *runtime.Scheme, controller string, clk clock.PassiveClock) *Recorder {
	host, _ := os.Hostname()
	instance := controller
	if host != "" {
		instance = controller + "-" + host
	}
	return &Recorder{
		client:     c,
		scheme:     scheme,
		clock:      clk,
		controller: controller,
		instance:   truncate(instance, 128),
		queue:      make(chan *eventsv1.Event, queueSize),
		retryDelay: time.Second,
		recent:     map[uint64]int64{},
	}
}

// Eventf queues an Event about regarding (and related, which may be nil).
func (r *Recorder) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	log := logf.Log.WithName("events")
	ref, err := reference.GetReference(r.scheme, regarding)
	if err != nil {
		log.Error(err, "Not recording an Event about an object without a reference", "reason", reason)
		return
	}
	var relatedRef *corev1.ObjectReference
	if related != nil {
		if relatedRef, err = reference.GetReference(r.scheme, related); err != nil {
			log.Error(err, "Recording an Event without its related object", "reason", reason)
		}
	}
	message := truncate(fmt.Sprintf(note, args...), maxNoteBytes)
	now := r.clock.Now()
	if r.isRepeat(fingerprint(ref, eventtype, reason, action, message), now) {
		return
	}
	namespace := ref.Namespace
	if namespace == "" {
		namespace = metav1.NamespaceDefault
	}
	event := &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{
			// client-go's name (object.time) and a suffix from the API server: the time
			// alone can be the same for two Events about one object.
			GenerateName: fmt.Sprintf("%s.%x-", ref.Name, now.UnixNano()),
			Namespace:    namespace,
		},
		EventTime:           metav1.NewMicroTime(now),
		ReportingController: r.controller,
		ReportingInstance:   r.instance,
		Action:              action,
		Reason:              reason,
		Regarding:           *ref,
		Related:             relatedRef,
		Note:                message,
		Type:                eventtype,
	}
	select {
	case r.queue <- event:
	default:
		log.Info("Dropped an Event: the queue is full", "reason", reason, "object", ref.Name, "namespace", ref.Namespace)
	}
}

// isRepeat says whether the same Event was recorded within RepeatWindow, and remembers
// this one otherwise. Fingerprints past the window are forgotten, checked at most once a
// minute.
func (r *Recorder) isRepeat(key uint64, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if at, ok := r.recent[key]; ok && now.Sub(time.Unix(0, at)) < RepeatWindow {
		return true
	}
	if now.Sub(r.lastPrune) >= time.Minute {
		r.forgetBefore(now.Add(-RepeatWindow))
		r.lastPrune = now
	}
	r.recent[key] = now.UnixNano()
	return false
}

// forgetBefore drops the fingerprints recorded before cutoff.
func (r *Recorder) forgetBefore(cutoff time.Time) {
	limit := cutoff.UnixNano()
	for k, at := range r.recent {
		if at <= limit {
			delete(r.recent, k)
		}
	}
}

// remembered is how many fingerprints the recorder holds (for tests).
func (r *Recorder) remembered() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.recent)
}

// Start sends queued Events until ctx ends.
func (r *Recorder) Start(ctx context.Context) error {
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case e := <-r.queue:
					r.send(ctx, e)
				}
			}
		})
	}
	wg.Wait()
	return nil
}

// send creates e, retrying what may be transient.
func (r *Recorder) send(ctx context.Context, e *eventsv1.Event) {
	var err error
	for attempt := 1; attempt <= attempts; attempt++ {
		err = r.client.Create(ctx, e)
		if err == nil {
			return
		}
		if apierrors.IsInvalid(err) || apierrors.IsForbidden(err) || apierrors.IsNotFound(err) || apierrors.IsBadRequest(err) {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(r.retryDelay * time.Duration(attempt)):
		}
	}
	logf.Log.WithName("events").Error(err, "Dropped an Event the API server did not take",
		"reason", e.Reason, "object", e.Regarding.Name, "namespace", e.Regarding.Namespace)
}

// NeedLeaderElection: every replica records the Events of what it does.
func (r *Recorder) NeedLeaderElection() bool { return false }

func fingerprint(ref *corev1.ObjectReference, eventtype, reason, action, note string) uint64 {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%s\x00%s\x00%s\x00%s\x00%s\x00%s",
		ref.UID, ref.ResourceVersion, ref.Namespace, ref.Name, eventtype, reason, action, note))
	return binary.LittleEndian.Uint64(sum[:8])
}

// truncate cuts s to at most n bytes, at a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
