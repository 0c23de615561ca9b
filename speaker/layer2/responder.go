package layer2

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"

	"github.com/go-logr/logr"
	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"github.com/openelb/openelb-operator/speaker/internal/metrics"
)

var allNodes = netip.MustParseAddr("ff02::1")

// A responder answers ARP requests and neighbour solicitations for the
// addresses this node announces on one interface, and sends their
// gratuitous announcements. Its reading goroutines consult an immutable set
// swapped atomically, so an address removed by set stops being answered
// before set returns.
type responder struct {
	ifi    *net.Interface
	dialer Dialer
	log    logr.Logger

	owned atomic.Pointer[map[netip.Addr]bool]

	mu     sync.Mutex // guards the fields below and writes
	arp    ARPConn
	ndp    NDPConn
	groups map[netip.Addr]bool // solicited-node groups joined
	pktSrc map[netip.Addr]bool // addresses for which a VIP-sourced NA failed
	wg     sync.WaitGroup
}

func newResponder(ifi *net.Interface, d Dialer, log logr.Logger) *responder {
	r := &responder{ifi: ifi, dialer: d, log: log.WithValues("interface", ifi.Name), groups: map[netip.Addr]bool{}, pktSrc: map[netip.Addr]bool{}}
	empty := map[netip.Addr]bool{}
	r.owned.Store(&empty)
	return r
}

// set replaces the owned addresses, opening the ARP or NDP socket when the
// first address of its family arrives and joining or leaving solicited-node
// groups. The returned error concerns sockets that could not be opened;
// answering for the other addresses goes on.
func (r *responder) set(addrs map[netip.Addr]bool) error {
	next := make(map[netip.Addr]bool, len(addrs))
	var v4, v6 bool
	for ip := range addrs {
		next[ip] = true
		v4 = v4 || ip.Is4()
		v6 = v6 || ip.Is6()
	}
	r.owned.Store(&next) // stop answering removed addresses first

	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	if v4 && r.arp == nil {
		c, err := r.dialer.DialARP(r.ifi)
		if err != nil {
			errs = append(errs, err)
		} else {
			r.arp = c
			r.wg.Add(1)
			go r.readARP(c)
		}
	}
	if v6 && r.ndp == nil {
		c, err := r.dialer.ListenNDP(r.ifi)
		if err != nil {
			errs = append(errs, err)
		} else {
			r.ndp = c
			r.groups = map[netip.Addr]bool{}
			r.wg.Add(1)
			go r.readNDP(c)
		}
	}
	if r.ndp != nil {
		want := map[netip.Addr]bool{}
		for ip := range next {
			if ip.Is6() {
				if g, err := ndp.SolicitedNodeMulticast(ip); err == nil {
					want[g] = true
				}
			}
		}
		for g := range r.groups {
			if !want[g] {
				if err := r.ndp.LeaveGroup(g); err != nil {
					r.log.V(4).Info("Cannot leave solicited-node group", "group", g.String(), "error", err.Error())
				}
				delete(r.groups, g)
			}
		}
		for g := range want {
			if !r.groups[g] {
				if err := r.ndp.JoinGroup(g); err != nil {
					errs = append(errs, err)
					continue
				}
				r.groups[g] = true
			}
		}
	}
	return errors.Join(errs...)
}

func (r *responder) has(ip netip.Addr) bool { return (*r.owned.Load())[ip] }

func (r *responder) empty() bool { return len(*r.owned.Load()) == 0 }

// close stops answering and closes the sockets.
func (r *responder) close() {
	empty := map[netip.Addr]bool{}
	r.owned.Store(&empty)
	r.mu.Lock()
	if r.arp != nil {
		r.arp.Close()
		r.arp = nil
	}
	if r.ndp != nil {
		r.ndp.Close()
		r.ndp = nil
	}
	r.mu.Unlock()
	r.wg.Wait()
}

func (r *responder) readARP(c ARPConn) {
	defer r.wg.Done()
	for {
		p, _, err := c.Read()
		if err != nil {
			if isClosed(err) || !r.current(c) {
				return
			}
			continue // malformed frame
		}
		if p.Operation != arp.OperationRequest || bytes.Equal(p.SenderHardwareAddr, r.ifi.HardwareAddr) {
			continue
		}
		if p.SenderIP == p.TargetIP { // someone else's gratuitous announcement
			if r.has(p.TargetIP) {
				metrics.Conflicts.WithLabelValues("ipv4").Inc()
				r.log.Info("Another host announces an address this node announces", "ip", p.TargetIP.String(), "mac", p.SenderHardwareAddr.String())
			}
			continue
		}
		if !r.has(p.TargetIP) {
			continue
		}
		metrics.RequestsReceived.WithLabelValues("ipv4").Inc()
		reply, err := arp.NewPacket(arp.OperationReply, r.ifi.HardwareAddr, p.TargetIP, p.SenderHardwareAddr, p.SenderIP)
		if err != nil {
			continue
		}
		r.mu.Lock()
		if r.arp == c {
			err = c.WriteTo(reply, p.SenderHardwareAddr)
		}
		r.mu.Unlock()
		if err != nil {
			r.log.V(4).Info("Cannot answer ARP request", "ip", p.TargetIP.String(), "error", err.Error())
			continue
		}
		metrics.RequestsAnswered.WithLabelValues("ipv4").Inc()
	}
}

