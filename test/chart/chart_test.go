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
	chart := filepath.Join("..", "..", "dist", "chart")
	cmd := exec.Command(helm, append([]string{"template", "sf", chart, "--namespace", "softfactory-system"}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm template: %v\n%s", err, errOut.String())
	}
	byKind := map[string][]string{}
	for doc := range strings.SplitSeq(out.String(), "\n---") {
		var meta struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil || meta.Kind == "" {
			continue
		}
		byKind[meta.Kind] = append(byKind[meta.Kind], doc)
	}
	return byKind
}

func TestChartRendersTheOperator(t *testing.T) {
	docs := render(t, "--set", "manager.image.repository=registry.example.com/release-operator",
		"--set", "manager.image.tag=v0.1.0")

	crds := docs["CustomResourceDefinition"]
	if len(crds) != 1 {
		t.Fatalf("want the SoftFactoryRelease CRD, got %d CRDs", len(crds))
	}
	crd := apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.Unmarshal([]byte(crds[0]), &crd); err != nil {
		t.Fatal(err)
	}
	if crd.Name != "softfactoryreleases.deploy.softfactory.io" ||
		!slices.Contains(crd.Spec.Names.ShortNames, "sfrelease") {
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

// decode reads one rendered document.
func decode[T any](t *testing.T, doc string) T {
	t.Helper()
	var obj T
	if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
		t.Fatal(err)
	}
	return obj
}

// byName finds the rendered object of a kind whose name ends with suffix, in namespace
// (empty for cluster-scoped objects).
func byName[T any](t *testing.T, docs map[string][]string, kind, suffix, namespace string) []T {
	t.Helper()
	var found []T
	for _, doc := range docs[kind] {
		var meta struct {
			Metadata struct{ Name, Namespace string }
		}
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(meta.Metadata.Name, suffix) && meta.Metadata.Namespace == namespace {
			found = append(found, decode[T](t, doc))
		}
	}
	return found
}

// The chart grants the manager exactly what the RBAC markers do (make manifests
// generates both), so a verb dropped from the markers is dropped from the chart too.
func TestChartManagerRoleIsTheGeneratedOne(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "config", "rbac", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	generated := decode[rbacv1.ClusterRole](t, string(raw))
	for _, mode := range [][]string{nil, {"--set", "rbac.namespaced=true"}} {
		docs := render(t, mode...)
		kind, namespace := "ClusterRole", ""
		if mode != nil {
			kind, namespace = "Role", "softfactory-system"
		}
		roles := byName[rbacv1.ClusterRole](t, docs, kind, "-manager-role", namespace)
		if len(roles) != 1 {
			t.Fatalf("%v: want one manager %s, got %d", mode, kind, len(roles))
		}
		if !equalRules(roles[0].Rules, generated.Rules) {
			t.Errorf("%v: the chart's manager role differs from config/rbac/role.yaml:\n%+v\nwant\n%+v",
				mode, roles[0].Rules, generated.Rules)
		}
	}
	election := byName[rbacv1.Role](t, render(t), "Role", "-leader-election-role", "softfactory-system")
	if len(election) != 1 {
		t.Fatal("no leader-election Role")
	}
	for _, rule := range election[0].Rules {
		if slices.Contains(rule.Resources, "configmaps") {
			t.Errorf("the leader-election Role grants ConfigMaps, which Lease-based election never uses: %+v", rule)
		}
	}
}

func equalRules(a, b []rbacv1.PolicyRule) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !slices.Equal(a[i].APIGroups, b[i].APIGroups) || !slices.Equal(a[i].Resources, b[i].Resources) ||
			!slices.Equal(a[i].Verbs, b[i].Verbs) {
			return false
		}
	}
	return true
}

// By default the editor and viewer ClusterRoles are installed and aggregate to
// Kubernetes' edit and view: whoever may create workloads in a namespace may create
// releases there, and nobody else without a binding of their own.
func TestChartAggregatesTheEditorAndViewerRolesToEditAndView(t *testing.T) {
	docs := render(t)
	for suffix, label := range map[string]string{
		"-softfactoryrelease-editor-role": "rbac.authorization.k8s.io/aggregate-to-edit",
		"-softfactoryrelease-viewer-role": "rbac.authorization.k8s.io/aggregate-to-view",
	} {
		roles := byName[rbacv1.ClusterRole](t, docs, "ClusterRole", suffix, "")
		if len(roles) != 1 {
			t.Errorf("want one ClusterRole *%s, got %d", suffix, len(roles))
			continue
		}
		if roles[0].Labels[label] != "true" {
			t.Errorf("%s: labels %v, want %s=true", roles[0].Name, roles[0].Labels, label)
		}
	}
}

// Namespaced mode gives the manager a Role in each watched namespace and nothing
// cluster-wide for releases, so it must be told to watch only those namespaces: a
// manager watching every namespace would be refused its list of releases and never start.
func TestChartNamespacedModeWatchesOnlyTheNamespacesItHasRolesIn(t *testing.T) {
	cases := []struct {
		name       string
		args       []string
		namespaces []string
	}{
		{"the Helm release's namespace", []string{"--set", "rbac.namespaced=true"}, []string{"softfactory-system"}},
		{"chosen namespaces",
			[]string{"--set", "rbac.namespaced=true", "--set", "rbac.watchNamespaces={team-a,team-b}"},
			[]string{"team-a", "team-b"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			docs := render(t, tc.args...)
			d := decode[appsv1.Deployment](t, docs["Deployment"][0])
			want := "--watch-namespaces=" + strings.Join(tc.namespaces, ",")
			if args := d.Spec.Template.Spec.Containers[0].Args; !slices.Contains(args, want) {
				t.Errorf("manager args %v, want %s", args, want)
			}
			if cluster := byName[rbacv1.ClusterRole](t, docs, "ClusterRole", "-manager-role", ""); len(cluster) != 0 {
				t.Error("namespaced mode still renders the manager ClusterRole")
			}
			cluster := byName[rbacv1.ClusterRoleBinding](t, docs, "ClusterRoleBinding", "-manager-rolebinding", "")
			if len(cluster) != 0 {
				t.Error("namespaced mode still renders the manager ClusterRoleBinding")
			}
			for _, ns := range tc.namespaces {
				if len(byName[rbacv1.Role](t, docs, "Role", "-manager-role", ns)) != 1 {
					t.Errorf("no manager Role in %s", ns)
				}
				bindings := byName[rbacv1.RoleBinding](t, docs, "RoleBinding", "-manager-rolebinding", ns)
				if len(bindings) != 1 {
					t.Errorf("no manager RoleBinding in %s", ns)
					continue
				}
				subject := bindings[0].Subjects[0]
				if bindings[0].RoleRef.Kind != "Role" || subject.Kind != "ServiceAccount" ||
					subject.Namespace != "softfactory-system" {
					t.Errorf("RoleBinding in %s: roleRef %+v, subject %+v; "+
						"want the Role, bound to the manager's ServiceAccount in softfactory-system", ns, bindings[0].RoleRef, subject)
				}
			}
		})
	}
	// Cluster-wide mode watches everything and says nothing about namespaces.
	d := decode[appsv1.Deployment](t, render(t)["Deployment"][0])
	for _, arg := range d.Spec.Template.Spec.Containers[0].Args {
		if strings.HasPrefix(arg, "--watch-namespaces") {
			t.Errorf("cluster-wide mode passes %s", arg)
		}
	}
}
