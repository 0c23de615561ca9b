package netx_test

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/openelb/openelb-operator/speaker/internal/netx"
	"github.com/openelb/openelb-operator/speaker/internal/netx/netxtest"
)

func TestRouteLinks(t *testing.T) {
	s := netx.Snapshot{
		Links: []netx.Link{
			netxtest.Link(1, "lo", "", "127.0.0.1/8", "203.0.113.20/32"),
			netxtest.Link(2, "eth0", "02:00:00:00:01:11", "198.51.100.11/24", "2001:db8::11/64"),
			netxtest.Link(3, "eth1", "02:00:00:00:02:11", "198.18.2.11/24"),
		},
		Routes: []netx.Route{
			netxtest.Route("0.0.0.0/0", 2),
			netxtest.Route("198.51.100.0/24", 2),
			netxtest.Route("198.18.2.0/24", 3),
			netxtest.Route("203.0.113.64/27", 3),
			netxtest.Route("::/0", 2),
			netxtest.Route("2001:db8::/64", 2),
			{Dst: netip.MustParsePrefix("198.18.0.0/15"), Links: []int{2}, Priority: 10},
			{Dst: netip.MustParsePrefix("198.18.0.0/15"), Links: []int{3}, Priority: 5},
		},
	}
	tests := []struct {
		dst  string
		want []int
	}{
		{"203.0.113.20", []int{2}}, // on lo, but the main table routes it out of eth0
		{"203.0.113.70", []int{3}},
		{"198.18.1.1", []int{3}}, // equal prefixes: lower metric
		{"2001:db8::20", []int{2}},
		{"2001:db8:5::1", []int{2}},
		{"::ffff:198.51.100.7", []int{2}},
	}
	for _, tt := range tests {
		if got := s.RouteLinks(netip.MustParseAddr(tt.dst)); !slices.Equal(got, tt.want) {
			t.Errorf("RouteLinks(%s) = %v, want %v", tt.dst, got, tt.want)
		}
	}
	if got := (netx.Snapshot{}).RouteLinks(netip.MustParseAddr("203.0.113.20")); got != nil {
		t.Errorf("no routes: got %v", got)
	}
	eth1, _ := s.LinkByName("eth1")
	if !s.Reaches(eth1, netip.MustParseAddr("198.18.2.50")) || s.Reaches(eth1, netip.MustParseAddr("203.0.113.20")) {
		t.Errorf("Reaches(eth1) wrong")
	}
	if l, ok := s.LinkWithAddr(netip.MustParseAddr("198.51.100.11")); !ok || l.Name != "eth0" {
		t.Errorf("LinkWithAddr = %v, %v", l.Name, ok)
	}
}
