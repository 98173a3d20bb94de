// Package apiwait holds the operator's start-up back until the API server serves its
// kind. Applying the CRD and the manager together (kubectl apply -k, a Helm install)
// starts the manager a moment after the CRD: the CRD may already be Established while
// discovery does not list the kind yet, and a manager set up then exits with "no matches
// for kind". Waiting for discovery, with a log line that says what for, turns that into
// a start a few seconds later.
package apiwait

import (
	"context"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
)

// Options bound the wait. Zero values take the defaults.
type Options struct {
	// Timeout is how long to wait in all before giving up. Default 2 minutes.
	Timeout time.Duration
	// FirstInterval is the pause after the first miss; it doubles up to MaxInterval.
	// Defaults 250 ms and 5 s.
	FirstInterval, MaxInterval time.Duration
}

// ForKind returns once discovery lists kind in its group and version, or an error that
// says what is missing when Timeout passes or ctx ends first. It logs when it starts to
// wait, and again at most every MaxInterval while it does, naming the kind.
func ForKind(ctx context.Context, dc discovery.DiscoveryInterface, gvk schema.GroupVersionKind, opts Options, log logr.Logger) error {
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Minute
	}
	if opts.FirstInterval <= 0 {
		opts.FirstInterval = 250 * time.Millisecond
	}
	if opts.MaxInterval <= 0 {
		opts.MaxInterval = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()

	started := time.Now()
	interval := opts.FirstInterval
	var lastLog time.Time
	for attempt := 1; ; attempt++ {
		served, why := serves(dc, gvk)
		if served {
			if attempt > 1 {
				log.Info("The API server serves the kind now; starting", "kind", gvk.Kind, "groupVersion", gvk.GroupVersion().String(),
					"waited", time.Since(started).Round(time.Millisecond).String())
			}
			return nil
		}
		if time.Since(lastLog) >= opts.MaxInterval {
			log.Info("Waiting for the API server to serve the kind (its CRD is not installed, or was installed a moment ago and discovery has not caught up)",
				"kind", gvk.Kind, "groupVersion", gvk.GroupVersion().String(), "reason", why,
				"waited", time.Since(started).Round(time.Millisecond).String(), "timeout", opts.Timeout.String())
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the API server did not serve %s %s within %s (last: %s): install the CRD (make install, or the chart with crd.enabled) and check that its group and version match",
				gvk.GroupVersion(), gvk.Kind, opts.Timeout, why)
		case <-time.After(interval):
		}
		interval = min(2*interval, opts.MaxInterval)
	}
}

// serves says whether discovery lists the kind, and if not, why.
func serves(dc discovery.DiscoveryInterface, gvk schema.GroupVersionKind) (bool, string) {
	resources, err := dc.ServerResourcesForGroupVersion(gvk.GroupVersion().String())
	if apierrors.IsNotFound(err) {
		return false, "discovery does not list " + gvk.GroupVersion().String()
	}
	if err != nil {
		return false, "discovery failed: " + err.Error()
	}
	for _, r := range resources.APIResources {
		if r.Kind == gvk.Kind {
			return true, ""
		}
	}
	return false, "discovery lists " + gvk.GroupVersion().String() + " without " + gvk.Kind
}
