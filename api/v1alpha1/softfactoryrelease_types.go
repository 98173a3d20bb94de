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

package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// SoftFactoryReleaseSpec declares one release of the SoftFactory API: which image to run
// and how the operator takes it to production (backup, migration, blue/green, gates).
//
// Validation lives here, in the CRD (OpenAPI and CEL), so a bad manifest is refused at
// `kubectl apply` time with a message that says what to fix.
//
// +kubebuilder:validation:XValidation:rule="!has(self.backup) || has(self.database)",message="spec.backup needs spec.database: set spec.database.urlSecretRef to the Secret holding DATABASE_URL"
// +kubebuilder:validation:XValidation:rule="!has(self.migration) || has(self.backup)",message="spec.migration needs spec.backup: the operator never migrates without a verified backup; add spec.backup with a volume"
// +kubebuilder:validation:XValidation:rule="!has(self.rollback) || !has(self.rollback.restoreDatabase) || !self.rollback.restoreDatabase || (has(self.database) && has(self.backup))",message="spec.rollback.restoreDatabase needs spec.database and spec.backup: there is no dump to restore from without them"
// +kubebuilder:validation:XValidation:rule="!has(self.rollback) || !has(self.rollback.restoreDatabase) || !self.rollback.restoreDatabase || has(self.migration)",message="spec.rollback.restoreDatabase only applies when spec.migration is set: the restore undoes a failed migration"
// +kubebuilder:validation:XValidation:rule="!has(self.rollback) || !has(self.rollback.restore) || self.rollback.restore == 'Never' || (has(self.database) && has(self.backup) && has(self.migration))",message="spec.rollback.restore needs spec.database, spec.backup and spec.migration: the restore loads the pre-migration dump back after a failed migration"
// +kubebuilder:validation:XValidation:rule="!has(self.database) || !has(self.env) || !self.env.exists(e, e.name == 'DATABASE_URL')",message="spec.env must not set DATABASE_URL when spec.database is set: the backup, the migration and the app must see one database; remove it from spec.env and point spec.database.urlSecretRef at the Secret holding the URL"
// +kubebuilder:validation:XValidation:rule="!has(self.database) || !has(self.migration) || !has(self.migration.env) || !self.migration.env.exists(e, e.name == 'DATABASE_URL')",message="spec.migration.env must not set DATABASE_URL when spec.database is set: the migration must run on the database the backup was taken of; remove it and use spec.database.urlSecretRef"
// +kubebuilder:validation:XValidation:rule="!has(self.database) || !has(self.migration) || !has(self.migration.contract) || !has(self.migration.contract.env) || !self.migration.contract.env.exists(e, e.name == 'DATABASE_URL')",message="spec.migration.contract.env must not set DATABASE_URL when spec.database is set: the contract step must run on the database the backup was taken of; remove it and use spec.database.urlSecretRef"
// +kubebuilder:validation:XValidation:rule="!has(self.strategy) || !has(self.strategy.blueGreen) || !has(self.strategy.blueGreen.compatibilityCheck) || (has(self.strategy.blueGreen.smokeTest) && has(self.migration))",message="spec.strategy.blueGreen.compatibilityCheck needs smokeTest and spec.migration: it runs the smoke test with the serving revision's image against the migrated database"
type SoftFactoryReleaseSpec struct {
	// image is the SoftFactory API container image, for example
	// registry.example.com/softfactory:1.4.2. A changed image is a new release.
	// +required
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="self.trim().size() > 0",message="spec.image must not be empty or whitespace: give an image reference such as registry.example.com/softfactory:1.4.2"
	// +kubebuilder:validation:XValidation:rule="!self.contains(' ') && !self.contains('\\t') && !self.contains('\\n')",message="spec.image must not contain whitespace: give a single image reference"
	Image string `json:"image"`

	// replicas is the number of API pods of the active colour. Defaults to 2.
	// +optional
	// +kubebuilder:default=2
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	Replicas *int32 `json:"replicas,omitempty"`

	// port is the container port the API listens on. Defaults to 8000.
	// +optional
	// +kubebuilder:default=8000
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port,omitempty"`

	// healthCheck configures the readiness probe, the runbook's health check: GET /health
	// by default. The liveness and startup probes only check that the port accepts
	// connections (a health path that checks the database would restart every pod when
	// the database blips); liveness uses this period and timeout, three times the failures.
	// +optional
	// +kubebuilder:default={}
	HealthCheck HealthCheckSpec `json:"healthCheck,omitempty"`

	// env adds environment variables to the API container (and to the migration Job).
	// +optional
	// +kubebuilder:validation:MaxItems=200
	// +listType=map
	// +listMapKey=name
	Env []corev1.EnvVar `json:"env,omitempty"`

	// envFrom adds environment from ConfigMaps or Secrets to the API container (and to the
	// migration Job), for example the Secret that holds the Flask configuration.
	// +optional
	// +kubebuilder:validation:MaxItems=20
	// +listType=atomic
	EnvFrom []corev1.EnvFromSource `json:"envFrom,omitempty"`

	// resources are the API container's requests and limits.
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`

	// podTemplate overrides parts of the API pod template: labels, annotations, volumes,
	// node selection, sidecars. Defaults to nothing.
	// +optional
	PodTemplate *PodTemplateOverrides `json:"podTemplate,omitempty"`

	// service configures the active Service (and its preview twin `<name>-preview`).
	// Defaults to a ClusterIP Service named after the release on port 80.
	// +optional
	// +kubebuilder:default={}
	Service ServiceSpec `json:"service,omitempty"`

	// database points at the PostgreSQL database of this release. Needed for backups and
	// restores. The operator never reads the Secret: it passes it to its Jobs by reference.
	// +optional
	Database *DatabaseSpec `json:"database,omitempty"`

	// backup configures the pre-migration backup (pg_dump to a volume). Needs database.
	// +optional
	Backup *BackupSpec `json:"backup,omitempty"`

	// migration configures the schema migration Job run before green comes up. Needs backup.
	// +optional
	Migration *MigrationSpec `json:"migration,omitempty"`

	// strategy configures the blue/green switch. Defaults to automatic promotion.
	// +optional
	// +kubebuilder:default={}
	Strategy StrategySpec `json:"strategy,omitempty"`

	// rollback says what happens when a release fails. Defaults to scaling green down and
	// never touching the database.
	// +optional
	// +kubebuilder:default={}
	Rollback RollbackSpec `json:"rollback,omitempty"`

	// monitoring configures the PrometheusRule with the runbook's alerts. Defaults to
	// enabled with the runbook's thresholds.
	// +optional
	// +kubebuilder:default={}
	Monitoring MonitoringSpec `json:"monitoring,omitempty"`

	// paused freezes the release where it is: no new Job, no scale, no flip. Defaults to false.
	// +optional
	Paused bool `json:"paused,omitempty"`

	// revisionHistoryLimit bounds status.history. Defaults to 10.
	// +optional
	// +kubebuilder:default=10
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	RevisionHistoryLimit int32 `json:"revisionHistoryLimit,omitempty"`
}

// HealthCheckSpec is the HTTP endpoint the probes call, the runbook's `curl /health`.
type HealthCheckSpec struct {
	// path is the HTTP path of the health endpoint. Defaults to /health.
	// +optional
	// +kubebuilder:default="/health"
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="self.startsWith('/')",message="spec.healthCheck.path must start with '/', for example /health"
	// +kubebuilder:validation:XValidation:rule="!self.contains(' ') && !self.contains('?') && !self.contains('#')",message="spec.healthCheck.path must be a plain URL path without spaces, query or fragment, for example /health"
	Path string `json:"path,omitempty"`

	// initialDelaySeconds before the first probe. Defaults to 0.
	// +optional
	// +kubebuilder:validation:Minimum=0
	InitialDelaySeconds int32 `json:"initialDelaySeconds,omitempty"`

	// periodSeconds between probes. Defaults to 5.
	// +optional
	// +kubebuilder:default=5
	// +kubebuilder:validation:Minimum=1
	PeriodSeconds int32 `json:"periodSeconds,omitempty"`

	// timeoutSeconds of one probe. Defaults to 2.
	// +optional
	// +kubebuilder:default=2
	// +kubebuilder:validation:Minimum=1
	TimeoutSeconds int32 `json:"timeoutSeconds,omitempty"`

	// failureThreshold is how many failed probes mark a pod unready. Defaults to 3.
	// +optional
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=1
	FailureThreshold int32 `json:"failureThreshold,omitempty"`
}

// PodTemplateOverrides are the parts of the API pod template a user may set. The
// operator owns the rest (image, probes, labels it selects on, security defaults).
type PodTemplateOverrides struct {
	// labels are added to the pods. The operator's own labels win on conflict.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`

	// annotations are added to the pods.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`

	// serviceAccountName runs the pods as this ServiceAccount. Defaults to the namespace's
	// default. The migration and smoke-test Jobs run as it too; without it they get no
	// service account token at all (automountServiceAccountToken: false).
	// +optional
	ServiceAccountName string `json:"serviceAccountName,omitempty"`

	// securityContext sets the user and groups the API pods, the migration and the smoke
	// test run as: for an image without a non-root USER. runAsNonRoot stays forced
	// (Pod Security "restricted"). Defaults to the image's own USER.
	// +optional
	SecurityContext *RunAsSpec `json:"securityContext,omitempty"`

	// imagePullSecrets for private registries.
	// +optional
	// +listType=atomic
	ImagePullSecrets []corev1.LocalObjectReference `json:"imagePullSecrets,omitempty"`

	// nodeSelector constrains the pods to matching nodes.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// tolerations for tainted nodes.
	// +optional
	// +listType=atomic
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`

	// affinity rules for the pods.
	// +optional
	Affinity *corev1.Affinity `json:"affinity,omitempty"`

	// topologySpreadConstraints spread the pods across zones or nodes.
	// +optional
	// +listType=atomic
	TopologySpreadConstraints []corev1.TopologySpreadConstraint `json:"topologySpreadConstraints,omitempty"`

	// priorityClassName of the pods.
	// +optional
	PriorityClassName string `json:"priorityClassName,omitempty"`

	// volumes are added to the pod.
	// +optional
	// +kubebuilder:validation:MaxItems=50
	// +listType=map
	// +listMapKey=name
	Volumes []corev1.Volume `json:"volumes,omitempty"`

	// volumeMounts are added to the API container.
	// +optional
	// +kubebuilder:validation:MaxItems=50
	// +listType=atomic
	VolumeMounts []corev1.VolumeMount `json:"volumeMounts,omitempty"`

	// sidecars are extra containers beside the API container. A sidecar without a
	// securityContext gets the restricted one of the API container (no privilege
	// escalation, every capability dropped, runAsNonRoot); one with its own keeps it,
	// within what the namespace's Pod Security level admits.
	// +optional
	// +kubebuilder:validation:MaxItems=10
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:XValidation:rule="self.all(c, c.name != 'api')",message="spec.podTemplate.sidecars must not be named 'api': that name is the operator's API container"
	Sidecars []corev1.Container `json:"sidecars,omitempty"`

	// terminationGracePeriodSeconds of the pods. Defaults to Kubernetes' 30.
	// +optional
	// +kubebuilder:validation:Minimum=0
	TerminationGracePeriodSeconds *int64 `json:"terminationGracePeriodSeconds,omitempty"`
}

// ServiceSpec configures the active Service that clients use and the preview Service
// that reaches the colour under test.
type ServiceSpec struct {
	// name of the active Service. Defaults to the release name. The preview Service is
	// `<name>-preview`.
	// +optional
	// +kubebuilder:validation:MaxLength=55
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",message="spec.service.name must be a DNS-1035 label: lower-case letters, digits and '-', starting with a letter"
	Name string `json:"name,omitempty"`

	// port the Service exposes. Defaults to 80.
	// +optional
	// +kubebuilder:default=80
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port,omitempty"`

	// type of the active Service. Defaults to ClusterIP.
	// +optional
	// +kubebuilder:default=ClusterIP
	Type corev1.ServiceType `json:"type,omitempty"`
}

