package speaker

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
	"github.com/openelb/openelb-operator/speaker/internal/netx"
	"github.com/openelb/openelb-operator/speaker/internal/netx/netxtest"
)

func TestLocalFacts(t *testing.T) {
	lo := netxtest.Link(1, "lo", "", "127.0.0.1/8", "203.0.113.20/32")
	eth0 := netxtest.Link(2, "eth0", "02:00:00:00:01:11", "198.51.100.11/24", "2001:db8::11/64")
	eth1 := netxtest.Link(3, "eth1", "02:00:00:00:02:11", "198.18.2.11/24", "203.0.113.65/27")
	down := netxtest.Link(4, "eth2", "02:00:00:00:03:11", "198.18.3.11/24")
	down.Up = false
	snap := netx.Snapshot{
		Links: []netx.Link{lo, eth0, eth1, down},
		Routes: []netx.Route{
			netxtest.Route("0.0.0.0/0", 2), netxtest.Route("198.51.100.0/24", 2), netxtest.Route("198.18.2.0/24", 3),
			netxtest.Route("203.0.113.64/27", 3), netxtest.Route("198.18.3.0/24", 4), netxtest.Route("2001:db8::/64", 2),
		},
	}
	n := node("node1", "198.51.100.11")
	tests := []struct {
		name    string
		eip     *networkv1alpha2.Eip
		node    *corev1.Node
		allowed []string
		want    EipFact
	}{
		{name: "by name, routed by the default route", eip: eip("e", "203.0.113.16-203.0.113.31", "layer2", "eth0"),
			want: EipFact{Interface: "eth0", OK: true}},
		{name: "by name, on-link (seed: range in the node subnet)", eip: eip("e", "198.51.100.240-198.51.100.250", "layer2", "eth0"),
			want: EipFact{Interface: "eth0", OK: true}},
		{name: "IPv6 on-link", eip: eip("e", "2001:db8::20/124", "layer2", "eth0"), want: EipFact{Interface: "eth0", OK: true}},
		{name: "second NIC holding the subnet", eip: eip("e", "203.0.113.80-203.0.113.90", "layer2", "eth1"),
			want: EipFact{Interface: "eth1", OK: true}},
		{name: "second NIC not reaching the range", eip: eip("e", "203.0.113.16-203.0.113.31", "layer2", "eth1"),
			want: EipFact{Interface: "eth1", Reason: "neither holds the subnet"}},
		{name: "range half outside the NIC", eip: eip("e", "203.0.113.80-203.0.113.100", "layer2", "eth1"),
			want: EipFact{Interface: "eth1", Reason: "neither holds the subnet"}},
		{name: "missing interface (seed's ens33)", eip: eip("e", "192.168.1.240-192.168.1.250", "layer2", "ens33"),
			want: EipFact{Reason: "interface ens33 not found"}},
		{name: "down interface", eip: eip("e", "198.18.3.100", "layer2", "eth2"), want: EipFact{Interface: "eth2", Reason: "is down"}},
		{name: "lo never", eip: eip("e", "203.0.113.20", "layer2", "lo"), want: EipFact{Interface: "lo", Reason: "loopback"}},
		{name: "can_reach picks the route's interface", eip: eip("e", "203.0.113.80-203.0.113.90", "layer2", "can_reach:198.18.2.1"),
			want: EipFact{Interface: "eth1", OK: true}},
		{name: "can_reach of an address on lo uses the main table, not lo (#331)", eip: eip("e", "203.0.113.16-203.0.113.31", "layer2", "can_reach:203.0.113.20"),
			want: EipFact{Interface: "eth0", OK: true}},
		{name: "can_reach without route", eip: eip("e", "203.0.113.16", "layer2", "can_reach:2001:db8:9::1"),
			want: EipFact{Reason: "no route to 2001:db8:9::1"}},
		{name: "allow-list refuses", eip: eip("e", "203.0.113.16-203.0.113.31", "layer2", "eth0"), allowed: []string{"eth1"},
			want: EipFact{Interface: "eth0", Reason: "not in the allowed interfaces"}},
		{name: "node annotation by IP overrides the Eip's interface", eip: eip("e", "203.0.113.80-203.0.113.90", "layer2", "ens33"),
			node: node("node1", "198.51.100.11", annotate(networkv1alpha2.AnnotationLayer2Interface, "198.18.2.11")),
			want: EipFact{Interface: "eth1", OK: true}},
		{name: "node annotation by name", eip: eip("e", "203.0.113.16-203.0.113.31", "layer2", "ens33"),
			node: node("node1", "198.51.100.11", annotate(networkv1alpha2.AnnotationLayer2Interface, "eth0")),
			want: EipFact{Interface: "eth0", OK: true}},
		{name: "node annotation that cannot carry the Eip falls back to spec.interface", eip: eip("e", "203.0.113.16-203.0.113.31", "layer2", "eth0"),
			node: node("node1", "198.51.100.11", annotate(networkv1alpha2.AnnotationLayer2Interface, "eth1")),
			want: EipFact{Interface: "eth0", OK: true}},
		{name: "vip Eips ignore the layer2 annotation", eip: eip("e", "203.0.113.80-203.0.113.90", "vip", "eth1"),
			node: node("node1", "198.51.100.11", annotate(networkv1alpha2.AnnotationLayer2Interface, "eth0")),
			want: EipFact{Interface: "eth1", OK: true}},
		{name: "no interface named", eip: eip("e", "203.0.113.16", "layer2", ""), want: EipFact{Reason: "names no interface"}},
		{name: "bad address", eip: eip("e", "nope", "layer2", "eth0"), want: EipFact{Reason: "invalid eip address format"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nd := n
			if tt.node != nil {
				nd = tt.node
			}
			f := LocalFacts(nd, []*networkv1alpha2.Eip{tt.eip, eip("b", "203.0.113.0/28", "bgp", "")}, snap,
				FactsOptions{Allowed: map[string][]string{tt.eip.Spec.Protocol: tt.allowed}})
			if _, ok := f["b"]; ok {
				t.Errorf("bgp Eips have no facts")
			}
			got := f["e"]
			if got.OK != tt.want.OK || got.Interface != tt.want.Interface || !strings.Contains(got.Reason, tt.want.Reason) || (tt.want.OK && got.Reason != "") {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
