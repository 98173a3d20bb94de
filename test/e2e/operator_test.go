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

package e2e

import (
	"os"

	. "github.com/onsi/gomega"

	operatorprocess "github.com/softfactory/release-operator/test/support/operator"
)

// newOperatorProcess prepares the operator binary run as its own process, as a laptop
// user runs it; the suite kills it with SIGKILL to play a crash, and starts it again. Its
// log starts empty. Leader election is off: a crashed process cannot release its lease,
// so a successor would wait out the lease before doing anything, and the suite never
// runs two at once. Metrics are off: nothing here scrapes them.
func newOperatorProcess(binary, kubeconfig, logPath, pidPath string) *operatorprocess.Process {
	Expect(os.WriteFile(logPath, nil, 0o644)).To(Succeed())
	return &operatorprocess.Process{
		Binary: binary, Kubeconfig: kubeconfig, LogPath: logPath, PIDPath: pidPath, Suite: "e2e",
		Args: []string{"--leader-elect=false", "--metrics-bind-address=0", "--zap-log-level=debug"},
	}
}
