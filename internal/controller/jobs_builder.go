package controller

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
	"github.com/softfactory/release-operator/internal/backup"
	"github.com/softfactory/release-operator/internal/objecthash"
)

// buildJob is the frame every Job of a release shares: deterministic name, labels,
// no retries beyond backoffLimit, restricted pod security, no service account token
// unless the user names a service account, and no TTL: a finished Job is the record
// that a step ran, which is what keeps it from ever running twice.
func buildJob(r *deployv1alpha1.SoftFactoryRelease, name, component, revision string, backoffLimit *int32, deadline int64, pod corev1.PodSpec) *batchv1.Job {
	labels := labelsFor(r, component)
	labels[deployv1alpha1.LabelRevision] = revision
	pod.RestartPolicy = corev1.RestartPolicyNever
	if pod.SecurityContext == nil {
		pod.SecurityContext = restrictedPodSecurityContext(nil)
	}
	for i := range pod.Containers {
		pod.Containers[i].SecurityContext = restrictedContainerSecurityContext()
	}
	// No Job of a release talks to the Kubernetes API, so none gets a token that anyone
	// reading the pod's files could use. A user who names a service account asked for
	// its power (a migration that reads a ConfigMap, a cloud identity): keep the default.
	if pod.ServiceAccountName == "" {
		pod.AutomountServiceAccountToken = new(false)
	}
	var activeDeadline *int64
	if deadline > 0 {
		activeDeadline = new(deadline)
	}
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Namespace:   r.Namespace,
			Labels:      labels,
			Annotations: map[string]string{deployv1alpha1.RevisionAnnotation: revision},
		},
		Spec: batchv1.JobSpec{
			BackoffLimit:          backoffLimit,
			ActiveDeadlineSeconds: activeDeadline,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       pod,
			},
		},
	}
}

// backupVolume mounts the user's backup PVC. The operator never creates or deletes it.
func backupVolume(b *deployv1alpha1.BackupSpec) (corev1.Volume, corev1.VolumeMount) {
	return corev1.Volume{
			Name:         "backups",
			VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: b.Volume.PersistentVolumeClaim},
		}, corev1.VolumeMount{
			Name:      "backups",
			MountPath: backup.MountPath,
		}
}

// passfileVolume is the in-memory directory where the scripts write the database
// password as a libpq passfile, so that it is never on a command line; the pod's
// security context makes it the Job user's alone.
func passfileVolume() (corev1.Volume, corev1.VolumeMount) {
	return corev1.Volume{
			Name: "pgpass",
			VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
				Medium: corev1.StorageMediumMemory, SizeLimit: new(resource.MustParse("1Mi")),
			}},
		}, corev1.VolumeMount{
			Name:      "pgpass",
			MountPath: backup.PassDirMountPath,
		}
}

// buildBackupJob is the pg_dump Job taken before a revision's migration. file is the
// dump's name, chosen by the caller (backup.FileName) so this builder stays pure.
func buildBackupJob(r *deployv1alpha1.SoftFactoryRelease, revision, file string) *batchv1.Job {
	return buildDumpJob(r, r.BackupJobName(revision), deployv1alpha1.ComponentBackup, revision, file)
}

// buildDumpJob is a backup Job under name and component: the same script, verification,
// pruning and volume for every dump the operator takes.
func buildDumpJob(r *deployv1alpha1.SoftFactoryRelease, name, component, revision, file string) *batchv1.Job {
	b := r.Spec.Backup
	return buildPostgresJob(r, name, component, revision, file,
		backup.BackupCommand(), b.BackoffLimit,
		corev1.EnvVar{Name: backup.EnvReleaseName, Value: r.Name},
		corev1.EnvVar{Name: backup.EnvKeepLast, Value: strconv.Itoa(int(b.KeepLast))},
		corev1.EnvVar{Name: backup.EnvVerify, Value: strconv.FormatBool(b.VerifyEnabled())},
		corev1.EnvVar{Name: backup.EnvMinSizeBytes, Value: strconv.FormatInt(max(b.Verify.MinSizeBytes, 1), 10)},
		corev1.EnvVar{Name: backup.EnvKeepFiles, Value: strings.Join(dumpsInStatus(r), " ")},
	)
}