// SecretKeyRef names one key of a Secret in the release's namespace.
type SecretKeyRef struct {
	// name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// key in the Secret. Defaults to DATABASE_URL.
	// +optional
	// +kubebuilder:default=DATABASE_URL
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Key string `json:"key,omitempty"`
}

// DatabaseSpec points at the release's PostgreSQL database.
type DatabaseSpec struct {
	// urlSecretRef is the Secret key holding the database URL, in libpq form
	// (postgresql://user:pass@host:5432/db) or SQLAlchemy form
	// (postgresql+psycopg2://...). Jobs get it through secretKeyRef only.
	// +required
	URLSecretRef SecretKeyRef `json:"urlSecretRef"`
}

// BackupVolume is where dumps are written. The operator never deletes it.
type BackupVolume struct {
	// persistentVolumeClaim names an existing PVC in the release's namespace.
	// +required
	PersistentVolumeClaim *corev1.PersistentVolumeClaimVolumeSource `json:"persistentVolumeClaim"`
}

// BackupVerifySpec configures the check of each dump before a migration may run.
type BackupVerifySpec struct {
	// enabled runs `pg_restore --list` on the dump and checks its size. Defaults to true.
	// +optional
	// +kubebuilder:default=true
	Enabled *bool `json:"enabled,omitempty"`

	// minSizeBytes is the smallest dump accepted. Defaults to 1 (non-empty).
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	MinSizeBytes int64 `json:"minSizeBytes,omitempty"`
}

