//go:build linux

package lab

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func ipnet(a netip.Addr, bits int) *net.IPNet {
	return &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(bits, a.BitLen())}
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Masked().Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// addrAdd adds a /len address without duplicate address detection.
func addrAdd(h *netlink.Handle, link netlink.Link, a netip.Addr, bits int) error {
	addr := &netlink.Addr{IPNet: ipnet(a, bits)}
	if a.Is6() {
		addr.Flags = unix.IFA_F_NODAD
	}
	if err := h.AddrAdd(link, addr); err != nil {
		return fmt.Errorf("add %s/%d to %s: %w", a, bits, link.Attrs().Name, err)
	}
	return nil
}

// createNamespaces creates every namespace of the lab in parallel and
// applies the base sysctls.
func (l *Lab) createNamespaces() error {
	shorts := []string{"lan", "router", "k8s", "client"}
	for _, n := range l.Topology.Nodes {
		shorts = append(shorts, n.Short)
	}
	nss := make([]*NS, len(shorts))
	errs := make([]error, len(shorts))
	var wg sync.WaitGroup
	for i, s := range shorts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nss[i], errs[i] = addNS(l.Prefix+"-"+s, s)
		}()
	}
	wg.Wait()
	for i, n := range nss {
		if n != nil {
			l.namespaces = append(l.namespaces, n)
		}
		if errs[i] != nil {
			return errs[i]
		}
	}
	for _, n := range l.namespaces {
		lo, err := n.nl.LinkByName("lo")
		if err != nil {
			return fmt.Errorf("lo in %s: %w", n.Name, err)
		}
		if err := n.nl.LinkSetUp(lo); err != nil {
			return fmt.Errorf("lo up in %s: %w", n.Name, err)
		}
		if err := n.Sysctl(BaseSysctls); err != nil {
			return err
		}
	}
	l.LAN, l.Router, l.K8s, l.Client = nss[0], nss[1], nss[2], nss[3]
	for i, h := range l.Topology.Nodes {
		l.Nodes = append(l.Nodes, &Node{Host: h, Name: h.Short, NS: nss[4+i], lab: l})
	}
	if err := l.Router.Sysctl(RouterSysctls); err != nil {
		return err
	}
	for _, n := range l.Nodes {
		if err := n.NS.Sysctl(NodeSysctls); err != nil {
			return err
		}
	}
	return nil
}

// attach connects a host namespace to the bridge: a veth named after the
// host in the LAN namespace, its peer eth0 in the host's namespace with the
// host's MAC and addresses.
func (l *Lab) attach(ns *NS, h Host) (netlink.Link, error) {
	br, err := l.LAN.nl.LinkByName("br0")
	if err != nil {
		return nil, fmt.Errorf("br0: %w", err)
	}
	veth := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: h.Short, MasterIndex: br.Attrs().Index},
		PeerName:         "eth0",
		PeerHardwareAddr: h.MAC,
		PeerNamespace:    netlink.NsFd(int(ns.handle)),
	}
	if err := l.LAN.nl.LinkAdd(veth); err != nil {
		return nil, fmt.Errorf("veth %s: %w", h.Short, err)
	}
	port, err := l.LAN.nl.LinkByName(h.Short)
	if err != nil {
		return nil, err
	}
	if err := l.LAN.nl.LinkSetUp(port); err != nil {
		return nil, fmt.Errorf("bridge port %s up: %w", h.Short, err)
	}
	eth0, err := ns.nl.LinkByName("eth0")
	if err != nil {
		return nil, fmt.Errorf("eth0 in %s: %w", ns.Name, err)
	}
	if err := addrAdd(ns.nl, eth0, h.IPv4, LANv4.Bits()); err != nil {
		return nil, err
	}
	if err := addrAdd(ns.nl, eth0, h.IPv6, LANv6.Bits()); err != nil {
		return nil, err
	}
	if err := ns.nl.LinkSetUp(eth0); err != nil {
		return nil, fmt.Errorf("eth0 up in %s: %w", ns.Name, err)
	}
	return eth0, nil
}

func routeVia(h *netlink.Handle, dst netip.Prefix, gw netip.Addr) error {
	r := &netlink.Route{Dst: prefixNet(dst), Gw: gw.AsSlice()}
	if err := h.RouteAdd(r); err != nil {
		return fmt.Errorf("route %s via %s: %w", dst, gw, err)
	}
	return nil
}

func routeDev(h *netlink.Handle, dst netip.Prefix, link netlink.Link) error {
	r := &netlink.Route{Dst: prefixNet(dst), LinkIndex: link.Attrs().Index, Scope: netlink.SCOPE_LINK}
	if err := h.RouteAdd(r); err != nil {
		return fmt.Errorf("route %s dev %s: %w", dst, link.Attrs().Name, err)
	}
	return nil
}

var (
	defaultV4 = netip.MustParsePrefix("0.0.0.0/0")
	defaultV6 = netip.MustParsePrefix("::/0")
)

