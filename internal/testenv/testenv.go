// Package testenv starts a real kube-apiserver and etcd (controller-runtime's envtest)
// for a Go test that needs no CRDs. The binaries come from KUBEBUILDER_ASSETS, which
// `make test` sets (hack/install-controlplane.sh envtest).
package testenv

import (
	"testing"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Start starts the API server for t and stops it when t ends.
func Start(t testing.TB) *rest.Config {
	t.Helper()
	env := &envtest.Environment{}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting envtest (it needs KUBEBUILDER_ASSETS; run the tests through `make test`): %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping envtest: %v", err)
		}
	})
	return cfg
}