// BackupSpec configures the pg_dump taken before every migration.
type BackupSpec struct {
	// volume receives the dumps as `<release>-<revision>-<UTC timestamp>.dump`.
	// +required
	Volume BackupVolume `json:"volume"`

	// image with pg_dump and pg_restore. Defaults to postgres:15-alpine.
	// +optional
	// +kubebuilder:default="postgres:15-alpine"
	// +kubebuilder:validation:MinLength=1
	Image string `json:"image,omitempty"`

	// keepLast is how many of this release's dumps to keep; older ones are pruned after a
	// verified backup. Other files on the volume are never touched. Defaults to 10.
	// +optional
	// +kubebuilder:default=10
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	KeepLast int32 `json:"keepLast,omitempty"`

	// verify checks each dump before the migration may run. Defaults to enabled.
	// +optional
	// +kubebuilder:default={}
	Verify BackupVerifySpec `json:"verify,omitempty"`

	// schedule, a cron expression, also takes backups on a timer outside releases
	// (a CronJob). Defaults to none.
	// +optional
	// +kubebuilder:validation:MaxLength=100
	// +kubebuilder:validation:XValidation:rule="self.matches('^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|[^ ]+( +[^ ]+){4})$')",message="spec.backup.schedule must be a cron expression with five fields, for example '0 3 * * *', or a macro such as @daily"
	Schedule string `json:"schedule,omitempty"`

	// maxAge is how old the verified backup may be when the migration starts. A backup
	// older than this (the release was paused, or held at a safe point, after it) is
	// taken again, by a new Job, before the migration runs. Defaults to 1h.
	// +optional
	// +kubebuilder:default="1h"
	MaxAge *metav1.Duration `json:"maxAge,omitempty"`

	// activeDeadlineSeconds bounds the backup Job. Defaults to 3600.
	// +optional
	// +kubebuilder:default=3600
	// +kubebuilder:validation:Minimum=1
	ActiveDeadlineSeconds int64 `json:"activeDeadlineSeconds,omitempty"`

	// backoffLimit is how many times a failed backup pod is retried. Defaults to 1.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10
	BackoffLimit *int32 `json:"backoffLimit,omitempty"`

	// resources of the backup container.
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`

	// securityContext sets the user and groups the backup and restore pods run as, for a
	// PostgreSQL image whose non-root user is not the postgres:alpine images' uid 70.
	// Each field left out defaults to 70. runAsNonRoot stays forced.
	// +optional
	SecurityContext *RunAsSpec `json:"securityContext,omitempty"`
}

// RunAsSpec is the identity a pod's containers run as. The operator keeps
// runAsNonRoot: true on every pod, so these fields let an image that has no non-root
// USER run (as the uid given here), never run as root.
type RunAsSpec struct {
	// runAsUser is the uid the containers run as. Must not be 0.
	// +optional
	// +kubebuilder:validation:Maximum=2147483647
	// +kubebuilder:validation:XValidation:rule="self > 0",message="runAsUser must be a non-root uid above 0, such as 1000: the operator keeps runAsNonRoot on every pod (Pod Security restricted), so a pod running as root is never started"
	RunAsUser *int64 `json:"runAsUser,omitempty"`

	// runAsGroup is the primary gid of the containers' processes.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=2147483647
	RunAsGroup *int64 `json:"runAsGroup,omitempty"`

	// fsGroup is the group that owns the pod's volumes (where the volume type supports
	// it; not hostPath) and is added to the containers' groups, so a non-root user can
	// write to them.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=2147483647
	FSGroup *int64 `json:"fsGroup,omitempty"`
}

// MigrationSpec configures the schema migration, the runbook's `flask db upgrade`.
type MigrationSpec struct {
	// command run by the migration Job. Defaults to ["flask", "db", "upgrade"].
	// +optional
	// +kubebuilder:default={"flask","db","upgrade"}
	// +kubebuilder:validation:MinItems=1
	// +listType=atomic
	Command []string `json:"command,omitempty"`

	// args passed to the command.
	// +optional
	// +listType=atomic
	Args []string `json:"args,omitempty"`

	// image of the migration Job. Defaults to spec.image.
	// +optional
	Image string `json:"image,omitempty"`

	// env adds variables to the migration Job, after the API's own env.
	// +optional
	// +kubebuilder:validation:MaxItems=200
	// +listType=map
	// +listMapKey=name
	Env []corev1.EnvVar `json:"env,omitempty"`

	// activeDeadlineSeconds bounds the migration Job. Defaults to 600.
	// +optional
	// +kubebuilder:default=600
	// +kubebuilder:validation:Minimum=1
	ActiveDeadlineSeconds int64 `json:"activeDeadlineSeconds,omitempty"`

	// backoffLimit is how many times a failed migration pod is retried. Defaults to 0:
	// a half-applied migration is for a human to look at, not to run again blindly.
	// +optional
	// +kubebuilder:default=0
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10
	BackoffLimit *int32 `json:"backoffLimit,omitempty"`

	// contract is the destructive half of an expand/contract migration (dropping a
	// column the new revision renamed, a table it no longer reads). The migration above
	// is the expand half: it runs while the old colour still serves, so it must stay
	// compatible with it. The contract step runs once per revision, only after the flip
	// and only once the old colour has scaled to zero and none of its pods is left, on a
	// fresh verified backup taken just before it. Defaults to none.
	// +optional
	Contract *ContractSpec `json:"contract,omitempty"`
}

// ContractSpec is the contract step of an expand/contract migration, run after the old
// colour is gone.
type ContractSpec struct {
	// command run by the contract Job, for example ["flask", "db", "upgrade", "contract"].
	// +required
	// +kubebuilder:validation:MinItems=1
	// +listType=atomic
	Command []string `json:"command"`

	// args passed to the command.
	// +optional
	// +listType=atomic
	Args []string `json:"args,omitempty"`

	// image of the contract Job. Defaults to spec.migration.image, then spec.image.
	// +optional
	Image string `json:"image,omitempty"`

	// env adds variables to the contract Job, after the API's own env.
	// +optional
	// +kubebuilder:validation:MaxItems=200
	// +listType=map
	// +listMapKey=name
	Env []corev1.EnvVar `json:"env,omitempty"`

	// activeDeadlineSeconds bounds the contract Job. Defaults to 600.
	// +optional
	// +kubebuilder:default=600
	// +kubebuilder:validation:Minimum=1
	ActiveDeadlineSeconds int64 `json:"activeDeadlineSeconds,omitempty"`

	// backoffLimit is how many times a failed contract pod is retried. Defaults to 0.
	// +optional
	// +kubebuilder:default=0
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10
	BackoffLimit *int32 `json:"backoffLimit,omitempty"`
}

// StrategySpec holds the rollout strategy. Only blue/green exists today.
type StrategySpec struct {
	// blueGreen configures the blue/green switch.
	// +optional
	// +kubebuilder:default={}
	BlueGreen BlueGreenSpec `json:"blueGreen,omitempty"`
}

// BlueGreenSpec configures how green is verified, promoted and how long blue stays.
type BlueGreenSpec struct {
	// autoPromote flips traffic as soon as green passes its gates. With false the release
	// waits in AwaitingPromotion for the promote annotation. Defaults to true.
	// +optional
	// +kubebuilder:default=true
	AutoPromote *bool `json:"autoPromote,omitempty"`

	// scaleDownDelaySeconds keeps the old colour up after the flip (kube-proxy
	// propagation and an instant rollback window). Defaults to 30.
	// +optional
	// +kubebuilder:default=30
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=86400
	ScaleDownDelaySeconds *int32 `json:"scaleDownDelaySeconds,omitempty"`

	// progressDeadlineSeconds is how long green may take to become available before
	// the release is aborted (green scaled down, traffic never moved). Defaults to 600.
	// +optional
	// +kubebuilder:default=600
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=86400
	ProgressDeadlineSeconds int32 `json:"progressDeadlineSeconds,omitempty"`

	// smokeTest is a Job run against the preview Service before promotion; it must
	// complete. It gets PREVIEW_URL in its environment. Defaults to none.
	// +optional
	SmokeTest *SmokeTestSpec `json:"smokeTest,omitempty"`

	// prePromotionAnalysis are Prometheus checks on the preview colour that must pass
	// before promotion. While the new revision is on its way, the same checks also watch
	// the serving colour ($COLOR is then the serving colour): their failure is the serving
	// colour degrading (onServingDegraded). Defaults to none.
	// +optional
	PrePromotionAnalysis *AnalysisSpec `json:"prePromotionAnalysis,omitempty"`

	// postPromotionAnalysis are Prometheus checks run after the flip while the old colour
	// is still up; a failure flips back at once. Defaults to none.
	// +optional
	PostPromotionAnalysis *PostPromotionAnalysisSpec `json:"postPromotionAnalysis,omitempty"`

	// onServingDegraded says what the release does when the serving colour degrades
	// between the start of the migration and the flip (it loses ready endpoints, its
	// pods fail readiness, or, with prePromotionAnalysis, its checks fail): Stop (the
	// default) stops the release and says what was seen; Promote flips to the new colour
	// as soon as it passes its own gates, without waiting for the promote annotation,
	// because the serving colour is already broken. Either way ServingDegraded says so.
	// +optional
	// +kubebuilder:default=Stop
	OnServingDegraded ServingDegradedPolicy `json:"onServingDegraded,omitempty"`

	// compatibilityCheck runs, once the migration has completed and before the flip, the
	// smoke test with the serving revision's image against the active Service (so against
	// the migrated database): a migration the serving revision cannot live with stops the
	// release before the serving colour's next restart finds out. Needs smokeTest.
	// +optional
	CompatibilityCheck *CompatibilityCheckSpec `json:"compatibilityCheck,omitempty"`
}

// ServingDegradedPolicy says what a release does when the serving colour degrades while
// the new revision is on its way.
// +kubebuilder:validation:Enum=Stop;Promote
type ServingDegradedPolicy string

// The serving-degraded policies.
const (
	// ServingDegradedStop stops the release; traffic stays where it is.
	ServingDegradedStop ServingDegradedPolicy = "Stop"
	// ServingDegradedPromote promotes the new colour as soon as it is available.
	ServingDegradedPromote ServingDegradedPolicy = "Promote"
)

// CompatibilityCheckSpec runs the smoke test with the serving revision's image against
// the serving colour after the migration.
type CompatibilityCheckSpec struct {
	// enabled turns the check on. Defaults to true when compatibilityCheck is set.
	// +optional
	// +kubebuilder:default=true
	Enabled *bool `json:"enabled,omitempty"`

	// activeDeadlineSeconds bounds the check's Job. Defaults to 300.
	// +optional
	// +kubebuilder:default=300
	// +kubebuilder:validation:Minimum=1
	ActiveDeadlineSeconds int64 `json:"activeDeadlineSeconds,omitempty"`
}

// SmokeTestSpec is a Job that tests the preview colour before promotion.
type SmokeTestSpec struct {
	// image of the smoke-test Job. Defaults to spec.image.
	// +optional
	Image string `json:"image,omitempty"`

	// command of the smoke test, for example ["pytest", "tests/smoke"].
	// +required
	// +kubebuilder:validation:MinItems=1
	// +listType=atomic
	Command []string `json:"command"`

	// args passed to the command.
	// +optional
	// +listType=atomic
	Args []string `json:"args,omitempty"`

	// env adds variables to the smoke test.
	// +optional
	// +listType=map
	// +listMapKey=name
	Env []corev1.EnvVar `json:"env,omitempty"`

	// activeDeadlineSeconds bounds the smoke test. Defaults to 300.
	// +optional
	// +kubebuilder:default=300
	// +kubebuilder:validation:Minimum=1
	ActiveDeadlineSeconds int64 `json:"activeDeadlineSeconds,omitempty"`
}

// MetricCheck is one PromQL query and the range its value must stay in.
// +kubebuilder:validation:XValidation:rule="has(self.min) || has(self.max)",message="a check needs min, max or both: otherwise it can never fail"
// +kubebuilder:validation:XValidation:rule="!has(self.min) || !has(self.max) || double(self.min) <= double(self.max)",message="a check's min must not be above its max"
type MetricCheck struct {
	// name of the check, shown in conditions and events.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`

	// query is PromQL returning one number. `$COLOR`, `$NAMESPACE` and `$RELEASE` are
	// replaced by the colour under test, the namespace and the release name.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	Query string `json:"query"`

	// min is the smallest passing value, a decimal such as "0.95".
	// +optional
	// +kubebuilder:validation:Pattern=`^-?[0-9]+(\.[0-9]+)?$`
	Min *string `json:"min,omitempty"`

	// max is the largest passing value, a decimal such as "0.05".
	// +optional
	// +kubebuilder:validation:Pattern=`^-?[0-9]+(\.[0-9]+)?$`
	Max *string `json:"max,omitempty"`
}

