package vip

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openelb/openelb-operator/speaker/internal/netx"
)

// links of node N: eth0 198.51.100.1N/24 + 2001:db8::1N/64, eth1
// 198.18.2.1N/24, and a service address held on eth0.
func links(n int) []netx.Link {
	return []netx.Link{
		{Index: 1, Name: "lo", Up: true, Loopback: true, Prefixes: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8")}},
		{Index: 2, Name: "eth0", Up: true, Prefixes: []netip.Prefix{
			netip.MustParsePrefix("203.0.113.20/32"), // a VIP held right now
			netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + n)}), 24),
			netip.MustParsePrefix("fe80::1/64"),
			netip.PrefixFrom(netip.MustParseAddr("2001:db8::"+string(rune('a'+n-1))), 64),
		}},
		{Index: 3, Name: "eth1", Up: true, Prefixes: []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, 2, byte(10 + n)}), 24)}},
		{Index: 4, Name: "enp0s31f6.4000", Up: true, Prefixes: []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, 3, byte(10 + n)}), 24)}},
	}
}

func TestLocal(t *testing.T) {
	threeAddrs := func(self string) *world {
		return newWorld(self, three...).addr("203.0.113.20", "eip").addr("203.0.113.21", "eip").addr("203.0.113.22", "eip")
	}
	tests := []struct {
		name      string
		self      string
		world     func(self string) *world
		multicast bool
		dir       Directory
		check     func(t *testing.T, c KeepalivedConfig, p Plan)
		warnings  []string
	}{
		{name: "unicast members", self: "node2", world: threeAddrs, check: func(t *testing.T, c KeepalivedConfig, p Plan) {
			for _, in := range c.Instances {
				g := p.Groups[slices.IndexFunc(p.Groups, func(g Group) bool { return g.VRID == in.VRID })]
				if want := Priority(g.Member("node2"), len(g.Members)); in.Priority != want {
					t.Errorf("VRID %d: priority %d, want %d", in.VRID, in.Priority, want)
				}
				if !in.Unicast || in.Source != netip.MustParseAddr("198.51.100.12") {
					t.Errorf("VRID %d: unicast %v from %s", in.VRID, in.Unicast, in.Source)
				}
				if want := ips("198.51.100.11", "198.51.100.13"); !slices.Equal(in.Peers, want) {
					t.Errorf("VRID %d: peers %v, want %v", in.VRID, in.Peers, want)
				}
				if in.Anchor.IP != g.IPs[0] || len(in.Excluded) != len(g.IPs)-1 || in.Anchor.Label != "eth0:oelb" {
					t.Errorf("VRID %d: anchor %+v excluded %+v for %v", in.VRID, in.Anchor, in.Excluded, g.IPs)
				}
			}
			if n := len(c.VIPs()); n != 3 {
				t.Errorf("%d addresses configured, want 3", n)
			}
		}},
		{name: "not a member", self: "node3", world: func(self string) *world {
			return newWorld(self, three...).addr("203.0.113.20", "eip", "node1", "node2")
		}, check: func(t *testing.T, c KeepalivedConfig, _ Plan) {
			if len(c.Instances) != 0 {
				t.Errorf("node3 runs %+v", c.Instances)
			}
		}},
		{name: "multicast", self: "node1", world: threeAddrs, multicast: true, check: func(t *testing.T, c KeepalivedConfig, _ Plan) {
			for _, in := range c.Instances {
				if in.Unicast || len(in.Peers) != 0 {
					t.Errorf("VRID %d unicast with --vip-multicast", in.VRID)
				}
			}
		}},
		{name: "single member multicasts", self: "node1", world: func(self string) *world {
			return newWorld(self, three...).addr("203.0.113.20", "eip", "node1")
		}, check: func(t *testing.T, c KeepalivedConfig, _ Plan) {
			if len(c.Instances) != 1 || c.Instances[0].Unicast {
				t.Errorf("single member: %+v", c.Instances)
			}
		}},
		{name: "second NIC peers from the directory", self: "node1", world: func(self string) *world {
			return newWorld(self, three...).fact("node1", "nic2", "eth1").fact("node2", "nic2", "eth1").addr("203.0.113.64", "nic2", "node1", "node2")
		}, dir: Directory{"node2": {"eth1": ips("198.18.2.12")}, "node1": {"eth1": ips("198.18.2.11")}},
			check: func(t *testing.T, c KeepalivedConfig, _ Plan) {
				if len(c.Instances) != 1 {
					t.Fatalf("instances %+v", c.Instances)
				}
				in := c.Instances[0]
				if in.Interface != "eth1" || in.Source != netip.MustParseAddr("198.18.2.11") || !slices.Equal(in.Peers, ips("198.18.2.12")) {
					t.Errorf("eth1 instance %+v", in)
				}
			}},
		{name: "second NIC without a published peer address", self: "node1", world: func(self string) *world {
			return newWorld(self, three...).fact("node1", "nic2", "eth1").fact("node2", "nic2", "eth1").addr("203.0.113.64", "nic2", "node1", "node2")
		}, warnings: []string{"no address known for any other member on eth1"}, check: func(t *testing.T, c KeepalivedConfig, _ Plan) {
			if len(c.Instances) != 0 {
				t.Errorf("instance without peers: %+v", c.Instances)
			}
		}},
		{name: "IPv6", self: "node1", world: func(self string) *world {
			return newWorld(self, "node1", "node2").addr("2001:db8:ffff::20", "eip6")
		}, check: func(t *testing.T, c KeepalivedConfig, _ Plan) {
			if len(c.Instances) != 1 {
				t.Fatalf("instances %+v", c.Instances)
			}
			in := c.Instances[0]
			if in.Family != 6 || in.Source != netip.MustParseAddr("2001:db8::a") || !slices.Equal(in.Peers, ips("2001:db8::c")) || in.Anchor.Label != "" {
				t.Errorf("IPv6 instance %+v", in)
			}
		}},
		{name: "long interface name has no label", self: "node1", world: func(self string) *world {
			return newWorld(self, "node1").fact("node1", "v", "enp0s31f6.4000").addr("203.0.113.90", "v", "node1")
		}, check: func(t *testing.T, c KeepalivedConfig, _ Plan) {
			if len(c.Instances) != 1 || c.Instances[0].Anchor.Label != "" {
				t.Errorf("instances %+v", c.Instances)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := tc.world(tc.self)
			p := mustCompute(t, Input{State: w.state()})
			n := int(tc.self[len(tc.self)-1] - '0')
			c, warn := Local(LocalInput{Self: tc.self, Plan: p, State: w.state(), Directory: tc.dir, Links: links(n),
				AdvertInterval: time.Second, Multicast: tc.multicast})
			if len(warn) != len(tc.warnings) {
				t.Errorf("warnings %q, want %q", warn, tc.warnings)
			}
			for i := range min(len(warn), len(tc.warnings)) {
				if !strings.Contains(warn[i], tc.warnings[i]) {
					t.Errorf("warning %q, want %q", warn[i], tc.warnings[i])
				}
			}
			tc.check(t, c, p)
		})
	}
}

func TestLocalLeavesOutWhatThisNodeMayNotAnnounce(t *testing.T) {
	w := newWorld("node1", three...).addr("203.0.113.20", "eip").addr("203.0.113.21", "eip").addr("203.0.113.22", "eip")
	p := mustCompute(t, Input{State: w.state()})
	// The plan is recorded; then .21's Service goes away and node1 loses
	// eligibility for .22 before the writer records a new plan.
	now := newWorld("node1", three...).addr("203.0.113.20", "eip").addr("203.0.113.22", "eip", "node2", "node3")
	c, _ := Local(LocalInput{Self: "node1", Plan: p, State: now.state(), Links: links(1), AdvertInterval: time.Second})
	got := make([]netip.Addr, 0)
	for _, v := range c.VIPs() {
		got = append(got, v.IP)
	}
	if want := ips("203.0.113.20"); !slices.Equal(got, want) {
		t.Errorf("configured %v, want %v", got, want)
	}
	// An address not yet in the plan is not configured either.
	more := newWorld("node1", three...).addr("203.0.113.20", "eip").addr("203.0.113.23", "eip")
	c, _ = Local(LocalInput{Self: "node1", Plan: p, State: more.state(), Links: links(1), AdvertInterval: time.Second})
	for _, v := range c.VIPs() {
		if v.IP == netip.MustParseAddr("203.0.113.23") {
			t.Errorf("203.0.113.23 configured before the plan holds it")
		}
	}
}

func TestAdvertInt(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Second: "1", 100 * time.Millisecond: "0.1", 10 * time.Millisecond: "0.01", 1500 * time.Millisecond: "1.5",
		time.Millisecond: "0.01", 40950 * time.Millisecond: "40.95", 333 * time.Millisecond: "0.33",
	} {
		if got := AdvertInt(d); got != want {
			t.Errorf("AdvertInt(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestNodeAddrsSkipsServiceAddresses(t *testing.T) {
	l := links(1)[1]
	got := NodeAddrs(l, map[netip.Addr]bool{netip.MustParseAddr("203.0.113.20"): true})
	if want := ips("198.51.100.11", "2001:db8::a"); !slices.Equal(got, want) {
		t.Errorf("NodeAddrs = %v, want %v", got, want)
	}
}
