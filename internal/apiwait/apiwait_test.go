package apiwait

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/softfactory/release-operator/internal/testenv"
)

var release = schema.GroupVersionKind{Group: "deploy.softfactory.io", Version: "v1alpha1", Kind: "SoftFactoryRelease"}

// lines collects what the wait logs.
type lines struct {
	mu  sync.Mutex
	all []string
}

func (l *lines) add(prefix, args string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all = append(l.all, args)
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.all, "\n")
}

// The manager applied together with its CRD (kubectl apply -k) starts before the API
// server serves the kind: the wait starts on an API server without the CRD, the CRD is
// installed a moment later, and the wait returns, having said what it waited for.
func TestWaitReturnsOnceTheCRDInstalledAfterItStartedIsServed(t *testing.T) {
	cfg := testenv.Start(t)
	dc := discovery.NewDiscoveryClientForConfigOrDie(cfg)
	var logged lines
	log := funcr.New(logged.add, funcr.Options{})

	done := make(chan error, 1)
	started := time.Now()
	go func() {
		done <- ForKind(context.Background(), dc, release, Options{Timeout: time.Minute, FirstInterval: 50 * time.Millisecond, MaxInterval: time.Second}, log)
	}()

	// The wait must still be waiting while there is no CRD, and must have said so.
	select {
	case err := <-done:
		t.Fatalf("the wait returned (%v) before the CRD was installed", err)
	case <-time.After(2 * time.Second):
	}
	if got := logged.String(); !strings.Contains(got, "Waiting for the API server to serve the kind") ||
		!strings.Contains(got, `"kind"="SoftFactoryRelease"`) || !strings.Contains(got, `"groupVersion"="deploy.softfactory.io/v1alpha1"`) {
		t.Fatalf("the wait did not log what it waits for; logged:\n%s", got)
	}

	if _, err := envtest.InstallCRDs(cfg, envtest.CRDInstallOptions{
		Paths: []string{filepath.Join("..", "..", "config", "crd", "bases")},
	}); err != nil {
		t.Fatal(err)
	}
	installed := time.Now()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the wait failed after the CRD was installed: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the wait did not return within 30s of the CRD being installed")
	}
	t.Logf("returned %s after the CRD was installed (%s after it started)",
		time.Since(installed).Round(time.Millisecond), time.Since(started).Round(time.Millisecond))
	if !strings.Contains(logged.String(), "The API server serves the kind now") {
		t.Errorf("the wait did not log that it is over; logged:\n%s", logged.String())
	}
}

func TestWaitGivesUpWithAMessageThatSaysWhatToInstall(t *testing.T) {
	cfg := testenv.Start(t)
	dc := discovery.NewDiscoveryClientForConfigOrDie(cfg)
	started := time.Now()
	err := ForKind(context.Background(), dc, release, Options{Timeout: time.Second, FirstInterval: 50 * time.Millisecond}, funcr.New(func(string, string) {}, funcr.Options{}))
	if err == nil {
		t.Fatal("the wait returned without the CRD installed")
	}
	if elapsed := time.Since(started); elapsed > 10*time.Second {
		t.Errorf("the wait took %s past its 1s timeout", elapsed)
	}
	for _, want := range []string{"deploy.softfactory.io/v1alpha1 SoftFactoryRelease", "install the CRD"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error %q does not say %q", err, want)
		}
	}
}
