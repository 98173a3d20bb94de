//go:build e2e

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

// Package e2e runs the operator, as its own process, against a local cluster with a real
// API server, controller-manager (Deployment, ReplicaSet, Job and EndpointSlice
// controllers) and scheduler; kwok stands in for the kubelets, and the Stages in
// config/kwok/ make chosen pods fail or never become ready (docs/local-cluster.md).
//
// `make test-e2e` runs it. By default the suite makes its own cluster, softfactory-e2e,
// with hack/cluster-up.sh and removes it at the end. E2E_KUBECONFIG points it at a
// cluster made some other way (left as it is afterwards); E2E_KEEP_CLUSTER=1 keeps the
// suite's own cluster (and its namespaces) for a look after the run; E2E_MANAGER_BINARY
// runs an operator binary built elsewhere instead of building ./cmd.
package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
	operatorprocess "github.com/softfactory/release-operator/test/support/operator"
)

// clusterName is the suite's own cluster, beside the demo's (softfactory), so running
// the suite never disturbs a demo and the other way round.
const clusterName = "softfactory-e2e"

var (
	// repoRoot is the checkout the suite builds the operator and the plugin from.
	repoRoot string
	// workDir holds what one run makes: binaries and the operator's log.
	workDir string

	kubeconfig string
	// ownCluster says the suite made the cluster, so it removes it.
	ownCluster bool
	restConfig *rest.Config
	k8s        client.Client
	clientset  kubernetes.Interface
	// kubectl is the kubectl built with the cluster; the plugin is run through it, as a
	// user runs it.
	kubectl string
	// pluginDir holds kubectl-sfrelease, for kubectl to find on PATH.
	pluginDir string

	operator *operatorprocess.Process

	scheme = runtime.NewScheme()
)

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(deployv1alpha1.AddToScheme(scheme))
}

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "end-to-end suite")
}

var _ = BeforeSuite(func(ctx SpecContext) {
	// Gates move in seconds on kwok (a backup takes 5s); a minute means something is stuck.
	SetDefaultEventuallyTimeout(90 * time.Second)
	SetDefaultEventuallyPollingInterval(200 * time.Millisecond)
	SetDefaultConsistentlyDuration(2 * time.Second)

	var err error
	repoRoot, err = filepath.Abs(filepath.Join("..", ".."))
	Expect(err).NotTo(HaveOccurred())
	workDir = filepath.Join(repoRoot, ".cache", "e2e")
	Expect(os.MkdirAll(workDir, 0o755)).To(Succeed())

	By("building the control plane binaries (cached) and finding kubectl")
	binDir := strings.TrimSpace(run(ctx, repoRoot, filepath.Join(repoRoot, "hack", "install-controlplane.sh"), "cluster"))
	kubectl = filepath.Join(binDir, "kubectl")

	if kubeconfig = os.Getenv("E2E_KUBECONFIG"); kubeconfig == "" {
		By("starting the local cluster " + clusterName)
		kubeconfig = strings.TrimSpace(run(ctx, repoRoot, filepath.Join(repoRoot, "hack", "cluster-up.sh"), clusterName))
		ownCluster = true
	}
	restConfig, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	Expect(err).NotTo(HaveOccurred())
	// The suite's watches and polls are its own load; the default 5 QPS would throttle them.
	restConfig.QPS, restConfig.Burst = 50, 100
	k8s, err = client.New(restConfig, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	clientset, err = kubernetes.NewForConfig(restConfig)
	Expect(err).NotTo(HaveOccurred())

	By("building the operator and the kubectl plugin")
	pluginDir = filepath.Join(workDir, "bin")
	manager := os.Getenv("E2E_MANAGER_BINARY")
	if manager == "" {
		manager = filepath.Join(pluginDir, "manager")
		run(ctx, repoRoot, "go", "build", "-o", manager, "./cmd")
	}
	run(ctx, repoRoot, "go", "build", "-o", filepath.Join(pluginDir, "kubectl-sfrelease"), "./cmd/kubectl-sfrelease")

	By("installing the CRD")
	_, err = envtest.InstallCRDs(restConfig, envtest.CRDInstallOptions{
		Paths: []string{filepath.Join(repoRoot, "config", "crd", "bases")}, ErrorIfPathMissing: true,
	})
	Expect(err).NotTo(HaveOccurred())

	By("starting the operator as its own process")
	operator = newOperatorProcess(manager, kubeconfig,
		filepath.Join(workDir, "operator.log"), filepath.Join(workDir, "operator.pid"))
	operator.StopLeftover()
	Expect(operator.Start()).To(Succeed())
	GinkgoWriter.Printf("Operator log: %s\n", operator.LogPath)
})

var _ = AfterSuite(func(ctx SpecContext) {
	if operator != nil {
		By("stopping the operator")
		Expect(operator.Stop()).To(Succeed())
	}
	if ownCluster && os.Getenv("E2E_KEEP_CLUSTER") == "" {
		By("removing the local cluster " + clusterName)
		run(ctx, repoRoot, filepath.Join(repoRoot, "hack", "cluster-down.sh"), clusterName)
	}
})

// run runs a command to completion in dir and returns its stdout; a failure fails the
// spec with the command's stderr.
func run(ctx context.Context, dir, name string, args ...string) string {
	GinkgoHelper()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	Expect(err).NotTo(HaveOccurred(), "%s %s failed:\n%s", name, strings.Join(args, " "), stderr.String())
	return stdout.String()
}
