package layer2

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"golang.org/x/net/ipv6"
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

// ListenNDP implements Dialer: an ICMPv6 socket bound to ifi's link-local
// address that receives only neighbour solicitations.
func (Kernel) ListenNDP(ifi *net.Interface) (NDPConn, error) {
	c, _, err := ndp.Listen(ifi, ndp.LinkLocal)
	if err != nil {
		return nil, fmt.Errorf("open NDP socket on %s: %w", ifi.Name, err)
	}
	var f ipv6.ICMPFilter
	f.SetAll(true)
	f.Accept(ipv6.ICMPTypeNeighborSolicitation)
	f.Accept(ipv6.ICMPTypeNeighborAdvertisement) // to see conflicting announcers
	if err := c.SetICMPFilter(&f); err != nil {
		c.Close()
		return nil, fmt.Errorf("set ICMPv6 filter on %s: %w", ifi.Name, err)
	}
	return c, nil
}

// InterfaceByName implements Dialer.
func (Kernel) InterfaceByName(name string) (*net.Interface, error) {
	return net.InterfaceByName(name)
}
