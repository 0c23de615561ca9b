package layer2

import (
	"bytes"
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
)

const (
	ourMAC    = "02:00:00:00:01:11"
	clientMAC = "02:00:00:00:00:64"
)

var (
	vip4 = netip.MustParseAddr("203.0.113.20")
	vip6 = netip.MustParseAddr("2001:db8::20")
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Unix(1_800_000_000, 0)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func request(t *testing.T, senderMAC string, sender, target netip.Addr) *arp.Packet {
	t.Helper()
	p, err := arp.NewPacket(arp.OperationRequest, mustMAC(senderMAC), sender, ethernet.Broadcast, target)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestARPAnswersOnlyOwnedAddresses(t *testing.T) {
	d := newFakeDialer(iface(2, "eth0", ourMAC))
	a := NewAnnouncer(AnnouncerConfig{Dialer: d, Burst: []time.Duration{0}}, testr.New(t))
	if err := a.Set(map[netip.Addr]string{vip4: "eth0"}); err != nil {
		t.Fatal(err)
	}
	c := d.arp("eth0")
	garps := c.take()
	if len(garps) != 2 || garps[0].p.Operation != arp.OperationRequest || garps[1].p.Operation != arp.OperationReply {
		t.Fatalf("want a gratuitous request and reply at once, got %+v", garps)
	}
	for _, g := range garps {
		if g.p.SenderIP != vip4 || g.p.TargetIP != vip4 || !bytes.Equal(g.p.SenderHardwareAddr, mustMAC(ourMAC)) || !bytes.Equal(g.to, ethernet.Broadcast) {
			t.Fatalf("bad gratuitous ARP %+v", g)
		}
	}
	client := netip.MustParseAddr("198.51.100.100")
	c.in <- request(t, clientMAC, client, netip.MustParseAddr("203.0.113.21")) // not ours
	c.in <- request(t, ourMAC, netip.MustParseAddr("198.51.100.11"), vip4)     // our own kernel
	c.in <- request(t, "02:00:00:00:01:12", vip4, vip4)                        // someone else's GARP
	c.in <- request(t, clientMAC, client, vip4)                                // the question
	eventually(t, "an ARP reply", func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.sent) > 0 })
	time.Sleep(20 * time.Millisecond)
	sent := c.take()
	if len(sent) != 1 {
		t.Fatalf("want exactly one reply, got %d: %+v", len(sent), sent)
	}
	r := sent[0]
	if r.p.Operation != arp.OperationReply || r.p.SenderIP != vip4 || !bytes.Equal(r.p.SenderHardwareAddr, mustMAC(ourMAC)) ||
		r.p.TargetIP != client || !bytes.Equal(r.to, mustMAC(clientMAC)) {
		t.Fatalf("bad reply %+v", r)
	}

	// Losing the address: the socket closes, nothing is answered any more.
	if err := a.Set(nil); err != nil {
		t.Fatal(err)
	}
	if !c.isClosed() {
		t.Fatal("ARP socket still open without addresses")
	}
	if len(a.Owned()) != 0 {
		t.Fatalf("still owning %v", a.Owned())
	}
}

func TestStopAnsweringWhileSocketStaysOpen(t *testing.T) {
	d := newFakeDialer(iface(2, "eth0", ourMAC))
	a := NewAnnouncer(AnnouncerConfig{Dialer: d, Burst: []time.Duration{0}}, testr.New(t))
	other := netip.MustParseAddr("203.0.113.21")
	if err := a.Set(map[netip.Addr]string{vip4: "eth0", other: "eth0"}); err != nil {
		t.Fatal(err)
	}
	c := d.arp("eth0")
	c.take()
	if err := a.Set(map[netip.Addr]string{other: "eth0"}); err != nil {
		t.Fatal(err)
	}
	client := netip.MustParseAddr("198.51.100.100")
	c.in <- request(t, clientMAC, client, vip4)
	c.in <- request(t, clientMAC, client, other)
	eventually(t, "the reply for the kept address", func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.sent) > 0 })
	time.Sleep(20 * time.Millisecond)
	sent := c.take()
	if len(sent) != 1 || sent[0].p.SenderIP != other {
		t.Fatalf("a released address was answered: %+v", sent)
	}
}

func TestGratuitousSchedule(t *testing.T) {
	clk := newClock()
	d := newFakeDialer(iface(2, "eth0", ourMAC))
	a := NewAnnouncer(AnnouncerConfig{Dialer: d, Now: clk.Now, Refresh: 10 * time.Second}, testr.New(t))
	if err := a.Set(map[netip.Addr]string{vip4: "eth0"}); err != nil {
		t.Fatal(err)
	}
	c := d.arp("eth0")
	rounds := func() int { return len(c.take()) / 2 }
	if n := rounds(); n != 1 {
		t.Fatalf("want the first round at once, got %d", n)
	}
	steps := []struct {
		advance time.Duration
		want    int
	}{
		{499 * time.Millisecond, 0}, {time.Millisecond, 1}, // 0.5 s
		{500 * time.Millisecond, 1},                        // 1 s
		{999 * time.Millisecond, 0}, {time.Millisecond, 1}, // 2 s
		{2 * time.Second, 1},                   // 4 s: last of the burst
		{9 * time.Second, 0}, {time.Second, 1}, // refresh 10 s later
		{10 * time.Second, 1},
	}
	for i, s := range steps {
		clk.Add(s.advance)
		a.mu.Lock()
		a.sendDue(clk.Now())
		a.mu.Unlock()
		if n := rounds(); n != s.want {
			t.Fatalf("step %d (+%s): %d rounds, want %d", i, s.advance, n, s.want)
		}
	}
	// Reannounce starts a new burst.
	a.Reannounce()
	if n := rounds(); n != 1 {
		t.Fatalf("reannounce: %d rounds, want 1", n)
	}
}

