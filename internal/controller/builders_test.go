package controller

import (
	"encoding/json"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// Table tests of the pure builders: no API server, just inputs and the objects they give.

func baseRelease() *deployv1alpha1.SoftFactoryRelease {
	return &deployv1alpha1.SoftFactoryRelease{
		ObjectMeta: metav1.ObjectMeta{Name: "softfactory", Namespace: "production"},
		Spec: deployv1alpha1.SoftFactoryReleaseSpec{
			Image:       "registry.example.com/softfactory:1.4.2",
			Replicas:    ptr.To[int32](4),
			Port:        8000,
			HealthCheck: deployv1alpha1.HealthCheckSpec{Path: "/health", PeriodSeconds: 5, TimeoutSeconds: 2, FailureThreshold: 3},
			Service:     deployv1alpha1.ServiceSpec{Name: "softfactory-api", Port: 80},
			Database:    &deployv1alpha1.DatabaseSpec{URLSecretRef: deployv1alpha1.SecretKeyRef{Name: "softfactory-db", Key: "DATABASE_URL"}},
			Backup: &deployv1alpha1.BackupSpec{
				Volume:   deployv1alpha1.BackupVolume{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "softfactory-backups"}},
				Image:    "postgres:15-alpine",
				KeepLast: 10,
				Verify:   deployv1alpha1.BackupVerifySpec{Enabled: ptr.To(true), MinSizeBytes: 1},
			},
			Migration: &deployv1alpha1.MigrationSpec{Command: []string{"flask", "db", "upgrade"}, ActiveDeadlineSeconds: 600, BackoffLimit: ptr.To[int32](0)},
		},
	}
}

func TestRevisionChangesOnlyWithReleaseInputs(t *testing.T) {
	base := revisionOf(baseRelease())
	cases := []struct {
		name    string
		mutate  func(r *deployv1alpha1.SoftFactoryRelease)
		changes bool
	}{
		{"same spec", func(*deployv1alpha1.SoftFactoryRelease) {}, false},
		{"new image", func(r *deployv1alpha1.SoftFactoryRelease) { r.Spec.Image += "-rc1" }, true},
		{"new env", func(r *deployv1alpha1.SoftFactoryRelease) { r.Spec.Env = []corev1.EnvVar{{Name: "A", Value: "1"}} }, true},
		{"new migration command", func(r *deployv1alpha1.SoftFactoryRelease) { r.Spec.Migration.Args = []string{"--sql"} }, true},
		{"pod template annotation", func(r *deployv1alpha1.SoftFactoryRelease) {
			r.Spec.PodTemplate = &deployv1alpha1.PodTemplateOverrides{Annotations: map[string]string{"a": "b"}}
		}, true},
		{"replicas only", func(r *deployv1alpha1.SoftFactoryRelease) { r.Spec.Replicas = ptr.To[int32](8) }, false},
		{"scale-down delay only", func(r *deployv1alpha1.SoftFactoryRelease) {
			r.Spec.Strategy.BlueGreen.ScaleDownDelaySeconds = ptr.To[int32](60)
		}, false},
		{"alert threshold only", func(r *deployv1alpha1.SoftFactoryRelease) {
			r.Spec.Monitoring.PrometheusRule.Thresholds.ErrorRatePercent = 2
		}, false},
		{"service port only", func(r *deployv1alpha1.SoftFactoryRelease) { r.Spec.Service.Port = 8080 }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := baseRelease()
			tc.mutate(r)
			got := revisionOf(r)
			if len(got) != revisionLength || strings.Trim(got, "0123456789abcdef") != "" {
				t.Fatalf("revision %q is not %d lowercase hex characters", got, revisionLength)
			}
			if (got != base) != tc.changes {
				t.Errorf("revision changed = %v, want %v", got != base, tc.changes)
			}
		})
	}
}

func TestChildNamesStayValid(t *testing.T) {
	for _, name := range []string{"softfactory", strings.Repeat("a", 40), strings.Repeat("b", 60)} {
		r := baseRelease()
		r.Name = name
		for _, job := range []string{r.BackupJobName("0123456789"), r.MigrationJobName("0123456789"), r.RestoreJobName("0123456789"), r.SmokeTestJobName("0123456789")} {
			if len(job) > 63 {
				t.Errorf("%s: %d characters", job, len(job))
			}
			if !strings.HasSuffix(job, "-0123456789") {
				t.Errorf("%s lost its revision", job)
			}
		}
	}
}

