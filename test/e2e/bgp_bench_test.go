//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	networkv1alpha2 "github.com/openelb/openelb-operator/api/network/v1alpha2"
	"github.com/openelb/openelb-operator/test/lab"
)

// BGP benchmarks (docs/performance.md, section BGP). Run them with
//
//	make bench-bgp   # go test -tags e2e -run '^$' -bench BGP -benchtime 1x -timeout 40m ./test/e2e/
//
// BGP_WITHDRAW_RUNS (default 20) sets the SIGTERM and SIGKILL runs each;
// BGP_ROUTES (default "1000,10000") the route counts.

// BenchmarkBGPWithdraw measures how long the router (FRR) keeps a
// stopped speaker's next hop: SIGTERM (CEASE) and SIGKILL (the kernel
// closes the TCP session), each BGP_WITHDRAW_RUNS times, hold time 3 s.
func BenchmarkBGPWithdraw(b *testing.B) {
	runs := bgpEnvInt("BGP_WITHDRAW_RUNS", 20)
	l := lab.New(b, lab.Options{})
	ctx := b.Context()
	s := &bgpScenario{l: l, nodes: nodeNames(l), ips: map[string]netip.Addr{}}
	s.setup(ctx, b)
	ip := netip.MustParseAddr("203.0.113.5")
	svc := bgpService("bench", "bgp-pool")
	if err := l.Kube.Create(ctx, svc); err != nil {
		b.Fatal(err)
	}
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip.String()}}
	if err := l.Kube.Status().Update(ctx, svc); err != nil {
		b.Fatal(err)
	}
	if err := l.StartSpeakers(ctx, bgpSpeakerArgs); err != nil {
		b.Fatal(err)
	}
	waitNextHops(ctx, b, l, ip, s.all4(), 30*time.Second)
	others := nodeAddrs4(l, "node2", "node3")
	for b.Loop() {
		for _, sig := range []string{"SIGTERM", "SIGKILL"} {
			var ds []time.Duration
			for range runs {
				sp := l.Node("node1").Speaker
				event := func() error { return sp.Kill() }
				if sig == "SIGTERM" {
					event = func() error { go sp.Terminate(10 * time.Second); return nil }
				}
				d, err := lab.Measure(ctx, 10*time.Second, 2*time.Millisecond, event, func(context.Context) (bool, error) {
					hops, err := l.RouterNextHops(hostPrefix(ip))
					return slices.Equal(hops, others), err
				})
				if err != nil {
					b.Fatalf("%s: %v", sig, err)
				}
				ds = append(ds, d)
				_ = sp.Wait(ctx)
				if _, err := l.StartSpeaker(ctx, "node1", bgpSpeakerArgs); err != nil {
					b.Fatal(err)
				}
				waitNextHops(ctx, b, l, ip, s.all4(), 30*time.Second)
			}
			p50, p99, mx := bgpPercentiles(ds)
			b.Logf("%s x%d: p50 %v, p99 %v, max %v, all %v", sig, runs, p50, p99, mx, bgpRoundAll(ds))
			b.ReportMetric(float64(p50.Milliseconds()), strings.ToLower(sig)+"-p50-ms")
			b.ReportMetric(float64(p99.Milliseconds()), strings.ToLower(sig)+"-p99-ms")
			b.ReportMetric(float64(mx.Milliseconds()), strings.ToLower(sig)+"-max-ms")
		}
	}
}

