//go:build bench && !linux

package main

import "syscall"

// dieWithParent has no portable equivalent outside Linux; the benchmark stops the
// operator itself on a normal exit. (RSS is read from /proc, so the benchmark needs
// Linux anyway.)
func dieWithParent() *syscall.SysProcAttr { return nil }
