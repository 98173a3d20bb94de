//go:build e2e && !linux

package e2e

import "syscall"

// dieWithParent has no equivalent here; the suite's pid file (StopLeftover) covers an
// operator left behind by an interrupted run.
func dieWithParent() *syscall.SysProcAttr {
	return nil
}
