package bgp

import (
	"net/netip"
	"testing"

	"github.com/openelb/openelb-operator/speaker"
)

func TestRoutes(t *testing.T) {
	ann := func(ip string, nodes ...string) speaker.Announcement {
		return speaker.Announcement{IP: netip.MustParseAddr(ip), Protocol: "bgp", Nodes: nodes}
	}
	state := func(addrs []string, anns ...speaker.Announcement) speaker.State {
		var as []netip.Addr
		for _, a := range addrs {
			as = append(as, netip.MustParseAddr(a))
		}
		return speaker.State{Self: "node1", Nodes: map[string]speaker.NodeInfo{"node1": {Name: "node1", Addresses: as}}, Announcements: anns}
	}
	tests := []struct {
		name string
		s    speaker.State
		want map[string]string // prefix → next hop
	}{
		{"eligible addresses become host routes with this node as next hop",
			state([]string{"198.51.100.11", "2001:db8::11"}, ann("203.0.113.10", "node2", "node1"), ann("2001:db8:ffff::10", "node1")),
			map[string]string{"203.0.113.10/32": "198.51.100.11", "2001:db8:ffff::10/128": "2001:db8::11"}},
		{"not eligible (externalTrafficPolicy Local without an endpoint here): not advertised",
			state([]string{"198.51.100.11"}, ann("203.0.113.10", "node2"), ann("203.0.113.11")),
			map[string]string{}},
		{"no address of the family: the session's local address (unspecified next hop)",
			state([]string{"198.51.100.11"}, ann("2001:db8:ffff::10", "node1")),
			map[string]string{"2001:db8:ffff::10/128": "::"}},
		{"IPv6-only node and an IPv4 address", state([]string{"2001:db8::11"}, ann("203.0.113.10", "node1")),
			map[string]string{"203.0.113.10/32": "0.0.0.0"}},
		{"the first InternalIP of each family",
			state([]string{"198.51.100.11", "10.0.0.11", "2001:db8::11", "2001:db8::99"}, ann("203.0.113.10", "node1")),
			map[string]string{"203.0.113.10/32": "198.51.100.11"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Routes(tc.s)
			if len(got) != len(tc.want) {
				t.Fatalf("Routes = %v, want %v", got, tc.want)
			}
			for p, nh := range tc.want {
				r, ok := got[netip.MustParsePrefix(p)]
				if !ok || r.NextHop.String() != nh {
					t.Errorf("route %s = %+v, want next hop %s", p, r, nh)
				}
				if _, err := r.apiPath(); err != nil {
					t.Errorf("apiPath(%s): %v", p, err)
				}
			}
		})
	}
}
