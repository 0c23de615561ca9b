// Package netx is the speaker's seam to the kernel's network state: the
// links with their addresses and the main routing table, read through
// netlink, plus pure lookups over a snapshot of them. Everything above it
// (interface selection, eligibility) is tested with the fakes in netxtest.
package netx

import (
	"context"
	"net"
	"net/netip"
	"slices"
)

// MainTable is the kernel's main routing table (RT_TABLE_MAIN).
const MainTable = 254

// A Link is a network interface.
type Link struct {
	Index int
	Name  string
	MAC   net.HardwareAddr
	// Up is true when the link is administratively up and has carrier
	// (operational state up or unknown, as dummy and loopback links report).
	Up       bool
	Loopback bool
	// Prefixes are the link's addresses with their prefix lengths.
	Prefixes []netip.Prefix
}

// A Route is a unicast route of the main table.
type Route struct {
	// Dst is the destination; 0.0.0.0/0 or ::/0 for a default route.
	Dst netip.Prefix
	// Links are the outgoing link indexes: one, or several for a multipath
	// route.
	Links []int
	// Priority is the route metric; lower wins among equal prefixes.
	Priority int
}

// A Snapshot is the network state at one instant.
type Snapshot struct {
	Links  []Link
	Routes []Route
}

// Netx reads the kernel's network state.
type Netx interface {
	// Snapshot returns the links and the unicast routes of the main table.
	Snapshot() (Snapshot, error)
	// Watch calls notify after any link, address or route change until ctx
	// is done; it returns when the subscription cannot be made.
	Watch(ctx context.Context, notify func()) error
}

// LinkByName returns the link called name.
func (s Snapshot) LinkByName(name string) (Link, bool) {
	for _, l := range s.Links {
		if l.Name == name {
			return l, true
		}
	}
	return Link{}, false
}

// LinkByIndex returns the link with index i.
func (s Snapshot) LinkByIndex(i int) (Link, bool) {
	for _, l := range s.Links {
		if l.Index == i {
			return l, true
		}
	}
	return Link{}, false
}

// LinkWithAddr returns the link that carries ip as one of its addresses.
func (s Snapshot) LinkWithAddr(ip netip.Addr) (Link, bool) {
	ip = ip.Unmap()
	for _, l := range s.Links {
		for _, p := range l.Prefixes {
			if p.Addr().Unmap() == ip {
				return l, true
			}
		}
	}
	return Link{}, false
}

// OnLink reports whether one of the link's prefixes contains ip.
func (l Link) OnLink(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range l.Prefixes {
		if p.Addr().Is4() == ip.Is4() && p.Masked().Contains(ip) {
			return true
		}
	}
	return false
}

// RouteLinks returns the outgoing link indexes of the best main-table route
// to dst (longest prefix, then lowest metric), or nil when there is none.
// The local table is deliberately not consulted: an address configured on
// lo (kube-proxy's kube-ipvs0, the lab's stand-in) must not make lo the
// answer, which was OpenELB's can_reach defect #331.
func (s Snapshot) RouteLinks(dst netip.Addr) []int {
	dst = dst.Unmap()
	best := -1
	for i, r := range s.Routes {
		if r.Dst.Addr().Is4() != dst.Is4() || !r.Dst.Masked().Contains(dst) {
			continue
		}
		if best < 0 || r.Dst.Bits() > s.Routes[best].Dst.Bits() ||
			(r.Dst.Bits() == s.Routes[best].Dst.Bits() && r.Priority < s.Routes[best].Priority) {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	return slices.Clone(s.Routes[best].Links)
}

// Reaches reports whether dst is on link l or routed out of it.
func (s Snapshot) Reaches(l Link, dst netip.Addr) bool {
	if l.OnLink(dst) {
		return true
	}
	return slices.Contains(s.RouteLinks(dst), l.Index)
}
