package memlimit

import (
	"context"
	"runtime/debug"
)

// ReleaseStartupGarbage returns, once, the memory the process used to fill its caches
// and no longer needs. Listing every cached object at start-up decodes whole lists that
// are garbage as soon as the cache holds its (trimmed) copies, and the collector, paced
// by the heap, would keep that much memory from the kernel for a long time: at 1,000
// releases a collection right after the caches synced took RSS from 125 to 95 MiB.
// waitForSync is the cache's WaitForCacheSync; run the returned function as a
// manager runnable.
func ReleaseStartupGarbage(waitForSync func(context.Context) bool) func(context.Context) error {
	return func(ctx context.Context) error {
		if waitForSync(ctx) {
			debug.FreeOSMemory()
		}
		return nil
	}
}
