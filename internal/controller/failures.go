package controller

import (
	"fmt"

	deployv1alpha1 "github.com/softfactory/release-operator/api/v1alpha1"
)

// failed is the fact of a revision that failed. Every failure message has the same
// shape, so a user always reads which colour still serves: what happened, then what the
// failure spared ("traffic never moved"; may be empty) and which colour keeps serving,
// then what to do (may be empty).
func (s *releaseScope) failed(reason, what, spared, todo string) *failureFact {
	serving := servingDescription(s)
	if spared != "" {
		serving = spared + " and " + serving
	}
	msg := fmt.Sprintf("%s %s keeps serving.", what, serving)
	if todo != "" {
		msg += " " + todo
	}
	return &failureFact{outcome: deployv1alpha1.OutcomeFailed, reason: reason, message: msg}
}

// servingDescription says which colour keeps serving.
func servingDescription(s *releaseScope) string {
	if s.activeColor == "" {
		return "nothing (this is the first release)"
	}
	return fmt.Sprintf("%s (revision %s)", s.activeColor, deploymentRevision(s.deployments[s.activeColor]))
}
