//go:build linux

package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func addrs(ss ...string) []netip.Addr {
	out := []netip.Addr{}
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPlan(t *testing.T) {
	tests := []struct {
		name    string
		nodes   int
		wantErr bool
	}{
		{name: "one node", nodes: 1},
		{name: "three nodes", nodes: 3},
		{name: "max nodes", nodes: MaxNodes},
		{name: "zero nodes", nodes: 0, wantErr: true},
		{name: "too many nodes", nodes: MaxNodes + 1, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			topo, err := Plan(tc.nodes)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Plan(%d) error = %v, wantErr %v", tc.nodes, err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if len(topo.Nodes) != tc.nodes {
				t.Fatalf("got %d nodes, want %d", len(topo.Nodes), tc.nodes)
			}
			seen := map[string]string{}
			for _, h := range topo.Hosts() {
				for _, k := range []string{h.IPv4.String(), h.IPv6.String(), h.MAC.String()} {
					if other, dup := seen[k]; dup {
						t.Errorf("%s used by %s and %s", k, other, h.Short)
					}
					seen[k] = h.Short
				}
				if !LANv4.Contains(h.IPv4) || !LANv6.Contains(h.IPv6) {
					t.Errorf("%s: %s/%s outside the LAN", h.Short, h.IPv4, h.IPv6)
				}
				if h.MAC[0]&2 == 0 || h.MAC[0]&1 != 0 {
					t.Errorf("%s: MAC %s is not a locally administered unicast address", h.Short, h.MAC)
				}
			}
		})
	}
	topo, _ := Plan(3)
	n1 := topo.Nodes[0]
	if n1.Short != "node1" || n1.IPv4.String() != "198.51.100.11" || n1.IPv6.String() != "2001:db8::11" || n1.MAC.String() != "02:00:00:00:01:11" {
		t.Errorf("node1 = %+v, want node1 198.51.100.11 2001:db8::11 02:00:00:00:01:11 (lab-recipes §2)", n1)
	}
}

func lbService(ns, name string, etp corev1.ServiceExternalTrafficPolicy, ips []string, ports ...int32) corev1.Service {
	s := corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.ServiceSpec{
		Type: corev1.ServiceTypeLoadBalancer, ExternalTrafficPolicy: etp,
	}}
	for _, p := range ports {
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Port: p, Protocol: corev1.ProtocolTCP})
	}
	for _, ip := range ips {
		s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip})
	}
	return s
}

func slice(ns, svc string, eps map[string]*bool) discoveryv1.EndpointSlice {
	sl := discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: svc + "-x",
		Labels: map[string]string{discoveryv1.LabelServiceName: svc}}}
	for node, ready := range eps {
		sl.Endpoints = append(sl.Endpoints, discoveryv1.Endpoint{NodeName: ptr.To(node), Conditions: discoveryv1.EndpointConditions{Ready: ready}})
	}
	return sl
}

