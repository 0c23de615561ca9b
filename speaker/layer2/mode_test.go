package layer2

import (
	"context"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"

	"github.com/openelb/openelb-operator/speaker"
)

// world builds the layer2 State node1 sees: alive nodes and, per address,
// the ranked eligible nodes.
type world struct {
	alive map[string]bool
	addrs map[netip.Addr][]string
}

func (w world) state() speaker.State {
	s := speaker.State{Self: "node1", Nodes: map[string]speaker.NodeInfo{}}
	for _, n := range []string{"node1", "node2", "node3"} {
		s.Nodes[n] = speaker.NodeInfo{Name: n, Alive: w.alive[n]}
	}
	for ip, nodes := range w.addrs {
		a := speaker.Announcement{IP: ip, Eip: "eip-pool", Protocol: "layer2", Nodes: nodes}
		if slices.Contains(nodes, "node1") {
			a.Interface = "eth0"
		}
		s.Announcements = append(s.Announcements, a)
	}
	slices.SortFunc(s.Announcements, func(a, b speaker.Announcement) int { return a.IP.Compare(b.IP) })
	return s
}

func allUp() map[string]bool { return map[string]bool{"node1": true, "node2": true, "node3": true} }

// TestModeStory walks one address through the transitions of the lab
// scenarios and checks when node1 answers for it.
func TestModeStory(t *testing.T) {
	clk := newClock()
	var synced atomic.Bool
	synced.Store(true)
	d := newFakeDialer(iface(2, "eth0", ourMAC))
	m := New(Config{Announcer: AnnouncerConfig{Dialer: d, Burst: []time.Duration{0}}, Now: clk.Now, Synced: synced.Load}, testr.New(t))
	x := vip4
	owns := func() bool { _, ok := m.Owned()[x]; return ok }
	apply := func(w world) {
		t.Helper()
		if err := m.Apply(context.Background(), w.state()); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		name    string
		advance time.Duration
		w       world
		synced  bool
		want    bool
	}{
		{name: "start: node1 elected, but waits the claim delay", w: world{alive: allUp(), addrs: map[netip.Addr][]string{x: {"node1", "node2"}}}, synced: true, want: false},
		{name: "still waiting just before the delay", advance: DefaultClaimDelay - time.Millisecond, w: world{alive: allUp(), addrs: map[netip.Addr][]string{x: {"node1", "node2"}}}, synced: true, want: false},
		{name: "claimed after the delay", advance: time.Millisecond, w: world{alive: allUp(), addrs: map[netip.Addr][]string{x: {"node1", "node2"}}}, synced: true, want: true},
		{name: "node1 not Ready: released at once", w: world{alive: allUp(), addrs: map[netip.Addr][]string{x: {"node2"}}}, synced: true, want: false},
		{name: "back to Ready: node2 is alive, so node1 waits", w: world{alive: allUp(), addrs: map[netip.Addr][]string{x: {"node1", "node2"}}}, synced: true, want: false},
		{name: "facts out of sync: still waiting after the delay", advance: DefaultClaimDelay, w: world{alive: allUp(), addrs: map[netip.Addr][]string{x: {"node1", "node2"}}}, synced: false, want: false},
		{name: "in sync: claimed", advance: DefaultClaimDelay, w: world{alive: allUp(), addrs: map[netip.Addr][]string{x: {"node1", "node2"}}}, synced: true, want: true},
		{name: "endpoint moved to node2 (Local)", w: world{alive: allUp(), addrs: map[netip.Addr][]string{x: {"node2"}}}, synced: true, want: false},
		{name: "node2's speaker dies: its successor node1 takes over at once", w: world{alive: map[string]bool{"node1": true, "node3": true}, addrs: map[netip.Addr][]string{x: {"node1", "node3"}}}, synced: false, want: true},
		{name: "Service gone: released", w: world{alive: allUp(), addrs: map[netip.Addr][]string{}}, synced: true, want: false},
		{name: "Service back, nobody announced it: waits", w: world{alive: allUp(), addrs: map[netip.Addr][]string{x: {"node1"}}}, synced: true, want: false},
		{name: "and then claims", advance: DefaultClaimDelay, w: world{alive: allUp(), addrs: map[netip.Addr][]string{x: {"node1"}}}, synced: true, want: true},
	}
	for _, s := range steps {
		clk.Add(s.advance)
		synced.Store(s.synced)
		apply(s.w)
		if got := owns(); got != s.want {
			t.Fatalf("%s: node1 answers = %v, want %v", s.name, got, s.want)
		}
	}
	if err := m.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(m.Owned()) != 0 || !d.arp("eth0").isClosed() {
		t.Fatal("still answering after Shutdown")
	}
	if err := m.Apply(context.Background(), world{alive: allUp(), addrs: map[netip.Addr][]string{x: {"node1"}}}.state()); err != nil || len(m.Owned()) != 0 {
		t.Fatal("Apply after Shutdown announced again")
	}
}

// TestModeTimerClaims: a pending claim is executed by the timer without a
// new decision.
func TestModeTimerClaims(t *testing.T) {
	d := newFakeDialer(iface(2, "eth0", ourMAC))
	m := New(Config{Announcer: AnnouncerConfig{Dialer: d, Burst: []time.Duration{0}}, ClaimDelay: 20 * time.Millisecond}, testr.New(t))
	if err := m.Apply(context.Background(), world{alive: allUp(), addrs: map[netip.Addr][]string{vip4: {"node1"}}}.state()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the delayed claim", func() bool { return len(m.Owned()) == 1 })
	_ = m.Shutdown(context.Background())
}

// TestModeReannouncesWhenAPeerRejoins: after a partition heals the owner
// repeats its announcements.
func TestModeReannouncesWhenAPeerRejoins(t *testing.T) {
	clk := newClock()
	d := newFakeDialer(iface(2, "eth0", ourMAC))
	m := New(Config{Announcer: AnnouncerConfig{Dialer: d, Burst: []time.Duration{0}}, Now: clk.Now}, testr.New(t))
	lonely := world{alive: map[string]bool{"node1": true}, addrs: map[netip.Addr][]string{vip4: {"node1"}}}
	_ = m.Apply(context.Background(), lonely.state())
	clk.Add(DefaultClaimDelay)
	_ = m.Apply(context.Background(), lonely.state())
	c := d.arp("eth0")
	if len(c.take()) != 2 {
		t.Fatal("no burst on claim")
	}
	_ = m.Apply(context.Background(), lonely.state())
	if len(c.take()) != 0 {
		t.Fatal("burst without a change")
	}
	back := world{alive: allUp(), addrs: map[netip.Addr][]string{vip4: {"node1", "node2"}}}
	_ = m.Apply(context.Background(), back.state())
	if len(c.take()) != 2 {
		t.Fatal("no re-announcement after peers rejoined")
	}
	_ = m.Shutdown(context.Background())
}

func TestAnnouncers(t *testing.T) {
	m := New(Config{Announcer: AnnouncerConfig{Dialer: newFakeDialer()}}, testr.New(t))
	if got := m.Announcers(speaker.Announcement{Nodes: []string{"node2", "node1"}}); !slices.Equal(got, []string{"node2"}) {
		t.Fatalf("Announcers = %v", got)
	}
	if got := m.Announcers(speaker.Announcement{}); got != nil {
		t.Fatalf("Announcers of nobody = %v", got)
	}
}
