package speaker

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
	"github.com/openelb/openelb-operator/internal/election"
)

var (
	l2Pool  = eip("eip-pool", "203.0.113.16-203.0.113.31", "layer2", "eth0")
	l2Pool6 = eip("eip-pool6", "2001:db8::20/124", "layer2", "eth0")
	bgpPool = eip("bgp-pool", "203.0.113.0/28", "", "")
	three   = []*corev1.Node{node("node1", "198.51.100.11"), node("node2", "198.51.100.12"), node("node3", "198.51.100.13")}
)

func allAlive(eips ...string) map[string]Facts {
	return map[string]Facts{"node1": okFacts(eips...), "node2": okFacts(eips...), "node3": okFacts(eips...)}
}

func TestCompute(t *testing.T) {
	all := []string{"node1", "node2", "node3"}
	tests := []struct {
		name     string
		in       Inputs
		protocol string
		want     map[string][]string // ip -> eligible nodes (unranked)
		reason   string              // substring of the first address's Reason
	}{
		{
			name:     "layer2, all eligible",
			in:       Inputs{Services: []*corev1.Service{service("default", "layer2-svc", []string{"203.0.113.20"})}},
			protocol: "layer2", want: map[string][]string{"203.0.113.20": all},
		},
		{
			name: "not ready, excluded, network unavailable and dead speakers never announce",
			in: Inputs{
				Services: []*corev1.Service{service("default", "s", []string{"203.0.113.20"})},
				Nodes: []*corev1.Node{node("node1", "198.51.100.11"), node("node2", "198.51.100.12", notReady),
					node("node3", "198.51.100.13", label(LabelExcludeFromLB, "")), node("node4", "198.51.100.14", networkUnavailable),
					node("node5", "198.51.100.15")},
				Alive: map[string]Facts{"node2": okFacts("eip-pool"), "node3": okFacts("eip-pool"), "node4": okFacts("eip-pool")},
			},
			protocol: "layer2", want: map[string][]string{"203.0.113.20": {"node1"}},
		},
		{
			name: "a node without the interface never wins",
			in: Inputs{
				Services: []*corev1.Service{service("default", "s", []string{"203.0.113.20"})},
				Alive: map[string]Facts{"node2": {"eip-pool": {Interface: "eth1", Reason: "interface eth1 not found on this node"}},
					"node3": okFacts("eip-pool")},
			},
			protocol: "layer2", want: map[string][]string{"203.0.113.20": {"node1", "node3"}},
		},
		{
			name: "facts not yet known: not eligible",
			in: Inputs{
				Services: []*corev1.Service{service("default", "s", []string{"203.0.113.20"})},
				Alive:    map[string]Facts{"node2": nil, "node3": okFacts("eip-pool")},
			},
			protocol: "layer2", want: map[string][]string{"203.0.113.20": {"node1", "node3"}},
		},
		{
			name: "self without facts: eligible elsewhere, no interface for self",
			in: Inputs{
				Services:  []*corev1.Service{service("default", "s", []string{"203.0.113.20"})},
				SelfFacts: Facts{"eip-pool": {Interface: "eth9", Reason: "interface eth9 is down"}},
			},
			protocol: "layer2", want: map[string][]string{"203.0.113.20": {"node2", "node3"}},
		},
		{
			name: "Eip nodeSelector",
			in: Inputs{
				Services: []*corev1.Service{service("default", "s", []string{"203.0.113.20"})},
				Eips: []*networkv1alpha2.Eip{func() *networkv1alpha2.Eip {
					e := l2Pool.DeepCopy()
					e.Spec.NodeSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
						{Key: "kubernetes.io/hostname", Operator: metav1.LabelSelectorOpIn, Values: []string{"node2", "node3"}}}}
					return e
				}()},
			},
			protocol: "layer2", want: map[string][]string{"203.0.113.20": {"node2", "node3"}},
		},
		{
			name: "invalid Eip nodeSelector: nobody, with the reason",
			in: Inputs{
				Services: []*corev1.Service{service("default", "s", []string{"203.0.113.20"})},
				Eips: []*networkv1alpha2.Eip{func() *networkv1alpha2.Eip {
					e := l2Pool.DeepCopy()
					e.Spec.NodeSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "Bogus"}}}
					return e
				}()},
			},
			protocol: "layer2", want: map[string][]string{"203.0.113.20": nil}, reason: "invalid Eip nodeSelector",
		},
		{
			name: "externalTrafficPolicy Local: only nodes with ready endpoints",
			in: Inputs{
				Services: []*corev1.Service{service("default", "s", []string{"203.0.113.20"}, local)},
				EndpointSlices: []*discoveryv1.EndpointSlice{
					slice("default", "s", "s-a", [2]string{"node2", "ready"}, [2]string{"node1", "notready"}),
					slice("default", "s", "s-b", [2]string{"node3", "serving"}),
					slice("other", "s", "s-c", [2]string{"node1", "ready"}),
				},
			},
			protocol: "layer2", want: map[string][]string{"203.0.113.20": {"node2"}},
		},
		{
			name: "externalTrafficPolicy Local: serving terminating endpoints when none is ready",
			in: Inputs{
				Services: []*corev1.Service{service("default", "s", []string{"203.0.113.20"}, local)},
				EndpointSlices: []*discoveryv1.EndpointSlice{
					slice("default", "s", "s-b", [2]string{"node3", "serving"}, [2]string{"node1", "notready"}),
				},
			},
			protocol: "layer2", want: map[string][]string{"203.0.113.20": {"node3"}},
		},
		{
			name:     "externalTrafficPolicy Local without endpoints: withdrawn, with the reason",
			in:       Inputs{Services: []*corev1.Service{service("default", "s", []string{"203.0.113.20"}, local)}},
			protocol: "layer2", want: map[string][]string{"203.0.113.20": nil}, reason: "no ready endpoint",
		},
		{
			name: "shared address: one announcement for both Services, Local only when all are Local",
			in: Inputs{Services: []*corev1.Service{
				service("default", "b", []string{"203.0.113.20"}, local),
				service("default", "a", []string{"203.0.113.20"}),
			}},
			protocol: "layer2", want: map[string][]string{"203.0.113.20": all},
		},
		{
			name: "addresses outside every Eip, non-LoadBalancer Services and bad IPs are ignored",
			in: Inputs{Services: []*corev1.Service{
				service("default", "out", []string{"198.51.100.200"}),
				func() *corev1.Service {
					s := service("default", "np", []string{"203.0.113.21"})
					s.Spec.Type = corev1.ServiceTypeNodePort
					return s
				}(),
				service("default", "bad", []string{"not-an-ip", ""}),
				service("default", "ok", []string{"203.0.113.22"}),
			}},
			protocol: "layer2", want: map[string][]string{"203.0.113.22": all},
		},
		{
			name:     "IPv6 and dual stack",
			in:       Inputs{Services: []*corev1.Service{service("default", "s", []string{"203.0.113.20", "2001:db8::21"})}},
			protocol: "layer2", want: map[string][]string{"203.0.113.20": all, "2001:db8::21": all},
		},
		{
			name: "bgp (default protocol) without liveness: every ready node, no facts needed",
			in: Inputs{
				Services: []*corev1.Service{service("default", "s", []string{"203.0.113.10"})},
				Eips:     []*networkv1alpha2.Eip{bgpPool}, Alive: nil, SelfFacts: Facts{},
			},
			protocol: "bgp", want: map[string][]string{"203.0.113.10": all},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			in.Self = "node1"
			if in.Nodes == nil {
				in.Nodes = three
			}
			if in.Eips == nil {
				in.Eips = []*networkv1alpha2.Eip{l2Pool, l2Pool6, bgpPool}
			}
			if in.SelfFacts == nil {
				in.SelfFacts = okFacts("eip-pool", "eip-pool6")
			}
			if in.Alive == nil && tt.protocol != "bgp" {
				in.Alive = allAlive("eip-pool", "eip-pool6")
				delete(in.Alive, "node1")
			}
			d := Compute(in)
			anns := d.ByProtocol[tt.protocol]
			if len(anns) != len(tt.want) {
				t.Fatalf("got %d announcements %+v, want %d", len(anns), anns, len(tt.want))
			}
			for i, a := range anns {
				want, ok := tt.want[a.IP.String()]
				if !ok {
					t.Fatalf("unexpected address %s", a.IP)
				}
				if got := a.Nodes; !slices.Equal(got, election.Rank(a.IP.String(), want)) {
					t.Errorf("%s: nodes %v, want %v ranked", a.IP, got, want)
				}
				if a.Protocol != tt.protocol {
					t.Errorf("%s: protocol %q", a.IP, a.Protocol)
				}
				if i > 0 && !anns[i-1].IP.Less(a.IP) {
					t.Errorf("announcements not sorted: %s before %s", anns[i-1].IP, a.IP)
				}
			}
			first := anns[0]
			if wantIface := map[bool]string{true: "eth0"}[first.Eligible("node1")]; tt.protocol == "layer2" && first.Interface != wantIface {
				t.Errorf("self interface %q, want %q", first.Interface, wantIface)
			}
			if tt.reason != "" && !strings.Contains(first.Reason, tt.reason) {
				t.Errorf("reason %q, want it to mention %q", first.Reason, tt.reason)
			}
			if len(first.Nodes) > 0 && first.Reason != "" {
				t.Errorf("reason %q set although nodes are eligible", first.Reason)
			}
		})
	}
}

