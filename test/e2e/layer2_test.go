//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
	"github.com/openelb/openelb-operator/internal/election"
	"github.com/openelb/openelb-operator/speaker"
	"github.com/openelb/openelb-operator/test/lab"
)

// TestLayer2 runs the layer2 lab scenarios of issue 6 (a–k) on one 3-node
// lab with the real controller and three speakers. The scenarios run in
// order and build on each other; a prober on the client (scenario k)
// watches every IPv4 address for the whole run and fails the test if two
// nodes ever answer one ARP request.
func TestLayer2(t *testing.T) {
	l := lab.New(t, lab.Options{})
	ctx := t.Context()
	if _, err := l.StartController(ctx, lab.RoleOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := l.StartSpeakers(ctx, speakerArgs); err != nil {
		t.Fatal(err)
	}
	nodes := nodeNames(l)
	p := startProber(t, l, 100*time.Millisecond)
	s := &scenario{t: t, l: l, p: p, nodes: nodes, ips: map[string]netip.Addr{}}

	steps := []struct {
		name string
		run  func(context.Context, *testing.T)
	}{
		{"a_seed_manifests", s.seed},
		{"b_spread", s.spread},
		{"c_sigkill", s.sigkill},
		{"d_sigterm", s.sigterm},
		{"e_link_down", s.linkDown},
		{"f_local_traffic_policy", s.local},
		{"g_ipv6", s.ipv6},
		{"h_multi_nic", s.multiNIC},
		{"i_not_ready", s.notReady},
		{"j_rolling_restart", s.rollingRestart},
		{"k_one_answer", s.oneAnswer},
	}
	for _, st := range steps {
		if !t.Run(st.name, func(t *testing.T) { st.run(ctx, t) }) {
			t.FailNow()
		}
	}
}

type scenario struct {
	t     *testing.T
	l     *lab.Lab
	p     *prober
	nodes []string
	ips   map[string]netip.Addr // Services of eip-pool by name
	// initial is who announces each of ips when every node is healthy.
	initial map[string]string
}

func (s *scenario) seed(ctx context.Context, t *testing.T) {
	eip, svc := seedManifests(t)
	for _, m := range []string{eip, svc} {
		if out, err := s.l.Kubectl(ctx, m, "apply", "-f", "-"); err != nil {
			t.Fatalf("kubectl apply: %v: %s", err, out)
		}
	}
	ip := waitIngress(ctx, t, s.l, "layer2-svc")
	if first, last, _ := speaker.ParseRange(seedPoolTo); ip.Less(first) || last.Less(ip) {
		t.Fatalf("layer2-svc got %s, outside %s", ip, seedPoolTo)
	}
	s.ips["layer2-svc"] = ip
	s.p.Watch(ip)
	want := expectedAnnouncer(ip, s.nodes)
	mac, err := s.l.ResolveMAC(ctx, ip, 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mac, macOf(s.l, want)) {
		t.Fatalf("arping %s: %s answers, want %s (%s)", ip, mac, want, macOf(s.l, want))
	}
	got, err := s.l.HTTPGet(ctx, netip.AddrPortFrom(ip, 80))
	if err != nil || got != want {
		t.Fatalf("HTTP to %s reached %q (%v), want %s", ip, got, err, want)
	}
	waitAnnouncer(ctx, t, s.l, "layer2-svc", want)
	err = lab.WaitFor(ctx, 10*time.Second, "an AnnouncerChanged Event on layer2-svc", func(ctx context.Context) (bool, error) {
		var evs corev1.EventList
		if err := s.l.Kube.List(ctx, &evs, client.InNamespace("default")); err != nil {
			return false, err
		}
		for _, e := range evs.Items {
			if e.InvolvedObject.Name == "layer2-svc" && e.Reason == speaker.ReasonAnnouncerChanged && strings.Contains(e.Message, want) {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("seed: layer2-svc %s announced by %s (%s), HTTP reached %s", ip, want, mac, got)
}

func (s *scenario) spread(ctx context.Context, t *testing.T) {
	var svcs []*corev1.Service
	for i := range 10 {
		svcs = append(svcs, lbService(fmt.Sprintf("svc-%d", i), "eip-pool"))
	}
	got := createServices(ctx, t, s.l, svcs...)
	count := map[string]int{}
	for name, ip := range got {
		s.ips[name] = ip
		s.p.Watch(ip)
		count[expectedAnnouncer(ip, s.nodes)]++
	}
	s.initial = map[string]string{}
	for name, ip := range s.ips {
		s.initial[name] = expectedAnnouncer(ip, s.nodes)
	}
	s.waitInitial(ctx, t)
	for name := range got {
		waitAnnouncer(ctx, t, s.l, name, s.initial[name])
	}
	for n, c := range count {
		if c > 5 {
			t.Fatalf("%s announces %d of the 10 addresses: %v", n, c, count)
		}
	}
	t.Logf("spread of the 10 Services' addresses: %v", count)
}

// failover moves the announcer of layer2-svc away from its node with event,
// measures the time until the client's neighbour entry changes, restores
// with restore, and checks that only that node's addresses moved (each to
// its successor and back) while every other address kept its announcer.
func (s *scenario) failover(ctx context.Context, t *testing.T, kind string, event func(node string) error, restore func(node string) error) time.Duration {
	t.Helper()
	ip := s.ips["layer2-svc"]
	from := s.initial["layer2-svc"]
	to := election.Rank(ip.String(), s.nodes)[1]
	s.waitInitial(ctx, t)
	ensureNeighbor(ctx, t, s.l, ip, macOf(s.l, from))
	mark := s.p.Mark()
	d, err := lab.Measure(ctx, 10*time.Second, 5*time.Millisecond, func() error { return event(from) },
		func(context.Context) (bool, error) {
			m, err := s.l.ClientNeighbor(ip)
			return bytes.Equal(m, macOf(s.l, to)), err
		})
	if err != nil {
		t.Fatalf("%s of %s: client still at the old announcer: %v", kind, from, err)
	}
	moved := map[netip.Addr]net.HardwareAddr{} // every address of the node has a new announcer
	for name, ip := range s.ips {
		if s.initial[name] == from {
			moved[ip] = macOf(s.l, election.Rank(ip.String(), s.nodes)[1])
		}
	}
	waitAllAnswered(ctx, t, s.p, moved)
	if err := restore(from); err != nil {
		t.Fatal(err)
	}
	s.waitInitial(ctx, t)
	waitNeighbor(ctx, t, s.l, ip, macOf(s.l, from))
	s.checkOnlyMoved(t, mark, from)
	t.Logf("%s: %s -> %s, client switched after %v", kind, from, to, d.Round(time.Millisecond))
	return d
}

// waitInitial waits until every address is answered by its initial
// announcer.
func (s *scenario) waitInitial(ctx context.Context, t *testing.T) {
	t.Helper()
	want := map[netip.Addr]net.HardwareAddr{}
	for name, ip := range s.ips {
		want[ip] = macOf(s.l, s.initial[name])
	}
	waitAllAnswered(ctx, t, s.p, want)
}

// checkOnlyMoved: since mark, addresses not announced by node never
// changed their announcer; node's went to their successor and came back.
func (s *scenario) checkOnlyMoved(t *testing.T, mark int, node string) {
	t.Helper()
	for name, ip := range s.ips {
		seq := s.p.Sequence(ip, mark)
		init := macOf(s.l, s.initial[name]).String()
		if len(seq) == 0 || seq[0] != init {
			// The state before the event was checked (waitInitial); the
			// prober may have no answered round between the mark and it.
			seq = append([]string{init}, seq...)
		}
		want := []string{init}
		if s.initial[name] == node {
			want = []string{init, macOf(s.l, election.Rank(ip.String(), s.nodes)[1]).String(), init}
		}
		if strings.Join(seq, " ") != strings.Join(want, " ") {
			t.Errorf("%s (%s): answered by %v, want %v (a needless move)", name, ip, seq, want)
		}
	}
}

func (s *scenario) restartSpeaker(ctx context.Context) func(string) error {
	return func(node string) error {
		_, err := s.l.StartSpeaker(ctx, node, speakerArgs)
		return err
	}
}

func (s *scenario) sigkill(ctx context.Context, t *testing.T) {
	s.failover(ctx, t, "SIGKILL", func(n string) error { return s.l.Node(n).Speaker.Kill() }, s.restartSpeaker(ctx))
}

func (s *scenario) sigterm(ctx context.Context, t *testing.T) {
	var proc *lab.Proc
	s.failover(ctx, t, "SIGTERM", func(n string) error {
		proc = s.l.Node(n).Speaker
		return proc.Signal(syscall.SIGTERM)
	}, func(n string) error {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := proc.Wait(wctx); err != nil {
			return fmt.Errorf("speaker on %s after SIGTERM: %w\n%s", n, err, proc.Tail(20))
		}
		if !proc.LogContains("handing over") {
			return fmt.Errorf("speaker on %s did not hand over:\n%s", n, proc.Tail(20))
		}
		return s.restartSpeaker(ctx)(n)
	})
}

func (s *scenario) linkDown(ctx context.Context, t *testing.T) {
	s.failover(ctx, t, "link down", s.l.LinkDown, s.l.LinkUp)
}

func (s *scenario) notReady(ctx context.Context, t *testing.T) {
	s.failover(ctx, t, "NotReady", func(n string) error { return s.l.SetNodeReady(ctx, n, false) },
		func(n string) error { return s.l.SetNodeReady(ctx, n, true) })
}

func (s *scenario) rollingRestart(ctx context.Context, t *testing.T) {
	s.waitInitial(ctx, t)
	mark := s.p.Mark()
	for _, n := range s.nodes {
		proc := s.l.Node(n).Speaker
		proc.Terminate(10 * time.Second)
		if err := proc.ExitErr(); err != nil {
			t.Fatalf("speaker on %s: %v\n%s", n, err, proc.Tail(20))
		}
		if err := s.restartSpeaker(ctx)(n); err != nil {
			t.Fatal(err)
		}
		s.waitInitial(ctx, t)
	}
	final := announcers(s.l, s.p, s.ips)
	for name, want := range s.initial {
		if final[name] != want {
			t.Errorf("%s: announced by %s after the restarts, by %s before", name, final[name], want)
		}
		waitAnnouncer(ctx, t, s.l, name, want)
	}
	// During the restarts each address was handed to its successor only
	// while its own node restarted (make-before-break), and came back.
	for name, ip := range s.ips {
		seq := s.p.Sequence(ip, mark)
		init := macOf(s.l, s.initial[name]).String()
		if len(seq) == 0 || seq[0] != init {
			seq = append([]string{init}, seq...) // as in checkOnlyMoved
		}
		succ := macOf(s.l, election.Rank(ip.String(), s.nodes)[1]).String()
		if strings.Join(seq, " ") != init+" "+succ+" "+init {
			t.Errorf("%s: answered by %v during the rolling restart, want %s, %s, %s", name, seq, init, succ, init)
		}
	}
}

func (s *scenario) local(ctx context.Context, t *testing.T) {
	eip := &networkv1alpha2.Eip{}
	eip.Name = "eip-local"
	eip.Spec = networkv1alpha2.EipSpec{Address: "203.0.113.224-203.0.113.231", Protocol: "layer2", Interface: "eth0"}
	if err := s.l.Kube.Create(ctx, eip); err != nil {
		t.Fatal(err)
	}
	ip := createServices(ctx, t, s.l, lbService("local-svc", "eip-local", func(svc *corev1.Service) {
		svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	}))["local-svc"]
	s.p.Watch(ip)
	// No endpoint anywhere: nobody may announce, and the Service says so.
	waitAnnouncer(ctx, t, s.l, "local-svc", speaker.NoAnnouncer)
	if macs, err := s.l.Arping(ctx, ip); err == nil {
		t.Fatalf("%s answered by %v without any endpoint", ip, macs)
	}
	rank := election.Rank(ip.String(), s.nodes)
	for _, n := range []string{rank[2], rank[1]} { // never the overall winner
		if err := s.l.SetEndpoints(ctx, "default", "local-svc", lab.ReadyOn(n)...); err != nil {
			t.Fatal(err)
		}
		waitAnswered(ctx, t, s.p, ip, macOf(s.l, n))
		waitAnnouncer(ctx, t, s.l, "local-svc", n)
		ensureNeighbor(ctx, t, s.l, ip, macOf(s.l, n))
		got, err := s.l.HTTPGet(ctx, netip.AddrPortFrom(ip, 80))
		if err != nil || got != n {
			t.Fatalf("HTTP to %s reached %q (%v), want the endpoint's node %s", ip, got, err, n)
		}
		t.Logf("Local: endpoint on %s, announced and served by %s", n, got)
	}
}

var ndiscTarget = regexp.MustCompile(`Target link-layer address: ([0-9A-Fa-f:]{17})`)

// ndiscAll solicits ip and returns the distinct MACs of every
// advertisement seen while waiting (ndisc6 -m: unsolicited ones from a
// gratuitous burst included).
func ndiscAll(ctx context.Context, l *lab.Lab, ip netip.Addr) []net.HardwareAddr {
	out, _ := l.Client.Run(ctx, "ndisc6", "-m", "-r", "1", "-w", "500", ip.String(), "eth0")
	var macs []net.HardwareAddr
	for _, m := range ndiscTarget.FindAllStringSubmatch(out, -1) {
		if hw, err := net.ParseMAC(m[1]); err == nil && !slices.ContainsFunc(macs, func(x net.HardwareAddr) bool { return bytes.Equal(x, hw) }) {
			macs = append(macs, hw)
		}
	}
	return macs
}

func (s *scenario) ipv6(ctx context.Context, t *testing.T) {
	eip := &networkv1alpha2.Eip{}
	eip.Name = "eip-v6"
	eip.Spec = networkv1alpha2.EipSpec{Address: "2001:db8::20-2001:db8::2f", Protocol: "layer2", Interface: "eth0"}
	if err := s.l.Kube.Create(ctx, eip); err != nil {
		t.Fatal(err)
	}
	single := corev1.IPFamilyPolicySingleStack
	ip := createServices(ctx, t, s.l, lbService("v6-svc", "eip-v6", func(svc *corev1.Service) {
		svc.Spec.IPFamilyPolicy, svc.Spec.IPFamilies = &single, []corev1.IPFamily{corev1.IPv6Protocol}
	}))["v6-svc"]
	if !ip.Is6() {
		t.Fatalf("v6-svc got %s", ip)
	}
	rank := election.Rank(ip.String(), s.nodes)
	err := lab.WaitFor(ctx, 15*time.Second, "ndisc6 answer from "+rank[0], func(ctx context.Context) (bool, error) {
		macs := ndiscAll(ctx, s.l, ip)
		return len(macs) == 1 && bytes.Equal(macs[0], macOf(s.l, rank[0])), fmt.Errorf("answers %v", macs)
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.l.HTTPGet(ctx, netip.AddrPortFrom(ip, 80))
	if err != nil || got != rank[0] {
		t.Fatalf("HTTP to [%s] reached %q (%v), want %s", ip, got, err, rank[0])
	}
	waitAnnouncer(ctx, t, s.l, "v6-svc", rank[0])
	ensureNeighbor(ctx, t, s.l, ip, macOf(s.l, rank[0]))
	d, err := lab.Measure(ctx, 10*time.Second, 5*time.Millisecond, s.l.Node(rank[0]).Speaker.Kill,
		func(context.Context) (bool, error) {
			m, err := s.l.ClientNeighbor(ip)
			return bytes.Equal(m, macOf(s.l, rank[1])), err
		})
	if err != nil {
		t.Fatalf("IPv6 failover: %v", err)
	}
	if macs := ndiscAll(ctx, s.l, ip); len(macs) != 1 || !bytes.Equal(macs[0], macOf(s.l, rank[1])) {
		t.Fatalf("after failover ndisc6 got %v, want only %s", macs, rank[1])
	}
	if err := s.restartSpeaker(ctx)(rank[0]); err != nil {
		t.Fatal(err)
	}
	waitNeighbor(ctx, t, s.l, ip, macOf(s.l, rank[0]))
	s.waitInitial(ctx, t)
	t.Logf("IPv6: %s announced by %s; SIGKILL -> %s after %v", ip, rank[0], rank[1], d.Round(time.Millisecond))
}

func (s *scenario) oneAnswer(ctx context.Context, t *testing.T) {
	probes, replies := s.p.Counts()
	if v := s.p.Violations(); len(v) > 0 {
		t.Fatalf("%d ARP requests were answered by more than one node:\n%s", len(v), strings.Join(v, "\n"))
	}
	if probes < 1000 || replies == 0 {
		t.Fatalf("the prober sent %d requests and got %d replies: too few to prove anything", probes, replies)
	}
	for name, ip := range s.ips {
		macs, err := s.l.Arping(ctx, ip)
		if err != nil || len(macs) != 1 {
			t.Fatalf("arping %s (%s): %v %v", name, ip, macs, err)
		}
	}
	t.Logf("k: %d ARP requests over all scenarios, %d replies, none answered twice", probes, replies)
}