func TestDeploymentBuilder(t *testing.T) {
	r := baseRelease()
	r.Spec.PodTemplate = &deployv1alpha1.PodTemplateOverrides{
		Labels:   map[string]string{deployv1alpha1.LabelColor: "purple", "team": "api"},
		Sidecars: []corev1.Container{{Name: "nginx", Image: "nginx"}},
	}
	d := buildDeployment(r, deployv1alpha1.Green, "0123456789", 4)
	pod := d.Spec.Template
	api := pod.Spec.Containers[0]
	checks := []struct {
		name string
		ok   bool
	}{
		{"named <release>-<colour>", d.Name == "softfactory-green"},
		{"replicas as asked", *d.Spec.Replicas == 4},
		{"selects its colour", d.Spec.Selector.MatchLabels[deployv1alpha1.LabelColor] == "green"},
		{"operator's colour label wins over the user's", pod.Labels[deployv1alpha1.LabelColor] == "green"},
		{"user's other labels kept", pod.Labels["team"] == "api"},
		{"recommended labels", pod.Labels[deployv1alpha1.LabelManagedBy] == deployv1alpha1.ManagedBy && pod.Labels[deployv1alpha1.LabelInstance] == "softfactory" && pod.Labels[deployv1alpha1.LabelComponent] == "app"},
		{"readiness probe on the health path", api.ReadinessProbe.HTTPGet.Path == "/health" && api.ReadinessProbe.HTTPGet.Port.StrVal == "http"},
		{"liveness more patient than readiness", api.LivenessProbe.FailureThreshold > api.ReadinessProbe.FailureThreshold},
		// A database blip fails the health path: it must take pods out of the endpoints, not
		// restart them all.
		{"liveness never asks the health path (it checks the database)", api.LivenessProbe.HTTPGet == nil && api.LivenessProbe.TCPSocket != nil && api.LivenessProbe.TCPSocket.Port.StrVal == "http"},
		{"a startup probe holds liveness until the port opens", api.StartupProbe != nil && api.StartupProbe.TCPSocket != nil &&
			api.StartupProbe.PeriodSeconds*api.StartupProbe.FailureThreshold >= 60},
		{"app port", api.Ports[0].ContainerPort == 8000},
		{"DATABASE_URL only by secretKeyRef", api.Env[0].Name == "DATABASE_URL" && api.Env[0].Value == "" && api.Env[0].ValueFrom.SecretKeyRef.Name == "softfactory-db"},
		{"sidecar kept", len(pod.Spec.Containers) == 2 && pod.Spec.Containers[1].Name == "nginx"},
		{"revision annotated", d.Annotations[deployv1alpha1.RevisionAnnotation] == "0123456789"},
		{"spec hash annotated", d.Annotations[deployv1alpha1.SpecHashAnnotation] != ""},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("deployment: %s", c.name)
		}
	}
	if buildDeployment(r, deployv1alpha1.Green, "0123456789", 4).Annotations[deployv1alpha1.SpecHashAnnotation] != d.Annotations[deployv1alpha1.SpecHashAnnotation] {
		t.Error("the builder is not deterministic")
	}
}

