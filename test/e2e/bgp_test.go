//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
	"github.com/openelb/openelb-operator/test/lab"
)

// TestBGP runs the BGP lab scenarios of issue 7 (a–i) on one 3-node lab
// with the real controller and three speakers peering with the router:
// FRR first, then BIRD (scenario b) on the same lab. The steps run in
// order and build on each other.
func TestBGP(t *testing.T) {
	l := lab.New(t, lab.Options{})
	ctx := t.Context()
	if _, err := l.StartController(ctx, lab.RoleOptions{}); err != nil {
		t.Fatal(err)
	}
	s := &bgpScenario{l: l, nodes: nodeNames(l), ips: map[string]netip.Addr{}}
	s.setup(ctx, t)
	if err := l.StartSpeakers(ctx, bgpSpeakerArgs); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		run  func(context.Context, *testing.T)
	}{
		{"a_frr_ecmp", s.ecmp},
		{"c_local_traffic_policy", s.local},
		{"d_node_selector", s.nodeSelector},
		{"f_ipv6", s.ipv6},
		{"g_timer_change", s.timerChange},
		{"e_md5_secret", s.md5},
		{"i_service_deleted", s.serviceDeleted},
		{"h_sigterm_sigkill", s.stop},
		{"j_graceful_restart", s.gracefulRestart},
		{"k_communities", s.communities},
		{"b_bird", s.bird},
	}
	for _, st := range steps {
		if !t.Run(st.name, func(t *testing.T) { st.run(ctx, t) }) {
			t.FailNow()
		}
	}
}

type bgpScenario struct {
	l     *lab.Lab
	nodes []string
	ips   map[string]netip.Addr
}

func (s *bgpScenario) all4() []netip.Addr { return nodeAddrs4(s.l, s.nodes...) }
func (s *bgpScenario) all6() []netip.Addr { return nodeAddrs6(s.l, s.nodes...) }

func (s *bgpScenario) allSessions() []netip.Addr { return append(s.all4(), s.all6()...) }

