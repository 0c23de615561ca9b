//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
	"github.com/openelb/openelb-operator/internal/election"
	"github.com/openelb/openelb-operator/test/lab"
)

// Lab adaptations of the seed manifests (seed 001: eip-pool on ens33 with
// 192.168.1.240-192.168.1.250): the pool moves into the lab's layer2 range
// with the same size and last octets, and the interface is the nodes' eth0.
// Everything else, the Service included, is applied unchanged.
const (
	seedPoolFrom  = "192.168.1.240-192.168.1.250"
	seedPoolTo    = "203.0.113.240-203.0.113.250"
	seedIfaceFrom = "interface: ens33"
	seedIfaceTo   = "interface: eth0"
)

// speakerArgs: the layer2 scenarios run the speakers with layer2 alone
// (the lab's default also enables BGP), so that they and their figures
// concern layer2 only.
var speakerArgs = lab.RoleOptions{Args: []string{"--enable-bgp=false"}}

func seedManifests(t testing.TB) (eip, svc string) {
	t.Helper()
	root, err := lab.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(root, "test", "api", "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	eip = read("seed-001-layer2-eip.yaml")
	if !strings.Contains(eip, seedPoolFrom) || !strings.Contains(eip, seedIfaceFrom) {
		t.Fatalf("seed Eip changed: %s", eip)
	}
	eip = strings.Replace(strings.Replace(eip, seedPoolFrom, seedPoolTo, 1), seedIfaceFrom, seedIfaceTo, 1)
	return eip, read("seed-001-layer2-svc.yaml")
}

func nodeNames(l *lab.Lab) []string {
	var out []string
	for _, n := range l.Nodes {
		out = append(out, n.Name)
	}
	return out
}

// nodeOfMAC maps a MAC to the node owning it ("" when none).
func nodeOfMAC(l *lab.Lab, mac net.HardwareAddr) string {
	for _, n := range l.Nodes {
		if bytes.Equal(n.MAC, mac) || bytes.Equal(nic2MAC(n), mac) {
			return n.Name
		}
	}
	return ""
}

func macOf(l *lab.Lab, node string) net.HardwareAddr { return l.Node(node).MAC }

// expectedAnnouncers ranks the eligible nodes for ip.
func expectedAnnouncer(ip netip.Addr, eligible []string) string {
	return election.Rank(ip.String(), eligible)[0]
}

// lbService is a LoadBalancer Service of ours on port 80 from eip (layer2 or vip).
func lbService(name, eip string, mods ...func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Annotations: map[string]string{
			networkv1alpha2.AnnotationOpenELB: networkv1alpha2.ValueOpenELB,
			networkv1alpha2.AnnotationEip:     eip,
		}},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{"app": name},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}
	for _, m := range mods {
		m(s)
	}
	return s
}

func createServices(ctx context.Context, t testing.TB, l *lab.Lab, svcs ...*corev1.Service) map[string]netip.Addr {
	t.Helper()
	for _, s := range svcs {
		if err := l.Kube.Create(ctx, s); err != nil {
			t.Fatalf("create service %s: %v", s.Name, err)
		}
	}
	out := map[string]netip.Addr{}
	for _, s := range svcs {
		out[s.Name] = waitIngress(ctx, t, l, s.Name)
	}
	return out
}

// waitIngress waits until the controller gave the Service an address.
func waitIngress(ctx context.Context, t testing.TB, l *lab.Lab, name string) netip.Addr {
	t.Helper()
	var ip netip.Addr
	err := lab.WaitFor(ctx, 30*time.Second, "an address for "+name, func(ctx context.Context) (bool, error) {
		var s corev1.Service
		if err := l.Kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, &s); err != nil {
			return false, err
		}
		for _, in := range s.Status.LoadBalancer.Ingress {
			if a, err := netip.ParseAddr(in.IP); err == nil {
				ip = a
				return true, nil
			}
		}
		return false, fmt.Errorf("no ingress yet: %+v", s.Status.LoadBalancer)
	})
	if err != nil {
		t.Fatal(err)
	}
	return ip
}

