// Command pause is the pod sandbox ("pause") image of the real-cluster test
// (hack/real): no registry can be reached here, so containerd's sandbox image is this
// static program instead of registry.k8s.io/pause. Like the real one it holds the pod's
// namespaces open and does nothing until it is told to stop.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
}