func TestComputeSharedServicesSorted(t *testing.T) {
	d := Compute(Inputs{Self: "node1", Nodes: three, Eips: []*networkv1alpha2.Eip{l2Pool},
		SelfFacts: okFacts("eip-pool"), Alive: allAlive("eip-pool"),
		Services: []*corev1.Service{service("ns2", "b", []string{"203.0.113.20"}), service("ns1", "z", []string{"203.0.113.20"}), service("ns2", "a", []string{"203.0.113.20"})}})
	got := d.ByProtocol["layer2"][0].Services
	want := []types.NamespacedName{{Namespace: "ns1", Name: "z"}, {Namespace: "ns2", Name: "a"}, {Namespace: "ns2", Name: "b"}}
	if !slices.Equal(got, want) {
		t.Fatalf("services %v, want %v", got, want)
	}
}

// TestComputeSameDecisionEverywhere: every speaker, given the same inputs in
// any order, elects the same announcer; only Self's interface differs.
func TestComputeSameDecisionEverywhere(t *testing.T) {
	var svcs []*corev1.Service
	for i := 16; i < 32; i++ {
		svcs = append(svcs, service("default", "s"+netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}).String(),
			[]string{netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}).String()}))
	}
	winners := map[string]map[string]string{}
	for _, self := range []string{"node1", "node2", "node3"} {
		alive := allAlive("eip-pool")
		delete(alive, self)
		nodes := slices.Clone(three)
		slices.Reverse(nodes)
		if self == "node2" {
			nodes = three
		}
		d := Compute(Inputs{Self: self, Nodes: nodes, Eips: []*networkv1alpha2.Eip{l2Pool}, Services: svcs,
			SelfFacts: okFacts("eip-pool"), Alive: alive})
		winners[self] = map[string]string{}
		for _, a := range d.ByProtocol["layer2"] {
			winners[self][a.IP.String()] = a.Winner()
		}
	}
	for ip, w := range winners["node1"] {
		if winners["node2"][ip] != w || winners["node3"][ip] != w {
			t.Fatalf("%s: node1 elects %s, node2 %s, node3 %s", ip, w, winners["node2"][ip], winners["node3"][ip])
		}
	}
	if len(winners["node1"]) != 16 {
		t.Fatalf("want 16 addresses, got %d", len(winners["node1"]))
	}
}

