package memlimit

import (
	"context"
	"testing"
)

func TestReleaseStartupGarbageWaitsForTheCaches(t *testing.T) {
	for _, synced := range []bool{true, false} {
		asked := false
		run := ReleaseStartupGarbage(func(context.Context) bool { asked = true; return synced })
		if err := run(context.Background()); err != nil {
			t.Fatalf("synced=%v: %v", synced, err)
		}
		if !asked {
			t.Fatalf("synced=%v: returned without waiting for the caches", synced)
		}
	}
}
