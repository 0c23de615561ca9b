//go:build linux

package netx

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Kernel reads the network state of the calling process's network
// namespace through netlink.
type Kernel struct{}

var _ Netx = Kernel{}

// Snapshot implements Netx.
func (Kernel) Snapshot() (Snapshot, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return Snapshot{}, fmt.Errorf("list links: %w", err)
	}
	var s Snapshot
	for _, l := range links {
		a := l.Attrs()
		addrs, err := netlink.AddrList(l, netlink.FAMILY_ALL)
		if err != nil {
			if errors.Is(err, unix.ENODEV) {
				continue // vanished meanwhile
			}
			return Snapshot{}, fmt.Errorf("list addresses of %s: %w", a.Name, err)
		}
		link := Link{
			Index:    a.Index,
			Name:     a.Name,
			MAC:      a.HardwareAddr,
			Up:       a.Flags&net.FlagUp != 0 && (a.OperState == netlink.OperUp || a.OperState == netlink.OperUnknown),
			Loopback: a.Flags&net.FlagLoopback != 0,
		}
		for _, ad := range addrs {
			ip, ok := netip.AddrFromSlice(ad.IP)
			if !ok || ad.IPNet == nil {
				continue
			}
			ones, _ := ad.Mask.Size()
			link.Prefixes = append(link.Prefixes, netip.PrefixFrom(ip.Unmap(), ones))
		}
		s.Links = append(s.Links, link)
	}
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: MainTable}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return Snapshot{}, fmt.Errorf("list routes: %w", err)
	}
	for _, r := range routes {
		if r.Type != unix.RTN_UNICAST {
			continue
		}
		rt := Route{Priority: r.Priority}
		switch {
		case r.Dst != nil:
			ip, ok := netip.AddrFromSlice(r.Dst.IP)
			if !ok {
				continue
			}
			ones, _ := r.Dst.Mask.Size()
			rt.Dst = netip.PrefixFrom(ip.Unmap(), ones)
		case r.Family == netlink.FAMILY_V6:
			rt.Dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		default:
			rt.Dst = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		}
		if r.LinkIndex > 0 {
			rt.Links = append(rt.Links, r.LinkIndex)
		}
		for _, nh := range r.MultiPath {
			rt.Links = append(rt.Links, nh.LinkIndex)
		}
		if len(rt.Links) > 0 {
			s.Routes = append(s.Routes, rt)
		}
	}
	return s, nil
}

// Watch implements Netx.
func (Kernel) Watch(ctx context.Context, notify func()) error {
	done := make(chan struct{})
	links := make(chan netlink.LinkUpdate, 64)
	addrs := make(chan netlink.AddrUpdate, 64)
	routes := make(chan netlink.RouteUpdate, 64)
	if err := netlink.LinkSubscribe(links, done); err != nil {
		close(done)
		return fmt.Errorf("subscribe to link changes: %w", err)
	}
	if err := netlink.AddrSubscribe(addrs, done); err != nil {
		close(done)
		return fmt.Errorf("subscribe to address changes: %w", err)
	}
	if err := netlink.RouteSubscribe(routes, done); err != nil {
		close(done)
		return fmt.Errorf("subscribe to route changes: %w", err)
	}
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-links:
				if !ok {
					return
				}
			case _, ok := <-addrs:
				if !ok {
					return
				}
			case _, ok := <-routes:
				if !ok {
					return
				}
			}
			notify()
		}
	}()
	return nil
}