func TestPlanServing(t *testing.T) {
	nodes := []string{"node1", "node2", "node3"}
	tests := []struct {
		name      string
		svcs      []corev1.Service
		slices    []discoveryv1.EndpointSlice
		wantAddrs map[string][]netip.Addr
		wantPorts []int32
	}{
		{
			name:      "nothing: only the default port",
			wantAddrs: map[string][]netip.Addr{"node1": {}, "node2": {}, "node3": {}},
			wantPorts: []int32{80},
		},
		{
			name: "cluster policy: every node, v4 and v6",
			svcs: []corev1.Service{lbService("default", "web", corev1.ServiceExternalTrafficPolicyCluster, []string{"203.0.113.10", "2001:db8:ffff::10"}, 8080)},
			wantAddrs: map[string][]netip.Addr{
				"node1": addrs("203.0.113.10", "2001:db8:ffff::10"),
				"node2": addrs("203.0.113.10", "2001:db8:ffff::10"),
				"node3": addrs("203.0.113.10", "2001:db8:ffff::10"),
			},
			wantPorts: []int32{80, 8080},
		},
		{
			name: "local policy: only nodes with a ready endpoint; ready unset counts as ready",
			svcs: []corev1.Service{lbService("default", "web", corev1.ServiceExternalTrafficPolicyLocal, []string{"203.0.113.20"}, 80)},
			slices: []discoveryv1.EndpointSlice{
				slice("default", "web", map[string]*bool{"node1": ptr.To(true), "node2": ptr.To(false), "node3": nil}),
				slice("other", "web", map[string]*bool{"node2": ptr.To(true)}),
			},
			wantAddrs: map[string][]netip.Addr{"node1": addrs("203.0.113.20"), "node2": {}, "node3": addrs("203.0.113.20")},
			wantPorts: []int32{80},
		},
		{
			name:      "local policy without endpoints: nowhere, ports still served",
			svcs:      []corev1.Service{lbService("default", "web", corev1.ServiceExternalTrafficPolicyLocal, []string{"203.0.113.20"}, 81)},
			wantAddrs: map[string][]netip.Addr{"node1": {}, "node2": {}, "node3": {}},
			wantPorts: []int32{80, 81},
		},
		{
			name: "no ingress yet, other types and UDP ports are ignored",
			svcs: []corev1.Service{
				lbService("default", "pending", corev1.ServiceExternalTrafficPolicyCluster, nil, 9000),
				{ObjectMeta: metav1.ObjectMeta{Name: "cip"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Ports: []corev1.ServicePort{{Port: 9001}}}},
				func() corev1.Service {
					s := lbService("default", "dns", corev1.ServiceExternalTrafficPolicyCluster, []string{"203.0.113.30"})
					s.Spec.Ports = []corev1.ServicePort{{Port: 53, Protocol: corev1.ProtocolUDP}}
					return s
				}(),
			},
			wantAddrs: map[string][]netip.Addr{"node1": addrs("203.0.113.30"), "node2": addrs("203.0.113.30"), "node3": addrs("203.0.113.30")},
			wantPorts: []int32{80},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := PlanServing(tc.svcs, tc.slices, nodes)
			if !reflect.DeepEqual(got.Addrs, tc.wantAddrs) {
				t.Errorf("addrs = %v, want %v", got.Addrs, tc.wantAddrs)
			}
			if !reflect.DeepEqual(got.Ports, tc.wantPorts) {
				t.Errorf("ports = %v, want %v", got.Ports, tc.wantPorts)
			}
		})
	}
}

func TestDiffAddrs(t *testing.T) {
	tests := []struct {
		name                string
		have, want, managed []netip.Addr
		wantAdd, wantDel    []netip.Addr
	}{
		{name: "add missing", have: addrs(), want: addrs("203.0.113.1"), wantAdd: addrs("203.0.113.1")},
		{name: "remove managed only", have: addrs("203.0.113.1", "203.0.113.2"), want: addrs(), managed: addrs("203.0.113.1"), wantDel: addrs("203.0.113.1")},
		{name: "keep wanted", have: addrs("203.0.113.1"), want: addrs("203.0.113.1"), managed: addrs("203.0.113.1")},
		{name: "managed but already gone", have: addrs(), want: addrs(), managed: addrs("203.0.113.1")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			add, del := diffAddrs(tc.have, tc.want, tc.managed)
			if fmt.Sprint(add) != fmt.Sprint(tc.wantAdd) || fmt.Sprint(del) != fmt.Sprint(tc.wantDel) {
				t.Errorf("diff = +%v -%v, want +%v -%v", add, del, tc.wantAdd, tc.wantDel)
			}
		})
	}
}

func TestParseFRR(t *testing.T) {
	summary := readTestdata(t, "frr-bgp-summary.json")
	got, err := parseFRRSummary([]byte(summary))
	if err != nil {
		t.Fatal(err)
	}
	want := addrs("198.51.100.11", "198.51.100.12", "198.51.100.13", "2001:db8::11", "2001:db8::12", "2001:db8::13")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("established = %v, want %v", got, want)
	}
	// A peer that is not Established is left out.
	connecting := strings.Replace(summary, `"state":"Established"`, `"state":"Connect"`, 1)
	if got, _ := parseFRRSummary([]byte(connecting)); len(got) != 5 {
		t.Errorf("with one peer connecting: %v, want 5 established", got)
	}
	if _, err := parseFRRSummary([]byte("% Unknown command")); err == nil {
		t.Error("garbage parsed without error")
	}

	for _, tc := range []struct {
		file   string
		prefix string
		want   []netip.Addr
	}{
		{"frr-route-v4.json", "203.0.113.10/32", addrs("198.51.100.11", "198.51.100.12", "198.51.100.13")},
		{"frr-route-v6.json", "2001:db8:ffff::10/128", addrs("2001:db8::11", "2001:db8::12", "2001:db8::13")},
	} {
		got, err := parseFRRRoute([]byte(readTestdata(t, tc.file)), netip.MustParsePrefix(tc.prefix))
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: next hops = %v, %v; want %v", tc.file, got, err, tc.want)
		}
	}
	if got, err := parseFRRRoute([]byte("{}"), netip.MustParsePrefix("203.0.113.10/32")); err != nil || len(got) != 0 {
		t.Errorf("no route: %v, %v; want none", got, err)
	}
}

