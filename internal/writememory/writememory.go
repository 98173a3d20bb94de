// Package writememory remembers a controller's own writes of the objects it reconciles,
// so that a pass reading from an informer cache never acts on an object older than its
// own last write, and so that low-value writes can be spaced out.
package writememory

import (
	"slices"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Newest lets a pass read an object from the informer cache and still never act on a
// version older than this process's own last write of it. After a write it keeps the
// resourceVersion the write replaced and the object the API server returned. A pass that
// finds a replaced version in the cache (the watch has not delivered the write yet,
// usually a matter of milliseconds) acts on the written object instead: it is the newest
// version this process knows of.
//
// Contract: every write is optimistically locked on the version it replaces, and
// Delivered is told every version the informer stores (EventHandler does that).
type Newest[T client.Object] struct {
	byKey sync.Map // types.NamespacedName -> *written[T]
}

// written is this process's last write of one object.
type written[T client.Object] struct {
	// stale are the versions the cache may still hold that are older than obj: the one
	// the write replaced, and those before it while the cache lags more than one write
	// behind.
	stale []string
	obj   T
}

// maxStale bounds a chain of writes the cache has not caught up with. Past it, a pass
// acts on the cached object and its write loses the optimistic lock: safe, only slower.
const maxStale = 16

// Wrote records a write: the version it replaced and the object it produced (kept
// without managedFields, which the cache does not keep either).
func (n *Newest[T]) Wrote(replaced string, obj T) {
	key := client.ObjectKeyFromObject(obj)
	stale := []string{replaced}
	if v, ok := n.byKey.Load(key); ok && v.(*written[T]).obj.GetResourceVersion() == replaced {
		// This pass acted on the previous written copy: the cache is still behind it.
		stale = append(stale, v.(*written[T]).stale...)
	}
	kept := obj.DeepCopyObject().(T)
	kept.SetManagedFields(nil)
	n.byKey.Store(key, &written[T]{stale: stale[:min(len(stale), maxStale)], obj: kept})
}

// Of is the object a pass acts on: the cached one, or this process's own last written
// version while the cache still holds a version that write replaced.
func (n *Newest[T]) Of(cached T) T {
	v, ok := n.byKey.Load(client.ObjectKeyFromObject(cached))
	if !ok {
		return cached
	}
	if !slices.Contains(v.(*written[T]).stale, cached.GetResourceVersion()) {
		n.Delivered(cached)
		return cached
	}
	return v.(*written[T]).obj.DeepCopyObject().(T)
}

// Delivered is told every version of an object the informer stores (and the one a pass
// or a write finds in the cache); once the cache holds none of the stale versions, it is
// at or past the write (each write was optimistically locked on the version before it,
// so nothing sits between them) and the written copy is dropped. Only objects with a
// write in flight are held.
func (n *Newest[T]) Delivered(obj any) {
	o, ok := obj.(T)
	if !ok {
		if tomb, isTomb := obj.(toolscache.DeletedFinalStateUnknown); isTomb {
			o, ok = tomb.Obj.(T)
		}
		if !ok {
			return
		}
	}
	key := client.ObjectKeyFromObject(o)
	if v, ok := n.byKey.Load(key); ok && !slices.Contains(v.(*written[T]).stale, o.GetResourceVersion()) {
		n.byKey.CompareAndDelete(key, v)
	}
}

// Forget drops a deleted object.
func (n *Newest[T]) Forget(key types.NamespacedName) {
	n.byKey.Delete(key)
}

// Held is the number of objects with a write the cache has not delivered yet.
func (n *Newest[T]) Held() int {
	count := 0
	n.byKey.Range(func(_, _ any) bool { count++; return true })
	return count
}

// EventHandler keeps n in step with the objects' informer.
func (n *Newest[T]) EventHandler() toolscache.ResourceEventHandler {
	return toolscache.ResourceEventHandlerFuncs{
		UpdateFunc: func(_, obj any) { n.Delivered(obj) },
		DeleteFunc: func(obj any) {
			n.Delivered(obj)
			if o, ok := obj.(T); ok {
				n.Forget(client.ObjectKeyFromObject(o))
			}
		},
	}
}

// LastWrite remembers when this process last wrote each object, so that a write of
// little value (a progress report) can wait until the last one is some time old. It
// starts empty: after a restart the first write goes at once.
type LastWrite struct {
	at sync.Map // types.NamespacedName -> time.Time
}

// Wrote records a write of key at now.
func (l *LastWrite) Wrote(key types.NamespacedName, now time.Time) {
	l.at.Store(key, now)
}

// Forget drops a deleted object.
func (l *LastWrite) Forget(key types.NamespacedName) {
	l.at.Delete(key)
}

// Wait is how long from now until key's last write is interval old: zero when it
// already is, or when this process has not written key.
func (l *LastWrite) Wait(key types.NamespacedName, now time.Time, interval time.Duration) time.Duration {
	v, ok := l.at.Load(key)
	if !ok {
		return 0
	}
	return max(v.(time.Time).Add(interval).Sub(now), 0)
}