// buildTopology wires the namespaces (lab-recipes §2). The caller waits
// for carrier (waitCarrier).
func (l *Lab) buildTopology(ctx context.Context) error {
	t := l.Topology
	if _, err := l.LAN.Run(ctx, "ip", "link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0", "mcast_snooping", "0"); err != nil {
		return err
	}
	br, err := l.LAN.nl.LinkByName("br0")
	if err != nil {
		return err
	}
	if err := l.LAN.nl.LinkSetUp(br); err != nil {
		return err
	}
	if _, err := l.attach(l.Router, t.Router); err != nil {
		return err
	}
	for _, n := range l.Nodes {
		if _, err := l.attach(n.NS, n.Host); err != nil {
			return err
		}
		if err := routeVia(n.NS.nl, defaultV4, t.Router.IPv4); err != nil {
			return err
		}
		if err := routeVia(n.NS.nl, defaultV6, t.Router.IPv6); err != nil {
			return err
		}
	}
	if _, err := l.attach(l.K8s, t.K8s); err != nil {
		return err
	}
	if err := routeVia(l.K8s.nl, defaultV4, t.Router.IPv4); err != nil {
		return err
	}
	if err := routeVia(l.K8s.nl, defaultV6, t.Router.IPv6); err != nil {
		return err
	}
	clientEth0, err := l.attach(l.Client, t.Client)
	if err != nil {
		return err
	}
	// Router–client point-to-point link: eth1 on both sides.
	up := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth1"}, PeerName: "eth1", PeerNamespace: netlink.NsFd(int(l.Client.handle))}
	if err := l.Router.nl.LinkAdd(up); err != nil {
		return fmt.Errorf("router-client veth: %w", err)
	}
	for _, side := range []struct {
		ns     *NS
		v4, v6 netip.Addr
	}{{l.Router, t.RouterUplinkV4, t.RouterUplinkV6}, {l.Client, t.ClientUplinkV4, t.ClientUplinkV6}} {
		eth1, err := side.ns.nl.LinkByName("eth1")
		if err != nil {
			return err
		}
		if err := addrAdd(side.ns.nl, eth1, side.v4, UplinkV4.Bits()); err != nil {
			return err
		}
		if err := addrAdd(side.ns.nl, eth1, side.v6, UplinkV6.Bits()); err != nil {
			return err
		}
		if err := side.ns.nl.LinkSetUp(eth1); err != nil {
			return err
		}
	}
	// Client routes: BGP pools through the router; the rest of the pools
	// (layer2, vip) on the LAN.
	if err := routeDev(l.Client.nl, PoolsV4, clientEth0); err != nil {
		return err
	}
	if err := routeVia(l.Client.nl, BGPPoolV4, t.RouterUplinkV4); err != nil {
		return err
	}
	if err := routeVia(l.Client.nl, BGPPoolV6, t.RouterUplinkV6); err != nil {
		return err
	}
	return nil
}

// waitCarrier waits until every veth in every namespace is operationally
// up: veth carrier is applied asynchronously (linkwatch, up to ~1 s), and
// early packets are lost until then (lab-recipes §9.1).
func (l *Lab) waitCarrier(ctx context.Context) error {
	return Poll(ctx, 10*time.Second, 10*time.Millisecond, "veth carrier", func(context.Context) (bool, error) {
		for _, n := range l.namespaces {
			links, err := n.nl.LinkList()
			if err != nil {
				return false, err
			}
			for _, lk := range links {
				if _, ok := lk.(*netlink.Veth); !ok {
					continue
				}
				if lk.Attrs().OperState != netlink.OperUp {
					return false, fmt.Errorf("%s in %s is %s", lk.Attrs().Name, n.Short, lk.Attrs().OperState)
				}
			}
		}
		return true, nil
	})
}

// LinkDown takes a host's cable out: its port on the bridge goes down
// (lab-recipes §9.2: downing eth0 inside the node would drop its routes).
// host is a node name, "router", "k8s" or "client".
func (l *Lab) LinkDown(host string) error { return l.setPort(host, false) }

// LinkUp puts the cable back.
func (l *Lab) LinkUp(host string) error { return l.setPort(host, true) }

func (l *Lab) setPort(host string, up bool) error {
	port, err := l.LAN.nl.LinkByName(host)
	if err != nil {
		return fmt.Errorf("bridge port %s: %w", host, err)
	}
	if up {
		err = l.LAN.nl.LinkSetUp(port)
	} else {
		err = l.LAN.nl.LinkSetDown(port)
	}
	if err != nil {
		return fmt.Errorf("set bridge port %s up=%v: %w", host, up, err)
	}
	return nil
}

// describeNS is a short dump of addresses, routes and neighbours of a
// namespace for failure reports.
func describeNS(ctx context.Context, n *NS) string {
	var b strings.Builder
	for _, args := range [][]string{{"ip", "-br", "addr"}, {"ip", "route"}, {"ip", "-6", "route"}, {"ip", "neigh"}} {
		out, _ := n.Run(ctx, args...)
		fmt.Fprintf(&b, "$ %s\n%s", strings.Join(args, " "), out)
	}
	return b.String()
}