// AnalysisSpec is a set of Prometheus checks evaluated repeatedly.
type AnalysisSpec struct {
	// prometheusURL is the Prometheus server to query, for example
	// http://prometheus-operated.monitoring:9090.
	// +required
	// +kubebuilder:validation:XValidation:rule="self.startsWith('http://') || self.startsWith('https://')",message="prometheusURL must start with http:// or https://"
	PrometheusURL string `json:"prometheusURL"`

	// checks that must all pass.
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=20
	// +listType=map
	// +listMapKey=name
	Checks []MetricCheck `json:"checks"`

	// intervalSeconds between evaluations. Defaults to 30.
	// +optional
	// +kubebuilder:default=30
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=3600
	IntervalSeconds int32 `json:"intervalSeconds,omitempty"`

	// successfulRuns is how many consecutive passing evaluations are needed. Defaults to 3.
	// +optional
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	SuccessfulRuns int32 `json:"successfulRuns,omitempty"`

	// failureLimit is how many failing evaluations end the analysis as failed.
	// Inconclusive ones (Prometheus unreachable, query error) never count as passing.
	// Defaults to 1.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	FailureLimit int32 `json:"failureLimit,omitempty"`
}

// PostPromotionAnalysisSpec runs checks for a window after the flip.
type PostPromotionAnalysisSpec struct {
	AnalysisSpec `json:",inline"`

	// windowSeconds is how long after the flip the checks run. The old colour stays up at
	// least this long. Defaults to 300.
	// +optional
	// +kubebuilder:default=300
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=86400
	WindowSeconds int32 `json:"windowSeconds,omitempty"`
}

