package netxtest

import (
	"runtime"

	"github.com/vishvananda/netns"
)

// InNamespace runs f on an OS thread inside the named network namespace and
// returns its error. Sockets and watches f opens stay in that namespace: the
// thread is never unlocked, so it ends with its goroutine instead of going
// back to the pool in the wrong namespace.
func InNamespace(ns string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		h, err := netns.GetFromName(ns)
		if err != nil {
			errc <- err
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			errc <- err
			return
		}
		errc <- f()
	}()
	return <-errc
}
