//go:build e2e && linux

package e2e

import "syscall"

// dieWithParent makes the kernel kill the operator when the test process dies, so a
// suite killed by a timeout or Ctrl-C leaves no operator acting on the cluster.
func dieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