// FailurePolicy says what happens to green when a release fails.
// +kubebuilder:validation:Enum=ScaleDown;Keep
type FailurePolicy string

const (
	// FailurePolicyScaleDown scales the failed colour to zero (its Deployment stays).
	FailurePolicyScaleDown FailurePolicy = "ScaleDown"
	// FailurePolicyKeep leaves the failed colour running for inspection; it never gets traffic.
	FailurePolicyKeep FailurePolicy = "Keep"
)

// RollbackSpec says what happens when a release fails.
// +kubebuilder:validation:XValidation:rule="!has(self.restoreDatabase) || !self.restoreDatabase || !has(self.restore) || self.restore == 'Automatic'",message="spec.rollback.restoreDatabase: true means restore: Automatic and contradicts the restore set here: remove restoreDatabase and keep restore"
type RollbackSpec struct {
	// onFailure is ScaleDown (the failed green scales to zero) or Keep (left running for
	// inspection, never receiving traffic). Defaults to ScaleDown.
	// +optional
	// +kubebuilder:default=ScaleDown
	OnFailure FailurePolicy `json:"onFailure,omitempty"`

	// restoreDatabase: true is the older spelling of restore: Automatic.
	// +optional
	RestoreDatabase bool `json:"restoreDatabase,omitempty"`

	// restore says what happens to the database when a migration container ran and its
	// Job failed: Never (default) leaves it as the migration left it; Automatic stops the
	// serving colour's pods, loads the pre-migration dump back (pg_restore --clean, at
	// most once per revision) and starts them again; Manual prepares the same and waits
	// for the deploy.softfactory.io/restore annotation naming the revision. A restore
	// throws away every write made since the dump: see docs/backups.md.
	// +optional
	Restore RestoreMode `json:"restore,omitempty"`
}

// RestoreMode says whether and how a failed migration is undone from its dump.
// +kubebuilder:validation:Enum=Never;Automatic;Manual
type RestoreMode string

