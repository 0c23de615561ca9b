package layer2

import (
	"errors"
	"net"
	"net/netip"
	"sync"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"golang.org/x/net/ipv6"
)

// fakeDialer hands out fake sockets and records them.
type fakeDialer struct {
	mu     sync.Mutex
	ifaces map[string]*net.Interface
	arps   map[string]*fakeARP
	ndps   map[string]*fakeNDP
	// noPktSrc makes VIP-sourced NAs fail, as when the VIP is not local.
	noPktSrc bool
}

func newFakeDialer(ifaces ...*net.Interface) *fakeDialer {
	d := &fakeDialer{ifaces: map[string]*net.Interface{}, arps: map[string]*fakeARP{}, ndps: map[string]*fakeNDP{}}
	for _, i := range ifaces {
		d.ifaces[i.Name] = i
	}
	return d
}

func iface(index int, name, mac string) *net.Interface {
	hw, _ := net.ParseMAC(mac)
	return &net.Interface{Index: index, Name: name, HardwareAddr: hw, MTU: 1500}
}

func (d *fakeDialer) InterfaceByName(name string) (*net.Interface, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if i, ok := d.ifaces[name]; ok {
		return i, nil
	}
	return nil, errors.New("no such interface")
}

func (d *fakeDialer) DialARP(ifi *net.Interface) (ARPConn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := &fakeARP{in: make(chan *arp.Packet, 16), closed: make(chan struct{})}
	d.arps[ifi.Name] = c
	return c, nil
}

func (d *fakeDialer) ListenNDP(ifi *net.Interface) (NDPConn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := &fakeNDP{in: make(chan ndpIn, 16), closed: make(chan struct{}), groups: map[netip.Addr]bool{}, noPktSrc: d.noPktSrc}
	d.ndps[ifi.Name] = c
	return c, nil
}

func (d *fakeDialer) arp(name string) *fakeARP {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.arps[name]
}

func (d *fakeDialer) ndp(name string) *fakeNDP {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ndps[name]
}

type sentARP struct {
	p  arp.Packet
	to net.HardwareAddr
}

type fakeARP struct {
	in     chan *arp.Packet
	closed chan struct{}
	once   sync.Once
	mu     sync.Mutex
	sent   []sentARP
	notify chan struct{}
}

func (c *fakeARP) Read() (*arp.Packet, *ethernet.Frame, error) {
	select {
	case p := <-c.in:
		return p, nil, nil
	case <-c.closed:
		return nil, nil, net.ErrClosed
	}
}

func (c *fakeARP) WriteTo(p *arp.Packet, addr net.HardwareAddr) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sent = append(c.sent, sentARP{p: *p, to: addr})
	if c.notify != nil {
		select {
		case c.notify <- struct{}{}:
		default:
		}
	}
	return nil
}

func (c *fakeARP) Close() error { c.once.Do(func() { close(c.closed) }); return nil }

func (c *fakeARP) isClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

func (c *fakeARP) take() []sentARP {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.sent
	c.sent = nil
	return s
}

type ndpIn struct {
	m   ndp.Message
	src netip.Addr
}

type sentNDP struct {
	m   ndp.Message
	src netip.Addr // zero: the link-local default
	dst netip.Addr
}

type fakeNDP struct {
	in       chan ndpIn
	closed   chan struct{}
	once     sync.Once
	mu       sync.Mutex
	groups   map[netip.Addr]bool
	sent     []sentNDP
	noPktSrc bool
	notify   chan struct{}
}

func (c *fakeNDP) ReadFrom() (ndp.Message, *ipv6.ControlMessage, netip.Addr, error) {
	select {
	case p := <-c.in:
		return p.m, nil, p.src, nil
	case <-c.closed:
		return nil, nil, netip.Addr{}, net.ErrClosed
	}
}

func (c *fakeNDP) WriteTo(m ndp.Message, cm *ipv6.ControlMessage, dst netip.Addr) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var src netip.Addr
	if cm != nil {
		if c.noPktSrc {
			return errors.New("cannot assign requested address")
		}
		src, _ = netip.AddrFromSlice(cm.Src)
	}
	c.sent = append(c.sent, sentNDP{m: m, src: src, dst: dst})
	if c.notify != nil {
		select {
		case c.notify <- struct{}{}:
		default:
		}
	}
	return nil
}

func (c *fakeNDP) JoinGroup(g netip.Addr) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.groups[g] = true
	return nil
}

func (c *fakeNDP) LeaveGroup(g netip.Addr) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.groups, g)
	return nil
}

func (c *fakeNDP) Close() error { c.once.Do(func() { close(c.closed) }); return nil }

func (c *fakeNDP) joined(g netip.Addr) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.groups[g]
}

func (c *fakeNDP) take() []sentNDP {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.sent
	c.sent = nil
	return s
}

func mustMAC(s string) net.HardwareAddr {
	hw, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return hw
}
