//go:build real && linux

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

// Package real runs the operator, as its own process, against a real single-node
// Kubernetes: kubelet, containerd, runc, the CNI bridge and kube-proxy, with the sample
// Flask app (examples/softfactory-app) and PostgreSQL in real containers
// (docs/real-cluster.md). Each spec checks what a user rehearsing the runbook would:
// the dump on the backup volume, the schema in the database, the version in the
// answers, and a load generator's count of failed requests through every release.
//
// `make test-real` runs it (root). The cluster lives in a network namespace; nothing in
// this process ever dials a pod or Service address: the load generator and one-off
// requests run inside the namespace through nsenter, psql and pg_restore through
// `kubectl exec`, and the API server is reached on this host's loopback only.
//
// REAL_KUBECONFIG points it at a cluster already made by hack/real/cluster-up.sh
// (REAL_CLUSTER names it; left up afterwards); REAL_KEEP_CLUSTER=1 keeps the suite's own.
package real

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
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
	operatorprocess "github.com/softfactory/release-operator/test/support/operator"
)

var (
	repoRoot, workDir string
	// clusterName names the cluster, and so its network namespace and state directory.
	clusterName string
	kubeconfig  string
	ownCluster  bool
	k8s         client.Client
	clientset   kubernetes.Interface
	kubectl     string
	// loadgen is hack/real/loadgen, built before anything runs in the namespace (the Go
	// module proxy cannot be reached from inside it).
	loadgen  string
	operator *operatorprocess.Process
	scheme   = runtime.NewScheme()
)

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(deployv1alpha1.AddToScheme(scheme))
}

func TestReal(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "real-cluster suite")
}

var _ = BeforeSuite(func(ctx SpecContext) {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	// Real pods take seconds to start on 2 shared cores; a release takes about a minute.
	SetDefaultEventuallyTimeout(4 * time.Minute)
	SetDefaultEventuallyPollingInterval(250 * time.Millisecond)

	var err error
	repoRoot, err = filepath.Abs(filepath.Join("..", ".."))
	Expect(err).NotTo(HaveOccurred())
	workDir = filepath.Join(repoRoot, ".cache", "real")
	Expect(os.MkdirAll(filepath.Join(workDir, "bin"), 0o755)).To(Succeed())

	By("building the operator and the load generator")
	manager := filepath.Join(workDir, "bin", "manager")
	run(ctx, repoRoot, "go", "build", "-o", manager, "./cmd")
	loadgen = filepath.Join(workDir, "bin", "loadgen")
	run(ctx, repoRoot, "go", "build", "-o", loadgen, "./hack/real/loadgen")

	binDir := strings.TrimSpace(run(ctx, repoRoot, filepath.Join(repoRoot, "hack", "install-controlplane.sh"), "real"))
	kubectl = filepath.Join(binDir, "kubectl")
	clusterName = os.Getenv("REAL_CLUSTER")
	if clusterName == "" {
		clusterName = "softfactory-real-test"
	}
	if kubeconfig = os.Getenv("REAL_KUBECONFIG"); kubeconfig == "" {
		By("starting the real cluster " + clusterName + " (images and binaries cached)")
		start := time.Now()
		kubeconfig = strings.TrimSpace(run(ctx, repoRoot, filepath.Join(repoRoot, "hack", "real", "cluster-up.sh"), clusterName))
		ownCluster = true
		GinkgoWriter.Printf("Cluster up in %s\n", time.Since(start).Round(time.Second))
	}
	restConfig, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	Expect(err).NotTo(HaveOccurred())
	restConfig.QPS, restConfig.Burst = 50, 100
	k8s, err = client.New(restConfig, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	clientset, err = kubernetes.NewForConfig(restConfig)
	Expect(err).NotTo(HaveOccurred())

	By("installing the CRD")
	_, err = envtest.InstallCRDs(restConfig, envtest.CRDInstallOptions{
		Paths: []string{filepath.Join(repoRoot, "config", "crd", "bases")}, ErrorIfPathMissing: true,
	})
	Expect(err).NotTo(HaveOccurred())

	By("starting the operator as its own process, on this host")
	operator = newOperatorProcess(manager, kubeconfig,
		filepath.Join(workDir, "operator.log"), filepath.Join(workDir, "operator.pid"))
	operator.StopLeftover()
	Expect(operator.Start()).To(Succeed())
	GinkgoWriter.Printf("Operator log: %s\n", operator.LogPath)
})

var _ = AfterSuite(func() {
	printLoadReports()
	if operator != nil {
		By("stopping the operator")
		Expect(operator.Stop()).To(Succeed())
	}
	if ownCluster && os.Getenv("REAL_KEEP_CLUSTER") == "" {
		By("removing the real cluster " + clusterName)
		// Not tied to the node's context: an interrupted run cancels it after a grace
		// period, and a teardown killed half-way is worse than a slow one.
		cmd := exec.Command(filepath.Join(repoRoot, "hack", "real", "cluster-down.sh"), clusterName)
		cmd.Env = append(os.Environ(), "SOFTFACTORY_REAL_LOGS="+filepath.Join(workDir, "logs"))
		out, err := cmd.CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), "cluster-down: %s", out)
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