// The restore modes.
const (
	RestoreNever     RestoreMode = "Never"
	RestoreAutomatic RestoreMode = "Automatic"
	RestoreManual    RestoreMode = "Manual"
)

// MonitoringSpec configures the alerts kept beside the release.
type MonitoringSpec struct {
	// prometheusRule is the PrometheusRule carrying the runbook's alerts.
	// +optional
	// +kubebuilder:default={}
	PrometheusRule PrometheusRuleSpec `json:"prometheusRule,omitempty"`
}

// PrometheusRuleSpec configures the generated PrometheusRule.
type PrometheusRuleSpec struct {
	// enabled creates the PrometheusRule (skipped with a condition where the CRD is not
	// installed). Defaults to true.
	// +optional
	// +kubebuilder:default=true
	Enabled *bool `json:"enabled,omitempty"`

	// labels are put on the PrometheusRule so a Prometheus ruleSelector picks it up,
	// for example {release: prometheus}.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`

	// runbookURL is the page every alert's runbook_url annotation links to (with #<alert> appended). Defaults to this project's docs/monitoring.md.
	// +optional
	// +kubebuilder:default="https://github.com/softfactory/release-operator/blob/main/docs/monitoring.md"
	RunbookURL string `json:"runbookURL,omitempty"`

	// thresholds of the alerts. Defaults to the runbook's values.
	// +optional
	// +kubebuilder:default={}
	Thresholds AlertThresholds `json:"thresholds,omitempty"`
}

// PrometheusDuration is a Prometheus duration such as 30s, 5m or 1h30m.
// +kubebuilder:validation:Pattern=`^(0|([0-9]+(ms|s|m|h|d|w|y))+)$`
type PrometheusDuration string

// AlertThresholds are the alert thresholds, defaulting to the runbook's.
type AlertThresholds struct {
	// apiDownFor is how long the API must be down before APIDown fires. Defaults to 2m.
	// +optional
	// +kubebuilder:default="2m"
	APIDownFor PrometheusDuration `json:"apiDownFor,omitempty"`

	// errorRatePercent is the share of 5xx responses above which HighErrorRate fires.
	// Defaults to 5.
	// +optional
	// +kubebuilder:default=5
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	ErrorRatePercent int32 `json:"errorRatePercent,omitempty"`

	// errorRateFor defaults to 5m.
	// +optional
	// +kubebuilder:default="5m"
	ErrorRateFor PrometheusDuration `json:"errorRateFor,omitempty"`

	// memoryPercent of the container memory limit above which HighMemoryUsage fires.
	// Defaults to 90.
	// +optional
	// +kubebuilder:default=90
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	MemoryPercent int32 `json:"memoryPercent,omitempty"`

	// memoryFor defaults to 5m.
	// +optional
	// +kubebuilder:default="5m"
	MemoryFor PrometheusDuration `json:"memoryFor,omitempty"`

	// databaseDownFor defaults to 1m.
	// +optional
	// +kubebuilder:default="1m"
	DatabaseDownFor PrometheusDuration `json:"databaseDownFor,omitempty"`

	// slowQueriesPerMinute above which SlowQueries fires. Defaults to 10.
	// +optional
	// +kubebuilder:default=10
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100000
	SlowQueriesPerMinute int32 `json:"slowQueriesPerMinute,omitempty"`

	// slowQueriesFor defaults to 10m.
	// +optional
	// +kubebuilder:default="10m"
	SlowQueriesFor PrometheusDuration `json:"slowQueriesFor,omitempty"`

	// backupMaxAgeHours is the age of the last successful backup above which
	// BackupTooOld fires. Defaults to 26 (a daily backup plus slack).
	// +optional
	// +kubebuilder:default=26
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=8760
	BackupMaxAgeHours int32 `json:"backupMaxAgeHours,omitempty"`
}

// Color names one of the two Deployments.
// +kubebuilder:validation:Enum=blue;green
type Color string

const (
	// Blue is the colour of the first release.
	Blue Color = "blue"
	// Green is the other one.
	Green Color = "green"
)

// Other returns the opposite colour.
func (c Color) Other() Color {
	if c == Blue {
		return Green
	}
	return Blue
}

// Phase is a one-word summary for display. It is derived from conditions; code never
// branches on it.
// +kubebuilder:validation:Enum=Pending;BackingUp;Migrating;Deploying;Verifying;AwaitingPromotion;Promoting;Succeeded;Failed;RolledBack;Paused
type Phase string

// The phases, in release order.
const (
	PhasePending           Phase = "Pending"
	PhaseBackingUp         Phase = "BackingUp"
	PhaseMigrating         Phase = "Migrating"
	PhaseDeploying         Phase = "Deploying"
	PhaseVerifying         Phase = "Verifying"
	PhaseAwaitingPromotion Phase = "AwaitingPromotion"
	PhasePromoting         Phase = "Promoting"
	PhaseSucceeded         Phase = "Succeeded"
	PhaseFailed            Phase = "Failed"
	PhaseRolledBack        Phase = "RolledBack"
	PhasePaused            Phase = "Paused"
)

// Outcome is how a release in history ended.
// +kubebuilder:validation:Enum=Promoted;Failed;Aborted;RolledBack;Superseded
type Outcome string

// The outcomes of a release.
const (
	OutcomePromoted   Outcome = "Promoted"
	OutcomeFailed     Outcome = "Failed"
	OutcomeAborted    Outcome = "Aborted"
	OutcomeRolledBack Outcome = "RolledBack"
	OutcomeSuperseded Outcome = "Superseded"
)

// BackupRecord is the last successful backup.
type BackupRecord struct {
	// jobName of the backup Job.
	JobName string `json:"jobName"`
	// file is the dump's name on the backup volume.
	File string `json:"file"`
	// revision the backup was taken for.
	Revision string `json:"revision"`
	// completedAt is when the Job completed.
	// +optional
	CompletedAt *metav1.Time `json:"completedAt,omitempty"`
}