func TestNDP(t *testing.T) {
	for _, noPktSrc := range []bool{false, true} {
		d := newFakeDialer(iface(2, "eth0", ourMAC))
		d.noPktSrc = noPktSrc
		a := NewAnnouncer(AnnouncerConfig{Dialer: d, Burst: []time.Duration{0}}, testr.New(t))
		if err := a.Set(map[netip.Addr]string{vip6: "eth0"}); err != nil {
			t.Fatal(err)
		}
		c := d.ndp("eth0")
		group, _ := ndp.SolicitedNodeMulticast(vip6)
		if !c.joined(group) {
			t.Fatalf("solicited-node group %s not joined", group)
		}
		wantSrc := vip6
		if noPktSrc {
			wantSrc = netip.Addr{} // falls back to the link-local source
		}
		check := func(s sentNDP, dst netip.Addr, solicited bool) {
			t.Helper()
			na, ok := s.m.(*ndp.NeighborAdvertisement)
			if !ok || na.TargetAddress != vip6 || !na.Override || na.Solicited != solicited || na.Router || s.dst != dst || s.src != wantSrc {
				t.Fatalf("bad NA %+v (msg %+v), want dst %s solicited %v src %v", s, s.m, dst, solicited, wantSrc)
			}
			if mac := linkLayer(na.Options, ndp.Target); !bytes.Equal(mac, mustMAC(ourMAC)) {
				t.Fatalf("NA target link-layer %v", mac)
			}
		}
		sent := c.take()
		if len(sent) != 1 {
			t.Fatalf("want one unsolicited NA, got %+v", sent)
		}
		check(sent[0], allNodes, false)

		client := netip.MustParseAddr("fe80::64").WithZone("eth0")
		ns := func(target netip.Addr, mac string) *ndp.NeighborSolicitation {
			m := &ndp.NeighborSolicitation{TargetAddress: target}
			if mac != "" {
				m.Options = []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: mustMAC(mac)}}
			}
			return m
		}
		c.in <- ndpIn{m: ns(netip.MustParseAddr("2001:db8::21"), clientMAC), src: client}
		c.in <- ndpIn{m: ns(vip6, ourMAC), src: netip.MustParseAddr("fe80::11")}
		c.in <- ndpIn{m: ns(vip6, clientMAC), src: client}
		c.in <- ndpIn{m: ns(vip6, ""), src: netip.IPv6Unspecified().WithZone("eth0")} // DAD probe (zoned, as read from the socket)
		eventually(t, "two NAs", func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.sent) >= 2 })
		time.Sleep(20 * time.Millisecond)
		sent = c.take()
		if len(sent) != 2 {
			t.Fatalf("want 2 NAs, got %+v", sent)
		}
		check(sent[0], client, true)
		check(sent[1], allNodes, false)

		if err := a.Set(nil); err != nil {
			t.Fatal(err)
		}
		if c.joined(group) {
			// the socket is closed, which leaves every group
			select {
			case <-c.closed:
			default:
				t.Fatal("group still joined and socket open after release")
			}
		}
	}
}

func TestLeaveGroupOnRelease(t *testing.T) {
	d := newFakeDialer(iface(2, "eth0", ourMAC))
	a := NewAnnouncer(AnnouncerConfig{Dialer: d, Burst: []time.Duration{0}}, testr.New(t))
	other := netip.MustParseAddr("2001:db8::1:21")
	if err := a.Set(map[netip.Addr]string{vip6: "eth0", other: "eth0"}); err != nil {
		t.Fatal(err)
	}
	if err := a.Set(map[netip.Addr]string{other: "eth0"}); err != nil {
		t.Fatal(err)
	}
	c := d.ndp("eth0")
	g1, _ := ndp.SolicitedNodeMulticast(vip6)
	g2, _ := ndp.SolicitedNodeMulticast(other)
	if c.joined(g1) || !c.joined(g2) {
		t.Fatalf("groups: %v", c.groups)
	}
}

func TestInterfaceRecreatedReopens(t *testing.T) {
	d := newFakeDialer(iface(2, "eth0", ourMAC))
	a := NewAnnouncer(AnnouncerConfig{Dialer: d, Burst: []time.Duration{0}}, testr.New(t))
	if err := a.Set(map[netip.Addr]string{vip4: "eth0"}); err != nil {
		t.Fatal(err)
	}
	first := d.arp("eth0")
	d.mu.Lock()
	d.ifaces["eth0"] = iface(7, "eth0", "02:00:00:00:09:11")
	d.mu.Unlock()
	if err := a.Set(map[netip.Addr]string{vip4: "eth0"}); err != nil {
		t.Fatal(err)
	}
	second := d.arp("eth0")
	if second == first || !first.isClosed() {
		t.Fatal("socket of the old interface not replaced")
	}
	g := second.take()
	if len(g) != 2 || !bytes.Equal(g[0].p.SenderHardwareAddr, mustMAC("02:00:00:00:09:11")) {
		t.Fatalf("no burst with the new MAC: %+v", g)
	}
}

func TestRunSendsBurstOverTime(t *testing.T) {
	d := newFakeDialer(iface(2, "eth0", ourMAC))
	a := NewAnnouncer(AnnouncerConfig{Dialer: d, Burst: []time.Duration{0, 30 * time.Millisecond, 60 * time.Millisecond}}, testr.New(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	if err := a.Set(map[netip.Addr]string{vip4: "eth0"}); err != nil {
		t.Fatal(err)
	}
	c := d.arp("eth0")
	eventually(t, "three rounds", func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.sent) == 6 })
}
