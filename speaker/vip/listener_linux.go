//go:build linux

package vip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// VRRP's multicast groups (RFC 5798).
var (
	groupV4 = &net.IPAddr{IP: net.IPv4(224, 0, 0, 18)}
	groupV6 = &net.IPAddr{IP: net.ParseIP("ff02::12")}
)

// Listen receives the VRRP advertisements that reach this node (multicast
// ones on the interfaces that ifaces returns, whose VRRP groups it joins,
// and unicast ones to the node's addresses) and hands them to w, until ctx
// ends. It needs CAP_NET_RAW; it fails at once without it.
func Listen(ctx context.Context, w *Watch, ifaces func() []string, log logr.Logger) error {
	c4, err := net.ListenPacket(fmt.Sprintf("ip4:%d", ProtoVRRP), "0.0.0.0")
	if err != nil {
		return fmt.Errorf("listen for VRRP (IPv4): %w", err)
	}
	defer c4.Close()
	p4 := ipv4.NewPacketConn(c4)
	if err := p4.SetControlMessage(ipv4.FlagInterface, true); err != nil {
		return err
	}
	c6, err := net.ListenPacket(fmt.Sprintf("ip6:%d", ProtoVRRP), "::")
	var p6 *ipv6.PacketConn
	if err == nil {
		defer c6.Close()
		p6 = ipv6.NewPacketConn(c6)
		if err := p6.SetControlMessage(ipv6.FlagInterface, true); err != nil {
			return err
		}
	} else {
		log.Info("No IPv6 VRRP listener", "error", err.Error())
	}
	go func() {
		<-ctx.Done()
		c4.Close()
		if c6 != nil {
			c6.Close()
		}
	}()
	go read(func(b []byte) (int, int, net.Addr, error) {
		n, cm, src, err := p4.ReadFrom(b)
		idx := 0
		if cm != nil {
			idx = cm.IfIndex
		}
		return n, idx, src, err
	}, 4, w)
	if p6 != nil {
		go read(func(b []byte) (int, int, net.Addr, error) {
			n, cm, src, err := p6.ReadFrom(b)
			idx := 0
			if cm != nil {
				idx = cm.IfIndex
			}
			return n, idx, src, err
		}, 6, w)
	}
	// Join the groups on the vip interfaces as they come and go.
	joined := map[string]bool{}
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		want := map[string]bool{}
		for _, name := range ifaces() {
			want[name] = true
			if joined[name] {
				continue
			}
			ifi, err := net.InterfaceByName(name)
			if err != nil {
				continue
			}
			err = p4.JoinGroup(ifi, groupV4)
			if p6 != nil {
				err = errors.Join(err, p6.JoinGroup(ifi, groupV6))
			}
			if err != nil {
				log.V(1).Info("Cannot join the VRRP groups", "interface", name, "error", err.Error())
			}
			joined[name] = true
		}
		for name := range joined {
			if !want[name] {
				if ifi, err := net.InterfaceByName(name); err == nil {
					_ = p4.LeaveGroup(ifi, groupV4)
					if p6 != nil {
						_ = p6.LeaveGroup(ifi, groupV6)
					}
				}
				delete(joined, name)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func read(recv func([]byte) (int, int, net.Addr, error), family int, w *Watch) {
	buf := make([]byte, 1500)
	names := map[int]string{}
	for {
		n, idx, src, err := recv(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		a, err := ParseAdvert(buf[:n], family)
		if err != nil {
			continue
		}
		ipa, ok := src.(*net.IPAddr)
		if !ok {
			continue
		}
		ip, _ := netip.AddrFromSlice(ipa.IP)
		name, ok := names[idx]
		if !ok {
			if ifi, err := net.InterfaceByIndex(idx); err == nil {
				name = ifi.Name
				names[idx] = name
			}
		}
		w.Observe(name, family, ip.Unmap(), a)
	}
}
