// Package chart checks the Helm chart in dist/chart by rendering it with helm template,
// the way `helm install` would, and reading back what it makes.
package chart

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// render runs helm template on dist/chart with extra args and splits the documents.
// HELM names the binary (make test-chart builds it from hack/helm); the test fails
// rather than skips without it.
func render(t *testing.T, args ...string) map[string][]string {
	t.Helper()
	helm := os.Getenv("HELM")
	if helm == "" {
		t.Fatal("HELM is not set: run `make test-chart`, which builds helm from the Go module proxy")
	}
	cmd := exec.Command(helm, append([]string{"template", "sf", filepath.Join("..", "..", "dist", "chart"), "--namespace", "softfactory-system"}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm template: %v\n%s", err, errOut.String())
	}
	byKind := map[string][]string{}
	for _, doc := range strings.Split(out.String(), "\n---") {
		var meta struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil || meta.Kind == "" {
			continue
		}
		byKind[meta.Kind] = append(byKind[meta.Kind], doc)
	}
	return byKind
}

func TestChartRendersTheOperator(t *testing.T) {
	docs := render(t, "--set", "manager.image.repository=registry.example.com/release-operator", "--set", "manager.image.tag=v0.1.0")

	crds := docs["CustomResourceDefinition"]
	if len(crds) != 1 {
		t.Fatalf("want the SoftFactoryRelease CRD, got %d CRDs", len(crds))
	}
	crd := apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.Unmarshal([]byte(crds[0]), &crd); err != nil {
		t.Fatal(err)
	}
	if crd.Name != "softfactoryreleases.deploy.softfactory.io" || !slices.Contains(crd.Spec.Names.ShortNames, "sfrelease") {
		t.Errorf("unexpected CRD %s %v", crd.Name, crd.Spec.Names.ShortNames)
	}

	if len(docs["Deployment"]) != 1 {
		t.Fatalf("want one Deployment, got %d", len(docs["Deployment"]))
	}
	d := appsv1.Deployment{}
	if err := yaml.Unmarshal([]byte(docs["Deployment"][0]), &d); err != nil {
		t.Fatal(err)
	}
	c := d.Spec.Template.Spec.Containers[0]
	if c.Image != "registry.example.com/release-operator:v0.1.0" {
		t.Errorf("image %q", c.Image)
	}
	if !slices.Contains(c.Args, "--leader-elect") {
		t.Errorf("leader election is off: %v", c.Args)
	}
	if sc := c.SecurityContext; sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("the manager container may escalate privileges")
	}

	// The operator's own role: no Secrets, no wildcard.
	for _, doc := range docs["ClusterRole"] {
		role := rbacv1.ClusterRole{}
		if err := yaml.Unmarshal([]byte(doc), &role); err != nil {
			t.Fatal(err)
		}
		for _, rule := range role.Rules {
			if slices.Contains(rule.Resources, "secrets") {
				t.Errorf("%s grants access to Secrets", role.Name)
			}
			for _, f := range [][]string{rule.APIGroups, rule.Resources, rule.Verbs} {
				if slices.Contains(f, "*") {
					t.Errorf("%s has a wildcard: %+v", role.Name, rule)
				}
			}
		}
	}
}
