//go:build !linux

package operator

import "syscall"

// dieWithParent has no portable equivalent outside Linux; the suites stop the operator
// themselves, and PIDPath/StopLeftover cover an interrupted run.
func dieWithParent() *syscall.SysProcAttr { return nil }
