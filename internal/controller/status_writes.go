package controller

import (
	"slices"
	"sync"

	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// statusWrites lets a pass read the release from the informer cache and still never act
// on a status older than this process's own last write. After a status write it keeps
// the resourceVersion the write replaced and the release the API server returned. A pass
// that finds the replaced version in the cache (the watch has not delivered the write
// yet, usually a matter of milliseconds) acts on the written release instead: it is the
// newest version this process knows of, so the pass neither repeats the previous pass's
// Events, outcomes and history nor waits for the watch.
//
// The alternative, a GET from the API server on every pass, costs a request per pass
// through the client's rate limit; under a burst that queued flips for seconds.
type statusWrites struct {
	byRelease sync.Map // types.NamespacedName -> *statusWrite
}

// statusWrite is this process's last status write of one release.
type statusWrite struct {
	// stale are the versions the cache may still hold that are older than written: the
	// one the write replaced, and those before it while the cache lags more than one
	// write behind.
	stale   []string
	written *deployv1alpha1.SoftFactoryRelease
}

// maxStale bounds a chain of writes the cache has not caught up with. Past it, a pass
// acts on the cached release and its write loses the optimistic lock: safe, only slower.
const maxStale = 16

// wrote records a status write: the version it replaced and the release it produced
// (without managedFields, which the cache does not keep either).
func (w *statusWrites) wrote(replaced string, written *deployv1alpha1.SoftFactoryRelease) {
	key := types.NamespacedName{Namespace: written.Namespace, Name: written.Name}
	stale := []string{replaced}
	if v, ok := w.byRelease.Load(key); ok && v.(*statusWrite).written.ResourceVersion == replaced {
		// This pass acted on the previous written copy: the cache is still behind it.
		stale = append(stale, v.(*statusWrite).stale...)
	}
	kept := written.DeepCopy()
	kept.ManagedFields = nil
	w.byRelease.Store(key, &statusWrite{stale: stale[:min(len(stale), maxStale)], written: kept})
}

// newest is the release a pass acts on: the cached one, or this process's own last
// written version while the cache still holds a version that write replaced.
func (w *statusWrites) newest(cached *deployv1alpha1.SoftFactoryRelease) *deployv1alpha1.SoftFactoryRelease {
	v, ok := w.byRelease.Load(types.NamespacedName{Namespace: cached.Namespace, Name: cached.Name})
	if !ok {
		return cached
	}
	if !slices.Contains(v.(*statusWrite).stale, cached.ResourceVersion) {
		w.delivered(cached)
		return cached
	}
	return v.(*statusWrite).written.DeepCopy()
}

// delivered is told every version of a release the informer stores (and the one a pass
// or a write finds in the cache); once the cache holds none of the stale versions, it is
// at or past the write (each write was optimistically locked on the version before it,
// so nothing sits between them) and the written copy is dropped. The map only holds
// releases with a write in flight.
func (w *statusWrites) delivered(obj any) {
	rel, ok := obj.(*deployv1alpha1.SoftFactoryRelease)
	if !ok {
		if tomb, isTomb := obj.(toolscache.DeletedFinalStateUnknown); isTomb {
			rel, ok = tomb.Obj.(*deployv1alpha1.SoftFactoryRelease)
		}
		if !ok {
			return
		}
	}
	key := types.NamespacedName{Namespace: rel.Namespace, Name: rel.Name}
	if v, ok := w.byRelease.Load(key); ok && !slices.Contains(v.(*statusWrite).stale, rel.ResourceVersion) {
		w.byRelease.CompareAndDelete(key, v)
	}
}

// forget drops a deleted release.
func (w *statusWrites) forget(key types.NamespacedName) {
	w.byRelease.Delete(key)
}

// eventHandler keeps statusWrites in step with the release informer.
func (w *statusWrites) eventHandler() toolscache.ResourceEventHandler {
	return toolscache.ResourceEventHandlerFuncs{
		UpdateFunc: func(_, obj any) { w.delivered(obj) },
		DeleteFunc: func(obj any) {
			w.delivered(obj)
			if rel, ok := obj.(*deployv1alpha1.SoftFactoryRelease); ok {
				w.forget(types.NamespacedName{Namespace: rel.Namespace, Name: rel.Name})
			}
		},
	}
}