// dumpsInStatus are the dumps the release's status refers to (its last backup, and the
// pre-migration and pre-contract dumps of every revision in its history): pruning keeps them, so a record
// never points at a file that is gone and a rollback keeps its dump.
func dumpsInStatus(r *deployv1alpha1.SoftFactoryRelease) []string {
	var files []string
	seen := map[string]bool{}
	add := func(f string) {
		if f != "" && !seen[f] {
			seen[f] = true
			files = append(files, f)
		}
	}
	if r.Status.LastBackup != nil {
		add(r.Status.LastBackup.File)
	}
	for _, h := range r.Status.History {
		add(h.BackupFile)
		// The pre-contract dump is how a contract is undone by hand.
		if rec := r.Status.RevisionRecordOf(h.Revision); rec != nil && rec.ContractBackup != nil {
			add(rec.ContractBackup.File)
		}
	}
	return files
}

// buildRestoreJob loads a revision's pre-release dump back after its migration failed.
// Only built when spec.rollback.restoreDatabase is set: it overwrites the database. It
// never retries: a half-done restore is for a human to look at.
func buildRestoreJob(r *deployv1alpha1.SoftFactoryRelease, revision, file string) *batchv1.Job {
	return buildPostgresJob(r, r.RestoreJobName(revision), deployv1alpha1.ComponentRestore, revision, file,
		backup.RestoreCommand(), ptr.To[int32](0))
}

// buildPostgresJob is a Job running one of the backup scripts in the PostgreSQL client
// image as its non-root user, with the backup volume mounted, DATABASE_URL by reference,
// and the dump's file name in both env and an annotation.
func buildPostgresJob(r *deployv1alpha1.SoftFactoryRelease, name, component, revision, file string, command []string, backoffLimit *int32, extraEnv ...corev1.EnvVar) *batchv1.Job {
	b := r.Spec.Backup
	vol, mount := backupVolume(b)
	passVol, passMount := passfileVolume()
	env := slices.Concat([]corev1.EnvVar{
		databaseURLFromSecret(r.Spec.Database),
		{Name: backup.EnvBackupDir, Value: backup.MountPath},
		{Name: backup.EnvBackupFile, Value: file},
		{Name: backup.EnvPassDir, Value: backup.PassDirMountPath},
	}, extraEnv)
	pod := corev1.PodSpec{
		Containers: []corev1.Container{{
			Name:         component,
			Image:        b.Image,
			Command:      command,
			Env:          env,
			VolumeMounts: []corev1.VolumeMount{mount, passMount},
			Resources:    b.Resources,
		}},
		Volumes:         []corev1.Volume{vol, passVol},
		SecurityContext: restrictedPodSecurityContext(backupRunAs(b)),
	}
	applySchedulingOverrides(r, &pod)
	job := buildJob(r, name, component, revision, backoffLimit, b.ActiveDeadlineSeconds, pod)
	job.Annotations[deployv1alpha1.BackupFileAnnotation] = file
	return job
}

// buildMigrationJob runs the migration command with the API's own env, image (unless
// overridden), volumes and scheduling, so it sees the database exactly as the app will.
func buildMigrationJob(r *deployv1alpha1.SoftFactoryRelease, revision string) *batchv1.Job {
	m := r.Spec.Migration
	image := m.Image
	if image == "" {
		image = r.Spec.Image
	}
	return buildSchemaJob(r, r.MigrationJobName(revision), deployv1alpha1.ComponentMigration, revision, schemaStep{
		container: "migrate", image: image, command: m.Command, args: m.Args, env: m.Env,
		backoffLimit: m.BackoffLimit, deadline: m.ActiveDeadlineSeconds,
	})
}

// schemaStep is what a Job that changes the schema (the migration, the contract step)
// runs; the rest of its pod is the API's.
type schemaStep struct {
	container    string
	image        string
	command      []string
	args         []string
	env          []corev1.EnvVar // added after the API's own env
	backoffLimit *int32
	deadline     int64
}

