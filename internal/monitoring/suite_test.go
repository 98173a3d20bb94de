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

package monitoring

import (
	"os/exec"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/softfactory/release-operator/internal/monitoring/prometheustest"
)

func TestMonitoring(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Monitoring Suite")
}

// promtoolPath is Prometheus' own rule checker, from Debian's prometheus package.
var promtoolPath string

var _ = BeforeSuite(func() {
	var err error
	promtoolPath, err = exec.LookPath("promtool")
	// Fail, never skip: a suite that silently skipped the rule checks would pass on a
	// machine that never checked a rule.
	Expect(err).NotTo(HaveOccurred(),
		"promtool "+prometheustest.MissingBinaryHint)
})
