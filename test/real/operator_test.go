//go:build real && linux

package real

import (
	"os"

	. "github.com/onsi/gomega"

	operatorprocess "github.com/softfactory/release-operator/test/support/operator"
)

// newOperatorProcess prepares the operator binary run as its own process on the host,
// reaching the cluster's API server through the loopback relay; the suite kills it to
// play a crash, and starts it again. Its log starts empty. Leader election is off (a
// killed process cannot release its lease) and metrics are off (nothing scrapes them).
func newOperatorProcess(binary, kubeconfig, logPath, pidPath string) *operatorprocess.Process {
	Expect(os.WriteFile(logPath, nil, 0o644)).To(Succeed())
	return &operatorprocess.Process{
		Binary: binary, Kubeconfig: kubeconfig, LogPath: logPath, PIDPath: pidPath, Suite: "real",
		Args: []string{"--leader-elect=false", "--metrics-bind-address=0", "--zap-log-level=debug"},
	}
}