// BenchmarkBGPAdvertise measures how long one speaker takes to advertise
// N service routes until FRR has them all (its BGP table and the kernel
// FIB), and the speaker's RSS with them. The N Services exist with their
// addresses before the clock starts (written by the benchmark, without
// the controller); creating the bgp Eip that covers them starts it, so
// the figure is the speaker's own path: watch event, decision, N paths
// into gobgp, UPDATEs, FRR. The Services are IPv6 single-stack (the lab's
// IPv4 Service CIDR is a /24) and carry IPv4 addresses of 198.18.128.0/18.
func BenchmarkBGPAdvertise(b *testing.B) {
	counts := []int{1000, 10000}
	if v := os.Getenv("BGP_ROUTES"); v != "" {
		counts = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				b.Fatal(err)
			}
			counts = append(counts, n)
		}
	}
	maxN := slices.Max(counts)
	l := lab.New(b, lab.Options{Nodes: 1})
	ctx := b.Context()
	conf := &networkv1alpha2.BgpConf{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
	conf.Spec.As = bgpSpeakerAS
	for _, o := range []client.Object{conf, bgpPeer("tor", l.Topology.Router.IPv4)} {
		if err := l.Kube.Create(ctx, o); err != nil {
			b.Fatal(err)
		}
	}
	start := time.Now()
	ips := createBulkServices(ctx, b, l, maxN)
	b.Logf("%d Services with addresses created in %v", maxN, time.Since(start).Round(time.Millisecond))
	if _, err := l.StartSpeaker(ctx, "node1", lab.RoleOptions{Args: append(slices.Clone(bgpSpeakerArgs.Args), "--log-level=info")}); err != nil {
		b.Fatal(err)
	}
	waitSessions(ctx, b, l, []netip.Addr{l.Node("node1").IPv4}, 30*time.Second)
	pool := netip.MustParsePrefix("198.18.128.0/18")
	for b.Loop() {
		for _, n := range counts {
			eip := &networkv1alpha2.Eip{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bench-%d", n)},
				Spec: networkv1alpha2.EipSpec{Address: ips[0].String() + "-" + ips[n-1].String(), Protocol: networkv1alpha2.ProtocolBGP}}
			var bgpAt, fibAt time.Duration
			t0 := time.Now()
			if err := l.Kube.Create(ctx, eip); err != nil {
				b.Fatal(err)
			}
			err := lab.Poll(ctx, 120*time.Second, 20*time.Millisecond, fmt.Sprintf("%d routes at FRR", n), func(ctx context.Context) (bool, error) {
				if bgpAt == 0 {
					if got, err := frrPrefixesFrom(ctx, l, l.Node("node1").IPv4); err == nil && got == n {
						bgpAt = time.Since(t0)
					}
				}
				if fibAt == 0 {
					if c, err := l.RouterFIBCount(pool); err == nil && c == n {
						fibAt = time.Since(t0)
					}
				}
				return bgpAt > 0 && fibAt > 0, fmt.Errorf("BGP table after %v, FIB after %v", bgpAt, fibAt)
			})
			if err != nil {
				b.Fatalf("%d routes: %v", n, err)
			}
			d := fibAt
			rss := bgpSpeakerRSS(b, l, "node1")
			b.Logf("%d routes: in FRR's BGP table %v and its FIB %v after the Eip was created; speaker RSS %.1f MiB", n, bgpAt.Round(time.Millisecond), d.Round(time.Millisecond), rss)
			b.ReportMetric(bgpAt.Seconds(), fmt.Sprintf("bgp-table-%d-s", n))
			b.ReportMetric(d.Seconds(), fmt.Sprintf("advertise-%d-s", n))
			b.ReportMetric(rss, fmt.Sprintf("rss-%d-MiB", n))
			w, err := lab.Measure(ctx, 120*time.Second, 20*time.Millisecond, func() error { return l.Kube.Delete(ctx, eip) },
				func(ctx context.Context) (bool, error) {
					c, err := l.RouterFIBCount(pool)
					return c == 0, err
				})
			if err != nil {
				b.Fatalf("withdraw %d routes: %v", n, err)
			}
			b.Logf("%d routes withdrawn (Eip deleted) in %v", n, w.Round(time.Millisecond))
			b.ReportMetric(w.Seconds(), fmt.Sprintf("withdraw-%d-s", n))
		}
	}
}

// frrPrefixesFrom returns the prefixes FRR accepted from neighbour nbr.
func frrPrefixesFrom(ctx context.Context, l *lab.Lab, nbr netip.Addr) (int, error) {
	return l.BGPPrefixesFrom(ctx, nbr)
}

// createBulkServices creates n LoadBalancer Services (IPv6 single-stack,
// no node ports) and gives each one IPv4 address of 198.18.128.0/18 in its
// status, 16 writers in parallel. It returns the addresses in order.
func createBulkServices(ctx context.Context, b *testing.B, l *lab.Lab, n int) []netip.Addr {
	cfg := *l.REST
	cfg.QPS, cfg.Burst = 2000, 2000
	cs, err := kubernetes.NewForConfig(&cfg)
	if err != nil {
		b.Fatal(err)
	}
	ips := make([]netip.Addr, n)
	a := netip.MustParseAddr("198.18.128.1")
	for i := range n {
		ips[i] = a
		a = a.Next()
	}
	single := corev1.IPFamilyPolicySingleStack
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 16 {
				svc := &corev1.Service{
					ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("bulk-%05d", i)},
					Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, IPFamilyPolicy: &single,
						IPFamilies: []corev1.IPFamily{corev1.IPv6Protocol}, AllocateLoadBalancerNodePorts: bgpPtr(false),
						Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
				}
				got, err := cs.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{})
				if err != nil {
					errs <- err
					return
				}
				got.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ips[i].String()}}
				if _, err := cs.CoreV1().Services("default").UpdateStatus(ctx, got, metav1.UpdateOptions{}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return ips
}

func bgpPtr[T any](v T) *T { return &v }

// speakerRSS reads the speaker process's resident set (MiB).
func bgpSpeakerRSS(b *testing.B, l *lab.Lab, node string) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", l.Node(node).Speaker.PID()))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

func bgpEnvInt(k string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil && v > 0 {
		return v
	}
	return def
}

func bgpPercentiles(ds []time.Duration) (p50, p99, max time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(q float64) time.Duration {
		i := int(q*float64(len(s)) + 0.5)
		if i >= len(s) {
			i = len(s) - 1
		}
		return s[i]
	}
	return at(0.5), at(0.99), s[len(s)-1]
}

func bgpRoundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}
