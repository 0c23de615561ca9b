//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
	"github.com/openelb/openelb-operator/test/lab"
)

// BGP-mode lab settings: the speakers' AS, the Eips inside the client's
// BGP routes (203.0.113.0/28, 2001:db8:ffff::/48).
const (
	bgpSpeakerAS = 64512
	bgpPool4     = "203.0.113.1-203.0.113.14"
	bgpPool6     = "2001:db8:ffff::10-2001:db8:ffff::1f"
)

var (
	bgpRange4 = netip.MustParsePrefix("203.0.113.0/28")
	bgpRange6 = netip.MustParsePrefix("2001:db8:ffff::/48")
)

// bgpSpeakerArgs: BGP only (layer2 has its own scenarios), with the gobgp
// API on loopback for debugging a kept lab.
var bgpSpeakerArgs = lab.RoleOptions{Args: []string{"--enable-layer2=false", "--enable-bgp=true", "--bgp-grpc-address=127.0.0.1:50051"}}

// bgpPeer is a BgpPeer towards the lab router with its timers (hold 3 s,
// keepalive 1 s, like the router's).
func bgpPeer(name string, router netip.Addr) *networkv1alpha2.BgpPeer {
	p := &networkv1alpha2.BgpPeer{ObjectMeta: metav1.ObjectMeta{Name: name}}
	p.Spec.Conf = &networkv1alpha2.PeerConf{NeighborAddress: router.String(), PeerAs: lab.RouterASN}
	p.Spec.Timers = &networkv1alpha2.Timers{Config: &networkv1alpha2.TimersConfig{HoldTime: "3", KeepaliveInterval: "1", ConnectRetry: "1"}}
	return p
}

// bgpService is a LoadBalancer Service of ours on port 80 from eip.
func bgpService(name, eip string, mods ...func(*corev1.Service)) *corev1.Service {
	return lbService(name, eip, mods...)
}

func nodeAddrs4(l *lab.Lab, names ...string) []netip.Addr {
	var out []netip.Addr
	for _, n := range names {
		out = append(out, l.Node(n).IPv4)
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return out
}

func nodeAddrs6(l *lab.Lab, names ...string) []netip.Addr {
	var out []netip.Addr
	for _, n := range names {
		out = append(out, l.Node(n).IPv6)
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return out
}

func hostPrefix(ip netip.Addr) netip.Prefix { return netip.PrefixFrom(ip, ip.BitLen()) }

// waitNextHops waits until the router's kernel FIB and its BGP daemon both
// route ip through exactly want (empty: no route).
func waitNextHops(ctx context.Context, t testing.TB, l *lab.Lab, ip netip.Addr, want []netip.Addr, timeout time.Duration) {
	t.Helper()
	p := hostPrefix(ip)
	err := lab.WaitFor(ctx, timeout, fmt.Sprintf("%s next hops %v at the router (%s)", p, want, l.RouterKind()), func(ctx context.Context) (bool, error) {
		fib, err := l.RouterNextHops(p)
		if err != nil {
			return false, err
		}
		daemon, err := l.BGPNextHops(ctx, p)
		if err != nil {
			return false, err
		}
		return slices.Equal(fib, want) && slices.Equal(daemon, want), fmt.Errorf("FIB %v, %s %v", fib, l.RouterKind(), daemon)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// waitSessions waits until the router's established neighbours are want.
func waitSessions(ctx context.Context, t testing.TB, l *lab.Lab, want []netip.Addr, timeout time.Duration) {
	t.Helper()
	want = slices.Clone(want)
	slices.SortFunc(want, func(a, b netip.Addr) int { return a.Compare(b) })
	err := lab.WaitFor(ctx, timeout, fmt.Sprintf("established neighbours %v", want), func(ctx context.Context) (bool, error) {
		got, err := l.BGPEstablished(ctx)
		return slices.Equal(got, want), fmt.Errorf("established %v (%v)", got, err)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// getPeer reads a BgpPeer.
func getPeer(ctx context.Context, t testing.TB, l *lab.Lab, name string) *networkv1alpha2.BgpPeer {
	t.Helper()
	var p networkv1alpha2.BgpPeer
	if err := l.Kube.Get(ctx, client.ObjectKey{Name: name}, &p); err != nil {
		t.Fatal(err)
	}
	return &p
}

// updatePeer changes a BgpPeer (retrying on conflicts: the speakers write
// its status).
func updatePeer(ctx context.Context, t testing.TB, l *lab.Lab, name string, mutate func(*networkv1alpha2.BgpPeer)) {
	t.Helper()
	err := lab.WaitFor(ctx, 10*time.Second, "update BgpPeer "+name, func(ctx context.Context) (bool, error) {
		var p networkv1alpha2.BgpPeer
		if err := l.Kube.Get(ctx, client.ObjectKey{Name: name}, &p); err != nil {
			return false, err
		}
		mutate(&p)
		err := l.Kube.Update(ctx, &p)
		return err == nil, err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// waitPeerStatus waits until the BgpPeer's status satisfies cond.
func waitPeerStatus(ctx context.Context, t testing.TB, l *lab.Lab, name, what string, timeout time.Duration,
	cond func(*networkv1alpha2.BgpPeer) (bool, string)) *networkv1alpha2.BgpPeer {
	t.Helper()
	var last networkv1alpha2.BgpPeer
	err := lab.WaitFor(ctx, timeout, fmt.Sprintf("BgpPeer %s: %s", name, what), func(ctx context.Context) (bool, error) {
		if err := l.Kube.Get(ctx, client.ObjectKey{Name: name}, &last); err != nil {
			return false, err
		}
		ok, msg := cond(&last)
		return ok, fmt.Errorf("%s", msg)
	})
	if err != nil {
		t.Fatal(err)
	}
	return &last
}

// established reports the nodes whose entry says ESTABLISHED.
func establishedNodes(p *networkv1alpha2.BgpPeer) []string {
	var out []string
	for n, s := range p.Status.NodesPeerStatus {
		if s.PeerState.SessionState == "ESTABLISHED" {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

func peerSummary(p *networkv1alpha2.BgpPeer) string {
	var b strings.Builder
	for n, s := range p.Status.NodesPeerStatus {
		fmt.Fprintf(&b, "%s=%s(%s) ", n, s.PeerState.SessionState, s.PeerState.LastError)
	}
	for _, c := range p.Status.Conditions {
		fmt.Fprintf(&b, "[%s=%s %s: %s] ", c.Type, c.Status, c.Reason, c.Message)
	}
	return b.String()
}
