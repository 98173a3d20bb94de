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
	"fmt"
	"strconv"
	"strings"
)

// retryableReasons are the failures a retry annotation clears: a step that failed and
// may pass when run again (a flaky smoke test, a database that was down, pods that hit
// a node problem). Left out: a migration whose Job vanished before it told how it ended
// (whether it changed the database is unknown: a person must look first), and the
// states that clear by themselves once their cause goes (OwnershipConflict,
// SchemaContracted).
var retryableReasons = map[string]bool{
	ReasonBackupFailed:             true,
	ReasonMigrationFailed:          true,
	ReasonMigrationNeverRan:        true,
	ReasonMigrationNeverStarted:    true,
	ReasonProgressDeadlineExceeded: true,
	ReasonPodsCannotStart:          true,
	ReasonSmokeTestFailed:          true,
	ReasonAnalysisFailed:           true,
	ReasonAnalysisInconclusive:     true,
	ReasonAborted:                  true,
	ReasonRolledBack:               true,
	ReasonCompatibilityCheckFailed: true,
	ReasonContractFailed:           true,
	ReasonServingDegraded:          true,
}

// RetryableReason reports whether a revision that stopped with this reason can be
// retried with the retry annotation.
func RetryableReason(reason string) bool {
	return retryableReasons[reason]
}

// RetryRequestRevision splits a retry annotation's value ("<revision>" or
// "<revision>/N", N a positive number) into the revision it names. ok is false for a
// value of another shape.
func RetryRequestRevision(value string) (revision string, ok bool) {
	revision, n, hasN := strings.Cut(value, "/")
	if revision == "" {
		return "", false
	}
	if hasN {
		if i, err := strconv.Atoi(n); err != nil || i < 1 {
			return revision, false
		}
	}
	return revision, true
}

// NextRetryRequest is the retry annotation value that asks for one more retry of a
// revision whose record holds retries: "<revision>/<retries+2>" (the attempt the retry
// starts), new for every retry, so a second retry after a second failure acts too.
func NextRetryRequest(revision string, retries int) string {
	return fmt.Sprintf("%s/%d", revision, retries+2)
}

// Retried reports whether a retry annotation value has already been acted on for this
// revision: each distinct value retries once.
func (r *RevisionRecord) Retried(value string) bool {
	for _, rr := range r.Retries {
		if rr.Request == value {
			return true
		}
	}
	return false
}
