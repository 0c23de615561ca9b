package vip

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// ProtoVRRP is VRRP's IP protocol number.
const ProtoVRRP = 112

// An Advert is a received VRRP advertisement.
type Advert struct {
	Version  int
	VRID     int
	Priority int
	Addrs    []netip.Addr
}

// ParseAdvert decodes a VRRPv2 or v3 advertisement (the IP payload) of
// family 4 or 6.
func ParseAdvert(b []byte, family int) (Advert, error) {
	if len(b) < 8 {
		return Advert{}, errors.New("vrrp: short packet")
	}
	a := Advert{Version: int(b[0] >> 4), VRID: int(b[1]), Priority: int(b[2])}
	if typ := b[0] & 0x0f; typ != 1 {
		return Advert{}, fmt.Errorf("vrrp: type %d is not an advertisement", typ)
	}
	if a.Version != 2 && a.Version != 3 {
		return Advert{}, fmt.Errorf("vrrp: version %d", a.Version)
	}
	if a.VRID == 0 {
		return Advert{}, errors.New("vrrp: VRID 0")
	}
	size := 4
	if family == 6 {
		size = 16
	}
	n := int(b[3])
	body := b[8:]
	if len(body) < n*size {
		return Advert{}, fmt.Errorf("vrrp: %d addresses announced, %d bytes present", n, len(body))
	}
	for i := range n {
		ip, _ := netip.AddrFromSlice(body[i*size : (i+1)*size])
		a.Addrs = append(a.Addrs, ip.Unmap())
	}
	return a, nil
}

// Ours reports whether an advertisement comes from one of our speakers:
// its source is a node's address, or it carries only service addresses of
// ours (our advertisements carry one: the group's anchor).
func Ours(src netip.Addr, a Advert, nodeAddrs, service map[netip.Addr]bool) bool {
	if nodeAddrs[src] {
		return true
	}
	if len(a.Addrs) == 0 {
		return false
	}
	for _, ip := range a.Addrs {
		if !service[ip] {
			return false
		}
	}
	return true
}

// A Watch collects the foreign VRRP routers a listener sees. The backend
// tells it what is ours (Known) and reads what is foreign (Foreign).
type Watch struct {
	now func() time.Time

	mu      sync.Mutex
	nodes   map[netip.Addr]bool
	service map[netip.Addr]bool
	seen    map[Foreign]time.Time // Seen zero: the key
	onNew   func(Foreign)
}

// NewWatch returns a Watch; onNew, when set, is called for each foreign
// router seen for the first time (within ForeignTTL).
func NewWatch(onNew func(Foreign)) *Watch {
	return &Watch{now: time.Now, seen: map[Foreign]time.Time{}, onNew: onNew}
}

// Known sets our nodes' addresses and our service addresses.
func (w *Watch) Known(nodes, service map[netip.Addr]bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.nodes, w.service = nodes, service
}

// Observe classifies one received advertisement.
func (w *Watch) Observe(iface string, family int, src netip.Addr, a Advert) {
	w.mu.Lock()
	if w.nodes == nil || Ours(src, a, w.nodes, w.service) {
		w.mu.Unlock()
		return
	}
	k := Foreign{Interface: iface, Family: family, VRID: a.VRID, Source: src}
	now := w.now()
	last, ok := w.seen[k]
	fresh := !ok || now.Sub(last) > ForeignTTL
	w.seen[k] = now
	onNew := w.onNew
	w.mu.Unlock()
	foreignAdverts.WithLabelValues(iface, fmt.Sprint(family), fmt.Sprint(a.VRID)).Inc()
	if fresh && onNew != nil {
		onNew(k)
	}
}

// Foreign returns the foreign routers seen within ForeignTTL.
func (w *Watch) Foreign() []Foreign {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	var out []Foreign
	for k, t := range w.seen {
		if now.Sub(t) > ForeignTTL {
			delete(w.seen, k)
			continue
		}
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b Foreign) int {
		return slices.Compare([]string{a.Interface, fmt.Sprint(a.Family, a.VRID), a.Source.String()},
			[]string{b.Interface, fmt.Sprint(b.Family, b.VRID), b.Source.String()})
	})
	return out
}