func TestNodeInfos(t *testing.T) {
	d := Compute(Inputs{Self: "node1", Nodes: three, SelfFacts: okFacts("x"), Alive: map[string]Facts{"node2": okFacts("y")}})
	if !d.Nodes["node1"].Alive || !d.Nodes["node2"].Alive || d.Nodes["node3"].Alive {
		t.Fatalf("alive flags wrong: %+v", d.Nodes)
	}
	if _, ok := d.Nodes["node2"].Facts["y"]; !ok {
		t.Fatalf("node2 facts lost")
	}
	if got := d.Nodes["node3"].Addresses; len(got) != 1 || got[0] != netip.MustParseAddr("198.51.100.13") {
		t.Fatalf("node3 addresses %v", got)
	}
}

func TestParseRange(t *testing.T) {
	tests := []struct {
		in, first, last string
		err             bool
	}{
		{in: "203.0.113.10", first: "203.0.113.10", last: "203.0.113.10"},
		{in: "203.0.113.0/28", first: "203.0.113.0", last: "203.0.113.15"},
		{in: "203.0.113.7/28", first: "203.0.113.0", last: "203.0.113.15"},
		{in: "192.168.1.240-192.168.1.250", first: "192.168.1.240", last: "192.168.1.250"},
		{in: "2001:db8::20-2001:db8::2f", first: "2001:db8::20", last: "2001:db8::2f"},
		{in: " 2001:db8::20 - 2001:db8::2f ", err: true}, // as the controller and the CRD schema
		{in: "::/80", err: true}, // covers IPv4-mapped addresses
		{in: "2001:db8::/126", first: "2001:db8::", last: "2001:db8::3"},
		{in: "203.0.113.20-203.0.113.10", err: true},
		{in: "203.0.113.20-2001:db8::1", err: true},
		{in: "eth0", err: true},
		{in: "203.0.113.0/33", err: true},
	}
	for _, tt := range tests {
		f, l, err := ParseRange(tt.in)
		if (err != nil) != tt.err {
			t.Errorf("ParseRange(%q) error %v, want error %v", tt.in, err, tt.err)
			continue
		}
		if !tt.err && (f.String() != tt.first || l.String() != tt.last) {
			t.Errorf("ParseRange(%q) = %s, %s; want %s, %s", tt.in, f, l, tt.first, tt.last)
		}
	}
}

func BenchmarkCompute1000(b *testing.B) {
	var svcs []*corev1.Service
	pool := eip("big", "203.0.112.0/22", "layer2", "eth0")
	for i := 0; i < 1000; i++ {
		ip := netip.AddrFrom4([4]byte{203, 0, byte(112 + i/256), byte(i % 256)}).String()
		svcs = append(svcs, service("default", "s"+ip, []string{ip}))
	}
	in := Inputs{Self: "node1", Nodes: three, Eips: []*networkv1alpha2.Eip{pool}, Services: svcs,
		SelfFacts: okFacts("big"), Alive: allAlive("big")}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		Compute(in)
	}
}
