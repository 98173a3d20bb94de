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

package plugin

import (
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/yaml"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// argoHealthFixtures is config/argocd's health fixture directory: one release per state,
// each with the health Argo CD must report.
const argoHealthFixtures = "../../config/argocd/resource_customizations/deploy.softfactory.io/SoftFactoryRelease"

// The plugin and Argo CD read the same status; on every Argo CD fixture, the plugin's
// verdict must be the Argo CD health, or `kubectl sfrelease status` and the Argo CD UI
// would disagree about a release.
func TestAssessAgreesWithArgoCDHealth(t *testing.T) {
	g := NewWithT(t)
	data, err := os.ReadFile(filepath.Join(argoHealthFixtures, "health_test.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	var tests struct {
		Tests []struct {
			InputPath    string `json:"inputPath"`
			HealthStatus struct {
				Status string `json:"status"`
			} `json:"healthStatus"`
		} `json:"tests"`
	}
	g.Expect(yaml.Unmarshal(data, &tests)).To(Succeed())
	g.Expect(tests.Tests).NotTo(BeEmpty())

	argoHealth := map[Verdict]string{
		VerdictProgressing:       "Progressing",
		VerdictAwaitingPromotion: "Suspended",
		VerdictPaused:            "Suspended",
		VerdictSucceeded:         "Healthy",
		VerdictFailed:            "Degraded",
	}
	for _, tc := range tests.Tests {
		t.Run(tc.InputPath, func(t *testing.T) {
			g := NewWithT(t)
			data, err := os.ReadFile(filepath.Join(argoHealthFixtures, tc.InputPath))
			g.Expect(err).NotTo(HaveOccurred())
			var r deployv1alpha1.SoftFactoryRelease
			g.Expect(yaml.UnmarshalStrict(data, &r)).To(Succeed())
			verdict, msg := Assess(&r)
			g.Expect(argoHealth[verdict]).To(Equal(tc.HealthStatus.Status), msg)
		})
	}
}