// MigrationRecord is the last successful migration.
type MigrationRecord struct {
	// jobName of the migration Job.
	JobName string `json:"jobName"`
	// revision migrated to.
	Revision string `json:"revision"`
	// completedAt is when the Job completed.
	// +optional
	CompletedAt *metav1.Time `json:"completedAt,omitempty"`
}

// ReleaseRecord is one release in status.history, newest first.
type ReleaseRecord struct {
	// revision of the release.
	Revision string `json:"revision"`
	// image of the release.
	Image string `json:"image"`
	// color it was deployed to.
	// +optional
	Color Color `json:"color,omitempty"`
	// backupFile taken before it, if any.
	// +optional
	BackupFile string `json:"backupFile,omitempty"`
	// promotedAt is when traffic moved to it.
	// +optional
	PromotedAt *metav1.Time `json:"promotedAt,omitempty"`
	// outcome of the release.
	Outcome Outcome `json:"outcome"`
	// reason is the machine-readable cause of the outcome.
	// +optional
	Reason string `json:"reason,omitempty"`
	// message says what happened and what to do, for failed releases.
	// +optional
	Message string `json:"message,omitempty"`
	// finishedAt is when the outcome was recorded.
	// +optional
	FinishedAt *metav1.Time `json:"finishedAt,omitempty"`
}

// StepState is where a recorded step of a revision stands.
// +kubebuilder:validation:Enum=Started;Succeeded;Failed;Lost
type StepState string

// The states of a recorded step.
const (
	// StepStarted: its Job was created and has not finished yet.
	StepStarted StepState = "Started"
	// StepSucceeded: its Job completed.
	StepSucceeded StepState = "Succeeded"
	// StepFailed: its Job failed.
	StepFailed StepState = "Failed"
	// StepLost: its Job was deleted before it finished; whether it did its work is
	// unknown, so the step is never run again for this revision.
	StepLost StepState = "Lost"
)

// StepRecord is the record that one step (backup, migration, restore) was started for a
// revision, and how it ended. It outlives the step's Job and status.history: the gates
// read it, so a deleted Job or a trimmed history never makes a step run twice.
type StepRecord struct {
	// jobName of the step's Job (for a backup, of its latest attempt).
	JobName string `json:"jobName"`
	// state of the step.
	State StepState `json:"state"`
	// startedAt is when the operator created the Job.
	// +optional
	StartedAt *metav1.Time `json:"startedAt,omitempty"`
	// finishedAt is when the Job completed or failed (or was found deleted).
	// +optional
	FinishedAt *metav1.Time `json:"finishedAt,omitempty"`
	// file is the dump the step wrote (backup) or loaded (restore).
	// +optional
	File string `json:"file,omitempty"`
	// attempt counts the backups of this revision: a backup older than
	// spec.backup.maxAge when the migration was due is taken again.
	// +optional
	Attempt int32 `json:"attempt,omitempty"`
	// containerStarted: a container of the migration Job ran, so the migration may have
	// changed the database. Only then is a failed migration restored.
	// +optional
	ContainerStarted bool `json:"containerStarted,omitempty"`
	// podReason is the last reason a pod of the Job gave for not running its container
	// (ImagePullBackOff: ..., CreateContainerConfigError: ...).
	// +optional
	PodReason string `json:"podReason,omitempty"`
	// message is the Job's own account of a failure.
	// +optional
	Message string `json:"message,omitempty"`
}

// RestorePhase is where a restore of a failed migration stands.
// +kubebuilder:validation:Enum=AwaitingApproval;StoppingWriters;Restoring;ResumingWriters;Done
type RestorePhase string

// The phases of a restore, in order.
const (
	// RestoreAwaitingApproval: restore Manual; waiting for the restore annotation.
	RestoreAwaitingApproval RestorePhase = "AwaitingApproval"
	// RestoreStoppingWriters: the serving colour is being scaled to zero.
	RestoreStoppingWriters RestorePhase = "StoppingWriters"
	// RestoreRestoring: the restore Job runs.
	RestoreRestoring RestorePhase = "Restoring"
	// RestoreResumingWriters: the serving colour is being scaled back up.
	RestoreResumingWriters RestorePhase = "ResumingWriters"
	// RestoreDone: the serving colour serves again; see job.state for the restore's outcome.
	RestoreDone RestorePhase = "Done"
)

// RestoreRecord is the record of a restore of one revision's failed migration.
type RestoreRecord struct {
	// phase of the restore.
	Phase RestorePhase `json:"phase"`
	// servingColor is the colour whose pods were stopped while the dump was loaded.
	// +optional
	ServingColor Color `json:"servingColor,omitempty"`
	// servingReplicas is how many replicas it had, to scale it back to.
	// +optional
	ServingReplicas int32 `json:"servingReplicas,omitempty"`
	// job is the restore Job's record, once created.
	// +optional
	Job *StepRecord `json:"job,omitempty"`
}

// RevisionRecord is what the operator did for one revision.
type RevisionRecord struct {
	// revision these steps belong to.
	Revision string `json:"revision"`
	// backup taken before the migration.
	// +optional
	Backup *StepRecord `json:"backup,omitempty"`
	// migration of the revision.
	// +optional
	Migration *StepRecord `json:"migration,omitempty"`
	// restore of the pre-migration dump after the migration failed.
	// +optional
	Restore *RestoreRecord `json:"restore,omitempty"`
	// contractBackup is the fresh dump taken before the contract step.
	// +optional
	ContractBackup *StepRecord `json:"contractBackup,omitempty"`
	// contract step of the revision (spec.migration.contract), run after the old colour
	// was gone. Once it has started, revisions released before it are refused unless the
	// allow-rollback-past-contract annotation names them.
	// +optional
	Contract *StepRecord `json:"contract,omitempty"`
	// retries of this revision asked for with the retry annotation, oldest first.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=20
	Retries []RetryRecord `json:"retries,omitempty"`
}

