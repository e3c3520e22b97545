// Package netnsdo runs code inside a named network namespace
// (/run/netns/NAME, as "ip netns" makes them), on an OS thread of its own.
package netnsdo

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
)

// Do runs fn inside the named network namespace; with name "" it runs fn
// directly. Sockets fn opens stay in that namespace. The thread fn ran on
// is retired afterwards, never reused by other goroutines.
func Do(name string, fn func() error) error {
	if name == "" {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // left locked: the runtime retires the thread
		h, err := netns.GetFromName(name)
		if err != nil {
			errc <- fmt.Errorf("network namespace %q: %w", name, err)
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			errc <- fmt.Errorf("entering network namespace %q: %w", name, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}
