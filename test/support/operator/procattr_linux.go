//go:build linux

package operator

import "syscall"

// dieWithParent makes the kernel kill the operator when the suite's process dies, so a
// run killed by a timeout or Ctrl-C leaves no operator acting on the cluster.
func dieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
