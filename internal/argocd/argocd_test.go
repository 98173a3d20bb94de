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

package argocd

import (
	"encoding/json"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	k8sjson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/yaml"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// The tests read config/argocd exactly as Argo CD's own tests read its
// resource_customizations (util/lua/health_test.go, custom_actions_test.go): every
// health_test.yaml and action_test.yaml found is run, so a new fixture needs no Go.

const (
	customizations = "../../config/argocd/resource_customizations"
	releaseDir     = customizations + "/deploy.softfactory.io/SoftFactoryRelease"
	docsFile       = "../../docs/argocd.md"

	healthKey  = "resource.customizations.health.deploy.softfactory.io_SoftFactoryRelease"
	actionsKey = "resource.customizations.actions.deploy.softfactory.io_SoftFactoryRelease"
)

// argocdCM is what Argo CD runs scripts from argocd-cm with: no open libraries.
var argocdCM = Options{}

type healthTests struct {
	Tests []struct {
		InputPath    string       `json:"inputPath"`
		HealthStatus HealthStatus `json:"healthStatus"`
	} `json:"tests"`
}

type actionTests struct {
	DiscoveryTests []struct {
		InputPath string           `json:"inputPath"`
		Result    []ResourceAction `json:"result"`
	} `json:"discoveryTests"`
	ActionTests []struct {
		Action             string `json:"action"`
		InputPath          string `json:"inputPath"`
		ExpectedOutputPath string `json:"expectedOutputPath"`
	} `json:"actionTests"`
}

// fixture reads a YAML object the way Argo CD's tests do: YAML to JSON, so every
// number is a float64.
func fixture(t *testing.T, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	obj := map[string]any{}
	NewWithT(t).Expect(yaml.Unmarshal(data, &obj)).To(Succeed(), path)
	return obj
}

// asFromAPIServer re-decodes obj the way client-go decodes unstructured objects: whole
// numbers become int64. Argo CD's controller sees objects in this form, its tests in
// the float64 form; a script must give the same answer for both.
func asFromAPIServer(t *testing.T, obj map[string]any) map[string]any {
	t.Helper()
	data, err := json.Marshal(obj)
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	out := map[string]any{}
	NewWithT(t).Expect(k8sjson.Unmarshal(data, &out)).To(Succeed())
	return out
}

func readScript(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	return string(data)
}

func readYAML(t *testing.T, path string, into any) {
	t.Helper()
	data, err := os.ReadFile(path)
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	NewWithT(t).Expect(yaml.UnmarshalStrict(data, into)).To(Succeed(), path)
}

// findFiles returns every file called name under customizations.
func findFiles(t *testing.T, name string) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(customizations, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == name {
			found = append(found, path)
		}
		return err
	})
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	NewWithT(t).Expect(found).NotTo(BeEmpty(), "no %s under %s", name, customizations)
	return found
}

func TestHealthScripts(t *testing.T) {
	for _, scriptPath := range findFiles(t, "health.lua") {
		dir := filepath.Dir(scriptPath)
		script := readScript(t, scriptPath)
		var tests healthTests
		readYAML(t, filepath.Join(dir, "health_test.yaml"), &tests)
		for _, tc := range tests.Tests {
			t.Run(tc.InputPath, func(t *testing.T) {
				g := NewWithT(t)
				obj := fixture(t, filepath.Join(dir, tc.InputPath))
				got, err := ExecuteHealth(obj, script, argocdCM)
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(*got).To(Equal(tc.HealthStatus))

				got, err = ExecuteHealth(asFromAPIServer(t, obj), script, argocdCM)
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(*got).To(Equal(tc.HealthStatus), "with int64 numbers, as the controller decodes them")
			})
		}
	}
}

