package bgp

import (
	"net/netip"
	"strings"
	"testing"

	apipb "github.com/osrg/gobgp/v3/api"
	"k8s.io/apimachinery/pkg/types"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
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
			got := Routes(tc.s, nil)
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

func TestParseCommunities(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		err      bool
	}{
		{"", "", false},
		{"65000:100", "65000:100", false},
		{" 65000:200 , 65000:100,65000:100", "65000:100,65000:200", false},
		{"no-export", "65535:65281", false},
		{"65536:1", "", true},
		{"65000", "", true},
		{"a:b", "", true},
	} {
		got, err := CanonicalCommunities(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("CanonicalCommunities(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
	if _, err := ParseLocalPref("0"); err == nil {
		t.Error("local-pref 0 accepted")
	}
	if v, err := ParseLocalPref("200"); err != nil || v != 200 {
		t.Errorf("ParseLocalPref(200) = %d, %v", v, err)
	}
}

func TestRouteAttrs(t *testing.T) {
	web := types.NamespacedName{Namespace: "a", Name: "web"}
	api2 := types.NamespacedName{Namespace: "a", Name: "api"}
	anns := []speaker.Announcement{
		{IP: netip.MustParseAddr("203.0.113.1"), Eip: "pool", Services: []types.NamespacedName{web}},
		{IP: netip.MustParseAddr("203.0.113.2"), Eip: "pool", Services: []types.NamespacedName{api2}},
		{IP: netip.MustParseAddr("203.0.113.3"), Eip: "plain"},
	}
	eips := map[string]map[string]string{"pool": {
		networkv1alpha2.AnnotationBGPCommunities: "64512:1", networkv1alpha2.AnnotationBGPLocalPref: "150"}}
	svcs := map[types.NamespacedName]map[string]string{
		web:  {networkv1alpha2.AnnotationBGPCommunities: "64512:9,no-export"},
		api2: {networkv1alpha2.AnnotationBGPLocalPref: "zero"},
	}
	got, problems := RouteAttrs(anns, eips, svcs)
	want := map[netip.Addr]Attrs{
		netip.MustParseAddr("203.0.113.1"): {Communities: "64512:9,65535:65281", LocalPref: 150},
		netip.MustParseAddr("203.0.113.2"): {Communities: "64512:1", LocalPref: 150},
	}
	if len(got) != len(want) {
		t.Fatalf("RouteAttrs = %v, want %v", got, want)
	}
	for ip, w := range want {
		if got[ip] != w {
			t.Errorf("%s: %+v, want %+v", ip, got[ip], w)
		}
	}
	if len(problems) != 1 || problems[0].Service != api2 || !strings.Contains(problems[0].Message, "local-pref") {
		t.Errorf("problems %+v", problems)
	}
	// The attributes reach the path.
	r := Routes(speaker.State{Self: "n", Nodes: map[string]speaker.NodeInfo{"n": {}},
		Announcements: []speaker.Announcement{{IP: netip.MustParseAddr("203.0.113.1"), Nodes: []string{"n"}}}}, got)
	p, err := r[netip.MustParsePrefix("203.0.113.1/32")].apiPath()
	if err != nil {
		t.Fatal(err)
	}
	var comm *apipb.CommunitiesAttribute
	var lp *apipb.LocalPrefAttribute
	for _, a := range p.Pattrs {
		m, _ := a.UnmarshalNew()
		switch v := m.(type) {
		case *apipb.CommunitiesAttribute:
			comm = v
		case *apipb.LocalPrefAttribute:
			lp = v
		}
	}
	if comm == nil || len(comm.Communities) != 2 || comm.Communities[0] != 64512<<16|9 || lp == nil || lp.LocalPref != 150 {
		t.Errorf("path attributes %v", p.Pattrs)
	}
}
