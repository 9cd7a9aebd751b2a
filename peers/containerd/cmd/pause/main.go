// Command pause is the playground node's sandbox container: it holds a pod's namespaces
// open and does nothing else. No registry is reachable here, so the node cannot pull
// registry.k8s.io/pause; this static program is packed into a local image instead.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	// Reap orphans: in a pod with a shared PID namespace the sandbox is PID 1.
	go func() {
		children := make(chan os.Signal, 1)
		signal.Notify(children, syscall.SIGCHLD)
		for range children {
			for {
				var status syscall.WaitStatus
				pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
				if pid <= 0 || err != nil {
					break
				}
			}
		}
	}()
	<-stop
}
