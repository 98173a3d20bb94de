package controller

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// Table tests of what the builders give each pod to run as and with: which token, which
// identity, which container security context.

// jobPods are the pod specs of every Job a release may run, by role.
func jobPods(r *deployv1alpha1.SoftFactoryRelease) map[string]corev1.PodSpec {
	rev := "0123456789"
	r.Spec.Strategy.BlueGreen.SmokeTest = &deployv1alpha1.SmokeTestSpec{Command: []string{"pytest"}}
	r.Spec.Backup.Schedule = "@daily"
	return map[string]corev1.PodSpec{
		"backup":           buildBackupJob(r, rev, "softfactory-x.dump").Spec.Template.Spec,
		"restore":          buildRestoreJob(r, rev, "softfactory-x.dump").Spec.Template.Spec,
		"migration":        buildMigrationJob(r, rev).Spec.Template.Spec,
		"smoke test":       buildSmokeTestJob(r, rev).Spec.Template.Spec,
		"scheduled backup": buildScheduledBackupCronJob(r, rev).Spec.JobTemplate.Spec.Template.Spec,
	}
}

func TestJobPodsGetNoServiceAccountTokenUnlessTheUserNamesAServiceAccount(t *testing.T) {
	for role, pod := range jobPods(baseRelease()) {
		if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
			t.Errorf("%s: automountServiceAccountToken = %v, want false: the pod needs no Kubernetes API", role, pod.AutomountServiceAccountToken)
		}
	}
	r := baseRelease()
	r.Spec.PodTemplate = &deployv1alpha1.PodTemplateOverrides{ServiceAccountName: "softfactory-migrator"}
	for role, pod := range jobPods(r) {
		if pod.ServiceAccountName != "softfactory-migrator" || pod.AutomountServiceAccountToken != nil {
			t.Errorf("%s: service account %q, automount %v; want the user's, with the service account's own automount setting",
				role, pod.ServiceAccountName, pod.AutomountServiceAccountToken)
		}
	}
}

func TestSidecarsGetTheRestrictedDefaultsUnlessTheyHaveTheirOwn(t *testing.T) {
	r := baseRelease()
	own := &corev1.SecurityContext{RunAsUser: ptr.To[int64](101), ReadOnlyRootFilesystem: new(true)}
	r.Spec.PodTemplate = &deployv1alpha1.PodTemplateOverrides{Sidecars: []corev1.Container{
		{Name: "nginx", Image: "nginx"},
		{Name: "exporter", Image: "exporter", SecurityContext: own},
	}}
	containers := buildDeployment(r, deployv1alpha1.Green, "0123456789", 2).Spec.Template.Spec.Containers
	if len(containers) != 3 {
		t.Fatalf("want the API container and two sidecars, got %d containers", len(containers))
	}
	nginx := containers[1].SecurityContext
	if nginx == nil || nginx.AllowPrivilegeEscalation == nil || *nginx.AllowPrivilegeEscalation ||
		nginx.Capabilities == nil || len(nginx.Capabilities.Drop) != 1 || nginx.Capabilities.Drop[0] != "ALL" ||
		nginx.RunAsNonRoot == nil || !*nginx.RunAsNonRoot {
		t.Errorf("a sidecar without a securityContext got %+v, want the API container's restricted one", nginx)
	}
	if containers[2].SecurityContext != own {
		t.Errorf("a sidecar's own securityContext was replaced: %+v", containers[2].SecurityContext)
	}
	if r.Spec.PodTemplate.Sidecars[0].SecurityContext != nil {
		t.Error("the builder wrote into the release's spec")
	}
}

func TestPodsRunAsTheIdentityTheUserGaveAndNeverAsRoot(t *testing.T) {
	t.Run("nothing set: the image's USER for the app, PostgreSQL's uid 70 for backups", func(t *testing.T) {
		r := baseRelease()
		app := buildDeployment(r, deployv1alpha1.Blue, "0123456789", 2).Spec.Template.Spec.SecurityContext
		if app.RunAsUser != nil || app.RunAsGroup != nil || app.FSGroup != nil {
			t.Errorf("app pod identity %+v, want the image's own", app)
		}
		for role, pod := range jobPods(r) {
			sc := pod.SecurityContext
			if !ptr.Deref(sc.RunAsNonRoot, false) {
				t.Errorf("%s: runAsNonRoot not forced", role)
			}
			wantUID := role == "backup" || role == "restore" || role == "scheduled backup"
			for name, id := range map[string]*int64{"runAsUser": sc.RunAsUser, "runAsGroup": sc.RunAsGroup, "fsGroup": sc.FSGroup} {
				if wantUID && ptr.Deref(id, -1) != postgresUID {
					t.Errorf("%s: %s = %v, want %d", role, name, id, postgresUID)
				}
				if !wantUID && id != nil {
					t.Errorf("%s: %s = %d, want the image's own", role, name, *id)
				}
			}
		}
	})

	t.Run("set: the app's identity for every pod running the release image, the backup's for dumps", func(t *testing.T) {
		r := baseRelease()
		r.Spec.PodTemplate = &deployv1alpha1.PodTemplateOverrides{SecurityContext: &deployv1alpha1.RunAsSpec{
			RunAsUser: ptr.To[int64](1000), RunAsGroup: ptr.To[int64](1001), FSGroup: ptr.To[int64](1002),
		}}
		r.Spec.Backup.SecurityContext = &deployv1alpha1.RunAsSpec{RunAsUser: ptr.To[int64](999)}
		want := map[string][3]int64{
			"app":              {1000, 1001, 1002},
			"migration":        {1000, 1001, 1002},
			"smoke test":       {1000, 1001, 1002},
			"backup":           {999, postgresUID, postgresUID},
			"restore":          {999, postgresUID, postgresUID},
			"scheduled backup": {999, postgresUID, postgresUID},
		}
		pods := jobPods(r)
		pods["app"] = buildDeployment(r, deployv1alpha1.Blue, "0123456789", 2).Spec.Template.Spec
		for role, ids := range want {
			sc := pods[role].SecurityContext
			got := [3]int64{ptr.Deref(sc.RunAsUser, -1), ptr.Deref(sc.RunAsGroup, -1), ptr.Deref(sc.FSGroup, -1)}
			if got != ids {
				t.Errorf("%s: runAsUser, runAsGroup, fsGroup = %v, want %v", role, got, ids)
			}
			if !ptr.Deref(sc.RunAsNonRoot, false) {
				t.Errorf("%s: runAsNonRoot not forced", role)
			}
		}
	})
}
