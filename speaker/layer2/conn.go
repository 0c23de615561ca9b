package layer2

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// ARPConn is the part of *arp.Client the responder uses.
type ARPConn interface {
	Read() (*arp.Packet, *ethernet.Frame, error)
	WriteTo(p *arp.Packet, addr net.HardwareAddr) error
	Close() error
}

// NDPConn is the part of *ndp.Conn the responder uses.
type NDPConn interface {
	ReadFrom() (ndp.Message, *ipv6.ControlMessage, netip.Addr, error)
	WriteTo(m ndp.Message, cm *ipv6.ControlMessage, dst netip.Addr) error
	JoinGroup(group netip.Addr) error
	LeaveGroup(group netip.Addr) error
	Close() error
}

// Dialer opens the per-interface sockets.
type Dialer interface {
	DialARP(ifi *net.Interface) (ARPConn, error)
	ListenNDP(ifi *net.Interface) (NDPConn, error)
	InterfaceByName(name string) (*net.Interface, error)
}

// Kernel opens real sockets (needs CAP_NET_RAW).
type Kernel struct{}

var _ Dialer = Kernel{}

// DialARP implements Dialer: a packet socket for ARP on ifi.
func (Kernel) DialARP(ifi *net.Interface) (ARPConn, error) {
	c, err := arp.Dial(ifi)
	if err != nil {
		return nil, fmt.Errorf("open ARP socket on %s: %w", ifi.Name, err)
	}
	return c, nil
}

// ListenNDP implements Dialer: a raw ICMPv6 socket bound to ifi's
// link-local address that receives only neighbour solicitations and
// advertisements. It is mdlayher/ndp's Listen plus IPV6_FREEBIND, so that
// advertisements can be sourced from the announced address even when it is
// not configured on the node (kube-proxy in iptables or nftables mode):
// some hosts and tools (ndisc6) ignore an NA whose source is not its target.
func (Kernel) ListenNDP(ifi *net.Interface) (NDPConn, error) {
	ll, err := linkLocal(ifi)
	if err != nil {
		return nil, err
	}
	c, err := net.ListenPacket("ip6:ipv6-icmp", ll.WithZone(ifi.Name).String())
	if err != nil {
		return nil, fmt.Errorf("open NDP socket on %s: %w", ifi.Name, err)
	}
	fail := func(err error) (NDPConn, error) {
		c.Close()
		return nil, fmt.Errorf("set up NDP socket on %s: %w", ifi.Name, err)
	}
	raw, err := c.(*net.IPConn).SyscallConn()
	if err != nil {
		return fail(err)
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_IPV6, unix.IPV6_FREEBIND, 1)
	}); err != nil {
		return fail(err)
	}
	if serr != nil {
		return fail(serr)
	}
	pc := ipv6.NewPacketConn(c)
	var f ipv6.ICMPFilter
	f.SetAll(true)
	f.Accept(ipv6.ICMPTypeNeighborSolicitation)
	f.Accept(ipv6.ICMPTypeNeighborAdvertisement) // to notice other announcers
	for _, step := range []func() error{
		func() error { return pc.SetHopLimit(ndp.HopLimit) },
		func() error { return pc.SetMulticastHopLimit(ndp.HopLimit) },
		func() error { return pc.SetChecksum(true, 2) },
		func() error { return pc.SetICMPFilter(&f) },
	} {
		if err := step(); err != nil {
			return fail(err)
		}
	}
	return &ndpConn{pc: pc, ifi: ifi, ll: ll, buf: make([]byte, max(ifi.MTU, 1280))}, nil
}

func linkLocal(ifi *net.Interface) (netip.Addr, error) {
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("addresses of %s: %w", ifi.Name, err)
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is6() && p.Addr().IsLinkLocalUnicast() {
			return p.Addr(), nil
		}
	}
	return netip.Addr{}, fmt.Errorf("interface %s has no IPv6 link-local address", ifi.Name)
}

// ndpConn is the NDP socket: messages parsed and built by mdlayher/ndp.
type ndpConn struct {
	pc  *ipv6.PacketConn
	ifi *net.Interface
	ll  netip.Addr
	buf []byte
}

func (c *ndpConn) ReadFrom() (ndp.Message, *ipv6.ControlMessage, netip.Addr, error) {
	for {
		n, cm, src, err := c.pc.ReadFrom(c.buf)
		if err != nil {
			return nil, nil, netip.Addr{}, err
		}
		ia, ok := src.(*net.IPAddr)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ia.IP)
		if !ok || ip == c.ll {
			continue
		}
		m, err := ndp.ParseMessage(c.buf[:n])
		if err != nil {
			continue // malformed or of no interest
		}
		return m, cm, ip.WithZone(c.ifi.Name), nil
	}
}

func (c *ndpConn) WriteTo(m ndp.Message, cm *ipv6.ControlMessage, dst netip.Addr) error {
	b, err := ndp.MarshalMessage(m)
	if err != nil {
		return err
	}
	if cm == nil {
		cm = &ipv6.ControlMessage{HopLimit: ndp.HopLimit, Src: c.ll.AsSlice(), IfIndex: c.ifi.Index}
	}
	_, err = c.pc.WriteTo(b, cm, &net.IPAddr{IP: dst.AsSlice(), Zone: c.ifi.Name})
	return err
}

func (c *ndpConn) JoinGroup(g netip.Addr) error {
	return c.pc.JoinGroup(c.ifi, &net.IPAddr{IP: g.AsSlice()})
}

func (c *ndpConn) LeaveGroup(g netip.Addr) error {
	return c.pc.LeaveGroup(c.ifi, &net.IPAddr{IP: g.AsSlice()})
}

func (c *ndpConn) Close() error { return c.pc.Close() }

// InterfaceByName implements Dialer.
func (Kernel) InterfaceByName(name string) (*net.Interface, error) {
	return net.InterfaceByName(name)
}