func TestJobBuilders(t *testing.T) {
	r := baseRelease()
	r.Status.LastBackup = &deployv1alpha1.BackupRecord{File: "softfactory-1111111111-20261101T120000Z.dump"}
	r.Status.History = []deployv1alpha1.ReleaseRecord{
		{Revision: "1111111111", BackupFile: "softfactory-1111111111-20261101T120000Z.dump"},
		{Revision: "2222222222", BackupFile: "softfactory-2222222222-20261001T120000Z.dump"},
		{Revision: "3333333333"},
	}
	rev := "0123456789"
	env := func(c corev1.Container) map[string]corev1.EnvVar {
		m := map[string]corev1.EnvVar{}
		for _, e := range c.Env {
			m[e.Name] = e
		}
		return m
	}
	backup := buildBackupJob(r, rev, "softfactory-0123456789-20261125T120000Z.dump")
	be := env(backup.Spec.Template.Spec.Containers[0])
	migrate := buildMigrationJob(r, rev)
	me := env(migrate.Spec.Template.Spec.Containers[0])
	checks := []struct {
		name string
		ok   bool
	}{
		{"backup name", backup.Name == "softfactory-backup-0123456789"},
		{"backup image", backup.Spec.Template.Spec.Containers[0].Image == "postgres:15-alpine"},
		{"backup DATABASE_URL by secretKeyRef only", be["DATABASE_URL"].Value == "" && be["DATABASE_URL"].ValueFrom.SecretKeyRef.Key == "DATABASE_URL"},
		{"backup file from the caller", be["BACKUP_FILE"].Value == "softfactory-0123456789-20261125T120000Z.dump"},
		{"backup keepLast", be["KEEP_LAST"].Value == "10"},
		{"backup mounts the user's PVC", backup.Spec.Template.Spec.Volumes[0].PersistentVolumeClaim.ClaimName == "softfactory-backups"},
		{"backup's password goes to an in-memory passfile dir, never a command line", backup.Spec.Template.Spec.Volumes[1].EmptyDir.Medium == corev1.StorageMediumMemory &&
			be["PGPASS_DIR"].Value == backup.Spec.Template.Spec.Containers[0].VolumeMounts[1].MountPath},
		{"backup keeps the dumps the status refers to", be["KEEP_FILES"].Value == "softfactory-1111111111-20261101T120000Z.dump softfactory-2222222222-20261001T120000Z.dump"},
		{"backup runs as the postgres user", *backup.Spec.Template.Spec.SecurityContext.RunAsUser == postgresUID},
		{"backup never restarts in place", backup.Spec.Template.Spec.RestartPolicy == corev1.RestartPolicyNever},
		{"migration name", migrate.Name == "softfactory-migrate-0123456789"},
		{"migration image defaults to the release image", migrate.Spec.Template.Spec.Containers[0].Image == r.Spec.Image},
		{"migration command", strings.Join(migrate.Spec.Template.Spec.Containers[0].Command, " ") == "flask db upgrade"},
		{"migration deadline", *migrate.Spec.ActiveDeadlineSeconds == 600},
		{"migration backoff", *migrate.Spec.BackoffLimit == 0},
		{"migration sees DATABASE_URL like the app", me["DATABASE_URL"].ValueFrom != nil},
		{"jobs carry the revision label", migrate.Labels[deployv1alpha1.LabelRevision] == rev && backup.Labels[deployv1alpha1.LabelRevision] == rev},
		{"jobs have no TTL: a finished Job is the record that the step ran", backup.Spec.TTLSecondsAfterFinished == nil && migrate.Spec.TTLSecondsAfterFinished == nil},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("jobs: %s", c.name)
		}
	}
}

