// Package netxtest provides an in-memory netx.Netx for unit tests.
package netxtest

import (
	"context"
	"net"
	"net/netip"
	"sync"

	"github.com/openelb/openelb-operator/speaker/internal/netx"
)

// Fake is a netx.Netx whose state the test sets.
type Fake struct {
	mu       sync.Mutex
	snap     netx.Snapshot
	err      error
	watchers []func()
}

var _ netx.Netx = (*Fake)(nil)

// New returns a Fake holding s.
func New(s netx.Snapshot) *Fake { return &Fake{snap: s} }

// Set replaces the state and notifies watchers.
func (f *Fake) Set(s netx.Snapshot) {
	f.mu.Lock()
	f.snap = s
	w := append([]func(){}, f.watchers...)
	f.mu.Unlock()
	for _, n := range w {
		n()
	}
}

// SetError makes Snapshot fail with err (nil clears it).
func (f *Fake) SetError(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

// Snapshot implements netx.Netx.
func (f *Fake) Snapshot() (netx.Snapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.snap, f.err
}

// Watch implements netx.Netx.
func (f *Fake) Watch(_ context.Context, notify func()) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.watchers = append(f.watchers, notify)
	return nil
}

// Link builds an up link with the given addresses ("198.51.100.11/24").
func Link(index int, name, mac string, prefixes ...string) netx.Link {
	l := netx.Link{Index: index, Name: name, Up: true, Loopback: name == "lo"}
	if mac != "" {
		hw, err := net.ParseMAC(mac)
		if err != nil {
			panic(err)
		}
		l.MAC = hw
	}
	for _, p := range prefixes {
		l.Prefixes = append(l.Prefixes, netip.MustParsePrefix(p))
	}
	return l
}

// Route builds a route to dst ("0.0.0.0/0") out of the given links.
func Route(dst string, links ...int) netx.Route {
	return netx.Route{Dst: netip.MustParsePrefix(dst), Links: links}
}
