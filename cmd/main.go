/*
Copyright 2026.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package main

import (
	"context"
	"crypto/tls"
	"flag"
	"os"
	goruntime "runtime"
	"strings"
	"time"

	// Import all Kubernetes client auth plugins (e.g. Azure, GCP, OIDC, etc.)
	// to ensure that exec-entrypoint and run can make use of them.
	_ "k8s.io/client-go/plugin/pkg/client/auth"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
	"github.com/softfactory/release-operator/internal/apiwait"
	"github.com/softfactory/release-operator/internal/cacheshape"
	"github.com/softfactory/release-operator/internal/controller"
	"github.com/softfactory/release-operator/internal/eventrecorder"
	"github.com/softfactory/release-operator/internal/memlimit"
	"github.com/softfactory/release-operator/internal/metricsauth"
	"github.com/softfactory/release-operator/internal/monitoring"
	// +kubebuilder:scaffold:imports
)

var (
	scheme   = runtime.NewScheme()
	setupLog = ctrl.Log.WithName("setup")
)

// The scheme holds the kinds the operator reads and writes, not all of client-go's:
// every registered group costs memory for nothing.
func init() {
	utilruntime.Must(corev1.AddToScheme(scheme))
	utilruntime.Must(appsv1.AddToScheme(scheme))
	utilruntime.Must(batchv1.AddToScheme(scheme))
	utilruntime.Must(discoveryv1.AddToScheme(scheme))
	utilruntime.Must(eventsv1.AddToScheme(scheme))
	utilruntime.Must(deployv1alpha1.AddToScheme(scheme))
	utilruntime.Must(monitoringv1.AddToScheme(scheme))
	// +kubebuilder:scaffold:scheme
}

func main() {
	var (
		metricsAddr, probeAddr, pprofAddr   string
		watchNamespaces, electionNamespace  string
		enableLeaderElection, secureMetrics bool
		enableHTTP2                         bool
		apiQPS                              float64
		apiBurst, maxConcurrentReconciles   int
		crdWaitTimeout                      time.Duration
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8443",
		"The address the metrics endpoint binds to: :8443 serves HTTPS with authentication, '0' disables it.")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "The address the probe endpoint binds to.")
	flag.StringVar(&pprofAddr, "pprof-bind-address", "",
		"The address Go's pprof profiles are served on, for finding where time and memory go. "+
			"Empty (the default) serves none.")
	flag.BoolVar(&enableLeaderElection, "leader-elect", false,
		"Enable leader election, so that only one replica of the operator acts at a time.")
	flag.StringVar(&electionNamespace, "leader-election-namespace", "",
		"The namespace of the leader-election Lease. Empty: the operator pod's own namespace (required outside a cluster).")
	flag.BoolVar(&secureMetrics, "metrics-secure", true,
		"Serve metrics over HTTPS with Kubernetes authentication and authorization. "+
			"--metrics-secure=false serves plain HTTP.")
	flag.BoolVar(&enableHTTP2, "enable-http2", false,
		"Enable HTTP/2 for the metrics server. "+
			"Off by default because of the HTTP/2 Stream Cancellation and Rapid Reset CVEs.")
	flag.StringVar(&watchNamespaces, "watch-namespaces", "",
		"Comma-separated namespaces to manage releases in. Empty manages every namespace.")
	// The client-side limit only has to stop a runaway loop: the API server protects
	// itself with priority and fairness. At 50 per second a burst of 100 releases queued
	// each flip for seconds behind other releases' writes (docs/benchmarks.md).
	flag.Float64Var(&apiQPS, "kube-api-qps", 200,
		"Requests per second the operator may send to the API server (client-side limit).")
	flag.IntVar(&apiBurst, "kube-api-burst", 400, "Burst above --kube-api-qps the operator may send.")
	// A pass mostly waits for the API server, so more workers than CPUs pay off: when 100
	// releases change at once, 48 workers start them all within about a second, where 16
	// left the last ones queued (docs/benchmarks.md).
	flag.IntVar(&maxConcurrentReconciles, "max-concurrent-reconciles", 48,
		"Releases reconciled in parallel. One release is never reconciled twice at once.")
	// Below the manifests' liveness window (15 s delay + 3 × 20 s): the probe endpoint
	// starts only after the wait, so a longer wait would be cut short by a restart anyway.
	flag.DurationVar(&crdWaitTimeout, "crd-wait-timeout", time.Minute,
		"How long to wait at start-up for the API server to serve the SoftFactoryRelease kind "+
			"(a CRD applied together with the operator).")
	opts := zap.Options{Development: false}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()
	// Go samples allocations for heap profiles whether or not anyone asks for one, and
	// keeps a table of the stacks it sampled (2 MiB after a few revisions). Only the pprof
	// endpoint reads it.
	if pprofAddr == "" {
		goruntime.MemProfileRate = 0
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))
	// A soft limit at 90% of the container's lets the collector work harder near the
	// limit rather than the kernel kill the pod for garbage not yet collected.
	if soft, ok := memlimit.Apply(memlimit.CgroupRoot, 0.9); ok {
		setupLog.Info("Set the Go memory limit from the container's", "bytes", soft)
	}
	// The heap is mostly the caches, which live as long as the process: hold less memory
	// for garbage than Go's default pacing does (GOGC in the environment wins).
	if memlimit.ApplyGCPercent(memlimit.GCPercent) {
		setupLog.Info("Set the Go collector's pacing", "gcPercent", memlimit.GCPercent)
	}

	var tlsOpts []func(*tls.Config)
	if !enableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	metricsOptions := metricsserver.Options{BindAddress: metricsAddr, SecureServing: secureMetrics, TLSOpts: tlsOpts}
	if secureMetrics {
		metricsOptions.FilterProvider = metricsauth.WithTokenReviewAndSubjectAccessReview
	}

	restConfig := ctrl.GetConfigOrDie()
	restConfig.QPS, restConfig.Burst = float32(apiQPS), apiBurst
	ctx := ctrl.SetupSignalHandler()
	// Set up before the API server serves the kind, the manager would exit with "no
	// matches for kind": applied together with the operator, the CRD can be a moment
	// behind it in discovery even once Established.
	discoveryClient, err := discovery.NewDiscoveryClientForConfig(restConfig)
	if err != nil {
		setupLog.Error(err, "Failed to create the discovery client")
		os.Exit(1)
	}
	releaseKind := deployv1alpha1.GroupVersion.WithKind("SoftFactoryRelease")
	crdWait := apiwait.Options{Timeout: crdWaitTimeout}
	if err := apiwait.ForKind(ctx, discoveryClient, releaseKind, crdWait, setupLog); err != nil {
		setupLog.Error(err, "The SoftFactoryRelease CRD is not served")
		os.Exit(1)
	}
	cacheOpts := cacheshape.Options(splitNamespaces(watchNamespaces)...)
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme:                  scheme,
		Metrics:                 metricsOptions,
		HealthProbeBindAddress:  probeAddr,
		PprofBindAddress:        pprofAddr,
		LeaderElection:          enableLeaderElection,
		LeaderElectionID:        "softfactory-release-operator.softfactory.io",
		LeaderElectionNamespace: electionNamespace,
		// The binary exits as soon as the manager stops, so stepping down at once is
		// safe, and it spares the next leader a full lease duration.
		LeaderElectionReleaseOnCancel: true,
		Cache:                         cacheOpts,
		Client:                        cacheshape.ClientOptions(),
	})
	if err != nil {
		setupLog.Error(err, "Failed to create manager")
		os.Exit(1)
	}

	rules, err := monitoring.NewRuleManager(mgr, clock.RealClock{}, cacheOpts.DefaultNamespaces)
	if err != nil {
		setupLog.Error(err, "Failed to set up the PrometheusRule manager")
		os.Exit(1)
	}
	// Events go through a client of their own, so that they never hold up the
	// reconciler's requests in the client-side rate limit.
	eventClient, err := client.New(rest.CopyConfig(restConfig), client.Options{
		Scheme: scheme, HTTPClient: mgr.GetHTTPClient(), Mapper: mgr.GetRESTMapper(),
	})
	if err != nil {
		setupLog.Error(err, "Failed to create the Events client")
		os.Exit(1)
	}
	recorder := eventrecorder.New(eventClient, scheme, "softfactory-release-operator", clock.RealClock{})
	if err := mgr.Add(recorder); err != nil {
		setupLog.Error(err, "Failed to add the Event recorder")
		os.Exit(1)
	}
	if err := (&controller.SoftFactoryReleaseReconciler{
		Client:     mgr.GetClient(),
		APIReader:  mgr.GetAPIReader(),
		Recorder:   recorder,
		Clock:      clock.RealClock{},
		Monitoring: rules,
	}).SetupWithManager(mgr, maxConcurrentReconciles); err != nil {
		setupLog.Error(err, "Failed to create controller", "controller", "softfactoryrelease")
		os.Exit(1)
	}
	// +kubebuilder:scaffold:builder

	if err := mgr.Add(startupGarbage(memlimit.ReleaseStartupGarbage(mgr.GetCache().WaitForCacheSync))); err != nil {
		setupLog.Error(err, "Failed to add the start-up garbage collection")
		os.Exit(1)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		setupLog.Error(err, "Failed to set up health check")
		os.Exit(1)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		setupLog.Error(err, "Failed to set up ready check")
		os.Exit(1)
	}

	setupLog.Info("Starting manager", "namespaces", watchNamespaces)
	if err := mgr.Start(ctx); err != nil {
		setupLog.Error(err, "Failed to run manager")
		os.Exit(1)
	}
}

// startupGarbage runs on every replica, leader or not: each fills its own caches.
type startupGarbage manager.RunnableFunc

func (f startupGarbage) Start(ctx context.Context) error { return f(ctx) }
func (startupGarbage) NeedLeaderElection() bool          { return false }

// splitNamespaces reads --watch-namespaces: comma-separated, blanks ignored.
func splitNamespaces(list string) []string {
	var out []string
	for ns := range strings.SplitSeq(list, ",") {
		if ns = strings.TrimSpace(ns); ns != "" {
			out = append(out, ns)
		}
	}
	return out
}