func TestParseBIRD(t *testing.T) {
	got := parseBIRDProtocols(readTestdata(t, "bird-protocols-all.txt"))
	want := addrs("198.51.100.11", "198.51.100.12", "198.51.100.13", "2001:db8::11", "2001:db8::12", "2001:db8::13")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("established = %v, want %v", got, want)
	}
	hops := parseBIRDRoute(readTestdata(t, "bird-route-v4.txt"))
	if want := addrs("198.51.100.11", "198.51.100.12", "198.51.100.13"); !reflect.DeepEqual(hops, want) {
		t.Errorf("next hops = %v, want %v", hops, want)
	}
	if hops := parseBIRDRoute("BIRD 2.0.12 ready.\nNetwork not found\n"); len(hops) != 0 {
		t.Errorf("no route: %v", hops)
	}
}

func TestParseMACs(t *testing.T) {
	if got := parseMACs(arpingReply, readTestdata(t, "arping.txt")); len(got) != 1 || got[0].String() != "02:00:00:00:01:11" {
		t.Errorf("arping: %v", got)
	}
	if got := parseMACs(ndiscReply, readTestdata(t, "ndisc6.txt")); len(got) != 1 || got[0].String() != "02:00:00:00:01:11" {
		t.Errorf("ndisc6: %v", got)
	}
	two := "Unicast reply from 203.0.113.20 [02:00:00:00:01:11]  0.6ms\nUnicast reply from 203.0.113.20 [02:00:00:00:01:12]  0.7ms\nUnicast reply from 203.0.113.20 [02:00:00:00:01:11]  0.8ms\n"
	if got := parseMACs(arpingReply, two); len(got) != 2 {
		t.Errorf("two answerers: %v, want 2 distinct MACs", got)
	}
	if got := parseMACs(arpingReply, "Sent 1 probes (1 broadcast(s))\nReceived 0 response(s)\n"); len(got) != 0 {
		t.Errorf("no reply: %v", got)
	}
}

func TestRenderRouterConfigs(t *testing.T) {
	d := routerData{Prefix: "olx", Dir: "/run/x", ASN: RouterASN, RouterID: netip.MustParseAddr("198.51.100.1"),
		RouterIPv6: netip.MustParseAddr("2001:db8::1"), LANv4: LANv4, LANv6: LANv6}
	bgpd, err := renderTemplate("frr-bgpd.conf", d)
	if err != nil {
		t.Fatal(err)
	}
	for _, must := range []string{"router bgp 64500", "no bgp ebgp-requires-policy", "bgp bestpath as-path multipath-relax",
		"bgp listen range 198.51.100.0/24 peer-group NODES", "bgp listen range 2001:db8::/64 peer-group NODES6", "maximum-paths 8"} {
		if !strings.Contains(string(bgpd), must) {
			t.Errorf("bgpd.conf lacks %q (lab-recipes §3.1):\n%s", must, bgpd)
		}
	}
	if strings.Contains(string(bgpd), "bfd") {
		t.Errorf("bgpd.conf enables BFD without Options.BFD")
	}
	d.BFD = true
	bgpd, _ = renderTemplate("frr-bgpd.conf", d)
	if !strings.Contains(string(bgpd), "neighbor NODES bfd profile fast") {
		t.Errorf("bgpd.conf with BFD lacks the fast profile:\n%s", bgpd)
	}
	bird, err := renderTemplate("bird.conf", d)
	if err != nil {
		t.Fatal(err)
	}
	for _, must := range []string{`log "/run/x/bird.log" all;`, "merge paths on", "local as 64500;",
		"neighbor range 198.51.100.0/24 external", "local 2001:db8::1; neighbor range 2001:db8::/64 external"} {
		if !strings.Contains(string(bird), must) {
			t.Errorf("bird.conf lacks %q (lab-recipes §3.2):\n%s", must, bird)
		}
	}
}