// RetryRecord is one retry of a failed revision, asked for with the retry annotation.
type RetryRecord struct {
	// request is the annotation's value that asked for it; each value retries once.
	Request string `json:"request"`
	// at is when the operator acted on it.
	// +optional
	At *metav1.Time `json:"at,omitempty"`
	// reason the revision had failed with.
	// +optional
	Reason string `json:"reason,omitempty"`
	// message the revision had failed with.
	// +optional
	Message string `json:"message,omitempty"`
}

// AnalysisStage says which analysis a status describes.
// +kubebuilder:validation:Enum=PrePromotion;PostPromotion;Serving
type AnalysisStage string

// The analysis stages.
const (
	AnalysisPrePromotion  AnalysisStage = "PrePromotion"
	AnalysisPostPromotion AnalysisStage = "PostPromotion"
	// AnalysisServing is the pre-promotion checks run against the serving colour while
	// the new revision is on its way (status.servingAnalysis).
	AnalysisServing AnalysisStage = "Serving"
)

// AnalysisResult is where an analysis stands.
// +kubebuilder:validation:Enum=Running;Passed;Failed
type AnalysisResult string

// The analysis results.
const (
	AnalysisRunning AnalysisResult = "Running"
	AnalysisPassed  AnalysisResult = "Passed"
	AnalysisFailed  AnalysisResult = "Failed"
)

// AnalysisStatus is the running count of one analysis of one revision.
type AnalysisStatus struct {
	// revision analysed.
	Revision string `json:"revision"`
	// stage is PrePromotion or PostPromotion.
	Stage AnalysisStage `json:"stage"`
	// result so far.
	Result AnalysisResult `json:"result"`
	// consecutiveSuccesses is the current run of passing evaluations.
	// +optional
	ConsecutiveSuccesses int32 `json:"consecutiveSuccesses,omitempty"`
	// failures counts failing evaluations towards failureLimit.
	// +optional
	Failures int32 `json:"failures,omitempty"`
	// inconclusive counts evaluations that could not be judged (Prometheus unreachable,
	// query error, no data); they never count as passing.
	// +optional
	Inconclusive int32 `json:"inconclusive,omitempty"`
	// lastEvaluatedAt is when the checks last ran.
	// +optional
	LastEvaluatedAt *metav1.Time `json:"lastEvaluatedAt,omitempty"`
	// message is the last evaluation's summary, failing checks first.
	// +optional
	Message string `json:"message,omitempty"`
}

// SoftFactoryReleaseStatus is rebuilt from the world on every pass.
type SoftFactoryReleaseStatus struct {
	// observedGeneration is the spec generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// phase is a one-word summary for display, derived from the conditions.
	// +optional
	Phase Phase `json:"phase,omitempty"`

	// activeColor is the colour the active Service selects, read back from the Service.
	// +optional
	ActiveColor Color `json:"activeColor,omitempty"`

	// activeImage is the image of the active colour.
	// +optional
	ActiveImage string `json:"activeImage,omitempty"`

	// currentRevision is the revision of the current spec.
	// +optional
	CurrentRevision string `json:"currentRevision,omitempty"`

	// stableRevision is the revision serving traffic, the one a rollback returns to.
	// +optional
	StableRevision string `json:"stableRevision,omitempty"`

	// lastBackup is the last successful, verified backup.
	// +optional
	LastBackup *BackupRecord `json:"lastBackup,omitempty"`

	// lastMigration is the last successful migration.
	// +optional
	LastMigration *MigrationRecord `json:"lastMigration,omitempty"`

	// analysis is the Prometheus analysis of the current revision, kept here so an
	// operator restart neither resets nor repeats its count.
	// +optional
	Analysis *AnalysisStatus `json:"analysis,omitempty"`

	// servingAnalysis is the count of spec.strategy.blueGreen.prePromotionAnalysis's
	// checks run against the serving colour while the new revision is on its way: a
	// failure makes the serving colour degraded (ServingDegraded). Cleared outside that
	// window.
	// +optional
	ServingAnalysis *AnalysisStatus `json:"servingAnalysis,omitempty"`

	// history of releases, newest first, bounded by spec.revisionHistoryLimit.
	// +optional
	// +listType=atomic
	History []ReleaseRecord `json:"history,omitempty"`

	// revisions records, newest first, the steps started for each revision that the
	// operator may still act on: the current, the serving, those in history, and every
	// revision that has a restore (so a restore runs at most once per revision).
	// +optional
	// +listType=map
	// +listMapKey=revision
	// +kubebuilder:validation:MaxItems=256
	Revisions []RevisionRecord `json:"revisions,omitempty"`

	// conditions: Ready, BackupSucceeded, MigrationSucceeded, GreenAvailable, Promoted,
	// Degraded (and MonitoringReady).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// SoftFactoryRelease is one release of the SoftFactory API, taken to production by the
// operator: backup, migration, blue/green switch, alerts.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=sfrelease;sfr,categories=softfactory
// +kubebuilder:printcolumn:name="Image",type=string,JSONPath=`.spec.image`
// +kubebuilder:printcolumn:name="Active",type=string,JSONPath=`.status.activeColor`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Revision",type=string,JSONPath=`.status.currentRevision`,priority=1
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 40",message="metadata.name must be at most 40 characters: the operator derives Job names such as <name>-migrate-<revision> from it, and those must stay within 63"
// +kubebuilder:validation:XValidation:rule="self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name must be a DNS-1035 label (lower-case letters, digits and '-', starting with a letter): it names the release's Services"
type SoftFactoryRelease struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is a standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitzero"`

	// spec declares the release.
	// +required
	Spec SoftFactoryReleaseSpec `json:"spec"`

	// status is where the operator reports progress.
	// +optional
	Status SoftFactoryReleaseStatus `json:"status,omitzero"`
}

// +kubebuilder:object:root=true

// SoftFactoryReleaseList contains a list of SoftFactoryRelease.
type SoftFactoryReleaseList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitzero"`
	Items           []SoftFactoryRelease `json:"items"`
}

func init() {
	SchemeBuilder.Register(func(scheme *runtime.Scheme) error {
		scheme.AddKnownTypes(SchemeGroupVersion, &SoftFactoryRelease{}, &SoftFactoryReleaseList{})
		return nil
	})
}