// waitAnnouncer waits until the Service's announcer annotation is want.
func waitAnnouncer(ctx context.Context, t testing.TB, l *lab.Lab, svc, want string) {
	t.Helper()
	err := lab.WaitFor(ctx, 20*time.Second, fmt.Sprintf("announcer annotation of %s = %s", svc, want), func(ctx context.Context) (bool, error) {
		var s corev1.Service
		if err := l.Kube.Get(ctx, client.ObjectKey{Namespace: "default", Name: svc}, &s); err != nil {
			return false, err
		}
		got := s.Annotations[networkv1alpha2.AnnotationAnnouncer]
		return got == want, fmt.Errorf("annotation %q", got)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// waitAnswered waits until a request the prober sent after the call is
// answered by want's MAC alone.
func waitAnswered(ctx context.Context, t testing.TB, p *prober, ip netip.Addr, want net.HardwareAddr) {
	t.Helper()
	since := time.Now()
	err := lab.WaitFor(ctx, 20*time.Second, fmt.Sprintf("%s answered by %s", ip, want), func(context.Context) (bool, error) {
		got := p.Last(ip, since)
		return len(got) == 1 && bytes.Equal(got[0], want), fmt.Errorf("answered by %v", got)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// waitAllAnswered waits until requests the prober sent after the call are
// answered, for each address, by the wanted MAC alone.
func waitAllAnswered(ctx context.Context, t testing.TB, p *prober, want map[netip.Addr]net.HardwareAddr) {
	t.Helper()
	since := time.Now()
	err := lab.WaitFor(ctx, 20*time.Second, "every address answered by its announcer", func(context.Context) (bool, error) {
		for ip, mac := range want {
			if got := p.Last(ip, since); len(got) != 1 || !bytes.Equal(got[0], mac) {
				return false, fmt.Errorf("%s answered by %v, want %s", ip, got, mac)
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// waitNeighbor waits until the client's neighbour entry for ip holds want.
func waitNeighbor(ctx context.Context, t testing.TB, l *lab.Lab, ip netip.Addr, want net.HardwareAddr) {
	t.Helper()
	err := lab.Poll(ctx, 20*time.Second, 10*time.Millisecond, fmt.Sprintf("client neighbour %s = %s", ip, want), func(ctx context.Context) (bool, error) {
		got, err := l.ClientNeighbor(ip)
		return bytes.Equal(got, want), fmt.Errorf("holds %v (%v)", got, err)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// ensureNeighbor makes the client resolve ip (a ping creates the entry) and
// checks it holds want.
func ensureNeighbor(ctx context.Context, t testing.TB, l *lab.Lab, ip netip.Addr, want net.HardwareAddr) {
	t.Helper()
	err := lab.WaitFor(ctx, 10*time.Second, "client resolves "+ip.String(), func(ctx context.Context) (bool, error) {
		if err := l.Ping(ctx, ip); err != nil {
			return false, err
		}
		got, err := l.ClientNeighbor(ip)
		return bytes.Equal(got, want), fmt.Errorf("holds %v (%v)", got, err)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// prober is the client-side check of scenario (k): every interval it sends
// one ARP request per watched address and records which MACs answer each
// request. A request answered by two MACs means two nodes answered at once.
// Requests use a sender MAC and IP of their own (02:00:00:00:00:99,
// 198.51.100.200-249, one per round) so that answers never touch the
// client's neighbour table (measurements stay clean) and a late answer is
// attributed to its own round.
type prober struct {
	c        *arp.Client
	mac      net.HardwareAddr
	interval time.Duration

	mu         sync.Mutex
	ips        []netip.Addr
	round      int
	sent       map[int]map[netip.Addr]bool
	sentAt     map[int]time.Time
	answers    map[int]map[netip.Addr][]net.HardwareAddr
	history    map[netip.Addr][]observation // answered rounds, in order
	violations []string
	probes     int
	replies    int
	stop       chan struct{}
	done       chan struct{}
}

type observation struct {
	round int
	at    time.Time
	macs  []net.HardwareAddr
}

const proberRounds = 50 // sender IPs 198.51.100.200-249

func startProber(t testing.TB, l *lab.Lab, interval time.Duration) *prober {
	t.Helper()
	var c *arp.Client
	err := l.Client.Do(func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		c, err = arp.Dial(ifi)
		return err
	})
	if err != nil {
		t.Fatalf("prober: %v", err)
	}
	p := &prober{c: c, mac: net.HardwareAddr{2, 0, 0, 0, 0, 0x99}, interval: interval,
		sent: map[int]map[netip.Addr]bool{}, sentAt: map[int]time.Time{}, answers: map[int]map[netip.Addr][]net.HardwareAddr{},
		history: map[netip.Addr][]observation{}, stop: make(chan struct{}), done: make(chan struct{})}
	go p.read()
	go p.loop()
	t.Cleanup(p.Stop)
	return p
}

func (p *prober) Watch(ips ...netip.Addr) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ip := range ips {
		if ip.Is4() && !slices.Contains(p.ips, ip) {
			p.ips = append(p.ips, ip)
		}
	}
}

func (p *prober) Stop() {
	select {
	case <-p.stop:
		return
	default:
	}
	close(p.stop)
	<-p.done
	p.c.Close()
}

func senderIP(round int) netip.Addr {
	return netip.AddrFrom4([4]byte{198, 51, 100, byte(200 + round%proberRounds)})
}

func (p *prober) loop() {
	defer close(p.done)
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		p.mu.Lock()
		p.closeRound(p.round - 3) // answers arrive within a round; keep two spare for a loaded machine
		p.round++
		r := p.round
		ips := slices.Clone(p.ips)
		p.sent[r] = map[netip.Addr]bool{}
		p.sentAt[r] = time.Now()
		p.mu.Unlock()
		for _, ip := range ips {
			req, err := arp.NewPacket(arp.OperationRequest, p.mac, senderIP(r), ethernet.Broadcast, ip)
			if err != nil {
				continue
			}
			if err := p.c.WriteTo(req, ethernet.Broadcast); err == nil {
				p.mu.Lock()
				p.sent[r][ip] = true
				p.probes++
				p.mu.Unlock()
			}
		}
	}
}

func (p *prober) read() {
	for {
		pkt, _, err := p.c.Read()
		if err != nil {
			select {
			case <-p.stop:
				return
			default:
			}
			if strings.Contains(err.Error(), "closed") {
				return
			}
			continue
		}
		if pkt.Operation != arp.OperationReply || !bytes.Equal(pkt.TargetHardwareAddr, p.mac) {
			continue
		}
		p.mu.Lock()
		// The round is the one whose sender IP the answer is addressed to,
		// the latest such round not yet closed.
		for r := p.round; r > p.round-proberRounds && r > 0; r-- {
			if senderIP(r) == pkt.TargetIP && p.sent[r] != nil && p.sent[r][pkt.SenderIP] {
				if p.answers[r] == nil {
					p.answers[r] = map[netip.Addr][]net.HardwareAddr{}
				}
				p.answers[r][pkt.SenderIP] = append(p.answers[r][pkt.SenderIP], pkt.SenderHardwareAddr)
				p.replies++
				break
			}
		}
		p.mu.Unlock()
	}
}

// closeRound turns round r's answers into history; p.mu must be held.
func (p *prober) closeRound(r int) {
	if p.sent[r] == nil {
		return
	}
	for ip := range p.sent[r] {
		macs := p.answers[r][ip]
		if len(macs) == 0 {
			continue
		}
		if len(macs) > 1 {
			p.violations = append(p.violations, fmt.Sprintf("round %d: %s answered %d times by %v", r, ip, len(macs), macs))
		}
		p.history[ip] = append(p.history[ip], observation{round: r, at: p.sentAt[r], macs: macs})
	}
	delete(p.sent, r)
	delete(p.sentAt, r)
	delete(p.answers, r)
}

// Mark returns a round from just before now (the last closed one), to read
// the history from: its answers show the state before what follows.
func (p *prober) Mark() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.round - 4
}

// Last returns the MACs that answered ip in the latest closed round, if
// that round's request was sent after since.
func (p *prober) Last(ip netip.Addr, since time.Time) []net.HardwareAddr {
	p.mu.Lock()
	defer p.mu.Unlock()
	h := p.history[ip]
	if len(h) == 0 || h[len(h)-1].at.Before(since) {
		return nil
	}
	return h[len(h)-1].macs
}

// Sequence returns the distinct answering MACs of ip since round from, in
// order, repeats collapsed.
func (p *prober) Sequence(ip netip.Addr, from int) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, o := range p.history[ip] {
		if o.round < from {
			continue
		}
		m := o.macs[0].String()
		if len(out) == 0 || out[len(out)-1] != m {
			out = append(out, m)
		}
	}
	return out
}

func (p *prober) Violations() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.violations)
}

func (p *prober) Counts() (probes, replies int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.probes, p.replies
}

// announcers returns, from the prober's last answers, which node answers
// each address.
func announcers(l *lab.Lab, p *prober, ips map[string]netip.Addr) map[string]string {
	out := map[string]string{}
	since := time.Now().Add(-time.Second)
	for name, ip := range ips {
		if m := p.Last(ip, since); len(m) == 1 {
			out[name] = nodeOfMAC(l, m[0])
		}
	}
	return out
}

// percentiles of durations (nearest rank).
func percentiles(ds []time.Duration) (p50, p90, p99, maxD time.Duration) {
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	at := func(q float64) time.Duration {
		i := int(q*float64(len(s))+0.999999) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return at(0.50), at(0.90), at(0.99), s[len(s)-1]
}
