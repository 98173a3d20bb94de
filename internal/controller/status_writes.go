package controller

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"
)

// statusWrites lets a pass read the release from the informer cache and still never act
// on a status older than this process's own last write. After a status write it keeps
// the resourceVersion that write replaced; while the cache still holds exactly that
// version the watch has not delivered the write yet (milliseconds, usually), and the pass
// waits instead of repeating the previous pass's Events, outcomes and history. Any other
// version is at or past the write: the write was optimistically locked on the replaced
// version, so nothing can sit between the two.
//
// The alternative, a GET from the API server on every pass, costs a request per pass
// through the client's rate limit, and under a burst that queued flips for seconds.
type statusWrites struct {
	replaced sync.Map // types.NamespacedName -> resourceVersion string
}

// wrote records that a status write replaced resourceVersion replaced.
func (w *statusWrites) wrote(key types.NamespacedName, replaced string) {
	w.replaced.Store(key, replaced)
}

// cacheBehind says whether cachedVersion is the version this process's last write
// replaced. Once the cache has moved on the entry is dropped, so the map only holds
// releases with a write in flight.
func (w *statusWrites) cacheBehind(key types.NamespacedName, cachedVersion string) bool {
	replaced, ok := w.replaced.Load(key)
	if !ok {
		return false
	}
	if replaced.(string) == cachedVersion {
		return true
	}
	w.replaced.CompareAndDelete(key, replaced)
	return false
}

// forget drops a deleted release.
func (w *statusWrites) forget(key types.NamespacedName) {
	w.replaced.Delete(key)
}