func TestWaitFor(t *testing.T) {
	ctx := context.Background()
	n := 0
	if err := Poll(ctx, time.Second, time.Millisecond, "third call", func(context.Context) (bool, error) {
		n++
		return n == 3, nil
	}); err != nil || n != 3 {
		t.Errorf("Poll = %v after %d calls, want nil after 3", err, n)
	}
	err := Poll(ctx, 30*time.Millisecond, time.Millisecond, "never", func(context.Context) (bool, error) {
		return false, errors.New("still no")
	})
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "still no") || !strings.Contains(err.Error(), "never") {
		t.Errorf("timeout error = %v, want ErrTimeout naming the wait and the last error", err)
	}
	boom := errors.New("boom")
	calls := 0
	err = Poll(ctx, time.Second, time.Millisecond, "permanent", func(context.Context) (bool, error) {
		calls++
		return false, Permanent(boom)
	})
	if !errors.Is(err, boom) || calls != 1 {
		t.Errorf("permanent: %v after %d calls, want boom after 1", err, calls)
	}
}

func TestMeasure(t *testing.T) {
	ctx := context.Background()
	var at time.Time
	d, err := Measure(ctx, time.Second, time.Millisecond, func() error {
		at = time.Now().Add(40 * time.Millisecond)
		return nil
	}, func(context.Context) (bool, error) { return time.Now().After(at), nil })
	if err != nil || d < 40*time.Millisecond || d > 500*time.Millisecond {
		t.Errorf("Measure = %v, %v; want about 40ms", d, err)
	}
	if _, err := Measure(ctx, 20*time.Millisecond, time.Millisecond, func() error { return nil },
		func(context.Context) (bool, error) { return false, nil }); !errors.Is(err, ErrTimeout) {
		t.Errorf("Measure without the condition = %v, want ErrTimeout", err)
	}
	if _, err := Measure(ctx, time.Second, time.Millisecond, func() error { return errors.New("no event") },
		func(context.Context) (bool, error) { return true, nil }); err == nil {
		t.Error("Measure ignored the event's error")
	}
}

// recorder is a testing.TB that records Fatalf and Skipf instead of
// stopping the goroutine.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Helper()                        {}
func (r *recorder) Fatalf(format string, a ...any) { r.fatal = fmt.Sprintf(format, a...) }
func (r *recorder) Skipf(format string, a ...any)  { r.skip = fmt.Sprintf(format, a...) }

func TestRequireRunnableMissingTools(t *testing.T) {
	if os.Geteuid() != 0 {
		// Preflight stops at "not root" before looking at tools; the
		// branch below is what a non-root run sees.
		r := &recorder{}
		t.Setenv("CI", "true")
		RequireRunnable(r, Options{})
		if !strings.Contains(r.fatal, "root") || r.skip != "" {
			t.Errorf("non-root under CI=true: fatal %q skip %q, want a failure naming root", r.fatal, r.skip)
		}
		return
	}
	t.Setenv("PATH", "/nonexistent")
	for _, tc := range []struct {
		ci       string
		wantFail bool
	}{{"true", true}, {"", false}} {
		t.Setenv("CI", tc.ci)
		r := &recorder{}
		RequireRunnable(r, Options{Router: BIRD, NoControlPlane: true})
		msg := r.fatal + r.skip
		if (r.fatal != "") != tc.wantFail || (r.skip != "") == tc.wantFail {
			t.Errorf("CI=%q: fatal %q skip %q, want failure=%v", tc.ci, r.fatal, r.skip, tc.wantFail)
		}
		for _, tool := range []string{"arping (Debian package iputils-arping)", "bird (Debian package bird2)", "ndisc6", "ip (Debian package iproute2)"} {
			if !strings.Contains(msg, tool) {
				t.Errorf("CI=%q: message %q does not name %s", tc.ci, msg, tool)
			}
		}
	}
}