func TestPhaseIsDerivedFromConditions(t *testing.T) {
	c := func(t string, ok bool, reason string) metav1.Condition {
		s := metav1.ConditionFalse
		if ok {
			s = metav1.ConditionTrue
		}
		return metav1.Condition{Type: t, Status: s, Reason: reason}
	}
	cases := []struct {
		name   string
		conds  []metav1.Condition
		paused bool
		want   deployv1alpha1.Phase
	}{
		{"nothing yet", nil, false, deployv1alpha1.PhasePending},
		{"paused wins", []metav1.Condition{c(deployv1alpha1.ConditionReady, true, deployv1alpha1.ReasonSucceeded)}, true, deployv1alpha1.PhasePaused},
		{"backing up", []metav1.Condition{c(deployv1alpha1.ConditionBackupSucceeded, false, deployv1alpha1.ReasonBackupRunning)}, false, deployv1alpha1.PhaseBackingUp},
		{"migrating", []metav1.Condition{c(deployv1alpha1.ConditionBackupSucceeded, true, deployv1alpha1.ReasonBackupCompleted), c(deployv1alpha1.ConditionMigrationSucceeded, false, deployv1alpha1.ReasonMigrationRunning)}, false, deployv1alpha1.PhaseMigrating},
		{"deploying", []metav1.Condition{c(deployv1alpha1.ConditionGreenAvailable, false, deployv1alpha1.ReasonProgressing)}, false, deployv1alpha1.PhaseDeploying},
		{"verifying endpoints", []metav1.Condition{c(deployv1alpha1.ConditionGreenAvailable, false, deployv1alpha1.ReasonWaitingForEndpoints)}, false, deployv1alpha1.PhaseVerifying},
		{"awaiting promotion", []metav1.Condition{c(deployv1alpha1.ConditionGreenAvailable, true, deployv1alpha1.ReasonAvailable), c(deployv1alpha1.ConditionPromoted, false, deployv1alpha1.ReasonAwaitingPromotion)}, false, deployv1alpha1.PhaseAwaitingPromotion},
		{"promoting", []metav1.Condition{c(deployv1alpha1.ConditionPromoted, true, deployv1alpha1.ReasonPromoted), c(deployv1alpha1.ConditionReady, false, deployv1alpha1.ReasonScaleDownPending)}, false, deployv1alpha1.PhasePromoting},
		{"succeeded", []metav1.Condition{c(deployv1alpha1.ConditionPromoted, true, deployv1alpha1.ReasonPromoted), c(deployv1alpha1.ConditionReady, true, deployv1alpha1.ReasonSucceeded)}, false, deployv1alpha1.PhaseSucceeded},
		{"failed", []metav1.Condition{c(deployv1alpha1.ConditionDegraded, true, deployv1alpha1.ReasonMigrationFailed)}, false, deployv1alpha1.PhaseFailed},
		{"rolled back", []metav1.Condition{c(deployv1alpha1.ConditionDegraded, true, deployv1alpha1.ReasonRolledBack)}, false, deployv1alpha1.PhaseRolledBack},
	}
	for _, tc := range cases {
		if got := phaseOf(tc.conds, tc.paused); got != tc.want {
			t.Errorf("%s: phase %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestDeploymentPatchReplacesTheTemplateOnlyWhenItChanged(t *testing.T) {
	r := baseRelease()
	current := buildDeployment(r, deployv1alpha1.Blue, "rev-a", 4)
	current.Annotations[deployv1alpha1.ScaleDownAtAnnotation] = "2026-11-25T12:00:00Z"

	decode := func(raw []byte) map[string]any {
		t.Helper()
		out := map[string]any{}
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	scaled := buildDeployment(r, deployv1alpha1.Blue, "rev-a", 6)
	raw, err := deploymentPatch(current, scaled, false)
	if err != nil {
		t.Fatal(err)
	}
	patch := decode(raw)
	spec := patch["spec"].(map[string]any)
	if _, ok := spec["template"]; ok || spec["replicas"] != float64(6) {
		t.Errorf("a replicas change patched %v; want replicas 6 and no template", spec)
	}
	annotations := patch["metadata"].(map[string]any)["annotations"].(map[string]any)
	if _, ok := annotations[deployv1alpha1.ScaleDownAtAnnotation]; ok {
		t.Errorf("the same revision must keep its scale-down deadline; patch %v", annotations)
	}

	r.Spec.Image = "registry.example.com/softfactory:1.5.0"
	rolled := buildDeployment(r, deployv1alpha1.Blue, "rev-b", 4)
	raw, err = deploymentPatch(current, rolled, true)
	if err != nil {
		t.Fatal(err)
	}
	patch = decode(raw)
	spec = patch["spec"].(map[string]any)
	for _, field := range []string{"template", "strategy"} {
		m, ok := spec[field].(map[string]any)
		if !ok || m["$patch"] != "replace" {
			t.Errorf("spec.%s = %v; want it replaced whole", field, spec[field])
		}
	}
	if !strings.Contains(string(raw), "softfactory:1.5.0") {
		t.Errorf("the new image is not in the patch: %s", raw)
	}
	annotations = patch["metadata"].(map[string]any)["annotations"].(map[string]any)
	if v, ok := annotations[deployv1alpha1.ScaleDownAtAnnotation]; !ok || v != nil {
		t.Errorf("a new revision must delete the scale-down deadline (null); patch %v", annotations)
	}
}