// setup creates the BgpConf, a BgpPeer per router address family and the
// two bgp Eips, as a user would before the speakers start.
func (s *bgpScenario) setup(ctx context.Context, t testing.TB) {
	conf := &networkv1alpha2.BgpConf{ObjectMeta: metav1.ObjectMeta{Name: networkv1alpha2.DefaultBgpConfName}}
	conf.Spec.As = bgpSpeakerAS
	objs := []client.Object{
		conf,
		bgpPeer("tor", s.l.Topology.Router.IPv4),
		bgpPeer("tor6", s.l.Topology.Router.IPv6),
		&networkv1alpha2.Eip{ObjectMeta: metav1.ObjectMeta{Name: "bgp-pool"}, Spec: networkv1alpha2.EipSpec{Address: bgpPool4, Protocol: networkv1alpha2.ProtocolBGP}},
		&networkv1alpha2.Eip{ObjectMeta: metav1.ObjectMeta{Name: "bgp-pool6"}, Spec: networkv1alpha2.EipSpec{Address: bgpPool6, Protocol: networkv1alpha2.ProtocolBGP}},
	}
	for _, o := range objs {
		if err := s.l.Kube.Create(ctx, o); err != nil {
			t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
}

// a: three speakers, FRR: the route has exactly the three node next hops
// and requests reach every node; status and metrics say so.
func (s *bgpScenario) ecmp(ctx context.Context, t *testing.T) {
	s.ips["web"] = createServices(ctx, t, s.l, bgpService("web", "bgp-pool"))["web"]
	ip := s.ips["web"]
	if !bgpRange4.Contains(ip) {
		t.Fatalf("web got %s, outside the BGP range %s", ip, bgpRange4)
	}
	waitSessions(ctx, t, s.l, s.allSessions(), 30*time.Second)
	waitNextHops(ctx, t, s.l, ip, s.all4(), 20*time.Second)
	spreadReachesAll(ctx, t, s.l, netip.AddrPortFrom(ip, 80))

	p := waitPeerStatus(ctx, t, s.l, "tor", "3/3 established with one advertised route each", 20*time.Second,
		func(p *networkv1alpha2.BgpPeer) (bool, string) {
			c := meta.FindStatusCondition(p.Status.Conditions, "Established")
			ok := len(establishedNodes(p)) == 3 && c != nil && c.Status == metav1.ConditionTrue && c.Message == "3/3 nodes established"
			for _, e := range p.Status.NodesPeerStatus {
				ok = ok && e.PeerState.AdvertisedRoutes == 1 && e.TimersState.Uptime != "" && e.TimersState.NegotiatedHoldTime == "3"
			}
			return ok, peerSummary(p)
		})
	for n, e := range p.Status.NodesPeerStatus {
		if e.PeerState.NeighborAddress != s.l.Topology.Router.IPv4.String() || e.PeerState.PeerAs != lab.RouterASN ||
			e.PeerState.LocalAs != bgpSpeakerAS || e.PeerState.RouterId != s.l.Topology.Router.IPv4.String() {
			t.Errorf("BgpPeer tor entry of %s: %+v", n, e.PeerState)
		}
	}
	var conf networkv1alpha2.BgpConf
	if err := s.l.Kube.Get(ctx, client.ObjectKey{Name: "default"}, &conf); err != nil {
		t.Fatal(err)
	}
	for _, n := range s.l.Nodes {
		got := conf.Status.NodesConfStatus[n.Name]
		if got.As != bgpSpeakerAS || got.RouterId != n.IPv4.String() {
			t.Errorf("BgpConf nodesConfStatus[%s] = %+v, want AS %d router ID %s (each node its own)", n.Name, got, bgpSpeakerAS, n.IPv4)
		}
	}
	if c := meta.FindStatusCondition(conf.Status.Conditions, "Accepted"); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("BgpConf Accepted condition: %+v", conf.Status.Conditions)
	}
	// Every eligible node advertises: the announcer annotation lists all.
	err := lab.WaitFor(ctx, 20*time.Second, "announcer annotation of web lists every node", func(ctx context.Context) (bool, error) {
		var svc corev1.Service
		if err := s.l.Kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: "web"}, &svc); err != nil {
			return false, err
		}
		got := strings.Split(svc.Annotations[networkv1alpha2.AnnotationAnnouncer], ",")
		slices.Sort(got)
		return slices.Equal(got, s.nodes), fmt.Errorf("annotation %v", got)
	})
	if err != nil {
		t.Fatal(err)
	}
	s.quietStatus(ctx, t)
	m := bgpSpeakerMetrics(ctx, t, s.l, "node1")
	for _, want := range []string{
		`openelb_speaker_bgp_session_up{neighbor="198.51.100.1",peer="tor"} 1`,
		`openelb_speaker_bgp_session_state{neighbor="198.51.100.1",peer="tor"} 6`,
		`openelb_speaker_bgp_announced_routes 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("node1 metrics lack %q", want)
		}
	}
}

// quietStatus checks that, with nothing changing, no speaker writes any
// status for 5 s (OpenELB 0.6 rewrote it every 30 s from every speaker).
func (s *bgpScenario) quietStatus(ctx context.Context, t *testing.T) {
	writes := func() string {
		var b strings.Builder
		for _, n := range s.nodes {
			for _, line := range strings.Split(bgpSpeakerMetrics(ctx, t, s.l, n), "\n") {
				if strings.HasPrefix(line, "openelb_speaker_bgp_status_writes_total") {
					fmt.Fprintf(&b, "%s %s; ", n, line)
				}
			}
		}
		return b.String()
	}
	// Let the last writes of the start-up land (at most one pass a second).
	before := ""
	err := lab.Poll(ctx, 15*time.Second, 1500*time.Millisecond, "status writes to settle", func(context.Context) (bool, error) {
		now := writes()
		if now == before {
			return true, nil
		}
		before = now
		return false, fmt.Errorf("writes %s", now)
	})
	if err != nil {
		t.Fatal(err)
	}
	err = lab.Poll(ctx, 5*time.Second, 500*time.Millisecond, "no status write while nothing changes", func(context.Context) (bool, error) {
		if now := writes(); now != before {
			return false, lab.Permanent(fmt.Errorf("status written although nothing changed: %s -> %s", before, now))
		}
		return false, nil
	})
	if !errors.Is(err, lab.ErrTimeout) {
		t.Fatal(err)
	}
	t.Logf("status writes per speaker after start-up, then none for 5 s: %s", before)
}

// c: externalTrafficPolicy Local: the next hops are the nodes with a ready
// endpoint, follow the endpoint, and are never all nodes.
func (s *bgpScenario) local(ctx context.Context, t *testing.T) {
	local := corev1.ServiceExternalTrafficPolicyLocal
	ip := createServices(ctx, t, s.l, bgpService("local", "bgp-pool", func(svc *corev1.Service) {
		svc.Spec.ExternalTrafficPolicy = local
	}))["local"]
	// No endpoint yet: nobody advertises.
	waitNextHops(ctx, t, s.l, ip, nil, 10*time.Second)
	steps := []struct {
		on   []string
		want []netip.Addr
	}{
		{[]string{"node2"}, nodeAddrs4(s.l, "node2")},
		{[]string{"node3"}, nodeAddrs4(s.l, "node3")},
		{[]string{"node1", "node3"}, nodeAddrs4(s.l, "node1", "node3")},
		{[]string{"node2"}, nodeAddrs4(s.l, "node2")},
		{nil, nil},
	}
	mon := startHopMonitor(s.l, hostPrefix(ip))
	for _, st := range steps {
		if err := s.l.SetEndpoints(ctx, "default", "local", lab.ReadyOn(st.on...)...); err != nil {
			t.Fatal(err)
		}
		waitNextHops(ctx, t, s.l, ip, st.want, 15*time.Second)
		if len(st.on) == 1 {
			for range 5 {
				got, err := s.l.HTTPGet(ctx, netip.AddrPortFrom(ip, 80))
				if err != nil || got != st.on[0] {
					t.Fatalf("endpoint only on %s: request reached %q (%v)", st.on[0], got, err)
				}
			}
		}
	}
	if seen := mon.stop(); slices.ContainsFunc(seen, func(h []netip.Addr) bool { return len(h) == len(s.nodes) }) {
		t.Errorf("with at most two endpoint nodes the router once routed through every node: %v", seen)
	}
	if err := s.l.Kube.Delete(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "local"}}); err != nil {
		t.Fatal(err)
	}
}

// d: BgpPeer nodeSelector: only matching nodes peer; relabelling adds or
// removes a session.
func (s *bgpScenario) nodeSelector(ctx context.Context, t *testing.T) {
	ip := s.ips["web"]
	for _, n := range []string{"node1", "node2"} {
		if err := s.l.PatchNodeLabels(ctx, n, map[string]string{"bgp": "tor"}); err != nil {
			t.Fatal(err)
		}
	}
	updatePeer(ctx, t, s.l, "tor", func(p *networkv1alpha2.BgpPeer) {
		p.Spec.NodeSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"bgp": "tor"}}
	})
	want := append(nodeAddrs4(s.l, "node1", "node2"), s.all6()...)
	waitSessions(ctx, t, s.l, want, 20*time.Second)
	waitNextHops(ctx, t, s.l, ip, nodeAddrs4(s.l, "node1", "node2"), 10*time.Second)
	waitPeerStatus(ctx, t, s.l, "tor", "entries of node1 and node2 only", 10*time.Second, func(p *networkv1alpha2.BgpPeer) (bool, string) {
		_, has3 := p.Status.NodesPeerStatus["node3"]
		return !has3 && slices.Equal(establishedNodes(p), []string{"node1", "node2"}), peerSummary(p)
	})

	if err := s.l.PatchNodeLabels(ctx, "node3", map[string]string{"bgp": "tor"}); err != nil {
		t.Fatal(err)
	}
	waitNextHops(ctx, t, s.l, ip, s.all4(), 20*time.Second)
	if err := s.l.PatchNodeLabels(ctx, "node1", nil, "bgp"); err != nil {
		t.Fatal(err)
	}
	waitSessions(ctx, t, s.l, append(nodeAddrs4(s.l, "node2", "node3"), s.all6()...), 20*time.Second)
	waitNextHops(ctx, t, s.l, ip, nodeAddrs4(s.l, "node2", "node3"), 10*time.Second)

	updatePeer(ctx, t, s.l, "tor", func(p *networkv1alpha2.BgpPeer) { p.Spec.NodeSelector = nil })
	waitNextHops(ctx, t, s.l, ip, s.all4(), 20*time.Second)
	for _, n := range []string{"node2", "node3"} {
		if err := s.l.PatchNodeLabels(ctx, n, nil, "bgp"); err != nil {
			t.Fatal(err)
		}
	}
}

// f: an IPv6 address as /128 over the IPv6 sessions, every node as next hop.
func (s *bgpScenario) ipv6(ctx context.Context, t *testing.T) {
	single := corev1.IPFamilyPolicySingleStack
	ip := createServices(ctx, t, s.l, bgpService("web6", "bgp-pool6", func(svc *corev1.Service) {
		svc.Spec.IPFamilyPolicy, svc.Spec.IPFamilies = &single, []corev1.IPFamily{corev1.IPv6Protocol}
	}))["web6"]
	if !ip.Is6() || !bgpRange6.Contains(ip) {
		t.Fatalf("web6 got %s", ip)
	}
	s.ips["web6"] = ip
	waitNextHops(ctx, t, s.l, ip, s.all6(), 20*time.Second)
	// Not a /32 (OpenELB 0.6 announced IPv6 addresses as /32).
	if hops, err := s.l.BGPNextHops(ctx, netip.PrefixFrom(ip, 32).Masked()); err != nil || len(hops) != 0 {
		t.Errorf("the router has a /32 for %s: %v %v", ip, hops, err)
	}
	spreadReachesAll(ctx, t, s.l, netip.AddrPortFrom(ip, 80))
	waitPeerStatus(ctx, t, s.l, "tor6", "every node established, one route advertised", 10*time.Second, func(p *networkv1alpha2.BgpPeer) (bool, string) {
		ok := len(establishedNodes(p)) == 3
		for _, e := range p.Status.NodesPeerStatus {
			ok = ok && e.PeerState.AdvertisedRoutes == 1
		}
		return ok, peerSummary(p)
	})
}

// g: changing one BgpPeer's timers resets that neighbour's sessions only:
// the IPv6 sessions (BgpPeer tor6) stay up with their routes throughout.
func (s *bgpScenario) timerChange(ctx context.Context, t *testing.T) {
	before, err := s.l.BGPPeerUptimes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mon6 := startHopMonitor(s.l, hostPrefix(s.ips["web6"]))
	updatePeer(ctx, t, s.l, "tor", func(p *networkv1alpha2.BgpPeer) {
		p.Spec.Timers.Config.HoldTime, p.Spec.Timers.Config.KeepaliveInterval = "9", "3"
	})
	waitPeerStatus(ctx, t, s.l, "tor", "hold time 9 configured and established on every node", 30*time.Second, func(p *networkv1alpha2.BgpPeer) (bool, string) {
		ok := len(establishedNodes(p)) == 3
		for _, e := range p.Status.NodesPeerStatus {
			ok = ok && e.TimersState.HoldTime == "9" && e.TimersState.KeepaliveInterval == "3"
		}
		return ok, peerSummary(p)
	})
	waitNextHops(ctx, t, s.l, s.ips["web"], s.all4(), 20*time.Second)
	seen := mon6.stop()
	after, err := s.l.BGPPeerUptimes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range s.all6() {
		if before[a] == 0 || after[a] != before[a] {
			t.Errorf("IPv6 session of %s was reset by a timer change of the IPv4 BgpPeer: established at %d, now %d", a, before[a], after[a])
		}
	}
	for _, h := range seen {
		if !slices.Equal(h, s.all6()) {
			t.Errorf("the IPv6 route lost next hops during the IPv4 timer change: %v", seen)
			break
		}
	}
	reset := 0
	for _, a := range s.all4() {
		if after[a] != before[a] {
			reset++
		}
	}
	t.Logf("timer change: %d of 3 IPv4 sessions re-established with the new hold time, %d IPv6 sessions untouched, IPv6 next hops observed %d times, always 3", reset, len(s.all6()), len(seen))
	updatePeer(ctx, t, s.l, "tor", func(p *networkv1alpha2.BgpPeer) {
		p.Spec.Timers.Config.HoldTime, p.Spec.Timers.Config.KeepaliveInterval = "3", "1"
	})
	waitPeerStatus(ctx, t, s.l, "tor", "hold time 3 again", 30*time.Second, func(p *networkv1alpha2.BgpPeer) (bool, string) {
		ok := len(establishedNodes(p)) == 3
		for _, e := range p.Status.NodesPeerStatus {
			ok = ok && e.TimersState.HoldTime == "3"
		}
		return ok, peerSummary(p)
	})
	waitNextHops(ctx, t, s.l, s.ips["web"], s.all4(), 20*time.Second)
}

// e: the TCP-MD5 password from a Secret brings the session up; a wrong one
// keeps it down and the status says why; the plain field is never echoed.
func (s *bgpScenario) md5(ctx context.Context, t *testing.T) {
	const right, wrong = "s3cret-one", "wrong-one"
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: lab.Namespace, Name: "tor-password"},
		StringData: map[string]string{"password": right}}
	if err := s.l.Kube.Create(ctx, sec); err != nil {
		t.Fatal(err)
	}
	if err := s.l.FRRConfigure(ctx, "neighbor NODES password "+right); err != nil {
		t.Fatal(err)
	}
	updatePeer(ctx, t, s.l, "tor", func(p *networkv1alpha2.BgpPeer) {
		p.Spec.AuthPasswordSecretRef = &networkv1alpha2.SecretKeyRef{Name: "tor-password"}
	})
	waitSessions(ctx, t, s.l, s.allSessions(), 30*time.Second)
	waitNextHops(ctx, t, s.l, s.ips["web"], s.all4(), 10*time.Second)
	raw, err := json.Marshal(getPeer(ctx, t, s.l, "tor").Status)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), right) {
		t.Errorf("the password appears in the BgpPeer status: %s", raw)
	}

	setPassword := func(pw string) {
		t.Helper()
		err := lab.WaitFor(ctx, 10*time.Second, "update Secret", func(ctx context.Context) (bool, error) {
			var cur corev1.Secret
			if err := s.l.Kube.Get(ctx, client.ObjectKeyFromObject(sec), &cur); err != nil {
				return false, err
			}
			cur.Data = map[string][]byte{"password": []byte(pw)}
			err := s.l.Kube.Update(ctx, &cur)
			return err == nil, err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	setPassword(wrong)
	p := waitPeerStatus(ctx, t, s.l, "tor", "every node down, saying why", 30*time.Second, func(p *networkv1alpha2.BgpPeer) (bool, string) {
		c := meta.FindStatusCondition(p.Status.Conditions, "Established")
		ok := len(p.Status.NodesPeerStatus) == 3 && c != nil && c.Status == metav1.ConditionFalse && strings.HasPrefix(c.Message, "0/3")
		for _, e := range p.Status.NodesPeerStatus {
			ok = ok && e.PeerState.SessionState != "ESTABLISHED" && strings.Contains(e.PeerState.LastError, "TCP-MD5")
		}
		return ok, peerSummary(p)
	})
	t.Logf("wrong password: %s", p.Status.NodesPeerStatus["node1"].PeerState.LastError)
	waitNextHops(ctx, t, s.l, s.ips["web"], nil, 10*time.Second)
	// It stays down.
	err = lab.Poll(ctx, 4*time.Second, 200*time.Millisecond, "IPv4 sessions stay down", func(ctx context.Context) (bool, error) {
		up, err := s.l.BGPEstablished(ctx)
		if err != nil {
			return false, err
		}
		if slices.ContainsFunc(up, func(a netip.Addr) bool { return a.Is4() }) {
			return false, lab.Permanent(fmt.Errorf("an IPv4 session came up with a wrong password: %v", up))
		}
		return false, nil
	})
	if !errors.Is(err, lab.ErrTimeout) {
		t.Fatal(err)
	}
	setPassword(right)
	waitSessions(ctx, t, s.l, s.allSessions(), 30*time.Second)
	waitNextHops(ctx, t, s.l, s.ips["web"], s.all4(), 10*time.Second)

	// Back to no password for the next scenarios.
	if err := s.l.FRRConfigure(ctx, "no neighbor NODES password"); err != nil {
		t.Fatal(err)
	}
	updatePeer(ctx, t, s.l, "tor", func(p *networkv1alpha2.BgpPeer) { p.Spec.AuthPasswordSecretRef = nil })
	waitSessions(ctx, t, s.l, s.allSessions(), 30*time.Second)
	waitNextHops(ctx, t, s.l, s.ips["web"], s.all4(), 10*time.Second)
}

// i: deleting the Service withdraws its route from every speaker.
func (s *bgpScenario) serviceDeleted(ctx context.Context, t *testing.T) {
	for _, name := range []string{"web", "web6"} {
		if err := s.l.Kube.Delete(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}}); err != nil {
			t.Fatal(err)
		}
	}
	waitNextHops(ctx, t, s.l, s.ips["web"], nil, 15*time.Second)
	waitNextHops(ctx, t, s.l, s.ips["web6"], nil, 15*time.Second)
	for _, pool := range []netip.Prefix{bgpRange4, bgpRange6} {
		if n, err := s.l.RouterFIBCount(pool); err != nil || n != 0 {
			t.Errorf("router FIB still has %d routes in %s (%v)", n, pool, err)
		}
	}
	for _, name := range []string{"tor", "tor6"} {
		waitPeerStatus(ctx, t, s.l, name, "no route advertised by any node", 10*time.Second, func(p *networkv1alpha2.BgpPeer) (bool, string) {
			ok := len(p.Status.NodesPeerStatus) == 3
			for _, e := range p.Status.NodesPeerStatus {
				ok = ok && e.PeerState.AdvertisedRoutes == 0
			}
			return ok, peerSummary(p)
		})
	}
}

// h: SIGTERM withdraws node1's next hop at once (CEASE); SIGKILL too
// (the kernel closes the TCP session), at the latest after the hold time.
func (s *bgpScenario) stop(ctx context.Context, t *testing.T) {
	ip := createServices(ctx, t, s.l, bgpService("stop", "bgp-pool"))["stop"]
	s.ips["stop"] = ip
	waitNextHops(ctx, t, s.l, ip, s.all4(), 20*time.Second)
	others := nodeAddrs4(s.l, "node2", "node3")
	for _, sig := range []string{"SIGTERM", "SIGKILL"} {
		sp := s.l.Node("node1").Speaker
		event := func() error { return sp.Kill() }
		if sig == "SIGTERM" {
			event = func() error { go sp.Terminate(10 * time.Second); return nil }
		}
		d, err := lab.Measure(ctx, 10*time.Second, 5*time.Millisecond, event, func(context.Context) (bool, error) {
			hops, err := s.l.RouterNextHops(hostPrefix(ip))
			return slices.Equal(hops, others), err
		})
		if err != nil {
			t.Fatalf("%s of node1's speaker: next hop not withdrawn: %v", sig, err)
		}
		t.Logf("%s of node1's speaker: next hop withdrawn from the router's FIB after %v (hold time 3 s)", sig, d.Round(time.Millisecond))
		if err := sp.Wait(ctx); err != nil && sig == "SIGTERM" {
			t.Logf("speaker exit: %v", err)
		}
		if _, err := s.l.StartSpeaker(ctx, "node1", bgpSpeakerArgs); err != nil {
			t.Fatal(err)
		}
		waitNextHops(ctx, t, s.l, ip, s.all4(), 20*time.Second)
	}
}

// j: graceful restart for planned restarts: with graceful restart on the
// BgpPeer (FRR is a helper by default), a SIGTERM leaves the session to the
// process exit without a NOTIFICATION and FRR keeps node1's route (stale)
// until the restarted speaker advertises it again.
func (s *bgpScenario) gracefulRestart(ctx context.Context, t *testing.T) {
	ip := s.ips["stop"]
	updatePeer(ctx, t, s.l, "tor", func(p *networkv1alpha2.BgpPeer) {
		p.Spec.GracefulRestart = &networkv1alpha2.GracefulRestart{Enabled: true, RestartTime: 30}
	})
	waitSessions(ctx, t, s.l, s.allSessions(), 30*time.Second)
	waitNextHops(ctx, t, s.l, ip, s.all4(), 20*time.Second)
	sp := s.l.Node("node1").Speaker
	sp.Terminate(10 * time.Second)
	// The route keeps node1 while its speaker is gone.
	err := lab.Poll(ctx, 3*time.Second, 20*time.Millisecond, "node1 kept as next hop while its speaker restarts", func(context.Context) (bool, error) {
		hops, err := s.l.RouterNextHops(hostPrefix(ip))
		if err != nil {
			return false, err
		}
		if !slices.Equal(hops, s.all4()) {
			return false, lab.Permanent(fmt.Errorf("next hops %v right after a graceful stop", hops))
		}
		return false, nil
	})
	if !errors.Is(err, lab.ErrTimeout) {
		t.Fatal(err)
	}
	out, err := s.l.Vtysh(ctx, fmt.Sprintf("show bgp ipv4 unicast %s json", hostPrefix(ip)))
	if err != nil || !strings.Contains(out, `"stale":true`) {
		t.Errorf("FRR does not hold node1's path as stale: %v\n%s", err, out)
	}
	if _, err := s.l.StartSpeaker(ctx, "node1", bgpSpeakerArgs); err != nil {
		t.Fatal(err)
	}
	err = lab.WaitFor(ctx, 20*time.Second, "node1's path fresh again", func(ctx context.Context) (bool, error) {
		out, err := s.l.Vtysh(ctx, fmt.Sprintf("show bgp ipv4 unicast %s json", hostPrefix(ip)))
		return err == nil && !strings.Contains(out, `"stale":true`) && strings.Count(out, `"peerId"`) >= 3, fmt.Errorf("%s %v", out, err)
	})
	if err != nil {
		t.Fatal(err)
	}
	waitNextHops(ctx, t, s.l, ip, s.all4(), 5*time.Second)
	updatePeer(ctx, t, s.l, "tor", func(p *networkv1alpha2.BgpPeer) { p.Spec.GracefulRestart = nil })
	waitSessions(ctx, t, s.l, s.allSessions(), 30*time.Second)
	waitNextHops(ctx, t, s.l, ip, s.all4(), 20*time.Second)
}

// k (extension): communities from the Eip and the Service annotations; the
// Service's win; a bad value is reported with an Event and ignored.
func (s *bgpScenario) communities(ctx context.Context, t *testing.T) {
	ip := s.ips["stop"]
	annotate := func(obj client.Object, v string) {
		t.Helper()
		err := lab.WaitFor(ctx, 10*time.Second, "annotate "+obj.GetName(), func(ctx context.Context) (bool, error) {
			if err := s.l.Kube.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
				return false, err
			}
			a := obj.GetAnnotations()
			if a == nil {
				a = map[string]string{}
			}
			if v == "" {
				delete(a, networkv1alpha2.AnnotationBGPCommunities)
			} else {
				a[networkv1alpha2.AnnotationBGPCommunities] = v
			}
			obj.SetAnnotations(a)
			err := s.l.Kube.Update(ctx, obj)
			return err == nil, err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// communitiesAt returns the community string of each of FRR's paths.
	communitiesAt := func(ctx context.Context) ([]string, error) {
		out, err := s.l.Vtysh(ctx, fmt.Sprintf("show bgp ipv4 unicast %s json", hostPrefix(ip)))
		if err != nil {
			return nil, err
		}
		var r struct {
			Paths []struct {
				Community *struct {
					String string `json:"string"`
				} `json:"community"`
			} `json:"paths"`
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			return nil, fmt.Errorf("parse %s: %w", out, err)
		}
		var cs []string
		for _, p := range r.Paths {
			c := ""
			if p.Community != nil {
				c = p.Community.String
			}
			cs = append(cs, c)
		}
		return cs, nil
	}
	waitCommunity := func(want ...string) {
		t.Helper()
		err := lab.WaitFor(ctx, 15*time.Second, fmt.Sprintf("communities %v on every path at FRR", want), func(ctx context.Context) (bool, error) {
			cs, err := communitiesAt(ctx)
			if err != nil || len(cs) != len(s.nodes) {
				return false, fmt.Errorf("paths %q (%v)", cs, err)
			}
			for _, c := range cs {
				if len(strings.Fields(c)) != len(want) {
					return false, fmt.Errorf("paths %q", cs)
				}
				for _, w := range want {
					if !strings.Contains(c, w) {
						return false, fmt.Errorf("paths %q", cs)
					}
				}
			}
			return true, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	eip := &networkv1alpha2.Eip{ObjectMeta: metav1.ObjectMeta{Name: "bgp-pool"}}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "stop"}}
	annotate(eip, "64512:1")
	waitCommunity("64512:1")
	annotate(svc, "64512:100 , no-export")
	waitCommunity("64512:100", "no-export")
	annotate(svc, "65536:1")
	waitCommunity("64512:1")
	err := lab.WaitFor(ctx, 10*time.Second, "an Event for the bad community", func(ctx context.Context) (bool, error) {
		var evs corev1.EventList
		if err := s.l.Kube.List(ctx, &evs, client.InNamespace("default")); err != nil {
			return false, err
		}
		for _, e := range evs.Items {
			if e.InvolvedObject.Name == "stop" && e.Reason == "InvalidBGPAttribute" && strings.Contains(e.Message, "65536:1") {
				return true, nil
			}
		}
		return false, fmt.Errorf("%d events, none for the bad community", len(evs.Items))
	})
	if err != nil {
		t.Fatal(err)
	}
	annotate(svc, "")
	annotate(eip, "")
	err = lab.WaitFor(ctx, 15*time.Second, "no community", func(ctx context.Context) (bool, error) {
		cs, err := communitiesAt(ctx)
		return err == nil && len(cs) == len(s.nodes) && strings.Join(cs, "") == "", fmt.Errorf("paths %q (%v)", cs, err)
	})
	if err != nil {
		t.Fatal(err)
	}
	waitNextHops(ctx, t, s.l, ip, s.all4(), 5*time.Second)
}

// b: the same against BIRD: ECMP over the three nodes for IPv4 and IPv6,
// requests reach every node, SIGTERM withdraws at once.
func (s *bgpScenario) bird(ctx context.Context, t *testing.T) {
	if err := s.l.StartRouter(ctx, lab.BIRD); err != nil {
		t.Fatal(err)
	}
	ip := s.ips["stop"]
	ip6 := createServices(ctx, t, s.l, bgpService("web6b", "bgp-pool6", func(svc *corev1.Service) {
		single := corev1.IPFamilyPolicySingleStack
		svc.Spec.IPFamilyPolicy, svc.Spec.IPFamilies = &single, []corev1.IPFamily{corev1.IPv6Protocol}
	}))["web6b"]
	waitSessions(ctx, t, s.l, s.allSessions(), 40*time.Second)
	waitNextHops(ctx, t, s.l, ip, s.all4(), 20*time.Second)
	waitNextHops(ctx, t, s.l, ip6, s.all6(), 20*time.Second)
	spreadReachesAll(ctx, t, s.l, netip.AddrPortFrom(ip, 80))
	spreadReachesAll(ctx, t, s.l, netip.AddrPortFrom(ip6, 80))
	sp := s.l.Node("node2").Speaker
	others := nodeAddrs4(s.l, "node1", "node3")
	d, err := lab.Measure(ctx, 10*time.Second, 5*time.Millisecond, func() error { go sp.Terminate(10 * time.Second); return nil },
		func(context.Context) (bool, error) {
			hops, err := s.l.RouterNextHops(hostPrefix(ip))
			return slices.Equal(hops, others), err
		})
	if err != nil {
		t.Fatalf("SIGTERM with BIRD: %v", err)
	}
	t.Logf("BIRD: SIGTERM of node2's speaker withdrew its next hop after %v", d.Round(time.Millisecond))
}

// hopMonitor records every distinct next-hop set of a prefix in the
// router's FIB, polling every 10 ms.
type hopMonitor struct {
	done chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	seen [][]netip.Addr
}

func startHopMonitor(l *lab.Lab, p netip.Prefix) *hopMonitor {
	m := &hopMonitor{done: make(chan struct{})}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		deadline := time.After(5 * time.Minute)
		for {
			if hops, err := l.RouterNextHops(p); err == nil {
				m.mu.Lock()
				if len(m.seen) == 0 || !slices.Equal(m.seen[len(m.seen)-1], hops) {
					m.seen = append(m.seen, hops)
				}
				m.mu.Unlock()
			}
			select {
			case <-m.done:
				return
			case <-deadline:
				return
			case <-tick.C:
			}
		}
	}()
	return m
}

func (m *hopMonitor) stop() [][]netip.Addr {
	close(m.done)
	m.wg.Wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.seen
}

// bgpSpeakerMetrics fetches a speaker's /metrics from inside its namespace.
func bgpSpeakerMetrics(ctx context.Context, t testing.TB, l *lab.Lab, node string) string {
	t.Helper()
	out, err := l.Node(node).NS.Run(ctx, "curl", "-s", fmt.Sprintf("http://127.0.0.1:%d/metrics", lab.SpeakerMetricsPort))
	if err != nil {
		t.Fatalf("metrics of %s: %v", node, err)
	}
	return out
}
