package controller

import (
	batchv1 "k8s.io/api/batch/v1"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// contractSpecOf is spec.migration.contract, or nil.
func contractSpecOf(r *deployv1alpha1.SoftFactoryRelease) *deployv1alpha1.ContractSpec {
	if r.Spec.Migration == nil {
		return nil
	}
	return r.Spec.Migration.Contract
}

// contractImage is contract.image, else migration.image, else the release image: the
// contract is the second half of the migration, so it runs the migration's code unless
// told otherwise.
func contractImage(r *deployv1alpha1.SoftFactoryRelease) string {
	c, m := r.Spec.Migration.Contract, r.Spec.Migration
	switch {
	case c.Image != "":
		return c.Image
	case m.Image != "":
		return m.Image
	default:
		return r.Spec.Image
	}
}

// buildContractJob runs the attempt-th contract step of a revision as the migration runs:
// the API's env (DATABASE_URL from spec.database among it) and contract.env, the API's
// volumes, security context and scheduling.
func buildContractJob(r *deployv1alpha1.SoftFactoryRelease, revision string, attempt int32) *batchv1.Job {
	c := r.Spec.Migration.Contract
	return buildSchemaJob(r, r.ContractJobName(revision, attempt), deployv1alpha1.ComponentContract, revision, schemaStep{
		container: "contract", image: contractImage(r), command: c.Command, args: c.Args, env: c.Env,
		backoffLimit: c.BackoffLimit, deadline: c.ActiveDeadlineSeconds,
	})
}

// buildContractBackupJob is the fresh dump taken before the attempt-th contract step:
// the pre-migration backup's script, verification and volume, under its own name and
// component. file is a backup.PreContractFileName, which pruning keeps apart.
func buildContractBackupJob(r *deployv1alpha1.SoftFactoryRelease, revision string, attempt int32, file string) *batchv1.Job {
	return buildDumpJob(r, r.ContractBackupJobName(revision, attempt), deployv1alpha1.ComponentContractBackup, revision, file)
}