// Every state Argo CD distinguishes has a fixture, and every fixture is in the test list.
func TestHealthFixturesCoverEveryState(t *testing.T) {
	g := NewWithT(t)
	var tests healthTests
	readYAML(t, filepath.Join(releaseDir, "health_test.yaml"), &tests)
	seen := map[string]bool{}
	listed := map[string]bool{}
	for _, tc := range tests.Tests {
		seen[tc.HealthStatus.Status] = true
		listed[tc.InputPath] = true
	}
	for _, status := range []string{HealthHealthy, HealthProgressing, HealthSuspended, HealthDegraded} {
		g.Expect(seen).To(HaveKey(status), "no fixture is %s", status)
	}
	files, err := filepath.Glob(filepath.Join(releaseDir, "testdata", "*.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	for _, f := range files {
		g.Expect(listed).To(HaveKey("testdata/"+filepath.Base(f)), "fixture not listed in health_test.yaml")
	}
}

func TestActionScripts(t *testing.T) {
	for _, testPath := range findFiles(t, "action_test.yaml") {
		dir := filepath.Dir(testPath)
		discovery := readScript(t, filepath.Join(dir, "discovery.lua"))
		var tests actionTests
		readYAML(t, testPath, &tests)
		g := NewWithT(t)
		g.Expect(tests.DiscoveryTests).NotTo(BeEmpty())
		g.Expect(tests.ActionTests).NotTo(BeEmpty())

		for _, tc := range tests.DiscoveryTests {
			t.Run("discovery/"+tc.InputPath, func(t *testing.T) {
				g := NewWithT(t)
				obj := fixture(t, filepath.Join(dir, tc.InputPath))
				got, err := ExecuteDiscovery(obj, discovery, argocdCM)
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(got).To(ConsistOf(tc.Result))

				got, err = ExecuteDiscovery(asFromAPIServer(t, obj), discovery, argocdCM)
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(got).To(ConsistOf(tc.Result), "with int64 numbers, as the controller decodes them")
			})
		}
		for _, tc := range tests.ActionTests {
			t.Run("actions/"+tc.Action+"/"+tc.InputPath, func(t *testing.T) {
				g := NewWithT(t)
				script := readScript(t, filepath.Join(dir, tc.Action, "action.lua"))
				got, err := ExecuteAction(fixture(t, filepath.Join(dir, tc.InputPath)), script, argocdCM)
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(got).To(Equal(fixture(t, filepath.Join(dir, tc.ExpectedOutputPath))))
			})
		}
	}
}

// An action the discovery script offers must succeed when run, or the Argo CD UI offers
// a button that only ever fails.
func TestOfferedActionsSucceed(t *testing.T) {
	dir := filepath.Join(releaseDir, "actions")
	discovery := readScript(t, filepath.Join(dir, "discovery.lua"))
	var tests actionTests
	readYAML(t, filepath.Join(dir, "action_test.yaml"), &tests)
	for _, tc := range tests.DiscoveryTests {
		obj := fixture(t, filepath.Join(dir, tc.InputPath))
		offered, err := ExecuteDiscovery(obj, discovery, argocdCM)
		NewWithT(t).Expect(err).NotTo(HaveOccurred())
		for _, action := range offered {
			if action.Disabled {
				continue
			}
			t.Run(action.Name+"/"+tc.InputPath, func(t *testing.T) {
				script := readScript(t, filepath.Join(dir, action.Name, "action.lua"))
				_, err := ExecuteAction(obj, script, argocdCM)
				NewWithT(t).Expect(err).NotTo(HaveOccurred())
			})
		}
	}
}

// Run anyway (the argocd CLI does not consult discovery), an action that does not apply
// refuses with a message instead of writing an annotation the operator would ignore.
func TestActionsRefuseWhatDoesNotApply(t *testing.T) {
	dir := filepath.Join(releaseDir, "actions")
	cases := []struct {
		action, input, message string
	}{
		{"promote", "testdata/migrating.yaml", "not awaiting promotion (phase Migrating)"},
		{"promote", "testdata/succeeded.yaml", "not awaiting promotion (phase Succeeded)"},
		{"abort", "testdata/succeeded.yaml", "no release is in flight (phase Succeeded"},
		{"abort", "testdata/failed.yaml", "no release is in flight (phase Failed"},
		{"restore", "testdata/failed.yaml", "no restore awaits approval (phase Failed"},
		{"restore", "testdata/migrating.yaml", "no restore awaits approval (phase Migrating"},
	}
	for _, tc := range cases {
		t.Run(tc.action+"/"+tc.input, func(t *testing.T) {
			g := NewWithT(t)
			script := readScript(t, filepath.Join(dir, tc.action, "action.lua"))
			_, err := ExecuteAction(fixture(t, filepath.Join(dir, tc.input)), script, argocdCM)
			g.Expect(err).To(MatchError(ContainSubstring(tc.message)))
		})
	}
	t.Run("no status yet", func(t *testing.T) {
		g := NewWithT(t)
		obj := fixture(t, filepath.Join(releaseDir, "testdata", "progressing_noStatus.yaml"))
		for _, action := range []string{"promote", "abort", "restore"} {
			_, err := ExecuteAction(obj, readScript(t, filepath.Join(dir, action, "action.lua")), argocdCM)
			g.Expect(err).To(MatchError(ContainSubstring("has not reported a revision")), action)
		}
	})
}

// Fixtures must be objects the API accepts the shape of: a misspelt field would make a
// fixture test a state the operator can never write.
func TestFixturesAreSoftFactoryReleases(t *testing.T) {
	for _, pattern := range []string{"testdata/*.yaml", "actions/testdata/*.yaml"} {
		files, err := filepath.Glob(filepath.Join(releaseDir, pattern))
		NewWithT(t).Expect(err).NotTo(HaveOccurred())
		NewWithT(t).Expect(files).NotTo(BeEmpty())
		for _, f := range files {
			var release deployv1alpha1.SoftFactoryRelease
			readYAML(t, f, &release)
			NewWithT(t).Expect(release.Kind).To(Equal("SoftFactoryRelease"), f)
		}
	}
}

// update rewrites the argocd-cm block of docs/argocd.md from the scripts:
// go test ./internal/argocd/ -run TestDocs -update
var update = flag.Bool("update", false, "rewrite the argocd-cm block in docs/argocd.md from config/argocd")

// argocdCMBlock renders the argocd-cm ConfigMap that carries the scripts inline.
func argocdCMBlock(t *testing.T) string {
	t.Helper()
	indent := func(script, prefix string) string {
		var b strings.Builder
		for line := range strings.Lines(script) {
			if strings.TrimSpace(line) != "" {
				b.WriteString(prefix)
			}
			b.WriteString(line)
		}
		return b.String()
	}
	var b strings.Builder
	b.WriteString(`apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-cm
  namespace: argocd
  labels:
    app.kubernetes.io/name: argocd-cm
    app.kubernetes.io/part-of: argocd
data:
`)
	b.WriteString("  " + healthKey + ": |\n")
	b.WriteString(indent(readScript(t, filepath.Join(releaseDir, "health.lua")), "    "))
	b.WriteString("  " + actionsKey + ": |\n")
	b.WriteString("    discovery.lua: |\n")
	b.WriteString(indent(readScript(t, filepath.Join(releaseDir, "actions", "discovery.lua")), "      "))
	b.WriteString("    definitions:\n")
	for _, name := range []string{"promote", "abort", "restore", "retry"} {
		b.WriteString("    - name: " + name + "\n      action.lua: |\n")
		b.WriteString(indent(readScript(t, filepath.Join(releaseDir, "actions", name, "action.lua")), "        "))
	}
	return b.String()
}

// docs/argocd.md carries the scripts inline for argocd-cm; they must be the files tested
// here, byte for byte, or users would paste something untested.
func TestDocsCarryTheTestedScripts(t *testing.T) {
	g := NewWithT(t)
	want := argocdCMBlock(t)

	// The rendered block must read back as the files: valid YAML, nothing lost to indenting.
	var cm corev1.ConfigMap
	g.Expect(yaml.UnmarshalStrict([]byte(want), &cm)).To(Succeed())
	g.Expect(cm.Data).To(HaveKeyWithValue(healthKey, readScript(t, filepath.Join(releaseDir, "health.lua"))))
	var actions struct {
		Discovery   string `json:"discovery.lua"`
		Definitions []struct {
			Name   string `json:"name"`
			Action string `json:"action.lua"`
		} `json:"definitions"`
	}
	g.Expect(yaml.UnmarshalStrict([]byte(cm.Data[actionsKey]), &actions)).To(Succeed())
	g.Expect(actions.Discovery).To(Equal(readScript(t, filepath.Join(releaseDir, "actions", "discovery.lua"))))
	g.Expect(actions.Definitions).To(HaveLen(4))
	for _, d := range actions.Definitions {
		g.Expect(d.Action).To(Equal(readScript(t, filepath.Join(releaseDir, "actions", d.Name, "action.lua"))), d.Name)
	}

	doc, err := os.ReadFile(docsFile)
	g.Expect(err).NotTo(HaveOccurred())
	block := regexp.MustCompile("(?s)```yaml\n(apiVersion: v1\nkind: ConfigMap\n.*?)```")
	found := block.FindSubmatchIndex(doc)
	g.Expect(found).NotTo(BeNil(), "docs/argocd.md needs a yaml block with the argocd-cm ConfigMap")
	if *update {
		doc = slices.Concat(doc[:found[2]], []byte(want), doc[found[3]:])
		g.Expect(os.WriteFile(docsFile, doc, 0o644)).To(Succeed())
		return
	}
	g.Expect(string(doc[found[2]:found[3]])).To(Equal(want), "run: go test ./internal/argocd/ -run TestDocs -update")
}

// The scripts must not lean on the string library: argocd-cm scripts run without it.
// ExecuteHealth already runs without it; this guards against a use hidden in a branch
// no fixture reaches.
func TestScriptsUseNoStringLibrary(t *testing.T) {
	for _, name := range []string{"health.lua", "discovery.lua", "action.lua"} {
		for _, path := range findFiles(t, name) {
			script := readScript(t, path)
			for _, forbidden := range []string{"string.", ":format(", ":sub(", ":find(", ":match(", ":gsub(", ":len("} {
				NewWithT(t).Expect(strings.Contains(script, forbidden)).To(BeFalse(), "%s uses %q", path, forbidden)
			}
		}
	}
}
