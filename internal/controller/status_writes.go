package controller

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// statusWrites lets a pass read the release from the informer cache and still never act
// on a status older than this process's own last write. After a status write it keeps
// the resourceVersion the write replaced and the release the API server returned. A pass
// that finds exactly the replaced version in the cache (the watch has not delivered the
// write yet, usually a matter of milliseconds) acts on the written release instead: it is
// the newest version this process knows of, so the pass neither repeats the previous
// pass's Events, outcomes and history nor waits for the watch. Any other cached version
// is at or past the write: the write was optimistically locked on the replaced version,
// so nothing can sit between the two.
//
// The alternative, a GET from the API server on every pass, costs a request per pass
// through the client's rate limit; under a burst that queued flips for seconds.
type statusWrites struct {
	byRelease sync.Map // types.NamespacedName -> statusWrite
}

type statusWrite struct {
	replaced string
	written  *deployv1alpha1.SoftFactoryRelease
}

// wrote records a status write: the version it replaced and the release it produced.
func (w *statusWrites) wrote(replaced string, written *deployv1alpha1.SoftFactoryRelease) {
	w.byRelease.Store(types.NamespacedName{Namespace: written.Namespace, Name: written.Name},
		statusWrite{replaced: replaced, written: written.DeepCopy()})
}

// newest is the release a pass acts on: the cached one, or this process's own last
// written version while the cache still holds the version that write replaced.
func (w *statusWrites) newest(cached *deployv1alpha1.SoftFactoryRelease) *deployv1alpha1.SoftFactoryRelease {
	v, ok := w.byRelease.Load(types.NamespacedName{Namespace: cached.Namespace, Name: cached.Name})
	if !ok || v.(statusWrite).replaced != cached.ResourceVersion {
		return cached
	}
	return v.(statusWrite).written.DeepCopy()
}

// delivered is told every version of a release the informer stores; once the cache has
// moved past the replaced version, the written copy is dropped, so the map only holds
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
	if v, ok := w.byRelease.Load(key); ok && v.(statusWrite).replaced != rel.ResourceVersion {
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
