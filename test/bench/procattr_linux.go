//go:build bench && linux

package main

import "syscall"

// dieWithParent makes the kernel stop the operator when the benchmark dies, so a run
// killed by a timeout or Ctrl-C leaves no operator acting on the cluster.
func dieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