// buildSchemaJob runs a schema step with the API's own env, volumes, security context and
// scheduling, so it sees the database exactly as the app will.
func buildSchemaJob(r *deployv1alpha1.SoftFactoryRelease, name, component, revision string, step schemaStep) *batchv1.Job {
	app := buildAppPodSpec(r)
	container := corev1.Container{
		Name:         step.container,
		Image:        step.image,
		Command:      step.command,
		Args:         step.args,
		Env:          append(appEnv(r), step.env...),
		EnvFrom:      r.Spec.EnvFrom,
		VolumeMounts: app.Containers[0].VolumeMounts,
		Resources:    r.Spec.Resources,
	}
	pod := corev1.PodSpec{
		Containers:      []corev1.Container{container},
		Volumes:         app.Volumes,
		SecurityContext: app.SecurityContext,
	}
	applySchedulingOverrides(r, &pod)
	return buildJob(r, name, component, revision, step.backoffLimit, step.deadline, pod)
}

// previewURL is how a smoke test reaches the colour under test.
func previewURL(r *deployv1alpha1.SoftFactoryRelease) string {
	return fmt.Sprintf("http://%s.%s.svc:%d", r.PreviewServiceName(), r.Namespace, r.Spec.Service.Port)
}

// buildSmokeTestJob runs the user's smoke test against the preview Service.
func buildSmokeTestJob(r *deployv1alpha1.SoftFactoryRelease, revision string) *batchv1.Job {
	s := r.Spec.Strategy.BlueGreen.SmokeTest
	image := s.Image
	if image == "" {
		image = r.Spec.Image
	}
	pod := smokeTestPodSpec(r, image, []corev1.EnvVar{{Name: "PREVIEW_URL", Value: previewURL(r)}})
	return buildJob(r, r.SmokeTestJobName(revision), deployv1alpha1.ComponentSmokeTest, revision, ptr.To[int32](0), s.ActiveDeadlineSeconds, pod)
}

// smokeTestPodSpec is the pod of the user's smoke test (spec.strategy.blueGreen.smokeTest:
// command, args, env after urls) in image, with the app's security and scheduling.
func smokeTestPodSpec(r *deployv1alpha1.SoftFactoryRelease, image string, urls []corev1.EnvVar) corev1.PodSpec {
	s := r.Spec.Strategy.BlueGreen.SmokeTest
	container := corev1.Container{
		Name:    "smoke-test",
		Image:   image,
		Command: s.Command,
		Args:    s.Args,
		Env:     append(urls, s.Env...),
	}
	pod := corev1.PodSpec{
		Containers: []corev1.Container{container},
		// The smoke test runs the release image by default: as the app does.
		SecurityContext: restrictedPodSecurityContext(appRunAs(r)),
	}
	applySchedulingOverrides(r, &pod)
	return pod
}

// buildScheduledBackupCronJob takes backups on spec.backup.schedule, outside releases,
// with the same script, verification and pruning as the pre-migration backup. The dump
// is named for the revision serving traffic when it runs (the script adds the time).
func buildScheduledBackupCronJob(r *deployv1alpha1.SoftFactoryRelease, servingRevision string) *batchv1.CronJob {
	job := buildBackupJob(r, servingRevision, "")
	labels := labelsFor(r, deployv1alpha1.ComponentScheduledBackup)
	labels[deployv1alpha1.LabelRevision] = servingRevision
	job.Spec.Template.Labels = labels
	env := job.Spec.Template.Spec.Containers[0].Env[:0]
	for _, e := range job.Spec.Template.Spec.Containers[0].Env {
		if e.Name != backup.EnvBackupFile {
			env = append(env, e)
		}
	}
	job.Spec.Template.Spec.Containers[0].Env = append(env, corev1.EnvVar{Name: backup.EnvRevision, Value: servingRevision})
	cj := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{
			Name:      r.ScheduledBackupName(),
			Namespace: r.Namespace,
			Labels:    labels,
		},
		Spec: batchv1.CronJobSpec{
			Schedule: r.Spec.Backup.Schedule,
			// Two dumps of one database at once only slow each other down.
			ConcurrencyPolicy:          batchv1.ForbidConcurrent,
			SuccessfulJobsHistoryLimit: ptr.To[int32](3),
			FailedJobsHistoryLimit:     ptr.To[int32](3),
			JobTemplate: batchv1.JobTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       job.Spec,
			},
		},
	}
	cj.Annotations = map[string]string{deployv1alpha1.SpecHashAnnotation: objecthash.Of(cj.Spec)}
	return cj
}