func (r *responder) readNDP(c NDPConn) {
	defer r.wg.Done()
	for {
		m, _, src, err := c.ReadFrom()
		if err != nil {
			if isClosed(err) || !r.current(c) {
				return
			}
			continue
		}
		switch msg := m.(type) {
		case *ndp.NeighborAdvertisement:
			if r.has(msg.TargetAddress) {
				if mac := linkLayer(msg.Options, ndp.Target); mac != nil && !bytes.Equal(mac, r.ifi.HardwareAddr) {
					metrics.Conflicts.WithLabelValues("ipv6").Inc()
					r.log.Info("Another host announces an address this node announces", "ip", msg.TargetAddress.String(), "mac", mac.String())
				}
			}
		case *ndp.NeighborSolicitation:
			if !r.has(msg.TargetAddress) {
				continue
			}
			if mac := linkLayer(msg.Options, ndp.Source); mac != nil && bytes.Equal(mac, r.ifi.HardwareAddr) {
				continue
			}
			metrics.RequestsReceived.WithLabelValues("ipv6").Inc()
			// A DAD probe (unspecified source) is answered to all nodes,
			// unsolicited, as RFC 4861 7.2.4 requires.
			dst, solicited := src, true
			if src.WithZone("").IsUnspecified() {
				dst, solicited = allNodes, false
			}
			if err := r.sendNA(c, msg.TargetAddress, dst, solicited); err != nil {
				r.log.V(4).Info("Cannot answer neighbour solicitation", "ip", msg.TargetAddress.String(), "error", err.Error())
				continue
			}
			metrics.RequestsAnswered.WithLabelValues("ipv6").Inc()
		}
	}
}

// sendNA sends a neighbour advertisement with Override for target. It is
// sourced from target itself when the kernel allows it (the address is
// local, e.g. on kube-ipvs0), since some tools (ndisc6) ignore NAs from
// another source; otherwise from the interface's link-local address.
func (r *responder) sendNA(c NDPConn, target, dst netip.Addr, solicited bool) error {
	na := &ndp.NeighborAdvertisement{
		Solicited: solicited, Override: true, TargetAddress: target,
		Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: r.ifi.HardwareAddr}},
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ndp != c {
		return net.ErrClosed
	}
	if !r.pktSrc[target] {
		cm := &ipv6.ControlMessage{HopLimit: ndp.HopLimit, Src: target.AsSlice(), IfIndex: r.ifi.Index}
		if err := c.WriteTo(na, cm, dst); err == nil {
			return nil
		}
		r.pktSrc[target] = true
	}
	return c.WriteTo(na, nil, dst)
}

// gratuitous sends one round of announcements for ip: a gratuitous ARP
// request and reply (both broadcast; some hosts only honour one form), or an
// unsolicited NA with Override to all nodes.
func (r *responder) gratuitous(ip netip.Addr) error {
	if ip.Is4() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.arp == nil {
			return net.ErrClosed
		}
		for _, op := range []arp.Operation{arp.OperationRequest, arp.OperationReply} {
			p, err := arp.NewPacket(op, r.ifi.HardwareAddr, ip, ethernet.Broadcast, ip)
			if err != nil {
				return err
			}
			if err := r.arp.WriteTo(p, ethernet.Broadcast); err != nil {
				return err
			}
			metrics.GratuitousSent.WithLabelValues("ipv4").Inc()
		}
		return nil
	}
	r.mu.Lock()
	c := r.ndp
	r.mu.Unlock()
	if c == nil {
		return net.ErrClosed
	}
	if err := r.sendNA(c, ip, allNodes, false); err != nil {
		return err
	}
	metrics.GratuitousSent.WithLabelValues("ipv6").Inc()
	return nil
}

func linkLayer(opts []ndp.Option, dir ndp.Direction) net.HardwareAddr {
	for _, o := range opts {
		if l, ok := o.(*ndp.LinkLayerAddress); ok && l.Direction == dir {
			return l.Addr
		}
	}
	return nil
}

func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrClosed) || errors.Is(err, unix.EBADF)
}

// current reports whether c is still one of the responder's sockets.
func (r *responder) current(c any) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return (r.arp != nil && any(r.arp) == c) || (r.ndp != nil && any(r.ndp) == c)
}
